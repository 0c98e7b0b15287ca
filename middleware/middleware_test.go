package middleware

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	session "github.com/typedsession/session"
	"github.com/typedsession/session/internal/binding"
	"github.com/typedsession/session/store"
)

type counter struct {
	N    int    `json:"n" validate:"gte=0"`
	Note string `json:"note,omitempty"`
}

type profile struct {
	Name string `json:"name"`
}

type update struct {
	User string
	Fail error // returned by the handler after it changed the session
}

func userKey(_ context.Context, u *update) (string, error) {
	if u.User == "" {
		return "", ErrNoKey
	}
	return u.User, nil
}

func newManager[T any](t *testing.T, st store.Store, ns string) *session.Manager[T] {
	t.Helper()
	m, err := session.New(session.Config[T]{Store: st, Namespace: ns})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// incr is a handler that adds one to the counter, then returns u.Fail.
func incr(ctx context.Context, u *update) error {
	s, err := session.From[counter](ctx)
	if err != nil {
		return err
	}
	s.Data.N++
	return u.Fail
}

func stored(t *testing.T, m *session.Manager[counter], key string) counter {
	t.Helper()
	s, err := m.Load(context.Background(), key)
	if err != nil {
		t.Fatal(err)
	}
	return s.Data
}

type hookCall struct {
	op, key string
	err     error
}

type hookLog struct {
	mu    sync.Mutex
	calls []hookCall
}

func (h *hookLog) hook(_ context.Context, op, key string, err error) {
	h.mu.Lock()
	h.calls = append(h.calls, hookCall{op, key, err})
	h.mu.Unlock()
}

func (h *hookLog) get() []hookCall {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]hookCall(nil), h.calls...)
}

func TestWrapSavesOnSuccess(t *testing.T) {
	for _, lazy := range []bool{false, true} {
		t.Run(fmt.Sprintf("lazy=%v", lazy), func(t *testing.T) {
			st := newCountingStore(t)
			m := newManager[counter](t, st, "c")
			h := New(m, userKey, Options{Lazy: lazy}).Wrap(incr)
			ctx := context.Background()
			for range 3 {
				if err := h(ctx, &update{User: "ann"}); err != nil {
					t.Fatal(err)
				}
			}
			if got := stored(t, m, "ann").N; got != 3 {
				t.Errorf("N = %d after three updates, want 3", got)
			}
		})
	}
}

func TestWrapHandlerErrorDiscardsChanges(t *testing.T) {
	for _, lazy := range []bool{false, true} {
		t.Run(fmt.Sprintf("lazy=%v", lazy), func(t *testing.T) {
			st := newCountingStore(t)
			m := newManager[counter](t, st, "c")
			h := New(m, userKey, Options{Lazy: lazy}).Wrap(incr)
			ctx := context.Background()
			if err := h(ctx, &update{User: "ann"}); err != nil {
				t.Fatal(err)
			}
			boom := errors.New("boom")
			writes := st.Calls("Set") + st.Calls("CompareAndSwap") + st.Calls("Delete")
			if err := h(ctx, &update{User: "ann", Fail: boom}); !errors.Is(err, boom) {
				t.Fatalf("err = %v, want the handler's error", err)
			}
			if w := st.Calls("Set") + st.Calls("CompareAndSwap") + st.Calls("Delete"); w != writes {
				t.Errorf("a failed handler caused %d store writes, want none", w-writes)
			}
			if got := stored(t, m, "ann").N; got != 1 {
				t.Errorf("N = %d, want 1: the failed update must not be saved", got)
			}
		})
	}
}

func TestWrapPanicReleasesLockAndSavesNothing(t *testing.T) {
	st := newCountingStore(t)
	m := newManager[counter](t, st, "c")
	mw := New(m, userKey, Options{})
	h := mw.Wrap(func(ctx context.Context, u *update) error {
		s, _ := session.From[counter](ctx)
		s.Data.N = 42
		panic("handler bug")
	})
	func() {
		defer func() { recover() }()
		h(context.Background(), &update{User: "ann"})
	}()
	if n := mw.core.lockLen(); n != 0 {
		t.Errorf("lock table holds %d keys after a panic, want 0", n)
	}
	if got := stored(t, m, "ann").N; got != 0 {
		t.Errorf("N = %d after a panicking handler, want 0", got)
	}
	// The key is usable again.
	if err := mw.Wrap(incr)(context.Background(), &update{User: "ann"}); err != nil {
		t.Fatal(err)
	}
}

