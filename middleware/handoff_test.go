package middleware

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	session "github.com/typedsession/session"
)

// queued runs n updates of one key from 8 goroutines through h, each
// handler holding the key a moment so that the others queue behind it,
// and returns the errors.
func queued(h Handler[*update], n int) []error {
	var (
		mu   sync.Mutex
		errs []error
		next atomic.Int64
		wg   sync.WaitGroup
	)
	for range 8 {
		wg.Go(func() {
			for next.Add(1) <= int64(n) {
				if err := h(context.Background(), &update{User: "ann"}); err != nil {
					mu.Lock()
					errs = append(errs, err)
					mu.Unlock()
				}
			}
		})
	}
	wg.Wait()
	return errs
}

func slowIncr(ctx context.Context, u *update) error {
	time.Sleep(100 * time.Microsecond)
	return incr(ctx, u)
}

// TestQueuedUpdatesLoadEach: updates queued behind one key each load the
// session (one read each: a handed-on session could be stale for a
// handler that only reads), and none is lost.
func TestQueuedUpdatesLoadEach(t *testing.T) {
	st := newCountingStore(t)
	m := newManager[counter](t, st, "c")
	mw := New(m, userKey, Options{})
	const n = 200
	if errs := queued(mw.Wrap(slowIncr), n); len(errs) > 0 {
		t.Fatalf("%d updates failed, first %v", len(errs), errs[0])
	}
	if got := stored(t, m, "ann").N; got != n {
		t.Fatalf("N = %d after %d updates, want %d", got, n, n)
	}
	if reads := st.Calls("Get", "GetWithTTL", "GetAndTouch") - 1; reads != n { // stored() read once
		t.Errorf("%d reads for %d updates, want one each", reads, n)
	}
	if size := mw.core.lockLen(); size != 0 {
		t.Errorf("lock table holds %d keys after the updates, want 0", size)
	}
}

// outsideWriter is a Locker whose unlock first lets another process
// write the key (after the holder saved, before the next holder runs).
type outsideWriter struct {
	lt    *LockTable
	write func()
}

func (o outsideWriter) Lock(ctx context.Context, key string) (func(), error) {
	unlock, err := o.lt.Lock(ctx, key)
	if err != nil {
		return nil, err
	}
	return func() { o.write(); unlock() }, nil
}

// TestQueuedReadOnlyHandlerSeesOutsideWrite (issue 22, example 4, the
// middleware's half): update A saves; another process writes the key
// before update B, queued behind A, runs; B only reads. B must see what a
// Load would show (the other process's write), not what A left.
func TestQueuedReadOnlyHandlerSeesOutsideWrite(t *testing.T) {
	st := newCountingStore(t)
	m := newManager[counter](t, st, "c")
	other := newManager[counter](t, st, "c")
	var once sync.Once
	lk := outsideWriter{lt: NewLockTable(), write: func() {
		once.Do(func() {
			if _, err := other.Update(context.Background(), "ann", func(c *counter) error { c.N = 100; return nil }); err != nil {
				t.Error(err)
			}
		})
	}}
	mw := New(m, userKey, Options{Locker: lk})
	aHolds, bWaits := make(chan struct{}), make(chan struct{})
	var seen atomic.Int64
	var wg sync.WaitGroup
	wg.Go(func() {
		err := mw.Wrap(func(ctx context.Context, u *update) error {
			close(aHolds)
			<-bWaits
			return incr(ctx, u)
		})(context.Background(), &update{User: "ann"})
		if err != nil {
			t.Error(err)
		}
	})
	<-aHolds
	wg.Go(func() {
		err := mw.Wrap(func(ctx context.Context, u *update) error {
			s, err := session.From[counter](ctx)
			if err != nil {
				return err
			}
			seen.Store(int64(s.Data.N))
			return nil
		})(context.Background(), &update{User: "ann"})
		if err != nil {
			t.Error(err)
		}
	})
	for lk.lt.t.Refs("ann") < 2 {
		time.Sleep(50 * time.Microsecond)
	}
	close(bWaits)
	wg.Wait()
	if got := seen.Load(); got != 100 {
		t.Fatalf("the read-only handler queued behind a save saw N = %d, want 100 (the other process's write, as a Load shows)", got)
	}
}

// TestQueuedWithWritersOutsideTheLock: writes that bypass the lock
// (Manager.Update through another manager, as another process would)
// make some saves conflict; none is lost.
func TestQueuedWithWritersOutsideTheLock(t *testing.T) {
	st := newCountingStore(t)
	m := newManager[counter](t, st, "c")
	other := newManager[counter](t, st, "c")
	mw := New(m, userKey, Options{})
	h := mw.Wrap(slowIncr)
	var outside atomic.Int64
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case <-stop:
				return
			default:
			}
			if _, err := other.Update(context.Background(), "ann", func(c *counter) error { c.N++; return nil }); err != nil {
				t.Error(err)
				return
			}
			outside.Add(1)
			time.Sleep(200 * time.Microsecond)
		}
	}()
	const n = 300
	errs := queued(h, n)
	close(stop)
	<-done
	conflicts := 0
	for _, err := range errs {
		if !errors.Is(err, session.ErrConflict) {
			t.Fatalf("update failed: %v", err)
		}
		conflicts++
	}
	want := n - conflicts + int(outside.Load())
	if got := stored(t, m, "ann").N; got != want {
		t.Fatalf("N = %d, want %d (%d acknowledged here, %d outside)", got, want, n-conflicts, outside.Load())
	}
	t.Logf("%d of %d updates conflicted with %d outside writes", conflicts, n, outside.Load())
}
