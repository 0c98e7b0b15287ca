// Command bulk measures bulk work over many sessions in one Redis:
// Manager.MigrateAll and a hand-written pipelined SCAN + MGET baseline,
// as sessions per second, round trips, client and server CPU, and peak
// memory. run.sh, next to it, starts a Redis of its own and runs every case
// (and tsinspect stats and export) on a million sessions:
//
//	./run.sh                 # 1,000,000 sessions
//	N=100000 ./run.sh        # fewer
//
// One case per process, so that the peak resident set (VmHWM, which
// run.sh also reads with /usr/bin/time -v) is the case's own:
//
//	go run . -addr 127.0.0.1:7000 -case seed -version 1 -n 1000000
//	go run . -addr 127.0.0.1:7000 -case migrate   # every key v1 -> v2
//	go run . -addr 127.0.0.1:7000 -case migrate   # again: all current, read-only
//	go run . -addr 127.0.0.1:7000 -case baseline  # SCAN + MGET, decode each value
//
// Never point it at a Redis that holds data you care about: seed writes
// under -prefix and deletes what was there first.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"

	session "github.com/typedsession/session"
	"github.com/typedsession/session/migrate"
	"github.com/typedsession/session/store/redisstore"
)

// Quiz is the session at version 2: about 400 bytes of JSON.
type Quiz struct {
	ChatID   int64    `json:"chat_id"`
	Language string   `json:"language"`
	Active   bool     `json:"active"`
	Question int      `json:"question"`
	Score    int      `json:"score"`
	Name     string   `json:"name"`
	Answers  []string `json:"answers"`
}

// QuizV1 is the same session at version 1, where language was "lang".
type QuizV1 struct {
	ChatID   int64    `json:"chat_id"`
	Lang     string   `json:"lang"`
	Active   bool     `json:"active"`
	Question int      `json:"question"`
	Score    int      `json:"score"`
	Name     string   `json:"name"`
	Answers  []string `json:"answers"`
}

// envelope is the stored form the baseline decodes.
type envelope struct {
	Version int             `json:"typedsession"`
	Data    json.RawMessage `json:"data"`
}

const (
	namespace = "s"
	ttl       = 24 * time.Hour
)

func main() {
	var (
		addr    = flag.String("addr", "", "Redis host:port (required); use a Redis of its own: seed deletes what is under -prefix")
		prefix  = flag.String("prefix", "bulk:", "redisstore Options.Prefix")
		kase    = flag.String("case", "", "seed, migrate or baseline")
		n       = flag.Int("n", 1_000_000, "sessions to seed")
		version = flag.Int("version", 1, "seed: the schema version to write (1: every key needs a step; 2: current)")
		chunk   = flag.Int("count", 1000, "baseline: SCAN COUNT")
		out     = flag.String("json", "", "append the result as one JSON line to this file")
		prof    = flag.String("cpuprofile", "", "write a CPU profile of the case to this file")
	)
	flag.Parse()
	if *addr == "" || *kase == "" {
		flag.Usage()
		os.Exit(2)
	}
	if err := checkPrefix(*prefix); err != nil {
		fmt.Fprintln(os.Stderr, "bulk:", err)
		os.Exit(2)
	}
	ctx := context.Background()
	var rt roundTrips
	client := redis.NewClient(&redis.Options{Addr: *addr, ContextTimeoutEnabled: true, PoolSize: 16})
	client.AddHook(&rt)
	defer client.Close()
	admin := redis.NewClient(&redis.Options{Addr: *addr})
	defer admin.Close()

	var (
		res Result
		err error
	)
	res.Case, res.N = *kase, *n
	if *prof != "" {
		f, err := os.Create(*prof)
		if err != nil {
			fmt.Fprintln(os.Stderr, "bulk:", err)
			os.Exit(1)
		}
		pprof.StartCPUProfile(f)
		defer pprof.StopCPUProfile()
	}
	cpu0, srv0 := cpuUs(), serverCPU(ctx, admin)
	start := time.Now()
	switch *kase {
	case "seed":
		res.Sessions, err = seed(ctx, client, *prefix, *n, *version)
	case "migrate":
		var r session.MigrateReport
		r, err = migrateAll(ctx, client, *prefix)
		res.Sessions = r.Scanned
		res.Report = fmt.Sprintf("scanned %d, migrated %d, current %d, gone %d, unknown %d, failed %d",
			r.Scanned, r.Migrated, r.Current, r.Gone, r.Extra, len(r.Failed))
	case "baseline":
		res.Sessions, err = baseline(ctx, client, *prefix, *chunk)
	default:
		err = fmt.Errorf("unknown -case %q", *kase)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "bulk:", err)
		pprof.StopCPUProfile()
		os.Exit(1)
	}
	res.fill(time.Since(start), cpuUs()-cpu0, serverCPU(ctx, admin)-srv0, &rt)
	fmt.Println(res)
	if *out != "" {
		f, err := os.OpenFile(*out, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
		if err == nil {
			json.NewEncoder(f).Encode(res)
			f.Close()
		}
	}
}

