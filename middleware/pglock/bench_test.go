package pglock_test

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"

	session "github.com/typedsession/session"
	"github.com/typedsession/session/middleware"
	"github.com/typedsession/session/middleware/internal/replicatest"
	"github.com/typedsession/session/middleware/pglock"
)

// BenchmarkUpdate is the cost of one update through the middleware on a
// sqlstore on PostgreSQL (load, increment, compare-and-swap), by lock:
// nolock (Options.NoLock; in parallel, conflicts/op counts the updates
// refused), locktable (the in-process default) and pglock (the advisory
// lock: a pool connection, the try-lock and the release statement more per
// update). "sequential" is one goroutine updating one user; "64x8" is 64
// updates in flight over 8 users.
func BenchmarkUpdate(b *testing.B) {
	for _, lock := range []string{"nolock", "locktable", "pglock"} {
		for _, mode := range []string{"sequential", "64x8"} {
			b.Run(lock+"/"+mode, func(b *testing.B) {
				st, _ := testStore(b)
				m, err := session.New(session.Config[replicatest.Counter]{Store: st, Namespace: "c"})
				if err != nil {
					b.Fatal(err)
				}
				opts := middleware.Options{}
				switch lock {
				case "nolock":
					opts.NoLock = true
				case "pglock":
					l := pglock.New(testPool(b), pglock.Options{Class: testClass()})
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
					ctx := context.Background()
					u := &replicatest.Update{User: "u0"}
					for b.Loop() {
						if err := h(ctx, u); err != nil {
							b.Fatal(err)
						}
					}
					return
				}
				benchInFlight(b, h, 64, 8)
			})
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
