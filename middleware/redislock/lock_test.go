package redislock_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	session "github.com/typedsession/session"
	"github.com/typedsession/session/internal/testenv"
	"github.com/typedsession/session/middleware"
	"github.com/typedsession/session/middleware/internal/replicatest"
	"github.com/typedsession/session/middleware/redislock"
	"github.com/typedsession/session/store/redisstore"
)

// newPrefix returns a fresh key prefix on c, whose keys are removed when t
// ends.
func newPrefix(t *testing.T, c *redis.Client) string {
	prefix := testenv.Prefix(t, "redislock")
	testenv.CleanupPrefix(t, c, prefix)
	return prefix
}

// newLocker returns a Locker closed when t ends.
func newLocker(t *testing.T, c redis.UniversalClient, opts redislock.Options) *redislock.Locker {
	l := redislock.New(c, opts)
	t.Cleanup(func() { l.Close() })
	return l
}

// waitSubscribers waits until channel has n subscribers on c.
func waitSubscribers(t *testing.T, c *redis.Client, channel string, n int64) {
	t.Helper()
	for range 1000 {
		got, err := c.PubSubNumSub(t.Context(), channel).Result()
		if err != nil {
			t.Fatal(err)
		}
		if got[channel] == n {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("channel %q never had %d subscribers", channel, n)
}

// TestMutualExclusion: goroutines of two Lockers (two replicas) increment a
// plain counter under the lock with a read, a pause and a write; none of
// the increments is lost, and the in-process tables end empty.
func TestMutualExclusion(t *testing.T) {
	c := testenv.Redis(t)
	testMutualExclusion(t, c, newPrefix(t, c))
}

func testMutualExclusion(t *testing.T, c redis.UniversalClient, prefix string) {
	ls := []*redislock.Locker{
		newLocker(t, c, redislock.Options{Prefix: prefix}),
		newLocker(t, c, redislock.Options{Prefix: prefix}),
	}
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

// TestWakeByRelease: a waiter whose poll is an hour, behind a holder whose
// lease is an hour, gets the lock only because the release wakes it.
func TestWakeByRelease(t *testing.T) {
	c := testenv.Redis(t)
	prefix := newPrefix(t, c)
	a := newLocker(t, c, redislock.Options{Prefix: prefix, Lease: time.Hour})
	b := newLocker(t, c, redislock.Options{Prefix: prefix, Poll: time.Hour})
	unlock, err := a.Lock(t.Context(), "k")
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
		defer cancel()
		u, err := b.Lock(ctx, "k")
		if err == nil {
			u()
		}
		got <- err
	}()
	waitSubscribers(t, c, prefix+"k", 1) // b is waiting
	unlock()
	if err := <-got; err != nil {
		t.Fatalf("waiter: %v, want the lock", err)
	}
	waitSubscribers(t, c, prefix+"k", 0) // b unsubscribed once it had the lock
}

// TestWaiterGivesUp: a waiter whose ctx ends returns ctx's error, holds
// nothing, and leaves the holder's lock alone.
func TestWaiterGivesUp(t *testing.T) {
	c := testenv.Redis(t)
	prefix := newPrefix(t, c)
	a := newLocker(t, c, redislock.Options{Prefix: prefix})
	b := newLocker(t, c, redislock.Options{Prefix: prefix})
	unlock, err := a.Lock(t.Context(), "k")
	if err != nil {
		t.Fatal(err)
	}
	held, err := c.Get(t.Context(), prefix+"k").Result()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
	defer cancel()
	if _, err := b.Lock(ctx, "k"); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Lock = %v, want context.DeadlineExceeded", err)
	}
	// A second waiter of the same replica, already cancelled.
	ctx2, cancel2 := context.WithCancel(t.Context())
	cancel2()
	if _, err := b.Lock(ctx2, "k"); !errors.Is(err, context.Canceled) {
		t.Fatalf("Lock = %v, want context.Canceled", err)
	}
	if v, _ := c.Get(t.Context(), prefix+"k").Result(); v != held {
		t.Fatalf("lock holds %q after the waiters gave up, want the holder's %q", v, held)
	}
	unlock()
	if n, _ := c.Exists(t.Context(), prefix+"k").Result(); n != 0 {
		t.Fatal("the lock's key is still there after unlock")
	}
	// b is usable again.
	u, err := b.Lock(t.Context(), "k")
	if err != nil {
		t.Fatal(err)
	}
	u()
}

// TestRenewal: a lock held for 2.5 times its lease stays held (no other
// replica gets it), because it is renewed every tenth of the lease (so a
// renewal may be late by most of a lease on a loaded machine); unlock
// releases it at once.
func TestRenewal(t *testing.T) {
	c := testenv.Redis(t)
	prefix := newPrefix(t, c)
	a := newLocker(t, c, redislock.Options{Prefix: prefix, Lease: time.Second, Renew: 100 * time.Millisecond,
		OnError: func(key string, err error) { t.Errorf("OnError(%q, %v)", key, err) }})
	b := newLocker(t, c, redislock.Options{Prefix: prefix})
	unlock, err := a.Lock(t.Context(), "k")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 2500*time.Millisecond)
	defer cancel()
	if _, err := b.Lock(ctx, "k"); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("other replica's Lock during 2.5 leases = %v, want context.DeadlineExceeded", err)
	}
	unlock()
	u, err := b.Lock(t.Context(), "k")
	if err != nil {
		t.Fatal(err)
	}
	u()
}

