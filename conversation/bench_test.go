package conversation_test

import (
	"context"
	"fmt"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/typedsession/session/internal/convtest"
	"github.com/typedsession/session/store"
	"github.com/typedsession/session/store/memstore"
)

// The sweeper's cost with 100,000 pending conversations, each waiting at
// AskAge with its one-minute timeout, their deadlines spread evenly over
// an hour (one every 36 ms). Run:
//
//	go test -run '^$' -bench 'Sweep' -benchtime 200x ./conversation
//
// (REDIS_URL for Redis; the setup writes the 100,000 conversations once
// per sub-benchmark, about 600,000 round trips). Metrics: rtt/sweep and
// rtt/fired are store calls (each one round trip on Redis), fired/sweep
// the timeouts each sweep ran; cpu-µs/sweep and cpu-µs/fired the CPU time
// of the process (the sweeper and its store client, not the Redis
// server); ns/op (wall) and allocs/op are per sweep.
const benchPending = 100_000

func BenchmarkSweep(b *testing.B) {
	for _, kind := range []string{"memstore", "redis"} {
		b.Run(kind, func(b *testing.B) {
			var st store.Store
			if kind == "redis" {
				st = redisStore(b)
			} else {
				ms, err := memstore.New(memstore.Options{})
				if err != nil {
					b.Fatal(err)
				}
				b.Cleanup(func() { ms.Close() })
				st = ms
			}
			clk := convtest.NewClock()
			start := clk.Now()
			fill(b, st, start)
			counted := convtest.NewKillable(st, 1<<62)
			p := convtest.NewProc(b, counted, clk, nil)

			for _, c := range []struct {
				name string
				step time.Duration // the clock's advance before each sweep
			}{
				{"empty-slot", 0},             // before every deadline: nothing listed in the current slot
				{"due-1s", time.Second},       // a sweep every second: ~28 due a sweep
				{"due-10s", 10 * time.Second}, // ~278 due a sweep
				{"none-due", 0},               // again at once: the current slot's entries read, none due
			} {
				b.Run(c.name, func(b *testing.B) {
					switch {
					case c.name == "empty-slot":
						clk.Set(start.Add(30 * time.Second))
					case clk.Now().Before(start.Add(convtest.AgeTimeout)):
						clk.Set(start.Add(convtest.AgeTimeout))
					}
					p.Flow.Sweep(context.Background()) // the cursor catches up
					ops0 := counted.Ops()
					cpu0 := cpuTime(b)
					fired := 0
					b.ReportAllocs()
					b.ResetTimer()
					for range b.N {
						clk.Advance(c.step)
						rep, err := p.Flow.Sweep(context.Background())
						if err != nil || len(rep.Failed) > 0 {
							b.Fatal(err, rep.Failed)
						}
						fired += rep.Fired
					}
					b.StopTimer()
					cpu := float64(cpuTime(b)-cpu0) / float64(time.Microsecond)
					ops := float64(counted.Ops() - ops0)
					b.ReportMetric(cpu/float64(b.N), "cpu-µs/sweep")
					b.ReportMetric(ops/float64(b.N), "rtt/sweep")
					b.ReportMetric(float64(fired)/float64(b.N), "fired/sweep")
					if fired > 0 {
						b.ReportMetric(ops/float64(fired), "rtt/fired")
						b.ReportMetric(cpu/float64(fired), "cpu-µs/fired")
					}
				})
			}
		})
	}
}

// cpuTime returns the CPU time (user and system) the process has used:
// the sweeper's own work and its store client's, not the Redis server's.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// fill starts benchPending conversations, the i-th at start + i·36 ms,
// so that their AskAge deadlines fall one every 36 ms over an hour.
func fill(b *testing.B, st store.Store, start time.Time) {
	b.Helper()
	const workers = 16
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	spacing := time.Hour / benchPending
	for w := range workers {
		wg.Go(func() {
			clk := convtest.NewClock()
			p := convtest.NewProc(b, st, clk, nil)
			for i := w; i < benchPending; i += workers {
				clk.Set(start.Add(time.Duration(i) * spacing))
				key := fmt.Sprint(i)
				ctx := context.Background()
				if _, err := p.Flow.Handle(ctx, key, 1, convtest.Msg{Text: "/start"}); err != nil {
					errs <- err
					return
				}
				if _, err := p.Flow.Handle(ctx, key, 2, convtest.Msg{Text: "Ann"}); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		b.Fatal(err)
	}
}
