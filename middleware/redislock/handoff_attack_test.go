package redislock_test

// Attacks on MaxHandoffs (issue 18): a lock passed within a process
// without a release in Redis.

import (
	"context"
	"errors"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/typedsession/session/internal/testenv"
	"github.com/typedsession/session/middleware/redislock"
)

// TestAttackPassToWaiterGivingUp: the holder unlocks while the one local
// waiter gives up, in every order the scheduler finds: the lock must end
// released in Redis (never held until its lease ends by nobody), and
// usable at once by another process.
func TestAttackPassToWaiterGivingUp(t *testing.T) {
	c := testenv.Redis(t)
	prefix := newPrefix(t, c)
	a := newLocker(t, c, redislock.Options{Prefix: prefix, Lease: time.Minute})
	b := newLocker(t, c, redislock.Options{Prefix: prefix, Lease: time.Minute})
	for i := range 200 {
		unlock, err := a.Lock(t.Context(), "k")
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(t.Context())
		got := make(chan func(), 1)
		go func() {
			u, err := a.Lock(ctx, "k")
			if err != nil {
				u = nil
			}
			got <- u
		}()
		time.Sleep(time.Duration(rand.N(200)) * time.Microsecond)
		if i%2 == 0 {
			go cancel()
			unlock()
		} else {
			go unlock()
			cancel()
		}
		if u := <-got; u != nil {
			u() // it took the lock after all: the last holder releases
		}
		// Whoever ended last, nobody holds the key now.
		for n := 0; ; n++ {
			ex, err := c.Exists(t.Context(), prefix+"k").Result()
			if err != nil {
				t.Fatal(err)
			}
			if ex == 0 {
				break
			}
			if n == 2000 {
				t.Fatalf("round %d: the lock's key is still held by nobody (it would stay until its lease ends)", i)
			}
			time.Sleep(time.Millisecond) // an orphan's release may still be on its way
		}
		// Another process takes it without waiting for a lease.
		bctx, bcancel := context.WithTimeout(t.Context(), 30*time.Second)
		ub, err := b.Lock(bctx, "k")
		bcancel()
		if err != nil {
			t.Fatalf("round %d: other process: %v", i, err)
		}
		ub()
	}
}

// TestAttackNoPassAfterLeaseLost: a holder whose lease ran out (renewal
// off) while another process took the lock in Redis must not pass the
// lock to its local waiter: that waiter would run beside the other
// process's holder, and believe the lock came straight from its
// predecessor.
func TestAttackNoPassAfterLeaseLost(t *testing.T) {
	c := testenv.Redis(t)
	prefix := newPrefix(t, c)
	const lease = 200 * time.Millisecond
	a := newLocker(t, c, redislock.Options{Prefix: prefix, Lease: lease, Renew: -1})
	b := newLocker(t, c, redislock.Options{Prefix: prefix, Lease: time.Minute})
	unlockA, err := a.Lock(t.Context(), "k")
	if err != nil {
		t.Fatal(err)
	}
	type grant struct {
		unlock func()
		handed bool
		err    error
	}
	w := make(chan grant, 1)
	go func() {
		u, handed, err := a.LockHandoff(t.Context(), "k")
		w <- grant{u, handed, err}
	}()
	// The lease runs out; the other process takes the lock.
	ub, err := b.Lock(t.Context(), "k")
	if err != nil {
		t.Fatal(err)
	}
	unlockA()
	select {
	case g := <-w:
		t.Fatalf("local waiter got the lock (handed %v, err %v) while the other process holds it", g.handed, g.err)
	case <-time.After(3 * lease):
		// No grant while b holds it (a slow machine only hides a fault).
	}
	ub()
	g := <-w
	if g.err != nil {
		t.Fatal(g.err)
	}
	if g.handed {
		t.Error("the grant after another process held the lock reports handed, want false")
	}
	g.unlock()
}

// TestAttackMutualExclusionWithPasses: goroutines of two Lockers, with
// passes on, increment a plain Redis counter under the lock with a read,
// a pause and a write: exact count, and no moment with two holders.
func TestAttackMutualExclusionWithPasses(t *testing.T) {
	c := testenv.Redis(t)
	prefix := newPrefix(t, c)
	ls := []*redislock.Locker{
		newLocker(t, c, redislock.Options{Prefix: prefix, MaxHandoffs: 4}),
		newLocker(t, c, redislock.Options{Prefix: prefix, MaxHandoffs: 4}),
	}
	var inside atomic.Int32
	var wg sync.WaitGroup
	const each = 25
	for g := range 8 {
		l := ls[g%2]
		wg.Go(func() {
			for range each {
				unlock, err := l.Lock(t.Context(), "k")
				if err != nil {
					t.Error(err)
					return
				}
				if inside.Add(1) != 1 {
					t.Error("two holders at once")
				}
				n, err := c.Get(t.Context(), prefix+"n").Int()
				if err != nil && !errors.Is(err, redis.Nil) {
					t.Error(err)
				}
				time.Sleep(100 * time.Microsecond)
				if err := c.Set(t.Context(), prefix+"n", n+1, 0).Err(); err != nil {
					t.Error(err)
				}
				inside.Add(-1)
				unlock()
			}
		})
	}
	wg.Wait()
	if n, _ := c.Get(t.Context(), prefix+"n").Int(); n != 8*each {
		t.Errorf("counter %d, want %d", n, 8*each)
	}
}

// TestAttackOtherProcessGetsATurn: one process keeps a key busy from four
// goroutines; another process asks for the key now and then. Each ask is
// granted while the busy process is still at work: passes must not starve
// another process.
func TestAttackOtherProcessGetsATurn(t *testing.T) {
	c := testenv.Redis(t)
	prefix := newPrefix(t, c)
	busy := newLocker(t, c, redislock.Options{Prefix: prefix})
	other := newLocker(t, c, redislock.Options{Prefix: prefix})
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var busyRuns atomic.Int64
	for range 4 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				u, err := busy.Lock(t.Context(), "k")
				if err != nil {
					t.Error(err)
					return
				}
				time.Sleep(200 * time.Microsecond)
				busyRuns.Add(1)
				u()
			}
		})
	}
	var waits []time.Duration
	for range 10 {
		start := time.Now()
		ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
		u, err := other.Lock(ctx, "k")
		cancel()
		if err != nil {
			t.Errorf("other process: %v after %v (busy process ran %d updates)", err, time.Since(start), busyRuns.Load())
			break
		}
		waits = append(waits, time.Since(start))
		u()
		time.Sleep(5 * time.Millisecond)
	}
	close(stop)
	wg.Wait()
	t.Logf("other process waited %v; busy process ran %d updates", waits, busyRuns.Load())
}