// TestExpiredUnlockSparesNewHolder: a holder whose lease ran out (no
// renewal) and who unlocks after another replica took the lock does not
// release the new holder's lock, and hears ErrLeaseLost.
func TestExpiredUnlockSparesNewHolder(t *testing.T) {
	c := testenv.Redis(t)
	prefix := newPrefix(t, c)
	lost := make(chan error, 1)
	a := newLocker(t, c, redislock.Options{Prefix: prefix, Lease: 200 * time.Millisecond, Renew: -1,
		OnError: func(key string, err error) { lost <- err }})
	b := newLocker(t, c, redislock.Options{Prefix: prefix})
	third := newLocker(t, c, redislock.Options{Prefix: prefix})
	unlockA, err := a.Lock(t.Context(), "k")
	if err != nil {
		t.Fatal(err)
	}
	unlockB, err := b.Lock(t.Context(), "k") // waits for a's lease to end
	if err != nil {
		t.Fatal(err)
	}
	unlockA()
	if err := <-lost; !errors.Is(err, redislock.ErrLeaseLost) {
		t.Fatalf("OnError got %v, want ErrLeaseLost", err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
	defer cancel()
	if _, err := third.Lock(ctx, "k"); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Lock while b holds = %v, want context.DeadlineExceeded (a's late unlock released b's lock)", err)
	}
	unlockB()
	u, err := third.Lock(t.Context(), "k")
	if err != nil {
		t.Fatal(err)
	}
	u()
}

// TestStalledHandlerConflict arranges exactly the case a lease cannot
// cover: replica A's handler stalls past its lease (renewal off, as a
// process paused for longer than the lease would be), replica B takes the
// lock and saves, and then A's handler returns: A's save is refused with
// session.ErrConflict, and B's change is what is stored.
func TestStalledHandlerConflict(t *testing.T) {
	c := testenv.Redis(t)
	prefix := newPrefix(t, c)
	st := redisstore.New(c, redisstore.Options{Prefix: prefix + "s:"})
	newMW := func(l middleware.Locker) *middleware.Middleware[*replicatest.Update, replicatest.Counter] {
		m, err := session.New(session.Config[replicatest.Counter]{Store: st, Namespace: "c"})
		if err != nil {
			t.Fatal(err)
		}
		return middleware.New(m, replicatest.Key, middleware.Options{Locker: l})
	}
	lost := make(chan error, 1)
	mwA := newMW(newLocker(t, c, redislock.Options{Prefix: prefix + "l:", Lease: 200 * time.Millisecond, Renew: -1,
		OnError: func(key string, err error) { lost <- err }}))
	mwB := newMW(newLocker(t, c, redislock.Options{Prefix: prefix + "l:"}))

	loaded, resume := make(chan struct{}), make(chan struct{})
	hA := mwA.Wrap(func(ctx context.Context, u *replicatest.Update) error {
		s, err := session.From[replicatest.Counter](ctx)
		if err != nil {
			return err
		}
		s.Data.N++
		close(loaded)
		<-resume // stalled: the lease runs out meanwhile
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
	// B waits until A's lease ends, then loads, changes and saves.
	if err := hB(t.Context(), &replicatest.Update{User: "ann"}); err != nil {
		t.Fatalf("replica B: %v", err)
	}
	close(resume)
	if err := <-errA; !errors.Is(err, session.ErrConflict) {
		t.Fatalf("stalled replica A's update = %v, want session.ErrConflict", err)
	}
	if err := <-lost; !errors.Is(err, redislock.ErrLeaseLost) {
		t.Errorf("A's OnError got %v, want ErrLeaseLost", err)
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
	c := testenv.Redis(t)
	prefix := newPrefix(t, c)
	a := newLocker(t, c, redislock.Options{Prefix: prefix})
	b := redislock.New(c, redislock.Options{Prefix: prefix})
	unlock, err := a.Lock(t.Context(), "k")
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Lock(t.Context(), "k"); !errors.Is(err, redislock.ErrClosed) {
		t.Fatalf("Lock after Close = %v, want ErrClosed", err)
	}
	unlock()
	u, err := b.Lock(t.Context(), "k")
	if err != nil {
		t.Fatalf("Lock of a free key after Close = %v", err)
	}
	u()
}

// TestClusterMutualExclusion and TestClusterWakeByRelease run on a
// three-master Cluster.
func TestClusterMutualExclusion(t *testing.T) {
	c := cluster(t)
	testMutualExclusion(t, c, testenv.Prefix(t, "redislock"))
}

func TestClusterWakeByRelease(t *testing.T) {
	c := cluster(t)
	prefix := testenv.Prefix(t, "redislock")
	a := newLocker(t, c, redislock.Options{Prefix: prefix, Lease: time.Hour})
	b := newLocker(t, c, redislock.Options{Prefix: prefix, Poll: time.Hour})
	// Keys on several masters, so that the release messages cross nodes.
	for _, key := range []string{"a", "b", "c", "d", "e", "f"} {
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

// TestRenewNotBelowLease: a Renew of Lease or more would let the lock
// expire between two renewals; New says so instead of starting.
func TestRenewNotBelowLease(t *testing.T) {
	c := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"}) // never dialled
	defer c.Close()
	defer func() {
		if r, _ := recover().(string); !strings.Contains(r, "Renew") {
			t.Errorf("New with Renew = Lease: recovered %q, want a panic naming Renew", r)
		}
	}()
	redislock.New(c, redislock.Options{Lease: time.Second, Renew: time.Second})
}
