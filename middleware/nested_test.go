package middleware

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	session "github.com/typedsession/session"
	"github.com/typedsession/session/migrate"
)

// TestNestedSameMiddlewareReusesTheOuterSession is the example:
// the same middleware wrapped twice (router groups nest middleware) used
// to wait for its own per-key lock until the request's context ended.
func TestNestedSameMiddlewareReusesTheOuterSession(t *testing.T) {
	t.Run("generic", func(t *testing.T) {
		st := newCountingStore(t)
		m := newManager[counter](t, st, "c")
		mw := New(m, userKey, Options{})
		h := mw.Wrap(mw.Wrap(incr))
		for range 2 {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			err := h(ctx, &update{User: "ann"})
			cancel()
			if err != nil {
				t.Fatalf("nested update: %v", err)
			}
		}
		if got := stored(t, m, "ann").N; got != 2 {
			t.Errorf("N = %d after two updates, want 2 (one increment each)", got)
		}
		// Another middleware value of the same manager nested inside
		// reuses the outer session as well.
		h = mw.Wrap(New(m, userKey, Options{}).Wrap(incr))
		if err := h(context.Background(), &update{User: "ann"}); err != nil {
			t.Fatal(err)
		}
		if got := stored(t, m, "ann").N; got != 3 {
			t.Errorf("N = %d, want 3", got)
		}
	})
	t.Run("http", func(t *testing.T) {
		st := newCountingStore(t)
		m := newManager[counter](t, st, "n")
		var hooks hookLog
		mw := HTTP(m, HTTPOptions{Options: Options{OnError: hooks.hook}})
		var inner atomic.Int32
		h := mw(mw(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			s, err := session.From[counter](r.Context())
			if err != nil {
				http.Error(w, err.Error(), 500)
				return
			}
			inner.Add(1)
			s.Data.N++
			fmt.Fprint(w, s.Data.N)
		})))
		c := sessionCookie(serve(h, request("/", "")).Result())
		if c == nil {
			t.Fatal("no cookie")
		}
		for want := 2; want <= 3; want++ {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			rec := serve(h, request("/", c.Value).WithContext(ctx))
			cancel()
			if rec.Code != 200 || rec.Body.String() != fmt.Sprint(want) {
				t.Fatalf("nested request: %d %q, want 200 %q", rec.Code, rec.Body.String(), fmt.Sprint(want))
			}
		}
		if got := stored(t, m, tokenKey(c.Value)).N; got != 3 {
			t.Errorf("N = %d, want 3", got)
		}
		if n := inner.Load(); n != 3 {
			t.Errorf("handler ran %d times, want 3", n)
		}
		if calls := hooks.get(); len(calls) != 0 {
			t.Errorf("hooks = %+v", calls)
		}
	})
}

// TestLazyFromRacingTheEndIsRefusedOrSaved is the race: with
// Options.Lazy, a session.From from a goroutine the handler started runs
// just as the handler returns. It used to get a live session that nobody
// saved; now it either gets the session before the middleware decides (and
// the session is saved) or an error matching ErrNoSession.
//
// To see "saved" from outside, each session is stored at schema version 0
// with a plan to version 1: a loaded session that is saved is written
// back (the migration), one that is not saved stays at version 0.
func TestLazyFromRacingTheEndIsRefusedOrSaved(t *testing.T) {
	st := newCountingStore(t)
	plan, err := migrate.New(migrate.Raw(0, func(map[string]any) error { return nil }))
	if err != nil {
		t.Fatal(err)
	}
	m, err := session.New(session.Config[counter]{Store: st, Namespace: "c", Migrations: plan})
	if err != nil {
		t.Fatal(err)
	}
	mw := New(m, userKey, Options{Lazy: true})
	ctx := context.Background()
	const tries = 10000
	var live, refused int
	for i := range tries {
		if err := st.Unwrap().Set(ctx, "c:ann", []byte(`{"n":1}`), 0); err != nil {
			t.Fatal(err)
		}
		got := make(chan error, 1)
		h := mw.Wrap(func(ctx context.Context, u *update) error {
			go func() {
				_, err := session.From[counter](ctx)
				got <- err
			}()
			return nil
		})
		if err := h(ctx, &update{User: "ann"}); err != nil {
			t.Fatal(err)
		}
		fromErr := <-got
		raw, err := st.Unwrap().Get(ctx, "c:ann")
		if err != nil {
			t.Fatal(err)
		}
		switch {
		case fromErr == nil && string(raw) == `{"n":1}`:
			t.Fatalf("try %d: From returned a live session that was never saved", i)
		case fromErr == nil:
			live++
		case !errors.Is(fromErr, session.ErrNoSession):
			t.Fatalf("try %d: From = %v, want a session or ErrNoSession", i, fromErr)
		default:
			refused++
		}
	}
	t.Logf("%d tries: %d sessions handed out before the end (saved), %d refused after it", tries, live, refused)
	if n := mw.core.lockLen(); n != 0 {
		t.Errorf("lock table holds %d keys, want 0", n)
	}
}

// TestHTTPFromAfterTheCommitIsRefused: once the response has started, the
// session is settled; From, Renew and Destroy say so instead of handing
// out a session whose changes nobody would save.
func TestHTTPFromAfterTheCommitIsRefused(t *testing.T) {
	for _, lazy := range []bool{false, true} {
		t.Run(fmt.Sprintf("lazy=%v", lazy), func(t *testing.T) {
			st := newCountingStore(t)
			m := newManager[cart](t, st, "cart")
			var fromErr, renewErr, destroyErr error
			h := HTTP(m, HTTPOptions{Options: Options{Lazy: lazy}})(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				fmt.Fprint(w, "started")
				_, fromErr = session.From[cart](r.Context())
				renewErr = Renew[cart](r)
				destroyErr = Destroy[cart](r)
			}))
			serve(h, request("/", newToken()))
			if !errors.Is(fromErr, session.ErrNoSession) {
				t.Errorf("From after the commit = %v, want ErrNoSession", fromErr)
			}
			if !errors.Is(renewErr, ErrCommitted) || !errors.Is(destroyErr, ErrCommitted) {
				t.Errorf("Renew, Destroy after the commit = %v, %v; want ErrCommitted", renewErr, destroyErr)
			}
		})
	}
}
