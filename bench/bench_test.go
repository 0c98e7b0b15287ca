package main

import (
	"context"
	"io"
	"os"
	"testing"
)

// BenchmarkCases runs each harness case under go test, so that one case
// can be profiled on its own:
//
//	BENCH_STORE=redis go test -run '^$' -bench 'Cases/Load_\+_Save,_unchanged' -cpuprofile cpu.out
//	go tool pprof -top cpu.out
//
// BENCH_STORE is memory, redis (the default) or postgres.
func BenchmarkCases(b *testing.B) {
	cfg := shortConfig(envOr("BENCH_STORE", "redis"))
	bk, cases, closeAll, err := setup(context.Background(), cfg, io.Discard)
	if err != nil {
		if os.Getenv("CI") != "true" {
			b.Skipf("skipping: %v", err)
		}
		b.Fatal(err)
	}
	b.Cleanup(closeAll)
	_ = bk
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			ctx := b.Context()
			b.ReportAllocs()
			for b.Loop() {
				if err := c.op(ctx); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
