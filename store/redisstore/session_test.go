package redisstore_test

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	session "github.com/typedsession/session"
	"github.com/typedsession/session/internal/testenv"
	"github.com/typedsession/session/store"
	"github.com/typedsession/session/store/redisstore"
)

// These tests run the session Manager (the root package) over the Redis
// store: concurrent Updates through two clients, the TTL Redis ends up
// with, an unreachable server, the Redis commands each manager operation
// sends, and a server killed and restarted under a run of Updates. Only the
// tests import the root package; the store itself never does.

// counterSession is the session type of the manager tests.
type counterSession struct {
	N int `json:"n" validate:"gte=0"`
}

func increment(c *counterSession) error {
	c.N++
	return nil
}

// newCounterManager returns a manager of counterSession in namespace
// "counter" over st.
func newCounterManager(tb testing.TB, st store.Store, ttl time.Duration) *session.Manager[counterSession] {
	tb.Helper()
	m, err := session.New(session.Config[counterSession]{Store: st, Namespace: "counter", TTL: ttl})
	if err != nil {
		tb.Fatal(err)
	}
	return m
}

// TestManagerConcurrentUpdatesTwoClients runs 8 goroutines × 25 Updates of
// one key through two managers, each on its own go-redis client (as two
// processes of one bot would be): compare-and-swap must make every
// increment count, and the key must carry the TTL the Config asked for.
func TestManagerConcurrentUpdatesTwoClients(t *testing.T) {
	c1, c2 := testenv.Redis(t), testenv.Redis(t)
	_, prefix := newStorePrefix(t, c1) // its cleanup removes the prefix's keys
	const ttl = time.Hour
	managers := []*session.Manager[counterSession]{
		newCounterManager(t, redisstore.New(c1, redisstore.Options{Prefix: prefix}), ttl),
		newCounterManager(t, redisstore.New(c2, redisstore.Options{Prefix: prefix}), ttl),
	}
	const (
		goroutines = 8
		updates    = 25
	)
	ctx := t.Context()
	var wg sync.WaitGroup
	for g := range goroutines {
		m := managers[g%len(managers)]
		wg.Go(func() {
			for i := range updates {
				if _, err := m.Update(ctx, "k", increment); err != nil {
					t.Errorf("goroutine %d, Update %d: %v", g, i, err)
					return
				}
			}
		})
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}

	// The key Redis holds is Prefix + Namespace + ":" + key.
	redisKey := prefix + "counter:k"
	pttl, err := c1.PTTL(ctx, redisKey).Result()
	if err != nil {
		t.Fatalf("PTTL %q: %v", redisKey, err)
	}
	if pttl < ttl-time.Minute || pttl > ttl {
		t.Errorf("PTTL %q = %v, want between %v and %v (Config.TTL = %v)", redisKey, pttl, ttl-time.Minute, ttl, ttl)
	}
	for i, m := range managers {
		s, err := m.Load(ctx, "k")
		if err != nil {
			t.Fatalf("manager %d: Load: %v", i, err)
		}
		if s.IsNew() || s.Data.N != goroutines*updates {
			t.Errorf("manager %d: Load = {N: %d} (new: %v), want {N: %d}: updates were lost or doubled",
				i, s.Data.N, s.IsNew(), goroutines*updates)
		}
	}
}

// TestManagerUnreachable points a manager at a Redis client whose address
// is a closed loopback port: Load must fail, never hand out a new session
// as if the key were absent, and Update must fail without calling fn.
func TestManagerUnreachable(t *testing.T) {
	for _, ttl := range []time.Duration{0, time.Hour} { // Load sends GET, then GETEX
		t.Run("TTL="+ttl.String(), func(t *testing.T) {
			client := redis.NewClient(&redis.Options{Addr: closedPort(t)})
			t.Cleanup(func() { client.Close() })
			m := newCounterManager(t, redisstore.New(client, redisstore.Options{Prefix: "p:"}), ttl)

			ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
			defer cancel()
			s, err := m.Load(ctx, "k")
			if err == nil {
				t.Fatalf("Load against a closed port returned %v and no error", s)
			}
			if errors.Is(err, store.ErrNotFound) {
				t.Errorf("Load error %v matches store.ErrNotFound", err)
			}
			if s != nil {
				t.Errorf("Load returned a session (new: %v) along with its error %v", s.IsNew(), err)
			}
			var se *session.Error
			if !errors.As(err, &se) || se.Op != "load" || se.Key != "k" {
				t.Errorf("Load error %v is not a *session.Error with Op \"load\" and Key \"k\"", err)
			}

			ctx, cancel = context.WithTimeout(t.Context(), 300*time.Millisecond)
			defer cancel()
			called := false
			_, err = m.Update(ctx, "k", func(c *counterSession) error { called = true; return increment(c) })
			if err == nil {
				t.Fatal("Update against a closed port returned nil")
			}
			if errors.Is(err, store.ErrNotFound) {
				t.Errorf("Update error %v matches store.ErrNotFound", err)
			}
			if called {
				t.Errorf("Update called fn although the Load failed (error %v)", err)
			}
		})
	}
}

