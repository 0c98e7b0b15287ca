package middleware

// Attacks on the middleware's session handoff (issue 18): updates of one
// key are lined up on the lock, and something happens between the save of
// one and the handoff to the next that a Load would have seen.

import (
	"context"
	"errors"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	session "github.com/typedsession/session"
	"github.com/typedsession/session/store"
)

// waitRefs waits until n updates hold or wait for key in lt.
func waitRefs(t *testing.T, lt *LockTable, key string, n int) {
	t.Helper()
	for lt.t.Refs(key) != n {
		time.Sleep(50 * time.Microsecond)
	}
}

// gate is a handler that increments the counter once released.
type gate struct {
	in, release chan struct{}
}

func newGate() *gate { return &gate{in: make(chan struct{}), release: make(chan struct{})} }

func (g *gate) handler(ctx context.Context, u *update) error {
	close(g.in)
	<-g.release
	return incr(ctx, u)
}

// TestAttackSharedLockTableTwoManagers: two middleware of two managers of
// one namespace share a LockTable. A1 holds "ann", B1 then A2 wait. A1's
// saved session is left for A2, but B1 takes the lock first and writes;
// A2 must then load (and see B1's write), not start from A1's stale
// session, whose save conflicts: an error the lock was there to prevent.
func TestAttackSharedLockTableTwoManagers(t *testing.T) {
	st := newCountingStore(t)
	mA := newManager[counter](t, st, "c")
	mB := newManager[counter](t, st, "c")
	lt := NewLockTable()
	hA := New(mA, userKey, Options{Locker: lt}).Wrap
	hB := New(mB, userKey, Options{Locker: lt}).Wrap(incr)

	g := newGate()
	errs := make([]error, 3)
	var wg sync.WaitGroup
	wg.Go(func() { errs[0] = hA(g.handler)(context.Background(), &update{User: "ann"}) })
	<-g.in
	wg.Go(func() { errs[1] = hB(context.Background(), &update{User: "ann"}) })
	waitRefs(t, lt, "ann", 2)
	wg.Go(func() { errs[2] = hA(incr)(context.Background(), &update{User: "ann"}) })
	waitRefs(t, lt, "ann", 3)
	close(g.release)
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("update %d: %v", i, err)
		}
	}
	if diff := cmp.Diff(3, stored(t, mA, "ann").N); diff != "" {
		t.Errorf("N (-want +got):\n%s", diff)
	}
	if lt.Len() != 0 {
		t.Errorf("lock table holds %d keys", lt.Len())
	}
}

// noSwap hides every optional capability of a store: no compare-and-swap.
type noSwap struct{ store.Store }

// TestAttackHandoffOnStoreWithoutSwap: on a store without compare-and-swap
// another process writes between two queued updates. A Load would read
// that write; a handed session would overwrite it, and nothing would
// report a conflict. It must not be lost.
func TestAttackHandoffOnStoreWithoutSwap(t *testing.T) {
	mem := newCountingStore(t)
	// The other process's value, N = 100, encoded by a manager of its own.
	other := newCountingStore(t)
	om := newManager[counter](t, other, "o")
	if _, err := om.Update(context.Background(), "x", func(c *counter) error { c.N = 100; return nil }); err != nil {
		t.Fatal(err)
	}
	raw, err := other.Get(context.Background(), "o:x")
	if err != nil {
		t.Fatal(err)
	}
	// It lands right after the first update's save, while that update
	// still holds the lock (the manager's hook hears of the save then).
	var wrote atomic.Bool
	m, err := session.New(session.Config[counter]{Store: noSwap{mem}, Namespace: "c", Hook: func(_ context.Context, e session.Event) {
		if e.Op == "save" && e.Err == nil && wrote.CompareAndSwap(false, true) {
			if err := mem.Set(context.Background(), "c:ann", raw, 0); err != nil {
				t.Error(err)
			}
		}
	}})
	if err != nil {
		t.Fatal(err)
	}
	mw := New(m, userKey, Options{})
	lt := mw.core.locker.(*LockTable)

	g := newGate()
	errs := make([]error, 2)
	var wg sync.WaitGroup
	wg.Go(func() { errs[0] = mw.Wrap(g.handler)(context.Background(), &update{User: "ann"}) })
	<-g.in
	wg.Go(func() { errs[1] = mw.Wrap(incr)(context.Background(), &update{User: "ann"}) })
	waitRefs(t, lt, "ann", 2)
	close(g.release)
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("update %d: %v", i, err)
		}
	}
	if diff := cmp.Diff(101, stored(t, m, "ann").N); diff != "" {
		t.Errorf("N: the other process's write was lost (-want +got):\n%s", diff)
	}
}

