package redislock_test

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"

	session "github.com/typedsession/session"
	"github.com/typedsession/session/internal/testenv"
	"github.com/typedsession/session/middleware"
	"github.com/typedsession/session/middleware/internal/replicatest"
	"github.com/typedsession/session/middleware/redislock"
	"github.com/typedsession/session/store/redisstore"
)

// BenchmarkUpdate is the cost of one update through the middleware on a
// redisstore (load, increment, compare-and-swap), by lock:
//
//   - nolock: Options.NoLock, no serialization at all (in parallel, updates
//     of one user conflict: conflicts/op counts the ones refused);
//   - locktable: the default in-process LockTable (serializes one process
//     only);
//   - redislock: the distributed lock (two more round trips per update:
//     the acquire script and the release script).
//
// "sequential" is one goroutine updating one user; "64x8" is 64 updates in
// flight over 8 users.
func BenchmarkUpdate(b *testing.B) {
	c := testenv.Redis(b)
	for _, lock := range []string{"nolock", "locktable", "redislock"} {
		for _, mode := range []string{"sequential", "64x8"} {
			b.Run(lock+"/"+mode, func(b *testing.B) {
				prefix := testenv.Prefix(b, "redislockbench")
				testenv.CleanupPrefix(b, c, prefix)
				st := redisstore.New(c, redisstore.Options{Prefix: prefix + "s:"})
				m, err := session.New(session.Config[replicatest.Counter]{Store: st, Namespace: "c"})
				if err != nil {
					b.Fatal(err)
				}
				opts := middleware.Options{}
				switch lock {
				case "nolock":
					opts.NoLock = true
				case "redislock":
					l := redislock.New(c, redislock.Options{Prefix: prefix + "l:"})
					b.Cleanup(func() { l.Close() })
					opts.Locker = l
				}
				h := middleware.New(m, replicatest.Key, opts).Wrap(func(ctx context.Context, _ *replicatest.Update) error {
					s, err := session.From[replicatest.Counter](ctx)
					if err != nil {
						return err
					}
					s.Data.N++
					return nil
				})
				if mode == "sequential" {
					benchSequential(b, h)
				} else {
					benchInFlight(b, h, 64, 8)
				}
			})
		}
	}
}

func benchSequential(b *testing.B, h middleware.Handler[*replicatest.Update]) {
	ctx := context.Background()
	u := &replicatest.Update{User: "u0"}
	for b.Loop() {
		if err := h(ctx, u); err != nil {
			b.Fatal(err)
		}
	}
}

// benchInFlight runs b.N updates with inFlight goroutines over users
// users, reporting conflicts/op (updates refused with ErrConflict).
func benchInFlight(b *testing.B, h middleware.Handler[*replicatest.Update], inFlight, users int) {
	ctx := context.Background()
	var (
		next, conflicts atomic.Int64
		wg              sync.WaitGroup
	)
	b.ResetTimer()
	for g := range inFlight {
		wg.Go(func() {
			u := &replicatest.Update{User: "u" + strconv.Itoa(g%users)}
			for next.Add(1) <= int64(b.N) {
				if err := h(ctx, u); err != nil {
					if errors.Is(err, session.ErrConflict) {
						conflicts.Add(1)
						continue
					}
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	b.ReportMetric(float64(conflicts.Load())/float64(b.N), "conflicts/op")
}
