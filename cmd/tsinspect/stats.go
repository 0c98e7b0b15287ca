package main

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	session "github.com/typedsession/session"
)

func statsCmd(g *globals) *cobra.Command {
	var top int
	var asJSON bool
	c := &cobra.Command{
		Use:   "stats [KEYPREFIX]",
		Short: "Count, sizes, versions, TTLs and damage of the values under a prefix",
		Long: `stats reads every value under --namespace and KEYPREFIX and reports: the
count and total size; size percentiles p50, p90, p99 from a log-bucketed
histogram (within 1% of a true size) and the exact max; counts by
namespace, status and schema version; values with write identities and
with layers; the TTLs left, in ranges; and the largest values. It streams:
memory stays flat on any number of keys.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.withStore(cmd, false, func(ctx context.Context, t *target) error {
				prefix := g.scanPrefix(args)
				s, err := collect(ctx, g, t, prefix, top)
				if err != nil {
					return err
				}
				if asJSON {
					enc := json.NewEncoder(g.stdout)
					enc.SetIndent("", "  ")
					enc.SetEscapeHTML(false)
					return enc.Encode(s.report())
				}
				s.print(g.stdout, t, prefix)
				return nil
			})
		},
	}
	c.Flags().IntVar(&top, "top", 10, "how many of the largest values to list")
	c.Flags().BoolVar(&asJSON, "json", false, "print the report as JSON")
	return c
}

// maxGroups bounds the namespaces and versions counted apart; the rest
// are counted under "(other)", so that memory stays flat.
const maxGroups = 100

// ttlRanges are the upper bounds of the TTL distribution's ranges.
var ttlRanges = []struct {
	Name string
	Max  time.Duration
}{
	{"<1m", time.Minute}, {"<1h", time.Hour}, {"<1d", 24 * time.Hour},
	{"<7d", 7 * 24 * time.Hour}, {"<30d", 30 * 24 * time.Hour},
}

type stats struct {
	keys, gone int
	hist       sizeHist
	namespaces map[string]int
	statuses   map[Status]int
	versions   map[string]int
	withWrites int
	layered    int
	ttl        map[string]int
	top        topK
}

func collect(ctx context.Context, g *globals, t *target, prefix string, top int) (*stats, error) {
	s := &stats{namespaces: map[string]int{}, statuses: map[Status]int{}, versions: map[string]int{}, ttl: map[string]int{}, top: topK{k: top}}
	bar := g.progress(-1, "stats")
	defer bar.Finish()
	err := walk(ctx, t, prefix, g.Workers, func(e entry) error {
		bar.Add(1)
		s.add(e)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("stats: after %d keys: %w", s.keys+s.gone, err)
	}
	return s, nil
}

func (s *stats) add(e entry) {
	if e.Gone {
		s.gone++
		return
	}
	s.keys++
	s.hist.add(e.Size)
	s.top.add(e.Key, e.Size)
	bump(s.namespaces, namespaceOf(e.Key))
	s.statuses[e.Status]++
	switch e.Status {
	case StatusOK, StatusV0:
		bump(s.versions, strconv.Itoa(e.Env.Version))
	case StatusQuarantined:
	default:
		bump(s.versions, "undecodable")
	}
	if e.Env.Writes.Len() > 0 {
		s.withWrites++
	}
	if len(e.Env.Layers) > 0 {
		s.layered++
	}
	s.ttl[ttlRange(e.TTL, e.TTLKnown)]++
}

func bump(m map[string]int, k string) {
	if _, ok := m[k]; !ok && len(m) >= maxGroups {
		k = "(other)"
	}
	m[k]++
}

// namespaceOf returns the namespace of a store key: what precedes its
// first ':' ("(none)" without one, "(quarantine)" under QuarantinePrefix).
func namespaceOf(key string) string {
	if strings.HasPrefix(key, session.QuarantinePrefix) {
		return "(quarantine)"
	}
	ns, _, ok := strings.Cut(key, ":")
	if !ok {
		return "(none)"
	}
	return ns
}

func ttlRange(d time.Duration, known bool) string {
	switch {
	case !known:
		return "unknown"
	case d < 0:
		return "none"
	}
	for _, r := range ttlRanges {
		if d < r.Max {
			return r.Name
		}
	}
	return ">=30d"
}

// statsReport is the JSON form of stats.
type statsReport struct {
	Keys       int            `json:"keys"`
	Gone       int            `json:"gone"`
	TotalBytes uint64         `json:"total_bytes"`
	P50        int            `json:"p50_bytes"`
	P90        int            `json:"p90_bytes"`
	P99        int            `json:"p99_bytes"`
	Max        int            `json:"max_bytes"`
	ErrorBound float64        `json:"percentile_relative_error"`
	Namespaces map[string]int `json:"namespaces"`
	Statuses   map[Status]int `json:"statuses"`
	Versions   map[string]int `json:"versions"`
	WithWrites int            `json:"with_write_identities"`
	Layered    int            `json:"with_layers"`
	TTL        map[string]int `json:"ttl"`
	Largest    []sized        `json:"largest"`
}

func (s *stats) report() statsReport {
	return statsReport{
		Keys: s.keys, Gone: s.gone, TotalBytes: s.hist.sum,
		P50: s.hist.quantile(0.5), P90: s.hist.quantile(0.9), P99: s.hist.quantile(0.99), Max: s.hist.max,
		ErrorBound: histAlpha, Namespaces: s.namespaces, Statuses: s.statuses, Versions: s.versions,
		WithWrites: s.withWrites, Layered: s.layered, TTL: s.ttl, Largest: s.top.sorted(),
	}
}

func (s *stats) print(w io.Writer, t *target, prefix string) {
	fmt.Fprintf(w, "store:        %s %s\n", t.Kind, t.Where)
	if prefix != "" {
		fmt.Fprintf(w, "prefix:       %q\n", prefix)
	}
	fmt.Fprintf(w, "keys:         %d", s.keys)
	if s.gone > 0 {
		fmt.Fprintf(w, " (and %d expired or deleted during the scan)", s.gone)
	}
	fmt.Fprintln(w)
	fmt.Fprintf(w, "total size:   %s (%d bytes)\n", sizeText(int64(s.hist.sum)), s.hist.sum)
	if s.keys > 0 {
		fmt.Fprintf(w, "size:         p50 %s, p90 %s, p99 %s (within %g%%), max %s\n",
			sizeText(int64(s.hist.quantile(0.5))), sizeText(int64(s.hist.quantile(0.9))), sizeText(int64(s.hist.quantile(0.99))),
			histAlpha*100, sizeText(int64(s.hist.max)))
	}
	fmt.Fprintf(w, "namespaces:   %s\n", counts(s.namespaces, byCount))
	fmt.Fprintf(w, "status:       %s\n", counts(s.statuses, byCount))
	fmt.Fprintf(w, "versions:     %s\n", counts(s.versions, byName))
	fmt.Fprintf(w, "writes:       %d with write identities, %d without\n", s.withWrites, s.keys-s.withWrites)
	if s.layered > 0 {
		fmt.Fprintf(w, "layers:       %d sealed or compressed\n", s.layered)
	}
	var ttl []string
	for _, name := range []string{"none", "<1m", "<1h", "<1d", "<7d", "<30d", ">=30d", "unknown"} {
		if n := s.ttl[name]; n > 0 {
			ttl = append(ttl, fmt.Sprintf("%s %d", name, n))
		}
	}
	fmt.Fprintf(w, "ttl left:     %s\n", orNone(strings.Join(ttl, ", ")))
	if top := s.top.sorted(); len(top) > 0 {
		fmt.Fprintf(w, "largest:\n")
		for _, e := range top {
			fmt.Fprintf(w, "  %9d  %s\n", e.Size, keyText(e.Key))
		}
	}
}

const (
	byCount = iota
	byName
)

// counts prints a map as "a 3, b 2", by count (then name) or by name.
func counts[K ~string](m map[K]int, order int) string {
	keys := make([]K, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b K) int {
		if order == byCount {
			if c := cmp.Compare(m[b], m[a]); c != 0 {
				return c
			}
		}
		return cmp.Compare(a, b)
	})
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s %d", k, m[k])
	}
	return orNone(strings.Join(parts, ", "))
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}
