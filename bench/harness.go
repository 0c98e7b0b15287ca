package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"

	session "github.com/typedsession/session"
	"github.com/typedsession/session/store"
)

// Config is what one harness run measures.
type Config struct {
	Store       string        // memory, redis or postgres
	Payload     int           // bytes of the session's JSON
	Concurrency int           // goroutines in the contention run
	Updates     int           // updates per goroutine per contention round
	Rounds      int           // rounds; each case runs once per round
	Duration    time.Duration // time per case per round
	RedisURL    string
	DatabaseURL string
	Verbose     bool // print every round's ns/op, not only the medians
}

// Sess is the session every case loads, changes and saves: a quiz state
// whose Answers are sized so that its JSON is Config.Payload bytes.
type Sess struct {
	Active   bool     `json:"active"`
	Question int      `json:"question" validate:"gte=0,lte=1000"`
	Score    int      `json:"score" validate:"gte=0"`
	Answers  []string `json:"answers" validate:"max=10000"`
}

// makeSess returns a session whose JSON is size bytes long (or as close as
// the fixed fields allow).
func makeSess(size int) Sess {
	s := Sess{Active: true, Question: 7, Score: 100000}
	for {
		n, _ := jsonSize(s)
		r := size - n
		if r <= 0 {
			return s
		}
		k := len(s.Answers)
		switch {
		case k == 0 || (len(s.Answers[k-1]) >= 40 && r >= 3):
			// null becomes [""] (same length); each later "" adds 3.
			s.Answers = append(s.Answers, "")
		default:
			add := 40 - len(s.Answers[k-1])
			if add <= 0 || add > r {
				add = r
			}
			s.Answers[k-1] += strings.Repeat("a", add)
		}
	}
}

// sample is one case's measurement in one round.
type sample struct {
	ns, allocs, bytes, cmds float64
}

// Row is one line of the table: the medians over the rounds.
type Row struct {
	Name      string
	NsPerOp   float64
	AllocsOp  float64
	BytesOp   float64
	CmdsPerOp float64 // -1 when not counted
	Ratio     float64 // NsPerOp / the baseline's NsPerOp
}

// Result is what Run measured.
type Result struct {
	Rows        []Row
	Lost        int64 // contention: expected minus final, over all rounds
	Conflicts   int64 // contention: compare-and-swaps that lost, retried by Update
	GaveUp      int64 // contention: updates that ran out of attempts
	ContentionN int64 // contention: successful updates over all rounds

	samples map[string][]sample // per round, by row name
}

// PairRatio is the median over rounds of a's ns/op divided by b's in the
// same round.
func (r *Result) PairRatio(a, b string) float64 {
	return medianRatio(r.samples[a], r.samples[b])
}

// Row returns the row named name, or nil.
func (r *Result) Row(name string) *Row {
	for i := range r.Rows {
		if r.Rows[i].Name == name {
			return &r.Rows[i]
		}
	}
	return nil
}

// A benchCase is one operation, run in a loop.
type benchCase struct {
	name string
	// counted reports whether cmds counts what op sends.
	counted bool
	op      func(ctx context.Context) error
	// cmds returns the command counter op is measured by (nil: the
	// backend's go-redis hook).
	cmds func() int64
}

// Row names, used by the table, the targets and the tests.
const (
	RowBaseline  = "baseline: get, json decode, change, json encode, set"
	RowJSON      = "json only: decode, change, encode (no store)"
	RowBaseCAS   = "baseline with the store's compare-and-swap for set"
	RowBaseRead  = "baseline read only: get, json decode, json encode"
	RowChanged   = "Load + change + Save"
	RowUnchanged = "Load + Save, unchanged"
	RowUpdate    = "Update (uncontended)"
	RowContended = "Update, contended"
)

const ttl = time.Hour

