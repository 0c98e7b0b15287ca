// Command bench measures typedsession against a hand-written baseline and
// against alexedwards/scs, on one store, in one process.
//
// Run it inside bench/:
//
//	go run . -store redis -payload 500 -rounds 15 -duration 150ms
//
// Every case runs once per round for -duration, the cases interleaved
// round by round, so that a slow moment of a noisy machine hits every case
// alike; the table reports the median of the rounds, and each ratio is the
// median of the per-round ratios. Besides wall time it reports what does
// not depend on the machine's mood: allocations, Redis commands and round
// trips per operation, and CPU per operation (this process's getrusage,
// and redis-server's INFO cpu and commandstats). See BENCHMARKS.md at
// the root of the repository for what each row measures.
//
// The harness is its own Go module so that the peer libraries it compares
// against never enter the library's go.mod.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"runtime/pprof"
	"strconv"
	"strings"
	"time"
)

func main() {
	if spec := os.Getenv(peerChildEnv); spec != "" {
		// A child process of the -peers run's 2proc mode.
		if err := peerChild(spec); err != nil {
			fmt.Fprintln(os.Stderr, "bench child:", err)
			os.Exit(1)
		}
		return
	}
	cfg := Config{
		Store:       "redis",
		Payload:     500,
		Concurrency: 64,
		Updates:     20,
		Rounds:      15,
		Duration:    150 * time.Millisecond,
		RedisURL:    os.Getenv("REDIS_URL"),
		DatabaseURL: envOr("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"),
	}
	flag.StringVar(&cfg.Store, "store", cfg.Store, "store under test: memory, redis or postgres")
	flag.IntVar(&cfg.Payload, "payload", cfg.Payload, "size in bytes of the session's JSON")
	flag.IntVar(&cfg.Concurrency, "concurrency", cfg.Concurrency, "goroutines updating one key in the contention run")
	flag.IntVar(&cfg.Updates, "updates", cfg.Updates, "updates per goroutine in each contention round")
	flag.IntVar(&cfg.Rounds, "rounds", cfg.Rounds, "rounds; each case runs once per round")
	flag.DurationVar(&cfg.Duration, "duration", cfg.Duration, "time each case runs in each round")
	flag.StringVar(&cfg.RedisURL, "redis", cfg.RedisURL, "Redis URL (default $REDIS_URL; when neither is set, a redis-server of the run's own on a free loopback port, so that Redis CPU counts this run only; without redis-server installed, redis://127.0.0.1:6379/0)")
	flag.StringVar(&cfg.DatabaseURL, "database", cfg.DatabaseURL, "PostgreSQL URL (default $DATABASE_URL or loopback)")
	flag.BoolVar(&cfg.Verbose, "v", false, "also print every round's ns/op")
	pc := PeerConfig{
		N:      envInt("N", 20000),
		K:      envInt("K", 1000),
		Hot:    envInt("HOT", 8),
		Warmup: envInt("WARMUP", 5000),
		Pool:   envInt("POOL", 0),
		Client: "plain",
		Locker: "table",
	}
	peers := flag.Bool("peers", false, "run the peer workload (../shared/peers: seq, conc64, conc64x8, 2proc-x8) instead of the cases: our middleware, Manager.Update and a go-redis baseline; -rounds defaults to $REPS or 3, -concurrency to $CONC or 64")
	flag.IntVar(&pc.N, "n", pc.N, "-peers: updates per run (default $N or 20000)")
	flag.IntVar(&pc.K, "k", pc.K, "-peers: chats of seq and conc (default $K or 1000)")
	flag.IntVar(&pc.Hot, "hot", pc.Hot, "-peers: chats of the hot modes (default $HOT or 8)")
	flag.IntVar(&pc.Warmup, "warmup", pc.Warmup, "-peers: warm-up updates per case and mode (default $WARMUP or 5000)")
	flag.IntVar(&pc.Pool, "pool", pc.Pool, "-peers: go-redis PoolSize (default $POOL; 0: go-redis's default)")
	flag.StringVar(&pc.Client, "client", pc.Client, "-peers: Redis client of every case: plain (*redis.Client), autopipeline (its AutoPipeline()) or store (plain, with redisstore.Options.AutoPipeline for our cases)")
	flag.StringVar(&pc.Locker, "locker", pc.Locker, "-peers: the middleware's Locker: table (its own LockTable) or redis (middleware/redislock, across processes)")
	flag.DurationVar(&pc.APDelay, "apdelay", 0, "-peers: go-redis AutoPipelineOptions.MaxFlushDelay of the autopipeline and store clients (default 0: go-redis's)")
	flag.BoolVar(&pc.APFullDuplex, "apfd", false, "-peers: go-redis AutoPipelineOptions.FullDuplex of the autopipeline and store clients")
	cases := flag.String("cases", os.Getenv("CASES"), "-peers: comma-separated case ids, of mw, upd, base (default $CASES or all)")
	modes := flag.String("modes", os.Getenv("MODES"), "-peers: comma-separated modes, of seq, conc64, conc64x8, 2proc-x8 (default $MODES or all)")
	cpuprofile := flag.String("cpuprofile", "", "write a CPU profile of this process (not of 2proc's children) to this file, for go tool pprof")
	flag.Parse()

	if *cpuprofile != "" {
		f, err := os.Create(*cpuprofile)
		if err == nil {
			err = pprof.StartCPUProfile(f)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "bench:", err)
			os.Exit(1)
		}
		defer func() { pprof.StopCPUProfile(); f.Close() }()
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if *peers {
		set := map[string]bool{}
		flag.Visit(func(f *flag.Flag) { set[f.Name] = true })
		pc.Rounds, pc.Conc = cfg.Rounds, cfg.Concurrency
		if !set["rounds"] {
			pc.Rounds = envInt("REPS", 3)
		}
		if !set["concurrency"] {
			pc.Conc = envInt("CONC", 64)
		}
		pc.RedisURL, pc.Verbose = cfg.RedisURL, cfg.Verbose
		pc.Cases, pc.Modes = splitList(*cases), splitList(*modes)
		res, err := RunPeers(ctx, pc, os.Stdout)
		if err != nil {
			fmt.Fprintln(os.Stderr, "bench:", err)
			os.Exit(1)
		}
		if res.Lost != 0 {
			fmt.Fprintf(os.Stderr, "bench: %d acknowledged updates of ours lost\n", res.Lost)
			os.Exit(1)
		}
		return
	}
	res, err := Run(ctx, cfg, os.Stdout)
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
	if res.Lost != 0 {
		fmt.Fprintf(os.Stderr, "bench: %d updates lost under contention\n", res.Lost)
		os.Exit(1)
	}
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

// envInt is the integer in the environment variable name, or def when it
// is unset; a value that is not an integer stops the program.
func envInt(name string, def int) int {
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		fmt.Fprintf(os.Stderr, "bench: %s=%q: %v\n", name, v, err)
		os.Exit(2)
	}
	return n
}

// splitList splits a comma-separated list, dropping empty items.
func splitList(s string) []string {
	var out []string
	for f := range strings.SplitSeq(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}
