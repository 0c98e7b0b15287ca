package pglock_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	session "github.com/typedsession/session"
	"github.com/typedsession/session/middleware"
	"github.com/typedsession/session/middleware/internal/replicatest"
	"github.com/typedsession/session/middleware/pglock"
)

func newLocker(t *testing.T, opts pglock.Options) *pglock.Locker {
	l := pglock.New(testPool(t), opts)
	t.Cleanup(func() { l.Close() })
	return l
}

// TestMutualExclusion: goroutines of two Lockers, each on its own pool (two
// replicas), increment a plain counter under the lock with a read, a pause
// and a write; none of the increments is lost.
func TestMutualExclusion(t *testing.T) {
	class := testClass()
	ls := []*pglock.Locker{newLocker(t, pglock.Options{Class: class}), newLocker(t, pglock.Options{Class: class})}
	var (
		counter int // guarded by the lock under test, not by Go
		inside  atomic.Int32
		wg      sync.WaitGroup
	)
	const perGoroutine = 20
	for i := range 16 {
		wg.Go(func() {
			l := ls[i%2]
			for range perGoroutine {
				unlock, err := l.Lock(t.Context(), "k")
				if err != nil {
					t.Error(err)
					return
				}
				if n := inside.Add(1); n != 1 {
					t.Errorf("%d holders at once", n)
				}
				v := counter
				time.Sleep(50 * time.Microsecond)
				counter = v + 1
				inside.Add(-1)
				unlock()
			}
		})
	}
	wg.Wait()
	if counter != 16*perGoroutine {
		t.Errorf("counter = %d, want %d", counter, 16*perGoroutine)
	}
}

// TestWakeByNotify: a waiter whose poll is an hour gets the lock only
// because the release's notification wakes it.
func TestWakeByNotify(t *testing.T) {
	class := testClass()
	a := newLocker(t, pglock.Options{Class: class})
	b := newLocker(t, pglock.Options{Class: class, Poll: time.Hour})
	for _, key := range []string{"a", "b", "c"} {
		unlock, err := a.Lock(t.Context(), key)
		if err != nil {
			t.Fatal(err)
		}
		got := make(chan error, 1)
		go func() {
			ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
			defer cancel()
			u, err := b.Lock(ctx, key)
			if err == nil {
				u()
			}
			got <- err
		}()
		time.Sleep(20 * time.Millisecond) // most often b waits; the test holds either way
		unlock()
		if err := <-got; err != nil {
			t.Fatalf("key %s: waiter: %v, want the lock", key, err)
		}
	}
}

// TestWaiterGivesUp: a waiter whose ctx ends returns ctx's error and holds
// nothing: neither the lock nor a connection.
func TestWaiterGivesUp(t *testing.T) {
	class := testClass()
	a := newLocker(t, pglock.Options{Class: class})
	pool := testPool(t)
	b := pglock.New(pool, pglock.Options{Class: class})
	defer b.Close()
	unlock, err := a.Lock(t.Context(), "k")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
	defer cancel()
	if _, err := b.Lock(ctx, "k"); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Lock = %v, want context.DeadlineExceeded", err)
	}
	if n := pool.Stat().AcquiredConns(); n != 0 {
		t.Errorf("the waiter that gave up left %d connections acquired", n)
	}
	unlock()
	u, err := b.Lock(t.Context(), "k")
	if err != nil {
		t.Fatal(err)
	}
	u()
}

// TestMaxConns: with MaxConns 2, two held locks use both slots; a third
// key waits for a slot (and gives up with its ctx) until one is unlocked.
func TestMaxConns(t *testing.T) {
	l := newLocker(t, pglock.Options{Class: testClass(), MaxConns: 2})
	u1, err := l.Lock(t.Context(), "one")
	if err != nil {
		t.Fatal(err)
	}
	u2, err := l.Lock(t.Context(), "two")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
	defer cancel()
	if _, err := l.Lock(ctx, "three"); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("third Lock with two slots held = %v, want context.DeadlineExceeded", err)
	}
	got := make(chan error, 1)
	go func() {
		u3, err := l.Lock(t.Context(), "three")
		if err == nil {
			u3()
		}
		got <- err
	}()
	u1()
	if err := <-got; err != nil {
		t.Fatal(err)
	}
	u2()
}