// Run measures every case for cfg.Rounds rounds and prints the table to w.
func Run(ctx context.Context, cfg Config, w io.Writer) (*Result, error) {
	if cfg.Rounds < 1 || cfg.Duration <= 0 || cfg.Payload < 1 || cfg.Concurrency < 2 || cfg.Updates < 1 {
		return nil, errors.New("need -rounds >= 1, -duration > 0, -payload >= 1, -concurrency >= 2, -updates >= 1")
	}
	b, cases, closeAll, err := setup(ctx, cfg, w)
	if err != nil {
		return nil, err
	}
	defer closeAll()

	samples := make(map[string][]sample)
	var contention []float64
	res := &Result{samples: samples}
	for round := range cfg.Rounds {
		// Rotate the order so that no case always follows the same one.
		for i := range cases {
			c := cases[(i+round)%len(cases)]
			cmds := c.cmds
			if cmds == nil {
				cmds = b.cmds.Load
			}
			s, err := measure(ctx, cfg.Duration, cmds, c.op)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", c.name, err)
			}
			if !c.counted || (b.rdb == nil && c.cmds == nil) {
				s.cmds = -1
			}
			samples[c.name] = append(samples[c.name], s)
		}
		ns, err := contend(ctx, cfg, b, round, res)
		if err != nil {
			return nil, fmt.Errorf("contention: %w", err)
		}
		contention = append(contention, ns)
	}

	for _, c := range cases {
		ss := samples[c.name]
		row := Row{
			Name:      c.name,
			NsPerOp:   median(ss, func(s sample) float64 { return s.ns }),
			AllocsOp:  median(ss, func(s sample) float64 { return s.allocs }),
			BytesOp:   median(ss, func(s sample) float64 { return s.bytes }),
			CmdsPerOp: median(ss, func(s sample) float64 { return s.cmds }),
		}
		// The ratio is the median of the per-round ratios: a case and the
		// baseline of the same round ran seconds apart, so a slow spell
		// of the machine cancels out.
		row.Ratio = medianRatio(ss, samples[RowBaseline])
		res.Rows = append(res.Rows, row)
	}
	cont := Row{Name: RowContended, NsPerOp: median(contention, func(f float64) float64 { return f }), CmdsPerOp: -1}
	ratios := make([]float64, len(contention))
	for i, ns := range contention {
		ratios[i] = ns / samples[RowBaseline][i].ns
	}
	cont.Ratio = median(ratios, func(f float64) float64 { return f })
	res.Rows = append(res.Rows, cont)

	printTable(w, res)
	if cfg.Verbose {
		fmt.Fprintln(w, "\nns/op of each round:")
		for _, c := range cases {
			fmt.Fprintf(w, "  %-52s", c.name)
			for _, s := range samples[c.name] {
				fmt.Fprintf(w, " %7.0f", s.ns)
			}
			fmt.Fprintln(w)
		}
		fmt.Fprintf(w, "  %-52s", RowContended)
		for _, ns := range contention {
			fmt.Fprintf(w, " %7.0f", ns)
		}
		fmt.Fprintln(w)
	}
	fmt.Fprintf(w, "\ncontention: %d goroutines, two managers, one key, %d updates each per round: %d updates, %d lost updates, %d conflicts retried, %d gave up\n",
		cfg.Concurrency, cfg.Updates, res.ContentionN, res.Lost, res.Conflicts, res.GaveUp)
	printTargets(w, cfg, res)
	return res, nil
}

