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

// TestHandoffSkipsTheLoad: updates queued behind one key start from the
// session the previous one saved, so most of them read nothing, and none
// is lost.
func TestHandoffSkipsTheLoad(t *testing.T) {
	st := newCountingStore(t)
	m := newManager[counter](t, st, "c")
	var handed atomic.Int64
	m2, err := session.New(session.Config[counter]{Store: st, Namespace: "c", Hook: func(_ context.Context, e session.Event) {
		if e.Op == "load" && e.Handoff {
			handed.Add(1)
		}
	}})
	if err != nil {
		t.Fatal(err)
	}
	m = m2
	mw := New(m, userKey, Options{})
	const n = 200
	if errs := queued(mw.Wrap(slowIncr), n); len(errs) > 0 {
		t.Fatalf("%d updates failed, first %v", len(errs), errs[0])
	}
	if got := stored(t, m, "ann").N; got != n {
		t.Fatalf("N = %d after %d updates, want %d", got, n, n)
	}
	reads := st.Calls("Get", "GetWithTTL", "GetAndTouch") - 1 // stored() read once
	if reads+int(handed.Load()) != n {
		t.Errorf("%d reads + %d handoffs for %d updates, want them to add up", reads, handed.Load(), n)
	}
	if reads > n/2 {
		t.Errorf("%d of %d queued updates read the store; the handoff should spare most of them", reads, n)
	}
	if size := mw.core.lockLen(); size != 0 || len(mw.core.relay.batons) != 0 {
		t.Errorf("lock table holds %d keys and the relay %d after the updates, want 0", size, len(mw.core.relay.batons))
	}
}

// TestNoHandoffReadsEveryTime is the control: with NoHandoff every update
// loads.
func TestNoHandoffReadsEveryTime(t *testing.T) {
	st := newCountingStore(t)
	m := newManager[counter](t, st, "c")
	const n = 100
	if errs := queued(New(m, userKey, Options{NoHandoff: true}).Wrap(slowIncr), n); len(errs) > 0 {
		t.Fatalf("%d updates failed, first %v", len(errs), errs[0])
	}
	if reads := st.Calls("Get", "GetWithTTL", "GetAndTouch"); reads != n {
		t.Errorf("%d reads for %d updates with NoHandoff, want one each", reads, n)
	}
}

// plainLocker is a Locker that cannot tell handed-on grants.
type plainLocker struct{ lt *LockTable }

func (p plainLocker) Lock(ctx context.Context, key string) (func(), error) {
	return p.lt.Lock(ctx, key)
}

// TestHandoffNeedsAHandoffLocker: with a Locker that is not a
// HandoffLocker, every update loads.
func TestHandoffNeedsAHandoffLocker(t *testing.T) {
	st := newCountingStore(t)
	m := newManager[counter](t, st, "c")
	const n = 100
	lt := NewLockTable()
	if errs := queued(New(m, userKey, Options{Locker: plainLocker{lt}}).Wrap(slowIncr), n); len(errs) > 0 {
		t.Fatalf("%d updates failed, first %v", len(errs), errs[0])
	}
	if reads := st.Calls("Get", "GetWithTTL", "GetAndTouch"); reads != n {
		t.Errorf("%d reads for %d updates, want one each", reads, n)
	}
	if lt.Len() != 0 {
		t.Errorf("lock table holds %d keys", lt.Len())
	}
}

// TestHandoffWithWritersOutsideTheLock: writes that bypass the lock
// (Manager.Update through another manager, as another process would) make
// handed sessions stale; their saves conflict, none is lost, and the first
// such conflict turns handing on off.
func TestHandoffWithWritersOutsideTheLock(t *testing.T) {
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
	if conflicts > 0 && mw.core.relay.on() {
		t.Errorf("%d conflicts, yet handing on is still on", conflicts)
	}
	t.Logf("%d of %d updates conflicted with %d outside writes", conflicts, n, outside.Load())
}
