package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

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

// sample is one case's measurement in one round, each figure per
// operation; -1 where it was not measured.
type sample struct {
	ns, allocs, bytes float64
	cmds, rts         float64 // Redis commands and round trips, client side
	cpu               float64 // client CPU µs (getrusage of this process)
	redisCPU          float64 // redis-server CPU µs (INFO cpu)
	redisUsec         float64 // commandstats µs of the top-level commands
}

// Row is one line of the table: the medians over the rounds. Figures that
// were not measured for a row (no Redis, a client without a counter) are
// -1.
type Row struct {
	Name      string
	NsPerOp   float64 // wall time per operation, ns
	AllocsOp  float64 // heap allocations per operation (runtime.MemStats)
	BytesOp   float64 // heap bytes allocated per operation
	CmdsPerOp float64 // Redis commands per operation, MULTI and EXEC included
	RTsPerOp  float64 // Redis round trips per operation: a command, or a pipeline or transaction
	CPUUsOp   float64 // client CPU per operation, µs: getrusage user+sys of the whole process
	RedisCPU  float64 // redis-server CPU per operation, µs: INFO cpu used_cpu_user+used_cpu_sys
	RedisUsec float64 // INFO commandstats usec per operation of the top-level commands, µs
	Ratio     float64 // median over rounds of NsPerOp / the same round's baseline NsPerOp
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
	// counted reports whether counter sees what op sends.
	counted bool
	op      func(ctx context.Context) error
	// counter is the Redis counter op is measured by (nil: the backend's
	// go-redis hook).
	counter *redisCounter
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
	res := &Result{samples: samples}
	for round := range cfg.Rounds {
		// Rotate the order so that no case always follows the same one.
		for i := range cases {
			c := cases[(i+round)%len(cases)]
			pr := probe{rc: c.counter, admin: b.admin}
			if pr.rc == nil {
				pr.rc = b.rc
			}
			if !c.counted {
				pr.rc = nil
			}
			s, err := measure(ctx, cfg.Duration, pr, c.op)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", c.name, err)
			}
			samples[c.name] = append(samples[c.name], s)
		}
		s, err := contend(ctx, cfg, b, round, res)
		if err != nil {
			return nil, fmt.Errorf("contention: %w", err)
		}
		samples[RowContended] = append(samples[RowContended], s)
	}

	for _, name := range append(caseNames(cases), RowContended) {
		ss := samples[name]
		med := func(f func(sample) float64) float64 { return median(ss, f) }
		row := Row{
			Name:      name,
			NsPerOp:   med(func(s sample) float64 { return s.ns }),
			AllocsOp:  med(func(s sample) float64 { return s.allocs }),
			BytesOp:   med(func(s sample) float64 { return s.bytes }),
			CmdsPerOp: med(func(s sample) float64 { return s.cmds }),
			RTsPerOp:  med(func(s sample) float64 { return s.rts }),
			CPUUsOp:   med(func(s sample) float64 { return s.cpu }),
			RedisCPU:  med(func(s sample) float64 { return s.redisCPU }),
			RedisUsec: med(func(s sample) float64 { return s.redisUsec }),
		}
		// The ratio is the median of the per-round ratios: a case and the
		// baseline of the same round ran seconds apart, so a slow spell
		// of the machine cancels out.
		row.Ratio = medianRatio(ss, samples[RowBaseline])
		res.Rows = append(res.Rows, row)
	}

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
		for _, s := range samples[RowContended] {
			fmt.Fprintf(w, " %7.0f", s.ns)
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
	fmt.Fprintf(w, "store %s, session JSON %d bytes, %d rounds of %v per case, %s/%s, GOMAXPROCS %d, load average %s\n",
		cfg.Store, len(raw), cfg.Rounds, cfg.Duration, runtime.GOOS, runtime.GOARCH, runtime.GOMAXPROCS(0), loadAvg())
	if b.redisDesc != "" {
		fmt.Fprintln(w, b.redisDesc)
	}

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

// probe reads the figures of one measured stretch besides wall time and
// allocations: the Redis counter of the client under test (nil: commands
// and round trips are not counted) and a client for INFO on the same
// server (nil: no Redis).
type probe struct {
	rc    *redisCounter
	admin *redis.Client
}

// reading is everything a probe reads at one moment.
type reading struct {
	ms     runtime.MemStats
	cpu    int64
	counts counts
	server serverStats
	t      time.Time
}

// read takes a reading; the server is read first when starting and last
// when stopping, so that the INFO round trip stays outside the client
// figures as far as it can.
func (p probe) read(ctx context.Context, start bool) (reading, error) {
	var r reading
	var err error
	if start && p.admin != nil {
		if r.server, err = readServerStats(ctx, p.admin); err != nil {
			return r, err
		}
	}
	if !start {
		r.t = time.Now()
		r.cpu = cpuUs()
	}
	if p.rc != nil {
		r.counts = p.rc.snapshot()
	}
	runtime.ReadMemStats(&r.ms)
	if start {
		r.cpu = cpuUs()
		r.t = time.Now()
	}
	if !start && p.admin != nil {
		if r.server, err = readServerStats(ctx, p.admin); err != nil {
			return r, err
		}
	}
	return r, nil
}

// perOp turns two readings around n operations into a sample; extra
// adds client figures measured elsewhere (child processes) and is zero
// for an in-process run.
func (p probe) perOp(r0, r1 reading, n int64) sample {
	f := float64(max(n, 1))
	s := sample{
		ns:        float64(r1.t.Sub(r0.t).Nanoseconds()) / f,
		allocs:    float64(r1.ms.Mallocs-r0.ms.Mallocs) / f,
		bytes:     float64(r1.ms.TotalAlloc-r0.ms.TotalAlloc) / f,
		cpu:       float64(r1.cpu-r0.cpu) / f,
		cmds:      -1,
		rts:       -1,
		redisCPU:  -1,
		redisUsec: -1,
	}
	d := r1.counts.sub(r0.counts)
	if p.rc != nil {
		s.cmds, s.rts = float64(d.Cmds)/f, float64(d.RTs)/f
	}
	if p.admin != nil {
		cpu, cmds := serverDelta(r0.server, r1.server)
		s.redisCPU = cpu / f
		if p.rc != nil {
			s.redisUsec = topLevelUsec(cmds, d.Names) / f
		}
	}
	return s
}

// measure runs op for d after a short warm-up and returns the cost of one
// call: wall time, heap allocations (runtime.MemStats deltas, so
// background goroutines count too: the pool, the sweep), client CPU, and
// what the probe counts on Redis.
func measure(ctx context.Context, d time.Duration, pr probe, op func(context.Context) error) (sample, error) {
	for range 5 {
		if err := op(ctx); err != nil {
			return sample{}, err
		}
	}
	runtime.GC()
	r0, err := pr.read(ctx, true)
	if err != nil {
		return sample{}, err
	}
	var n int64
	for time.Since(r0.t) < d {
		if err := op(ctx); err != nil {
			return sample{}, err
		}
		n++
	}
	r1, err := pr.read(ctx, false)
	if err != nil {
		return sample{}, err
	}
	if err := ctx.Err(); err != nil {
		return sample{}, err
	}
	return pr.perOp(r0, r1, n), nil
}

// contend runs cfg.Concurrency goroutines that Update one fresh key
// through two managers (two "processes" sharing the store) and checks
// that the final count is the number of updates that succeeded. It
// returns the cost per successful update. Conflicts are counted as the
// extra runs of the change function (each retry of Update runs it again),
// not by wrapping the store, which would hide the capabilities the
// manager looks for.
func contend(ctx context.Context, cfg Config, b *backend, round int, res *Result) (sample, error) {
	var ms [2]*session.Manager[Sess]
	for i := range ms {
		var err error
		if ms[i], err = session.New(session.Config[Sess]{Store: b.st, Namespace: "contend", TTL: ttl}); err != nil {
			return sample{}, err
		}
	}
	key := fmt.Sprintf("k%d", round)
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		ok       int64
		gaveUp   int64
		attempts atomic.Int64
		other    error
	)
	fn := func(s *Sess) error { attempts.Add(1); s.Score++; return nil }
	pr := probe{rc: b.rc, admin: b.admin}
	runtime.GC()
	r0, err := pr.read(ctx, true)
	if err != nil {
		return sample{}, err
	}
	for g := range cfg.Concurrency {
		m := ms[g%2]
		wg.Go(func() {
			for range cfg.Updates {
				_, err := m.Update(ctx, key, fn)
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
	r1, err := pr.read(ctx, false)
	if err != nil {
		return sample{}, err
	}
	if other != nil {
		return sample{}, other
	}
	s, err := ms[0].Load(ctx, key)
	if err != nil {
		return sample{}, err
	}
	res.Lost += ok - int64(s.Data.Score)
	res.Conflicts += attempts.Load() - ok - gaveUp
	res.GaveUp += gaveUp
	res.ContentionN += ok
	if err := ms[0].Delete(ctx, key); err != nil {
		return sample{}, err
	}
	return pr.perOp(r0, r1, ok), nil
}

func caseNames(cases []benchCase) []string {
	names := make([]string, len(cases))
	for i, c := range cases {
		names[i] = c.name
	}
	return names
}

// loadAvg is the first three fields of /proc/loadavg, or "unknown".
func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
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
	fmt.Fprintf(w, "\n%-*s %9s %11s %9s %8s %8s %7s %7s %7s %8s\n", width, "case",
		"ns/op", "× baseline", "allocs/op", "B/op", "cmds/op", "RT/op", "CPU µs", "Redis", "cmdstat")
	fmt.Fprintf(w, "%-*s %9s %11s %9s %8s %8s %7s %7s %7s %8s\n", width, "",
		"", "", "", "", "", "", "/op", "CPU µs", "µs/op")
	for _, r := range res.Rows {
		fmt.Fprintf(w, "%-*s %9.0f %10.2f %10s %8s %8s %7s %7s %7s %8s\n", width, r.Name, r.NsPerOp, r.Ratio,
			fig(r.AllocsOp, 0), fig(r.BytesOp, 0), fig(r.CmdsPerOp, 2), fig(r.RTsPerOp, 2),
			fig(r.CPUUsOp, 1), fig(r.RedisCPU, 1), fig(r.RedisUsec, 1))
	}
	fmt.Fprintln(w, "\nCPU µs/op: this process, getrusage user+sys; Redis CPU µs/op: INFO cpu of the whole redis-server;")
	fmt.Fprintln(w, "cmdstat µs/op: INFO commandstats time of the commands this client sent at top level (script and EXEC")
	fmt.Fprintln(w, "bodies counted once, inside EVALSHA and EXEC); RT/op: round trips, a pipeline or transaction counting one.")
}

// fig formats a per-op figure, "-" when it was not measured.
func fig(v float64, prec int) string {
	if v < 0 {
		return "-"
	}
	return strconv.FormatFloat(v, 'f', prec, 64)
}

// printTargets checks the targets of the first benchmark round (BENCHMARKS.md) that apply to this store.
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
		exact("Redis round trips, changed Load+Save", row(RowChanged).RTsPerOp, 2)
		exact("Redis round trips, unchanged Load+Save", row(RowUnchanged).RTsPerOp, 1)
		exact("Redis round trips, uncontended Update", row(RowUpdate).RTsPerOp, 2)
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