// setup opens the backend, seeds it and returns the cases to measure and
// a function that releases everything.
func setup(ctx context.Context, cfg Config, w io.Writer) (*backend, []benchCase, func(), error) {
	b, err := openBackend(ctx, cfg)
	if err != nil {
		return nil, nil, nil, err
	}
	closeAll := b.close
	fail := func(err error) (*backend, []benchCase, func(), error) {
		closeAll()
		return nil, nil, nil, err
	}

	data := makeSess(cfg.Payload)
	raw, _ := json.Marshal(data)
	fmt.Fprintf(w, "store %s, session JSON %d bytes, %d rounds of %v per case, %s/%s, GOMAXPROCS %d\n",
		cfg.Store, len(raw), cfg.Rounds, cfg.Duration, runtime.GOOS, runtime.GOARCH, runtime.GOMAXPROCS(0))

	m, err := session.New(session.Config[Sess]{Store: b.st, Namespace: "s", TTL: ttl})
	if err != nil {
		return fail(err)
	}
	// Seed: the baseline's raw JSON and our session, same data.
	if err := b.set(ctx, "base", raw, ttl); err != nil {
		return fail(fmt.Errorf("seed the baseline: %w", err))
	}
	if _, err := m.Update(ctx, "u", func(s *Sess) error { *s = data; return nil }); err != nil {
		return fail(fmt.Errorf("seed the session: %w", err))
	}

	// The baseline's twin that writes with the store's compare-and-swap:
	// it shows what CAS alone costs, apart from the manager.
	swapper, ok := b.st.(store.Swapper)
	if !ok {
		return fail(fmt.Errorf("store %T has no CompareAndSwap", b.st))
	}
	cases := []benchCase{
		{name: RowBaseline, counted: true, op: func(ctx context.Context) error {
			v, err := b.get(ctx, "base")
			if err != nil {
				return err
			}
			var s Sess
			if err := json.Unmarshal(v, &s); err != nil {
				return err
			}
			s.Score++
			out, err := json.Marshal(s)
			if err != nil {
				return err
			}
			return b.set(ctx, "base", out, ttl)
		}},
		{name: RowBaseCAS, counted: true, op: func(ctx context.Context) error {
			v, err := b.get(ctx, "base")
			if err != nil {
				return err
			}
			var s Sess
			if err := json.Unmarshal(v, &s); err != nil {
				return err
			}
			s.Score++
			out, err := json.Marshal(s)
			if err != nil {
				return err
			}
			ok, err := swapper.CompareAndSwap(ctx, "base", v, out, ttl)
			if err == nil && !ok {
				err = errors.New("compare-and-swap found another value")
			}
			return err
		}},
		{name: RowBaseRead, counted: true, op: func(ctx context.Context) error {
			// What any library must do for an unchanged session: read,
			// decode, and encode to find out that nothing changed.
			v, err := b.get(ctx, "base")
			if err != nil {
				return err
			}
			var s Sess
			if err := json.Unmarshal(v, &s); err != nil {
				return err
			}
			_, err = json.Marshal(s)
			return err
		}},
		{name: RowJSON, counted: true, op: func(ctx context.Context) error {
			var s Sess
			if err := json.Unmarshal(raw, &s); err != nil {
				return err
			}
			s.Score++
			_, err := json.Marshal(s)
			return err
		}},
		{name: RowChanged, counted: true, op: func(ctx context.Context) error {
			s, err := m.Load(ctx, "u")
			if err != nil {
				return err
			}
			s.Data.Score++
			return m.Save(ctx, s)
		}},
		{name: RowUnchanged, counted: true, op: func(ctx context.Context) error {
			s, err := m.Load(ctx, "u")
			if err != nil {
				return err
			}
			return m.Save(ctx, s)
		}},
		{name: RowUpdate, counted: true, op: func(ctx context.Context) error {
			_, err := m.Update(ctx, "u", func(s *Sess) error { s.Score++; return nil })
			return err
		}},
	}
	web, closeWeb, err := httpCases(ctx, cfg, b, data)
	if err != nil {
		closeWeb()
		return fail(err)
	}
	cases = append(cases, web...)
	return b, cases, func() { closeWeb(); b.close() }, nil

}

// measure runs op for d after a short warm-up and returns the cost of one
// call: wall time, heap allocations (runtime.MemStats deltas, so
// background goroutines count too: the pool, the sweep) and commands.
func measure(ctx context.Context, d time.Duration, cmds func() int64, op func(context.Context) error) (sample, error) {
	for range 5 {
		if err := op(ctx); err != nil {
			return sample{}, err
		}
	}
	runtime.GC()
	var ms0, ms1 runtime.MemStats
	runtime.ReadMemStats(&ms0)
	c0 := cmds()
	n := 0
	start := time.Now()
	for time.Since(start) < d {
		if err := op(ctx); err != nil {
			return sample{}, err
		}
		n++
	}
	elapsed := time.Since(start)
	c1 := cmds()
	runtime.ReadMemStats(&ms1)
	if err := ctx.Err(); err != nil {
		return sample{}, err
	}
	f := float64(n)
	return sample{
		ns:     float64(elapsed.Nanoseconds()) / f,
		allocs: float64(ms1.Mallocs-ms0.Mallocs) / f,
		bytes:  float64(ms1.TotalAlloc-ms0.TotalAlloc) / f,
		cmds:   float64(c1-c0) / f,
	}, nil
}