func TestLazyUntouchedCostsNoStoreCall(t *testing.T) {
	st := newCountingStore(t)
	m := newManager[counter](t, st, "c")
	mw := New(m, userKey, Options{Lazy: true})
	ran := false
	h := mw.Wrap(func(ctx context.Context, u *update) error { ran = true; return nil })
	if err := h(context.Background(), &update{User: "ann"}); err != nil {
		t.Fatal(err)
	}
	if !ran {
		t.Fatal("handler did not run")
	}
	if n := st.Calls(); n != 0 {
		t.Errorf("an untouched lazy session made %d store calls (%v), want 0", n, st.Snapshot())
	}

	// The eager default does load.
	eager := New(m, userKey, Options{}).Wrap(func(ctx context.Context, u *update) error { return nil })
	if err := eager(context.Background(), &update{User: "ann"}); err != nil {
		t.Fatal(err)
	}
	if n := st.Calls(); n != 1 {
		t.Errorf("an eager unchanged new session made %d store calls (%v), want 1 (the Get)", n, st.Snapshot())
	}
}

func TestLazyFromAfterHandlerReturnedIsRefused(t *testing.T) {
	st := newCountingStore(t)
	m := newManager[counter](t, st, "c")
	mw := New(m, userKey, Options{Lazy: true})
	var leaked context.Context
	h := mw.Wrap(func(ctx context.Context, u *update) error { leaked = ctx; return nil })
	if err := h(context.Background(), &update{User: "ann"}); err != nil {
		t.Fatal(err)
	}
	if _, err := session.From[counter](leaked); !errors.Is(err, session.ErrNoSession) {
		t.Errorf("From after the handler returned: err = %v, want ErrNoSession", err)
	}
	if n := mw.core.lockLen(); n != 0 {
		t.Errorf("lock table holds %d keys, want 0", n)
	}
}

func TestNoKeyRunsHandlerWithoutSession(t *testing.T) {
	keyFuncs := map[string]KeyFunc[*update]{
		"ErrNoKey":         userKey,
		"wrapped ErrNoKey": func(context.Context, *update) (string, error) { return "", fmt.Errorf("anonymous: %w", ErrNoKey) },
		"empty key":        func(context.Context, *update) (string, error) { return "", nil },
	}
	for name, kf := range keyFuncs {
		t.Run(name, func(t *testing.T) {
			st := newCountingStore(t)
			m := newManager[counter](t, st, "c")
			var got error
			h := New(m, kf, Options{}).Wrap(func(ctx context.Context, u *update) error {
				_, got = session.From[counter](ctx)
				return nil
			})
			// An outer binding for the same type must not leak in.
			outer, _ := binding.Bind(context.Background(), func(context.Context) (*session.Session[counter], error) {
				return &session.Session[counter]{}, nil
			})
			if err := h(outer, &update{}); err != nil {
				t.Fatal(err)
			}
			if !errors.Is(got, session.ErrNoSession) {
				t.Errorf("From = %v, want ErrNoSession", got)
			}
			if n := st.Calls(); n != 0 {
				t.Errorf("%d store calls for an update without a key, want 0", n)
			}
		})
	}
}

func TestKeyErrorStopsUpdate(t *testing.T) {
	st := newCountingStore(t)
	m := newManager[counter](t, st, "c")
	var hooks hookLog
	bad := errors.New("token expired")
	ran := false
	h := New(m, func(context.Context, *update) (string, error) { return "", bad }, Options{OnError: hooks.hook}).
		Wrap(func(context.Context, *update) error { ran = true; return nil })
	err := h(context.Background(), &update{User: "ann"})
	if !errors.Is(err, bad) {
		t.Fatalf("err = %v, want the key function's error", err)
	}
	if ran {
		t.Error("handler ran after the key function failed")
	}
	if c := hooks.get(); len(c) != 1 || c[0].op != "key" || !errors.Is(c[0].err, bad) {
		t.Errorf("hook calls = %+v, want one with op key", c)
	}
	var se *session.Error
	if !errors.As(err, &se) || se.Op != "key" {
		t.Errorf("err = %#v, want a *session.Error with Op key", err)
	}
}