// TestClassKeepsApart: the same key under two classes is two locks, and an
// application's own one-bigint advisory lock on the same number does not
// block ours.
func TestClassKeepsApart(t *testing.T) {
	pool := testPool(t)
	c1, c2 := testClass(), testClass()
	if c1 == c2 {
		c2 = c1 ^ 1
	}
	a := newLocker(t, pglock.Options{Class: c1})
	b := newLocker(t, pglock.Options{Class: c2})
	conn, err := pool.Acquire(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Release()
	// The app's lock: one bigint equal to ours packed as (class<<32 | hash).
	app := int64(c1)<<32 | int64(uint32(pglock.Hash("k")))
	if _, err := conn.Exec(t.Context(), "SELECT pg_advisory_lock($1)", app); err != nil {
		t.Fatal(err)
	}
	defer conn.Exec(context.Background(), "SELECT pg_advisory_unlock($1)", app)
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	ua, err := a.Lock(ctx, "k")
	if err != nil {
		t.Fatalf("class %d: %v", c1, err)
	}
	defer ua()
	ub, err := b.Lock(ctx, "k")
	if err != nil {
		t.Fatalf("class %d while class %d holds the same key: %v", c2, c1, err)
	}
	ub()
}

// TestConnectionEndsLock arranges the PostgreSQL form of a stalled holder:
// replica A's handler stalls while its lock's connection is terminated
// (as a network cut or a server restart would); the lock ends with it,
// replica B takes it and saves, and A's save is then refused with
// session.ErrConflict. A's unlock reports the failed release.
func TestConnectionEndsLock(t *testing.T) {
	st, _ := testStore(t)
	class := testClass()
	newMW := func(l middleware.Locker) *middleware.Middleware[*replicatest.Update, replicatest.Counter] {
		m, err := session.New(session.Config[replicatest.Counter]{Store: st, Namespace: "c"})
		if err != nil {
			t.Fatal(err)
		}
		return middleware.New(m, replicatest.Key, middleware.Options{Locker: l})
	}
	released := make(chan error, 1)
	mwA := newMW(newLocker(t, pglock.Options{Class: class, OnError: func(key string, err error) {
		if key != "" {
			released <- err
		}
	}}))
	mwB := newMW(newLocker(t, pglock.Options{Class: class}))
	loaded, resume := make(chan struct{}), make(chan struct{})
	hA := mwA.Wrap(func(ctx context.Context, u *replicatest.Update) error {
		s, err := session.From[replicatest.Counter](ctx)
		if err != nil {
			return err
		}
		s.Data.N++
		close(loaded)
		<-resume
		return nil
	})
	hB := mwB.Wrap(func(ctx context.Context, u *replicatest.Update) error {
		s, err := session.From[replicatest.Counter](ctx)
		if err != nil {
			return err
		}
		s.Data.N += 10
		return nil
	})
	errA := make(chan error, 1)
	go func() { errA <- hA(t.Context(), &replicatest.Update{User: "ann"}) }()
	<-loaded
	pool := testPool(t)
	var n int
	err := pool.QueryRow(t.Context(), `SELECT count(pg_terminate_backend(pid)) FROM pg_locks
		WHERE locktype = 'advisory' AND classid = $1 AND objid = $2 AND objsubid = 2`,
		uint32(class), uint32(pglock.Hash("ann"))).Scan(&n)
	if err != nil || n != 1 {
		t.Fatalf("terminating the holder's backend: %d terminated, %v", n, err)
	}
	if err := hB(t.Context(), &replicatest.Update{User: "ann"}); err != nil {
		t.Fatalf("replica B: %v", err)
	}
	close(resume)
	if err := <-errA; !errors.Is(err, session.ErrConflict) {
		t.Fatalf("replica A's update after its lock's connection ended = %v, want session.ErrConflict", err)
	}
	if err := <-released; err == nil {
		t.Error("A's unlock reported no error for a release on a dead connection")
	}
	m, _ := session.New(session.Config[replicatest.Counter]{Store: st, Namespace: "c"})
	s, err := m.Load(t.Context(), "ann")
	if err != nil {
		t.Fatal(err)
	}
	if s.Data.N != 10 {
		t.Fatalf("stored N = %d, want 10 (B's change; A's stale save refused)", s.Data.N)
	}
}

// TestClose: after Close, a Lock that has to wait returns ErrClosed; a
// free lock is still taken.
func TestClose(t *testing.T) {
	class := testClass()
	a := newLocker(t, pglock.Options{Class: class})
	b := pglock.New(testPool(t), pglock.Options{Class: class})
	unlock, err := a.Lock(t.Context(), "k")
	if err != nil {
		t.Fatal(err)
	}
	b.Close()
	if _, err := b.Lock(t.Context(), "k"); !errors.Is(err, pglock.ErrClosed) {
		t.Fatalf("Lock after Close = %v, want ErrClosed", err)
	}
	unlock()
	u, err := b.Lock(t.Context(), "k")
	if err != nil {
		t.Fatalf("Lock of a free key after Close = %v", err)
	}
	u()
}