// TestAttackHandoffStress: updates of a few keys through two middleware
// sharing one LockTable (one manager each, same namespace), plus
// Manager.Update and Load+Save of the same keys outside the lock, with
// waiters whose ctx ends at random while they wait or while the session
// is handed to them: every acknowledged update lands exactly once, none
// twice, and the lock table ends empty.
func TestAttackHandoffStress(t *testing.T) {
	st := newCountingStore(t)
	mA := newManager[counter](t, st, "c")
	mB := newManager[counter](t, st, "c")
	lt := NewLockTable()
	hA := New(mA, userKey, Options{Locker: lt}).Wrap(slowIncr)
	hB := New(mB, userKey, Options{Locker: lt, RepeatOnConflict: true}).Wrap(slowIncr)
	users := []string{"ann", "bob", "cy"}
	var acked [3]atomic.Int64
	var wg sync.WaitGroup
	for w := range 9 {
		wg.Go(func() {
			for i := range 30 {
				u := (w + i) % len(users)
				ctx := context.Background()
				var cancel context.CancelFunc = func() {}
				if rand.N(4) == 0 {
					ctx, cancel = context.WithTimeout(ctx, time.Duration(rand.N(300))*time.Microsecond)
				}
				var err error
				switch w % 3 {
				case 0:
					err = hA(ctx, &update{User: users[u]})
				case 1:
					err = hB(ctx, &update{User: users[u]})
				default:
					_, err = mA.Update(ctx, users[u], func(c *counter) error { c.N++; return nil })
				}
				cancel()
				switch {
				case err == nil:
					acked[u].Add(1)
				case errors.Is(err, context.DeadlineExceeded), errors.Is(err, session.ErrConflict):
					// Not acknowledged: it may or may not have landed
					// only if the save itself was cut (memstore ignores
					// ctx once called, so here it did not land).
				default:
					t.Errorf("update: %v", err)
				}
			}
		})
	}
	wg.Wait()
	for u, name := range users {
		got := stored(t, mA, name).N
		if int64(got) != acked[u].Load() {
			t.Errorf("%s: N = %d, want %d acknowledged", name, got, acked[u].Load())
		}
	}
	if lt.Len() != 0 {
		t.Errorf("lock table holds %d keys", lt.Len())
	}
}

// panicky is a Locker whose Lock panics while *boom is set.
type panicky struct {
	lt   *LockTable
	boom *atomic.Bool
}

func (p panicky) Lock(ctx context.Context, key string) (func(), error) {
	if p.boom.Load() {
		panic("locker fails")
	}
	return p.lt.Lock(ctx, key)
}

// TestAttackPanickingLockerLeavesNoBaton: a Locker that panics must not
// leave the key held, nor stop the next update of the key.
func TestAttackPanickingLockerLeavesNoBaton(t *testing.T) {
	st := newCountingStore(t)
	m := newManager[counter](t, st, "c")
	var boom atomic.Bool
	mw := New(m, userKey, Options{Locker: panicky{NewLockTable(), &boom}})
	h := mw.Wrap(incr)
	boom.Store(true)
	func() {
		defer func() { _ = recover() }()
		_ = h(context.Background(), &update{User: "ann"})
	}()
	boom.Store(false)
	if err := h(context.Background(), &update{User: "ann"}); err != nil {
		t.Fatal(err)
	}
	if n := mw.core.lockLen(); n != 0 {
		t.Errorf("lock table holds %d keys after every update ended, want 0", n)
	}
}