// Result is what one case measured.
type Result struct {
	Case        string  `json:"case"`
	N           int     `json:"n"`
	Sessions    int     `json:"sessions"`
	Seconds     float64 `json:"seconds"`
	PerSecond   float64 `json:"sessions_per_second"`
	RTPer1000   float64 `json:"round_trips_per_1000"`
	CmdsPerSess float64 `json:"commands_per_session"`
	ClientCPUUs float64 `json:"client_cpu_us_per_session"`
	ServerCPUUs float64 `json:"redis_cpu_us_per_session"`
	PeakRSSMiB  float64 `json:"peak_rss_mib"`
	HeapMiB     float64 `json:"heap_sys_mib"`
	Report      string  `json:"report,omitempty"`
}

func (r *Result) fill(wall time.Duration, clientUs, serverUs int64, rt *roundTrips) {
	n := float64(max(r.Sessions, 1))
	r.Seconds = wall.Seconds()
	r.PerSecond = n / wall.Seconds()
	r.RTPer1000 = float64(rt.trips.Load()) / n * 1000
	r.CmdsPerSess = float64(rt.cmds.Load()) / n
	r.ClientCPUUs = float64(clientUs) / n
	r.ServerCPUUs = float64(serverUs) / n
	r.PeakRSSMiB = float64(peakRSSKiB()) / 1024
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	r.HeapMiB = float64(ms.HeapSys) / (1 << 20)
}

func (r Result) String() string {
	s := fmt.Sprintf("%-9s %8d sessions in %7.2fs: %9.0f sessions/s, %7.2f round trips/1000, %5.2f commands/session, client CPU %6.2f µs/session, Redis CPU %6.2f µs/session, peak RSS %6.1f MiB (heap %6.1f MiB)",
		r.Case, r.Sessions, r.Seconds, r.PerSecond, r.RTPer1000, r.CmdsPerSess, r.ClientCPUUs, r.ServerCPUUs, r.PeakRSSMiB, r.HeapMiB)
	if r.Report != "" {
		s += "\n          " + r.Report
	}
	return s
}

// quiz builds session i at version 1 or 2, as its stored bytes.
func quiz(i, version int) []byte {
	answers := make([]string, 10)
	for j := range answers {
		answers[j] = "answer-" + strconv.Itoa((i+j)%97) + "-abcdefghij"
	}
	var data []byte
	if version == 1 {
		data, _ = json.Marshal(QuizV1{ChatID: int64(9_000_000_000 + i), Lang: "en", Active: i%2 == 0, Question: i % 50, Score: i % 1000, Name: "player number " + strconv.Itoa(i), Answers: answers})
	} else {
		data, _ = json.Marshal(Quiz{ChatID: int64(9_000_000_000 + i), Language: "en", Active: i%2 == 0, Question: i % 50, Score: i % 1000, Name: "player number " + strconv.Itoa(i), Answers: answers})
	}
	return fmt.Appendf(nil, `{"typedsession":%d,"data":%s}`, version, data)
}

// seed deletes the keys under prefix and writes n sessions at version,
// 1,000 per pipeline, each with a TTL of 24 hours.
func seed(ctx context.Context, c *redis.Client, prefix string, n, version int) (int, error) {
	if err := deleteAll(ctx, c, prefix); err != nil {
		return 0, err
	}
	for lo := 0; lo < n; lo += 1000 {
		pipe := c.Pipeline()
		for i := lo; i < min(lo+1000, n); i++ {
			pipe.Set(ctx, prefix+namespace+":"+strconv.Itoa(i), quiz(i, version), ttl)
		}
		if _, err := pipe.Exec(ctx); err != nil {
			return 0, err
		}
	}
	return n, nil
}