// TestManagerCommandsPerOp counts the round trips and the Redis commands
// each manager operation sends, once the compare-and-swap script is in
// the server's cache. With a TTL, Load is one round trip of GET and PTTL
// in a pipeline (store.GetWithTTL: the manager extends the TTL only near
// expiry, so a Load of a fresh session only reads); without one, a GET.
// An unchanged Save sends nothing, a changed Save one EVALSHA.
func TestManagerCommandsPerOp(t *testing.T) {
	client, counter, writes := countingClient(t)
	st := newStore(t, client)
	ctx := t.Context()

	tests := []struct {
		name                 string
		ttl                  time.Duration
		op                   func(m *session.Manager[counterSession]) error
		wantRoundTrips, want int64 // per operation
	}{
		{"LoadSaveChanged", time.Hour, func(m *session.Manager[counterSession]) error {
			s, err := m.Load(ctx, "k")
			if err != nil {
				return err
			}
			s.Data.N++
			return m.Save(ctx, s)
		}, 2, 3},
		{"LoadSaveUnchanged", time.Hour, func(m *session.Manager[counterSession]) error {
			s, err := m.Load(ctx, "k")
			if err != nil {
				return err
			}
			return m.Save(ctx, s)
		}, 1, 2},
		{"LoadSaveUnchangedNoTTL", 0, func(m *session.Manager[counterSession]) error {
			s, err := m.Load(ctx, "k")
			if err != nil {
				return err
			}
			return m.Save(ctx, s)
		}, 1, 1},
		{"Update", time.Hour, func(m *session.Manager[counterSession]) error {
			_, err := m.Update(ctx, "k", increment)
			return err
		}, 2, 3},
		{"NewSessionUnchanged", time.Hour, func(m *session.Manager[counterSession]) error {
			s, err := m.Load(ctx, "absent")
			if err != nil {
				return err
			}
			if !s.IsNew() {
				return errors.New(`key "absent" is not new`)
			}
			return m.Save(ctx, s) // nothing to store
		}, 1, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := newCounterManager(t, st, tt.ttl)
			// Twice first: the key exists and the script is in the
			// server's cache (the first EVALSHA may need an EVAL).
			for range 2 {
				if _, err := m.Update(ctx, "k", increment); err != nil {
					t.Fatal(err)
				}
			}
			const ops = 10
			before, beforeRT := counter.n.Load(), writes.n.Load()
			for range ops {
				if err := tt.op(m); err != nil {
					t.Fatal(err)
				}
			}
			if got := writes.n.Load() - beforeRT; got != tt.wantRoundTrips*ops {
				t.Errorf("%d operations took %d round trips, want %d per operation", ops, got, tt.wantRoundTrips)
			}
			if got := counter.n.Load() - before; got != tt.want*ops {
				t.Errorf("%d operations sent %d Redis commands, want %d per operation", ops, got, tt.want)
			}
		})
	}
}

// TestManagerStopAndRestart kills the manager's Redis server (SIGKILL) in
// the middle of a run of Updates on a few keys, restarts it on the same
// port, and checks each key's counter against what the callers were told.
//
// An Update that returned nil did its compare-and-swap, and Redis
// (appendonly yes, appendfsync always) fsynced it to its AOF before it
// replied, so the restarted server has it: the counter is at least the
// number of nil-returning Updates. An Update that returned an error may or
// may not have landed: the server may have applied and fsynced its swap
// and then died before the reply reached the client, or the deadline may
// have passed while the swap was on its way. So the counter is at most the
// number of Updates attempted, and anything between the two bounds is
// honest.
//
// Both bounds hold with and without go-redis's retries: the store resends
// its swaps itself and reports a resend that finds another value as an
// error, never as a conflict that would make Update apply fn again.
func TestManagerStopAndRestart(t *testing.T) {
	testenv.Slow(t)
	needBinaries(t)
	for _, tc := range []struct {
		name       string
		maxRetries int
	}{
		{"NoRetries", -1},
		{"DefaultRetries", 0},
	} {
		t.Run(tc.name, func(t *testing.T) { testManagerStopAndRestart(t, tc.maxRetries) })
	}
}