// TestAttackHandoffMixedHandlers: lazy and eager middleware of one manager
// share a LockTable; their handlers at random change and succeed, change
// and fail, change and panic, read only, or never ask for the session.
// Only the successful changes land, each exactly once; the lock table and
// the relays end empty.
func TestAttackHandoffMixedHandlers(t *testing.T) {
	st := newCountingStore(t)
	m := newManager[counter](t, st, "c")
	lt := NewLockTable()
	mws := []*Middleware[*update, counter]{
		New(m, userKey, Options{Locker: lt, Lazy: true}),
		New(m, userKey, Options{Locker: lt, ContinueOnLoadError: true}),
	}
	errFail := errors.New("handler failed")
	var landed atomic.Int64
	var wg sync.WaitGroup
	for w := range 8 {
		mw := mws[w%2]
		wg.Go(func() {
			for range 60 {
				kind := rand.N(5)
				h := mw.Wrap(func(ctx context.Context, u *update) error {
					if kind == 4 {
						return nil // never asks for the session
					}
					s, err := session.From[counter](ctx)
					if err != nil {
						return err
					}
					time.Sleep(time.Duration(rand.N(100)) * time.Microsecond)
					switch kind {
					case 0:
						s.Data.N++
						return nil
					case 1:
						s.Data.N++
						return errFail
					case 2:
						s.Data.N++
						panic("handler panics")
					}
					_ = s.Data.N // read only
					return nil
				})
				func() {
					defer func() {
						if r := recover(); r != nil && kind != 2 {
							panic(r)
						}
					}()
					err := h(context.Background(), &update{User: "ann"})
					switch {
					case kind == 0 && err == nil:
						landed.Add(1)
					case kind == 1 && errors.Is(err, errFail):
					case err != nil:
						t.Errorf("kind %d: %v", kind, err)
					}
				}()
			}
		})
	}
	wg.Wait()
	if got := stored(t, m, "ann").N; int64(got) != landed.Load() {
		t.Errorf("N = %d, want %d successful changes", got, landed.Load())
	}
	if lt.Len() != 0 {
		t.Errorf("lock table holds %d keys", lt.Len())
	}
	for i, mw := range mws {
		if n := mw.core.lockLen(); n != 0 {
			t.Errorf("middleware %d's lock table holds %d keys", i, n)
		}
	}
}

// TestAttackHTTPHandoffAfterLogout: a request with a cookie waits for the
// key's lock while another request of the same cookie logs out. It loads
// the key the logout emptied; its change must then be stored under a new
// token (never the client's old one, which named a destroyed session).
func TestAttackHTTPHandoffAfterLogout(t *testing.T) {
	st := newCountingStore(t)
	m := newManager[cart](t, st, "cart")
	lt := NewLockTable()
	in, release := make(chan struct{}), make(chan struct{})
	mux := http.NewServeMux()
	mux.Handle("/", cartApp())
	mux.HandleFunc("/slowlogout", func(w http.ResponseWriter, r *http.Request) {
		if _, err := session.From[cart](r.Context()); err != nil {
			t.Error(err)
		}
		close(in)
		<-release
		if err := Destroy[cart](r); err != nil {
			t.Error(err)
		}
	})
	h := HTTP(m, HTTPOptions{Options: Options{Locker: lt}})(mux)
	do := func(path, cookie string) *http.Response {
		req := httptest.NewRequest("GET", "https://example.com"+path, nil)
		if cookie != "" {
			req.AddCookie(&http.Cookie{Name: "__Host-session", Value: cookie})
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec.Result()
	}
	old := sessionCookie(do("/add?item=apple", ""))
	if old == nil {
		t.Fatal("no cookie")
	}
	var wg sync.WaitGroup
	var second *http.Response
	reads := st.Calls("Get", "GetWithTTL", "GetAndTouch")
	wg.Go(func() { do("/slowlogout", old.Value) })
	<-in
	wg.Go(func() { second = do("/add?item=pear", old.Value) })
	waitRefs(t, lt, tokenKey(old.Value), 2)
	close(release)
	wg.Wait()
	if n := st.Calls("Get", "GetWithTTL", "GetAndTouch") - reads; n != 2 {
		t.Errorf("%d reads for the logout and the queued request, want 2 (each loads)", n)
	}
	fresh := sessionCookie(second)
	if fresh == nil || fresh.Value == old.Value {
		t.Fatalf("cookie after a change following the logout = %v, want a new token", fresh)
	}
	if _, err := st.Unwrap().Get(context.Background(), "cart:"+tokenKey(old.Value)); err == nil {
		t.Error("the destroyed token's key holds a session again")
	}
	if got := body(t, do("/show", fresh.Value)); got != "|pear" {
		t.Errorf("new token's session = %q, want |pear", got)
	}
}
