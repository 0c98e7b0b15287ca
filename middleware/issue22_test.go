package middleware

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"

	session "github.com/typedsession/session"
)

// TestIssue22Example4RelayReadOnlyHandler: issue 22's fourth example in
// the middleware's relay. Update A saves ann and still holds her lock;
// another process then writes ann straight to the store (the process's
// write counters cannot see it); the update queued behind A is handed A's
// session and its handler only reads. The handler must see what a Load
// would show, the other process's value, not the one it overwrote.
func TestIssue22Example4RelayReadOnlyHandler(t *testing.T) {
	mem := newCountingStore(t)
	other := newCountingStore(t)
	om := newManager[counter](t, other, "c")
	if _, err := om.Update(context.Background(), "x", func(c *counter) error { c.N = 100; return nil }); err != nil {
		t.Fatal(err)
	}
	raw, err := other.Get(context.Background(), "c:x")
	if err != nil {
		t.Fatal(err)
	}
	var wrote atomic.Bool
	m, err := session.New(session.Config[counter]{Store: mem, Namespace: "c", Hook: func(_ context.Context, e session.Event) {
		if e.Op == "save" && e.Err == nil && wrote.CompareAndSwap(false, true) {
			if err := mem.Unwrap().Set(context.Background(), "c:ann", raw, 0); err != nil {
				t.Error(err)
			}
		}
	}})
	if err != nil {
		t.Fatal(err)
	}
	mw := New(m, userKey, Options{})
	lt := mw.core.locker.(*LockTable)

	var seen int
	readOnly := func(ctx context.Context, _ *update) error {
		s, err := session.From[counter](ctx)
		if err != nil {
			return err
		}
		seen = s.Data.N
		return nil
	}
	g := newGate()
	errs := make([]error, 2)
	var wg sync.WaitGroup
	wg.Go(func() { errs[0] = mw.Wrap(g.handler)(context.Background(), &update{User: "ann"}) })
	<-g.in
	wg.Go(func() { errs[1] = mw.Wrap(readOnly)(context.Background(), &update{User: "ann"}) })
	waitRefs(t, lt, "ann", 2)
	close(g.release)
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("update %d: %v", i, err)
		}
	}
	if seen != 100 {
		t.Errorf("the read-only handler saw N = %d; want 100, the other process's value, which a Load shows", seen)
	}
	if n := stored(t, m, "ann").N; n != 100 {
		t.Errorf("stored N = %d; want 100", n)
	}
}
