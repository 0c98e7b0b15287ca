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
	"time"
)

func main() {
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
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
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