// contend runs cfg.Concurrency goroutines that Update one fresh key
// through two managers (two "processes" sharing the store) and checks
// that the final count is the number of updates that succeeded. It
// returns the wall time per update.
func contend(ctx context.Context, cfg Config, b *backend, round int, res *Result) (float64, error) {
	cc, err := newConflictCounter(b.st)
	if err != nil {
		return 0, err
	}
	var ms [2]*session.Manager[Sess]
	for i := range ms {
		if ms[i], err = session.New(session.Config[Sess]{Store: cc, Namespace: "contend", TTL: ttl}); err != nil {
			return 0, err
		}
	}
	key := fmt.Sprintf("k%d", round)
	var (
		wg     sync.WaitGroup
		mu     sync.Mutex
		ok     int64
		gaveUp int64
		other  error
	)
	start := time.Now()
	for g := range cfg.Concurrency {
		m := ms[g%2]
		wg.Go(func() {
			for range cfg.Updates {
				_, err := m.Update(ctx, key, func(s *Sess) error { s.Score++; return nil })
				mu.Lock()
				switch {
				case err == nil:
					ok++
				case errors.Is(err, session.ErrConflict):
					gaveUp++
				case other == nil:
					other = err
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	if other != nil {
		return 0, other
	}
	s, err := ms[0].Load(ctx, key)
	if err != nil {
		return 0, err
	}
	res.Lost += ok - int64(s.Data.Score)
	res.Conflicts += cc.conflicts.Load()
	res.GaveUp += gaveUp
	res.ContentionN += ok
	if err := ms[0].Delete(ctx, key); err != nil {
		return 0, err
	}
	return float64(elapsed.Nanoseconds()) / float64(max(ok, 1)), nil
}

// medianRatio is the median over rounds of ss[i].ns / base[i].ns.
func medianRatio(ss, base []sample) float64 {
	r := make([]float64, len(ss))
	for i := range ss {
		r[i] = ss[i].ns / base[i].ns
	}
	return median(r, func(f float64) float64 { return f })
}

func median[S any](ss []S, f func(S) float64) float64 {
	v := make([]float64, len(ss))
	for i, s := range ss {
		v[i] = f(s)
	}
	slices.Sort(v)
	n := len(v)
	if n == 0 {
		return 0
	}
	if n%2 == 1 {
		return v[n/2]
	}
	return (v[n/2-1] + v[n/2]) / 2
}

func printTable(w io.Writer, res *Result) {
	width := 4
	for _, r := range res.Rows {
		width = max(width, len(r.Name))
	}
	fmt.Fprintf(w, "\n%-*s %9s %10s %8s %8s %11s\n", width, "case", "ns/op", "allocs/op", "B/op", "cmds/op", "× baseline")
	for _, r := range res.Rows {
		cmds, allocs, bytes := "-", "-", "-"
		if r.CmdsPerOp >= 0 {
			cmds = fmt.Sprintf("%.2f", r.CmdsPerOp)
		}
		if r.Name != RowContended {
			allocs, bytes = fmt.Sprintf("%.0f", r.AllocsOp), fmt.Sprintf("%.0f", r.BytesOp)
		}
		fmt.Fprintf(w, "%-*s %9.0f %10s %8s %8s %10.2f\n", width, r.Name, r.NsPerOp, allocs, bytes, cmds, r.Ratio)
	}
}

// printTargets checks the figures of issue 7 that apply to this store.
func printTargets(w io.Writer, cfg Config, res *Result) {
	fmt.Fprintln(w, "\ntargets:")
	check := func(what string, got, limit float64, unit string) {
		verdict := "met"
		if got > limit {
			verdict = "MISSED"
		}
		fmt.Fprintf(w, "  %-46s %6.2f%s (target <= %.2f%s): %s\n", what, got, unit, limit, unit, verdict)
	}
	exact := func(what string, got, want float64) {
		verdict := "met"
		if fmt.Sprintf("%.2f", got) != fmt.Sprintf("%.2f", want) {
			verdict = "MISSED"
		}
		fmt.Fprintf(w, "  %-46s %6.2f  (target %.0f): %s\n", what, got, want, verdict)
	}
	row := func(name string) Row {
		if r := res.Row(name); r != nil {
			return *r
		}
		return Row{}
	}
	if cfg.Store == "redis" {
		check("changed Load+Save / baseline", row(RowChanged).Ratio, 1.10, "×")
		check("unchanged Load+Save / baseline", row(RowUnchanged).Ratio, 0.55, "×")
		check("uncontended Update / baseline", row(RowUpdate).Ratio, 1.15, "×")
		exact("Redis commands, changed Load+Save", row(RowChanged).CmdsPerOp, 2)
		exact("Redis commands, unchanged Load+Save", row(RowUnchanged).CmdsPerOp, 1)
		exact("Redis commands, uncontended Update", row(RowUpdate).CmdsPerOp, 2)
		if res.Row(RowHTTPOurs) != nil && res.Row(RowHTTPScsGoRedis) != nil {
			check("our middleware / scs (go-redis store)", res.PairRatio(RowHTTPOurs, RowHTTPScsGoRedis), 1.00, "×")
		}
	}
	if cfg.Store == "memory" {
		check("changed Load+Save / json only", res.PairRatio(RowChanged, RowJSON), 1.30, "×")
		if res.Row(RowHTTPOurs) != nil && res.Row(RowHTTPScsMem) != nil {
			check("our middleware / scs (memstore)", res.PairRatio(RowHTTPOurs, RowHTTPScsMem), 1.00, "×")
		}
	}
	exact("lost updates under contention", float64(res.Lost), 0)
}

func jsonSize(v any) (int, error) {
	b, err := json.Marshal(v)
	return len(b), err
}