// checkPrefix refuses a -prefix under which seed's deletion would reach
// keys that are not the run's: an empty one (the whole Redis) or one with
// a glob metacharacter, which SCAN MATCH would take as a pattern.
func checkPrefix(prefix string) error {
	if prefix == "" {
		return errors.New("-prefix is empty: seed deletes every key under it, which would be the whole Redis; give a prefix of the run's own, such as bulk:")
	}
	if i := strings.IndexAny(prefix, `*?[]\`); i >= 0 {
		return fmt.Errorf("-prefix %q holds %q, a glob metacharacter: seed's SCAN MATCH would take it as a pattern and delete keys outside the prefix; use letters, digits and ':'", prefix, prefix[i])
	}
	return nil
}

func deleteAll(ctx context.Context, c *redis.Client, prefix string) error {
	iter := c.Scan(ctx, 0, prefix+"*", 1000).Iterator()
	var batch []string
	for iter.Next(ctx) {
		batch = append(batch, iter.Val())
		if len(batch) == 1000 {
			if err := c.Unlink(ctx, batch...).Err(); err != nil {
				return err
			}
			batch = batch[:0]
		}
	}
	if len(batch) > 0 {
		if err := c.Unlink(ctx, batch...).Err(); err != nil {
			return err
		}
	}
	return iter.Err()
}

// plan is the schema history: version 1 called the language "lang".
func plan() *migrate.Plan {
	p, err := migrate.New(migrate.Typed(1, func(old QuizV1) (Quiz, error) {
		return Quiz{ChatID: old.ChatID, Language: old.Lang, Active: old.Active, Question: old.Question, Score: old.Score, Name: old.Name, Answers: old.Answers}, nil
	}))
	if err != nil {
		panic(err)
	}
	return p
}

func migrateAll(ctx context.Context, c *redis.Client, prefix string) (session.MigrateReport, error) {
	m, err := session.New(session.Config[Quiz]{
		Store:      redisstore.New(c, redisstore.Options{Prefix: prefix}),
		Namespace:  namespace,
		TTL:        ttl,
		Migrations: plan(),
	})
	if err != nil {
		return session.MigrateReport{}, err
	}
	r, err := m.MigrateAll(ctx, session.MigrateOptions{})
	if err == nil && len(r.Failed) > 0 {
		err = fmt.Errorf("%d keys failed, the first: %v", len(r.Failed), r.Failed[0].Err)
	}
	return r, err
}

// baseline is what a careful hand-written bulk read does: SCAN a page of
// keys, MGET them in the same round trip as the next SCAN, decode each
// value's envelope and data.
func baseline(ctx context.Context, c *redis.Client, prefix string, count int) (int, error) {
	pattern := prefix + namespace + ":*"
	var (
		cursor uint64
		keys   []string
		n      int
	)
	decode := func(vals []any) error {
		for _, v := range vals {
			s, ok := v.(string)
			if !ok {
				continue // expired since the scan
			}
			var env envelope
			if err := json.Unmarshal([]byte(s), &env); err != nil {
				return err
			}
			var q Quiz
			if env.Version == 1 {
				var old QuizV1
				if err := json.Unmarshal(env.Data, &old); err != nil {
					return err
				}
				q.ChatID = old.ChatID
			} else if err := json.Unmarshal(env.Data, &q); err != nil {
				return err
			}
			n++
		}
		return nil
	}
	for first := true; first || cursor != 0; first = false {
		pipe := c.Pipeline()
		scan := pipe.Scan(ctx, cursor, pattern, int64(count))
		var mget *redis.SliceCmd
		if len(keys) > 0 {
			mget = pipe.MGet(ctx, keys...)
		}
		if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
			return n, err
		}
		if mget != nil {
			if err := decode(mget.Val()); err != nil {
				return n, err
			}
		}
		keys, cursor = scan.Val()
	}
	if len(keys) > 0 {
		vals, err := c.MGet(ctx, keys...).Result()
		if err != nil {
			return n, err
		}
		if err := decode(vals); err != nil {
			return n, err
		}
	}
	return n, nil
}

// roundTrips counts the round trips (a command alone or a pipeline) and
// the commands a client sends, leaving out new connections' handshakes.
type roundTrips struct{ trips, cmds atomic.Int64 }

func (r *roundTrips) DialHook(next redis.DialHook) redis.DialHook { return next }

func (r *roundTrips) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if n := cmd.Name(); n != "hello" && n != "client" {
			r.trips.Add(1)
			r.cmds.Add(1)
		}
		return next(ctx, cmd)
	}
}

func (r *roundTrips) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		if len(cmds) > 0 && cmds[0].Name() != "hello" && cmds[0].Name() != "client" {
			r.trips.Add(1)
			r.cmds.Add(int64(len(cmds)))
		}
		return next(ctx, cmds)
	}
}

// cpuUs is this process's user + system CPU time in microseconds.
func cpuUs() int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return ru.Utime.Sec*1e6 + int64(ru.Utime.Usec) + ru.Stime.Sec*1e6 + int64(ru.Stime.Usec)
}

// serverCPU is redis-server's used_cpu_user + used_cpu_sys in
// microseconds (INFO cpu).
func serverCPU(ctx context.Context, c *redis.Client) int64 {
	info, err := c.Info(ctx, "cpu").Result()
	if err != nil {
		return 0
	}
	var total float64
	for _, line := range strings.Split(info, "\n") {
		k, v, ok := strings.Cut(strings.TrimSpace(line), ":")
		if ok && (k == "used_cpu_user" || k == "used_cpu_sys") {
			f, _ := strconv.ParseFloat(v, 64)
			total += f
		}
	}
	return int64(total * 1e6)
}

// peakRSSKiB is the process's peak resident set (VmHWM), in KiB.
func peakRSSKiB() int64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0
	}
	defer f.Close()
	b, _ := io.ReadAll(f)
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb
		}
	}
	return 0
}