func TestLoadErrorStopsHandlerAndReachesHook(t *testing.T) {
	st := newCountingStore(t)
	m := newManager[counter](t, st, "c")
	if err := st.Unwrap().Set(context.Background(), "c:ann", []byte("not json {"), 0); err != nil {
		t.Fatal(err)
	}
	var hooks hookLog
	ran := false
	mw := New(m, userKey, Options{OnError: hooks.hook})
	h := mw.Wrap(func(context.Context, *update) error { ran = true; return nil })
	err := h(context.Background(), &update{User: "ann"})
	if !errors.Is(err, session.ErrCorrupt) {
		t.Fatalf("err = %v, want ErrCorrupt", err)
	}
	if ran {
		t.Error("handler ran after the load failed")
	}
	c := hooks.get()
	if len(c) != 1 || c[0].op != "load" || c[0].key != "ann" || !errors.Is(c[0].err, session.ErrCorrupt) {
		t.Errorf("hook calls = %+v, want one {load ann ErrCorrupt}", c)
	}
	if raw, _ := st.Unwrap().Get(context.Background(), "c:ann"); string(raw) != "not json {" {
		t.Errorf("stored value changed to %q; a failed load must leave it", raw)
	}
	if n := mw.core.lockLen(); n != 0 {
		t.Errorf("lock table holds %d keys, want 0", n)
	}

	// Lazily, From returns the error to the handler and the hook hears it.
	var fromErr error
	hooks = hookLog{}
	lazy := New(m, userKey, Options{Lazy: true, OnError: hooks.hook}).Wrap(func(ctx context.Context, u *update) error {
		_, fromErr = session.From[counter](ctx)
		return nil // the handler chose to go on without the session
	})
	if err := lazy(context.Background(), &update{User: "ann"}); err != nil {
		t.Fatalf("lazy: err = %v, want nil (the handler decided)", err)
	}
	if !errors.Is(fromErr, session.ErrCorrupt) {
		t.Errorf("lazy From = %v, want ErrCorrupt", fromErr)
	}
	if c := hooks.get(); len(c) != 1 || c[0].op != "load" {
		t.Errorf("lazy hook calls = %+v, want one load", c)
	}
}

func TestSaveErrorReachesHook(t *testing.T) {
	st := newCountingStore(t)
	m := newManager[counter](t, st, "c")
	var hooks hookLog
	h := New(m, userKey, Options{OnError: hooks.hook}).Wrap(func(ctx context.Context, u *update) error {
		s, err := session.From[counter](ctx)
		if err != nil {
			return err
		}
		s.Data.N = -1 // fails validate:"gte=0"
		return nil
	})
	err := h(context.Background(), &update{User: "ann"})
	if !errors.Is(err, session.ErrInvalid) {
		t.Fatalf("err = %v, want ErrInvalid", err)
	}
	c := hooks.get()
	if len(c) != 1 || c[0].op != "save" || c[0].key != "ann" || !errors.Is(c[0].err, session.ErrInvalid) {
		t.Errorf("hook calls = %+v, want one {save ann ErrInvalid}", c)
	}
	if n := st.Calls("Set") + st.Calls("CompareAndSwap"); n != 0 {
		t.Errorf("%d writes for an invalid session, want 0", n)
	}
}

