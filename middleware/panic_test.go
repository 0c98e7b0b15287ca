package middleware

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	session "github.com/typedsession/session"
)

// touchy is a session whose Validate method panics on N == 666: user code
// that panics inside the load (and the save) of the session.
type touchy struct {
	N int `json:"n"`
}

func (t touchy) Validate() error {
	if t.N == 666 {
		panic("touchy.Validate: a bug on 666")
	}
	return nil
}

// plainTouchy has touchy's shape without its Validate, to store 666.
type plainTouchy struct {
	N int `json:"n"`
}

// storeTouchy stores N under key in m's store, bypassing touchy.Validate.
func storeTouchy(t *testing.T, m *session.Manager[plainTouchy], key string, n int) {
	t.Helper()
	if _, err := m.Update(context.Background(), key, func(p *plainTouchy) error { p.N = n; return nil }); err != nil {
		t.Fatal(err)
	}
}

// callRecovering runs f and reports whether it panicked or returned an
// error: either way the update failed.
func callRecovering(f func() error) (failed bool) {
	defer func() {
		if recover() != nil {
			failed = true
		}
	}()
	return f() != nil
}

// TestPanicsReleaseTheLock makes each step of an update panic (the key
// function, the load through a Validate method, the handler, the save
// through Validate), eagerly and lazily: the update fails, nothing is
// saved, the lock table is empty, and the next update of the key runs at
// once instead of waiting for the wedged lock.
func TestPanicsReleaseTheLock(t *testing.T) {
	type step struct {
		name    string
		stored  int  // N stored before the update (666: Validate panics on load)
		keyBomb bool // the key function panics
		handler Handler[*update]
	}
	setN := func(n int) Handler[*update] {
		return func(ctx context.Context, u *update) error {
			s, err := session.From[touchy](ctx)
			if err != nil {
				return err
			}
			s.Data.N = n
			return nil
		}
	}
	steps := []step{
		{name: "key function", stored: 1, keyBomb: true, handler: setN(2)},
		{name: "load (Validate)", stored: 666, handler: setN(2)},
		{name: "handler", stored: 1, handler: func(ctx context.Context, u *update) error {
			s, _ := session.From[touchy](ctx)
			s.Data.N = 2
			panic("handler bug")
		}},
		{name: "save (Validate)", stored: 1, handler: setN(666)},
	}
	for _, sp := range steps {
		for _, lazy := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/lazy=%v", sp.name, lazy), func(t *testing.T) {
				st := newCountingStore(t)
				plain := newManager[plainTouchy](t, st, "t")
				m := newManager[touchy](t, st, "t")
				storeTouchy(t, plain, "ann", sp.stored)
				key := func(ctx context.Context, u *update) (string, error) {
					if sp.keyBomb && u.Fail != nil {
						panic("key function bug")
					}
					return u.User, nil
				}
				lt := NewLockTable()
				mw := New(m, key, Options{Lazy: lazy, Locker: lt})
				h := mw.Wrap(sp.handler)
				if !callRecovering(func() error { return h(context.Background(), &update{User: "ann", Fail: errors.New("bomb")}) }) {
					t.Error("the update succeeded; want a panic or an error")
				}
				if n := lt.Len(); n != 0 {
					t.Fatalf("lock table holds %d keys after the panic, want 0", n)
				}
				if got := storedN(t, plain, "ann"); got != sp.stored {
					t.Errorf("N = %d after the failed update, want %d (nothing saved)", got, sp.stored)
				}
				// The key is not wedged: its lock is free at once.
				notWedged(t, lt, "ann")
				if n := lt.Len(); n != 0 {
					t.Errorf("lock table holds %d keys at the end, want 0", n)
				}
			})
		}
	}
}

func storedN(t *testing.T, m *session.Manager[plainTouchy], key string) int {
	t.Helper()
	s, err := m.Load(context.Background(), key)
	if err != nil {
		t.Fatal(err)
	}
	return s.Data.N
}

// TestHTTPPanicsReleaseTheLock is TestPanicsReleaseTheLock through the
// net/http middleware, keyed by user: the example is a Validate
// that panics on the stored value, after which every request of the user
// waited for a lock nobody would release.
func TestHTTPPanicsReleaseTheLock(t *testing.T) {
	type step struct {
		name    string
		stored  int
		keyBomb bool
		handler http.HandlerFunc
	}
	setN := func(n int) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			s, err := session.From[touchy](r.Context())
			if err != nil {
				http.Error(w, err.Error(), 500)
				return
			}
			s.Data.N = n
		}
	}
	steps := []step{
		{name: "key function", stored: 1, keyBomb: true, handler: setN(2)},
		{name: "load (Validate)", stored: 666, handler: setN(2)},
		{name: "handler before writing", stored: 1, handler: func(w http.ResponseWriter, r *http.Request) {
			s, _ := session.From[touchy](r.Context())
			s.Data.N = 2
			panic("handler bug")
		}},
		{name: "save (Validate)", stored: 1, handler: setN(666)},
	}
	for _, sp := range steps {
		for _, lazy := range []bool{false, true} {
			for _, buffered := range []bool{false, true} {
				t.Run(fmt.Sprintf("%s/lazy=%v/buffered=%v", sp.name, lazy, buffered), func(t *testing.T) {
					st := newCountingStore(t)
					plain := newManager[plainTouchy](t, st, "t")
					m := newManager[touchy](t, st, "t")
					storeTouchy(t, plain, "user2", sp.stored)
					lt := NewLockTable()
					opts := HTTPOptions{
						Options:  Options{Lazy: lazy, Locker: lt},
						Buffered: buffered,
						Key: func(r *http.Request) (string, error) {
							if sp.keyBomb && r.Header.Get("X-Bomb") != "" {
								panic("key function bug")
							}
							return r.Header.Get("X-User"), nil
						},
					}
					h := HTTP(m, opts)(sp.handler)
					do := func(ctx context.Context, bomb bool) int {
						req := httptest.NewRequestWithContext(ctx, "GET", "/", nil)
						req.Header.Set("X-User", "user2")
						if bomb {
							req.Header.Set("X-Bomb", "1")
						}
						rec := httptest.NewRecorder()
						h.ServeHTTP(rec, req)
						return rec.Code
					}
					if !callRecovering(func() error {
						if code := do(context.Background(), true); code >= 500 {
							return fmt.Errorf("status %d", code)
						}
						return nil
					}) {
						t.Error("the request succeeded; want a panic or a 5xx")
					}
					if n := lt.Len(); n != 0 {
						t.Fatalf("lock table holds %d keys after the failed request, want 0", n)
					}
					if got := storedN(t, plain, "user2"); got != sp.stored {
						t.Errorf("N = %d after the failed request, want %d (nothing saved)", got, sp.stored)
					}
					notWedged(t, lt, "user2")
					if n := lt.Len(); n != 0 {
						t.Errorf("lock table holds %d keys at the end, want 0", n)
					}
				})
			}
		}
	}
}

// notWedged fails the test if key's lock in lt is not free within 10 s.
func notWedged(t *testing.T, lt *LockTable, key string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	unlock, err := lt.Lock(ctx, key)
	if err != nil {
		t.Fatalf("the key %q is still locked: %v", key, err)
	}
	unlock()
}
