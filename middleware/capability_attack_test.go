package middleware

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	session "github.com/typedsession/session"
	"github.com/typedsession/session/store"
	"github.com/typedsession/session/store/memstore"
)

// TestAttackEndAllNeedsTheSessionsCompareAndSwap: Devices.End and EndAll
// delete a user's sessions, and "a request of that session that is
// running may still answer, but what it saves fails with
// session.ErrConflict" (Devices.End): the compare-and-swap of the
// sessions' Manager. NewDevices checked only DevicesOptions.Store, the
// index's store, for compare-and-swap; a Manager whose store has none (a
// wrapper that forwards Get, Set and Delete only) was accepted, and a
// request running across "log out everywhere" wrote its session back
// with a blind Set: the next request with the old cookie was served,
// logged in, as if the user had never been logged out. NewDevices must
// refuse such a Manager (or the session must stay ended).
func TestAttackEndAllNeedsTheSessionsCompareAndSwap(t *testing.T) {
	t.Run("the sessions' store has compare-and-swap", func(t *testing.T) { endAllEndsRunningRequests(t, true) })
	t.Run("the sessions' store has none", func(t *testing.T) { endAllEndsRunningRequests(t, false) })
}

func endAllEndsRunningRequests(t *testing.T, swaps bool) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	mem, err := memstore.New(memstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { mem.Close() })
	var sessions store.Store = noSwap{mem} // Get, Set and Delete only
	if swaps {
		sessions = mem
	}
	if _, ok := sessions.(store.Swapper); ok != swaps {
		t.Fatalf("the sessions' store's compare-and-swap: %v, want %v (the premise)", ok, swaps)
	}
	m, err := session.New(session.Config[visit]{Store: sessions, Namespace: "v", TTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	d, err := NewDevices(m, DevicesOptions{Store: mem, Namespace: "v-devices"})
	if err != nil {
		if swaps || !errors.Is(err, errors.ErrUnsupported) {
			t.Fatalf("NewDevices: %v; want an error matching errors.ErrUnsupported (the sessions' store has no compare-and-swap)", err)
		}
		return
	}
	entered, release := make(chan struct{}), make(chan struct{})
	mux := http.NewServeMux()
	mux.HandleFunc("/login", func(w http.ResponseWriter, r *http.Request) {
		if err := Login[visit](r, "u", LoginOptions{}); err != nil {
			t.Error(err)
		}
	})
	mux.HandleFunc("/slow", func(w http.ResponseWriter, r *http.Request) {
		s, err := session.From[visit](r.Context())
		if err != nil {
			t.Error(err)
			return
		}
		s.Data.Flash.Add("changed while the user was logged out everywhere")
		close(entered)
		select {
		case <-release:
		case <-ctx.Done():
		}
	})
	mux.HandleFunc("/show", func(w http.ResponseWriter, r *http.Request) {
		s, err := session.From[visit](r.Context())
		if err != nil {
			t.Error(err)
			return
		}
		w.Write([]byte(s.Data.Web.User))
	})
	h := HTTP(m, HTTPOptions{Devices: d, Insecure: true, Options: Options{OnError: func(_ context.Context, op, _ string, err error) { t.Logf("OnError %s: %v", op, err) }}})(mux)
	do := func(path string, c *http.Cookie) *httptest.ResponseRecorder {
		r := httptest.NewRequest(http.MethodPost, path, nil).WithContext(ctx)
		if c != nil {
			r.AddCookie(c)
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return w
	}
	res := do("/login", nil).Result()
	if len(res.Cookies()) != 1 {
		t.Fatalf("login: cookies %v", res.Cookies())
	}
	cookie := res.Cookies()[0]
	done := make(chan int)
	go func() { done <- do("/slow", cookie).Code }()
	select {
	case <-entered:
	case <-ctx.Done():
		t.Fatal("the slow request never ran")
	}
	if err := d.EndAll(ctx, "u"); err != nil {
		t.Fatal(err)
	}
	close(release)
	code := <-done
	if user := do("/show", cookie).Body.String(); user != "" {
		t.Fatalf("after log out everywhere, a request with the old cookie is served logged in as %q (the request running across it answered %d and wrote its session back)", user, code)
	}
}