func testManagerStopAndRestart(t *testing.T, maxRetries int) {
	srv, client := startDurableServer(t, maxRetries)
	m := newCounterManager(t, redisstore.New(client, redisstore.Options{Prefix: "restart:"}), time.Hour)

	// Bounds: each worker stops once it has perWorker nil-returning
	// Updates, minAfter of them begun after the restart, or after maxCalls
	// calls; everything stops when ctx ends.
	const (
		workers   = 6
		keys      = 3
		perWorker = 60
		minAfter  = 10
		maxCalls  = 5000
	)
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	var (
		attempted, succeeded [keys]atomic.Int64
		total, afterRestart  atomic.Int64 // nil-returning Updates
		failed               atomic.Int64
		restarted            atomic.Bool
		wg                   sync.WaitGroup
	)
	for w := range workers {
		wg.Go(func() {
			mine, after := 0, 0
			for call := 0; call < maxCalls && ctx.Err() == nil; call++ {
				if mine >= perWorker && after >= minAfter {
					return
				}
				k := (w + call) % keys
				afterStart := restarted.Load()
				attempted[k].Add(1)
				callCtx, callCancel := context.WithTimeout(ctx, 3*time.Second)
				_, err := m.Update(callCtx, "k"+strconv.Itoa(k), increment)
				callCancel()
				switch {
				case errors.Is(err, store.ErrNotFound):
					t.Errorf("Update of k%d returned ErrNotFound: %v", k, err)
					return
				case err != nil:
					failed.Add(1)
					time.Sleep(5 * time.Millisecond)
				default:
					succeeded[k].Add(1)
					total.Add(1)
					mine++
					if afterStart {
						after++
						afterRestart.Add(1)
					}
				}
			}
		})
	}

	// Kill the server once a third of the Updates are in, then restart it.
	restartWhen(t, ctx, srv, func() bool { return total.Load() >= workers*perWorker/3 }, cancel, &wg)
	restarted.Store(true)
	wg.Wait()

	t.Logf("nil-returning Updates: %d (%d begun after the restart); errors: %d", total.Load(), afterRestart.Load(), failed.Load())
	if afterRestart.Load() < workers*minAfter {
		t.Fatalf("only %d Updates succeeded after the restart, want %d", afterRestart.Load(), workers*minAfter)
	}
	check, checkCancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer checkCancel()
	for k := range keys {
		key := "k" + strconv.Itoa(k)
		s, err := m.Load(check, key)
		if err != nil {
			t.Fatalf("Load %q after the run: %v", key, err)
		}
		got, ok, tried := s.Data.N, int(succeeded[k].Load()), int(attempted[k].Load())
		t.Logf("%s: counter %d, Updates returned nil %d, attempted %d", key, got, ok, tried)
		if got < ok {
			t.Errorf("%s: counter is %d but %d Updates returned nil: %d acknowledged updates lost", key, got, ok, ok-got)
		}
		if got > tried {
			t.Errorf("%s: counter is %d but only %d Updates were attempted: an Update applied twice", key, got, tried)
		}
	}
}

// TestMigrateAllMeetsWrongType (issue 23): another program's Redis hash
// under the namespace was absent to the batch read (MGET answers nil for
// it) while Get failed with WRONGTYPE, so MigrateAll counted it as gone.
// It is now failed, matching store.ErrCorrupt, next to the sessions it
// migrates.
func TestMigrateAllMeetsWrongType(t *testing.T) {
	client := testenv.Redis(t)
	st, prefix := newStorePrefix(t, client)
	m := newCounterManager(t, st, 0)
	ctx := t.Context()
	for i := range 3 {
		if _, err := m.Update(ctx, strconv.Itoa(i), increment); err != nil {
			t.Fatal(err)
		}
	}
	if err := client.HSet(ctx, prefix+"counter:hash", "f", "v").Err(); err != nil {
		t.Fatal(err)
	}
	r, err := m.MigrateAll(ctx, session.MigrateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if r.Scanned != 4 || r.Gone != 0 || len(r.Failed) != 1 || r.Failed[0].Key != "hash" || !errors.Is(r.Failed[0].Err, store.ErrCorrupt) {
		t.Errorf("MigrateAll = scanned %d, gone %d, failed %v; want 4 scanned, the hash failed with store.ErrCorrupt", r.Scanned, r.Gone, r.Failed)
	}
}