func TestConcurrentSameKeyLosesNothing(t *testing.T) {
	st := newCountingStore(t)
	m := newManager[counter](t, st, "c")
	var hooks hookLog
	mw := New(m, userKey, Options{OnError: hooks.hook})
	var active, maxActive atomic.Int32
	h := mw.Wrap(func(ctx context.Context, u *update) error {
		n := active.Add(1)
		defer active.Add(-1)
		for {
			old := maxActive.Load()
			if n <= old || maxActive.CompareAndSwap(old, n) {
				break
			}
		}
		return incr(ctx, u)
	})
	const n = 100
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for range n {
		wg.Go(func() {
			if err := h(context.Background(), &update{User: "ann"}); err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("update failed: %v", err)
	}
	if got := stored(t, m, "ann").N; got != n {
		t.Errorf("N = %d after %d concurrent updates, want %d", got, n, n)
	}
	if got := maxActive.Load(); got != 1 {
		t.Errorf("%d handlers of one key ran at once, want 1", got)
	}
	if c := hooks.get(); len(c) != 0 {
		t.Errorf("hook calls = %v, want none: the lock prevents conflicts", c)
	}
	if size := mw.core.lockLen(); size != 0 {
		t.Errorf("lock table holds %d keys after the load, want 0", size)
	}
}

// Two Middleware values on one store share no lock: compare-and-swap turns
// each lost race into ErrConflict, the caller retries, and no increment is
// lost.
func TestConcurrentTwoInstancesRelyOnCAS(t *testing.T) {
	st := newCountingStore(t)
	testTwoInstances(t, st, newManager[counter](t, st, "c"), newManager[counter](t, st, "c"))
}

func testTwoInstances(t *testing.T, st store.Store, m1, m2 *session.Manager[counter]) {
	var conflicts atomic.Int32
	hook := func(_ context.Context, op, key string, err error) {
		if op == "save" && errors.Is(err, session.ErrConflict) {
			conflicts.Add(1)
			return
		}
		t.Errorf("unexpected hook call %s %s: %v", op, key, err)
	}
	h1 := New(m1, userKey, Options{OnError: hook}).Wrap(incr)
	h2 := New(m2, userKey, Options{OnError: hook}).Wrap(incr)
	const n = 100
	var wg sync.WaitGroup
	var retried atomic.Int32
	for i := range n {
		h := h1
		if i%2 == 1 {
			h = h2
		}
		wg.Go(func() {
			for {
				err := h(context.Background(), &update{User: "ann"})
				if err == nil {
					return
				}
				if !errors.Is(err, session.ErrConflict) {
					t.Errorf("update failed: %v", err)
					return
				}
				retried.Add(1)
			}
		})
	}
	wg.Wait()
	if got := stored(t, m1, "ann").N; got != n {
		t.Errorf("N = %d after %d concurrent updates through two instances, want %d", got, n, n)
	}
	if c, r := conflicts.Load(), retried.Load(); c != r {
		t.Errorf("hook saw %d conflicts, callers retried %d", c, r)
	}
	t.Logf("%d conflicts reported and retried", conflicts.Load())
}

func TestDifferentKeysRunInParallel(t *testing.T) {
	st := newCountingStore(t)
	m := newManager[counter](t, st, "c")
	mw := New(m, userKey, Options{})
	started := map[string]chan struct{}{"ann": make(chan struct{}), "bob": make(chan struct{})}
	other := map[string]string{"ann": "bob", "bob": "ann"}
	// Each handler waits until the other key's handler has started: with
	// one lock for all keys this would never finish. The deadline only
	// turns a deadlock into a failure.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	h := mw.Wrap(func(ctx context.Context, u *update) error {
		close(started[u.User])
		select {
		case <-started[other[u.User]]:
			return incr(ctx, u)
		case <-ctx.Done():
			return fmt.Errorf("key %s waited for the other key: %w", u.User, ctx.Err())
		}
	})
	var wg sync.WaitGroup
	for _, user := range []string{"ann", "bob"} {
		wg.Go(func() {
			if err := h(ctx, &update{User: user}); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
}

func TestLockWaitHonoursContext(t *testing.T) {
	st := newCountingStore(t)
	m := newManager[counter](t, st, "c")
	var hooks hookLog
	mw := New(m, userKey, Options{OnError: hooks.hook})
	inside, release := make(chan struct{}), make(chan struct{})
	holder := mw.Wrap(func(ctx context.Context, u *update) error {
		close(inside)
		<-release
		return incr(ctx, u)
	})
	done := make(chan error)
	go func() { done <- holder(context.Background(), &update{User: "ann"}) }()
	<-inside

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	ran := false
	err := mw.Wrap(func(context.Context, *update) error { ran = true; return nil })(ctx, &update{User: "ann"})
	if !errors.Is(err, context.Canceled) {
		t.Errorf("err = %v, want context.Canceled", err)
	}
	if ran {
		t.Error("handler ran without the lock")
	}
	if c := hooks.get(); len(c) != 1 || c[0].op != "lock" || c[0].key != "ann" {
		t.Errorf("hook calls = %+v, want one lock", c)
	}
	close(release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if size := mw.core.lockLen(); size != 0 {
		t.Errorf("lock table holds %d keys, want 0", size)
	}
	if got := stored(t, m, "ann").N; got != 1 {
		t.Errorf("N = %d, want 1", got)
	}
}

func TestNoLockOption(t *testing.T) {
	st := newCountingStore(t)
	m := newManager[counter](t, st, "c")
	mw := New(m, userKey, Options{NoLock: true})
	if mw.core.locker != nil {
		t.Fatal("NoLock: a lock table exists")
	}
	// Two handlers of one key inside each other's window: possible only
	// without the lock.
	inside := make(chan struct{})
	h := mw.Wrap(func(ctx context.Context, u *update) error {
		if u.Fail != nil { // the first one waits for the second
			<-inside
			return nil
		}
		close(inside)
		return incr(ctx, u)
	})
	var wg sync.WaitGroup
	wg.Go(func() {
		if err := h(context.Background(), &update{User: "ann", Fail: errors.New("first")}); err != nil {
			t.Error(err)
		}
	})
	if err := h(context.Background(), &update{User: "ann"}); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
}

func TestTwoSessionTypesOnOneUpdate(t *testing.T) {
	st := newCountingStore(t)
	counters := newManager[counter](t, st, "c")
	profiles := newManager[profile](t, st, "p")
	h := New(counters, userKey, Options{}).Wrap(
		New(profiles, userKey, Options{Lazy: true}).Wrap(func(ctx context.Context, u *update) error {
			c, err := session.From[counter](ctx)
			if err != nil {
				return err
			}
			p, err := session.From[profile](ctx)
			if err != nil {
				return err
			}
			c.Data.N++
			p.Data.Name = u.User + "#" + strconv.Itoa(c.Data.N)
			return u.Fail
		}))
	ctx := context.Background()
	for range 2 {
		if err := h(ctx, &update{User: "ann"}); err != nil {
			t.Fatal(err)
		}
	}
	if err := h(ctx, &update{User: "ann", Fail: errors.New("no")}); err == nil {
		t.Fatal("want the handler's error")
	}
	if got := stored(t, counters, "ann").N; got != 2 {
		t.Errorf("counter N = %d, want 2", got)
	}
	p, err := profiles.Load(ctx, "ann")
	if err != nil {
		t.Fatal(err)
	}
	if p.Data.Name != "ann#2" {
		t.Errorf("profile Name = %q, want ann#2", p.Data.Name)
	}
}

func TestInnerSaveFailureDiscardsOuter(t *testing.T) {
	st := newCountingStore(t)
	counters := newManager[counter](t, st, "c")
	profiles := newManager[profile](t, st, "p")
	// The inner (counter) save fails validation; the outer (profile)
	// sees the error and must not save either.
	h := New(profiles, userKey, Options{}).Wrap(
		New(counters, userKey, Options{}).Wrap(func(ctx context.Context, u *update) error {
			c, _ := session.From[counter](ctx)
			p, _ := session.From[profile](ctx)
			c.Data.N = -5
			p.Data.Name = "changed"
			return nil
		}))
	if err := h(context.Background(), &update{User: "ann"}); !errors.Is(err, session.ErrInvalid) {
		t.Fatalf("err = %v, want ErrInvalid", err)
	}
	if n := st.Calls("Set") + st.Calls("CompareAndSwap"); n != 0 {
		t.Errorf("%d writes, want 0", n)
	}
}

func TestHandleIsNewWrap(t *testing.T) {
	st := newCountingStore(t)
	m := newManager[counter](t, st, "c")
	h := Handle(m, userKey, incr, Options{})
	if err := h(context.Background(), &update{User: "ann"}); err != nil {
		t.Fatal(err)
	}
	if got := stored(t, m, "ann").N; got != 1 {
		t.Errorf("N = %d, want 1", got)
	}
}
