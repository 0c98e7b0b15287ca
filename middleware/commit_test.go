package middleware

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"testing"

	session "github.com/typedsession/session"
	"github.com/typedsession/session/store"
	"github.com/typedsession/session/store/filestore"
)

// newDeleterStore returns a store with compare-and-delete (a
// store.Deleter), which Renew's and Destroy's conflict checks need: a
// filestore in a temporary folder.
func newDeleterStore(t *testing.T) store.Store {
	t.Helper()
	st, err := filestore.New(t.TempDir(), filestore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	if _, ok := store.Store(st).(store.Deleter); !ok {
		t.Fatal("filestore is not a store.Deleter")
	}
	return st
}

// storedKeys returns the keys under prefix in st, sorted.
func storedKeys(t *testing.T, st store.Store, prefix string) []string {
	t.Helper()
	var keys []string
	err := st.(store.Scanner).Scan(context.Background(), prefix, func(k string) error {
		keys = append(keys, k)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(keys)
	return keys
}

func request(path, cookie string) *http.Request {
	req := httptest.NewRequest("GET", "https://example.com"+path, nil)
	if cookie != "" {
		req.AddCookie(&http.Cookie{Name: "__Host-session", Value: cookie})
	}
	return req
}

func serve(h http.Handler, req *http.Request) *httptest.ResponseRecorder {
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

// twoInstances is two app processes on one store: two HTTP middleware
// values over two managers, serving cartApp plus /pause, which loads the
// session, signals, waits, and then runs the path it was given.
type twoInstances struct {
	st     store.Store
	ma, mb *session.Manager[cart]
	a, b   http.Handler
	hooks  *hookLog
}

func newTwoInstances(t *testing.T, st store.Store) *twoInstances {
	hooks := &hookLog{}
	ti := &twoInstances{st: st, ma: newManager[cart](t, st, "cart"), mb: newManager[cart](t, st, "cart"), hooks: hooks}
	ti.a = HTTP(ti.ma, HTTPOptions{Options: Options{OnError: hooks.hook}})(cartApp())
	ti.b = HTTP(ti.mb, HTTPOptions{Options: Options{OnError: hooks.hook}})(cartApp())
	return ti
}

// pausedAt runs path on instance a with cookie, but stops it after the
// load, runs between() (the other instance's request), and then lets it
// go on. It returns a's response.
func (ti *twoInstances) pausedAt(path, cookie string, between func()) *httptest.ResponseRecorder {
	loaded, resume := make(chan struct{}), make(chan struct{})
	app := cartApp()
	h := HTTP(ti.ma, HTTPOptions{Options: Options{OnError: ti.hooks.hook}})(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, err := session.From[cart](r.Context()); err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		close(loaded)
		<-resume
		app.ServeHTTP(w, r)
	}))
	done := make(chan *httptest.ResponseRecorder)
	go func() { done <- serve(h, request(path, cookie)) }()
	<-loaded
	between()
	close(resume)
	return <-done
}

// TestHTTPRenewChecksAgainstTheLoad is the example: instance A
// loads a session for /login and pauses; instance B adds to it and
// answers; A's Renew must not carry A's stale data to the new token and
// delete B's write. It fails with ErrConflict (a 500) and nothing is lost.
func TestHTTPRenewChecksAgainstTheLoad(t *testing.T) {
	ti := newTwoInstances(t, newDeleterStore(t))
	c := sessionCookie(serve(ti.b, request("/add?item=one", "")).Result())
	if c == nil {
		t.Fatal("no cookie")
	}
	var bBody string
	rec := ti.pausedAt("/login?user=ann", c.Value, func() {
		bBody = serve(ti.b, request("/add?item=two", c.Value)).Body.String()
	})
	if bBody != "2" {
		t.Fatalf("B answered %q, want 2", bBody)
	}
	if rec.Code != 500 {
		t.Errorf("A's login: status %d, want 500 (a conflict)", rec.Code)
	}
	if nc := sessionCookie(rec.Result()); nc != nil {
		t.Errorf("A's failed login set a cookie: %v", nc)
	}
	if got := serve(ti.b, request("/show", c.Value)).Body.String(); got != "|one,two" {
		t.Errorf("session under the old token = %q, want |one,two: B's acknowledged write must survive", got)
	}
	if keys := storedKeys(t, ti.st, "cart:"); len(keys) != 1 || keys[0] != "cart:"+tokenKey(c.Value) {
		t.Errorf("stored keys = %v, want only the old token's", keys)
	}
	calls := ti.hooks.get()
	if len(calls) != 1 || calls[0].op != "save" || !errors.Is(calls[0].err, session.ErrConflict) {
		t.Errorf("hooks = %+v, want one save ErrConflict", calls)
	}
}

// TestHTTPDestroyChecksAgainstTheLoad: Destroy is a compare-and-delete too;
// a logout that loaded a value another instance has since changed fails
// and deletes nothing.
func TestHTTPDestroyChecksAgainstTheLoad(t *testing.T) {
	for _, path := range []string{"/logout", "/sdestroy"} {
		t.Run(path, func(t *testing.T) {
			ti := newTwoInstances(t, newDeleterStore(t))
			c := sessionCookie(serve(ti.b, request("/add?item=one", "")).Result())
			rec := ti.pausedAt(path, c.Value, func() { serve(ti.b, request("/add?item=two", c.Value)) })
			if rec.Code != 500 {
				t.Errorf("status %d, want 500 (a conflict)", rec.Code)
			}
			if got := serve(ti.b, request("/show", c.Value)).Body.String(); got != "|one,two" {
				t.Errorf("session = %q, want |one,two", got)
			}
			// Without a race, it deletes.
			rec = serve(ti.a, request(path, c.Value))
			if gone := sessionCookie(rec.Result()); rec.Code != 200 || gone == nil || gone.MaxAge >= 0 {
				t.Errorf("logout: %d, cookie %v; want 200 and an expired cookie", rec.Code, gone)
			}
			if keys := storedKeys(t, ti.st, "cart:"); len(keys) != 0 {
				t.Errorf("stored keys after logout = %v, want none", keys)
			}
		})
	}
}

// TestHTTPDestroyOnEveryPath: a session the handler destroys is stored
// nowhere, whatever the way to the commit: a known token, no cookie, a
// well-formed token the store does not know (which used to copy the data
// to a fresh token), after Renew, and with a key function.
func TestHTTPDestroyOnEveryPath(t *testing.T) {
	// /secret adds "secret", then destroys the session (in that order:
	// the data is there when Destroy is called); with ?renew=1 it calls
	// Renew first.
	app := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s, err := session.From[cart](r.Context())
		if err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		if r.FormValue("renew") != "" {
			if err := Renew[cart](r); err != nil {
				http.Error(w, err.Error(), 500)
				return
			}
		}
		s.Data.Items = append(s.Data.Items, "secret")
		if r.FormValue("via") == "middleware" {
			if err := Destroy[cart](r); err != nil {
				http.Error(w, err.Error(), 500)
				return
			}
		} else {
			s.Destroy()
		}
		fmt.Fprint(w, "bye")
	})
	cases := []struct {
		name, cookie, query string
		known               bool // the cookie names a stored session
	}{
		{name: "known token", known: true},
		{name: "known token, Renew", known: true, query: "renew=1"},
		{name: "no cookie"},
		{name: "no cookie, Renew", query: "renew=1"},
		{name: "unknown token", cookie: newToken()},
		{name: "unknown token, Renew", cookie: newToken(), query: "renew=1"},
		{name: "malformed cookie", cookie: "garbage"},
	}
	for _, tc := range cases {
		for _, via := range []string{"session", "middleware"} {
			t.Run(tc.name+"/"+via, func(t *testing.T) {
				st := newDeleterStore(t)
				m := newManager[cart](t, st, "cart")
				var hooks hookLog
				h := HTTP(m, HTTPOptions{Options: Options{OnError: hooks.hook}})(app)
				cookie := tc.cookie
				if tc.known {
					seed := HTTP(m, HTTPOptions{})(cartApp())
					cookie = sessionCookie(serve(seed, request("/add?item=old", "")).Result()).Value
				}
				rec := serve(h, request("/secret?via="+via+"&"+tc.query, cookie))
				if rec.Code != 200 {
					t.Fatalf("status %d %q", rec.Code, rec.Body.String())
				}
				if keys := storedKeys(t, st, ""); len(keys) != 0 {
					t.Errorf("stored keys = %v, want none: a destroyed session was stored", keys)
				}
				for _, c := range rec.Result().Cookies() {
					if c.Value != "" {
						t.Errorf("Set-Cookie %v: a destroyed session got a token", c)
					}
				}
				if c := sessionCookie(rec.Result()); tc.known && (c == nil || c.MaxAge >= 0) {
					t.Errorf("Set-Cookie %v: want the known cookie expired", c)
				}
				if c := hooks.get(); len(c) != 0 {
					t.Errorf("hooks = %+v", c)
				}
			})
		}
	}

	t.Run("key function", func(t *testing.T) {
		st := newDeleterStore(t)
		m := newManager[cart](t, st, "cart")
		h := HTTP(m, HTTPOptions{Key: func(*http.Request) (string, error) { return "k", nil }})(app)
		for _, via := range []string{"session", "middleware"} {
			if rec := serve(h, request("/secret?via="+via, "")); rec.Code != 200 {
				t.Fatalf("status %d %q", rec.Code, rec.Body.String())
			}
			if keys := storedKeys(t, st, ""); len(keys) != 0 {
				t.Errorf("%s: stored keys = %v, want none", via, keys)
			}
		}
	})
}

// TestGenericDestroy: a generic handler that destroys its session deletes
// it; one that destroys a new session stores nothing.
func TestGenericDestroy(t *testing.T) {
	st := newDeleterStore(t)
	m := newManager[counter](t, st, "c")
	h := New(m, userKey, Options{}).Wrap(func(ctx context.Context, u *update) error {
		s, err := session.From[counter](ctx)
		if err != nil {
			return err
		}
		s.Data.N++
		if u.Fail != nil {
			s.Destroy()
		}
		return nil
	})
	ctx := context.Background()
	if err := h(ctx, &update{User: "ann"}); err != nil {
		t.Fatal(err)
	}
	for range 2 { // a stored session, then a new one
		if err := h(ctx, &update{User: "ann", Fail: errors.New("destroy")}); err != nil {
			t.Fatal(err)
		}
		if keys := storedKeys(t, st, ""); len(keys) != 0 {
			t.Errorf("stored keys = %v, want none", keys)
		}
	}
}

// TestHTTPBufferedDiscardsAFailureAnywhere is the example: a
// handler adds 100, writes part of its body, then panics. By default the
// change was committed with the first byte (documented); in buffered mode
// nothing is saved and nothing is sent.
func TestHTTPBufferedDiscardsAFailureAnywhere(t *testing.T) {
	bump := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s, err := session.From[counter](r.Context())
		if err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		switch r.URL.Path {
		case "/panic":
			s.Data.N += 100
			fmt.Fprint(w, "partial")
			panic(http.ErrAbortHandler)
		case "/late500":
			s.Data.N += 100
			w.Header().Set("Content-Type", "text/plain")
			fmt.Fprint(w, "partial")
			http.Error(w, "too late", 500) // superfluous WriteHeader by default
		case "/invalid":
			fmt.Fprint(w, "written before the save")
			s.Data.N = -1 // fails validate:"gte=0" at the commit
		default:
			s.Data.N++
			fmt.Fprint(w, s.Data.N)
		}
	})
	run := func(t *testing.T, buffered bool) (*session.Manager[counter], http.Handler, string) {
		st := newCountingStore(t)
		m := newManager[counter](t, st, "n")
		h := HTTP(m, HTTPOptions{Buffered: buffered})(bump)
		c := sessionCookie(serve(h, request("/", "")).Result())
		serve(h, request("/", c.Value)) // N = 2
		return m, h, c.Value
	}
	n := func(t *testing.T, m *session.Manager[counter], tok string) int {
		return stored(t, m, tokenKey(tok)).N
	}
	panics := func(h http.Handler, req *http.Request) (rec *httptest.ResponseRecorder, panicked bool) {
		rec = httptest.NewRecorder()
		defer func() { panicked = recover() != nil }()
		h.ServeHTTP(rec, req)
		return rec, false
	}

	t.Run("default", func(t *testing.T) {
		m, h, tok := run(t, false)
		if _, ok := panics(h, request("/panic", tok)); !ok {
			t.Fatal("no panic")
		}
		if got := n(t, m, tok); got != 102 {
			t.Errorf("N = %d, want 102: by default the change is committed with the first byte", got)
		}
	})
	t.Run("buffered", func(t *testing.T) {
		m, h, tok := run(t, true)
		rec, ok := panics(h, request("/panic", tok))
		if !ok {
			t.Fatal("no panic")
		}
		if got := n(t, m, tok); got != 2 {
			t.Errorf("N = %d, want 2: a panic anywhere discards the changes", got)
		}
		if rec.Body.Len() != 0 {
			t.Errorf("body %q went out before the panic", rec.Body.String())
		}
		rec = serve(h, request("/late500", tok))
		if rec.Code != 500 || n(t, m, tok) != 2 {
			t.Errorf("500 after the body: status %d, N = %d; want 500 and 2", rec.Code, n(t, m, tok))
		}
		rec = serve(h, request("/invalid", tok))
		if rec.Code != 500 || strings.Contains(rec.Body.String(), "written") {
			t.Errorf("a failed save: status %d body %q; want a 500 without the handler's body", rec.Code, rec.Body.String())
		}
		rec = serve(h, request("/", tok))
		if rec.Code != 200 || rec.Body.String() != "3" || n(t, m, tok) != 3 {
			t.Errorf("a good request: %d %q, N = %d; want 200 \"3\" and 3", rec.Code, rec.Body.String(), n(t, m, tok))
		}
	})
}

// TestHTTPNewTokensCostNoRead: a request without a cookie and the move to
// a new token (after Renew, or for a token the store does not know) start
// their session without a GET that could only miss.
func TestHTTPNewTokensCostNoRead(t *testing.T) {
	e := newHTTPEnv(t, HTTPOptions{})
	reads := func() int { return e.st.Calls("Get", "GetAndTouch", "GetWithTTL") }
	c := sessionCookie(e.do("/add?item=x", ""))
	if n := reads(); n != 0 {
		t.Errorf("a request without a cookie read the store %d times, want 0", n)
	}
	before := reads()
	if resp := e.do("/login?user=ann", c.Value); sessionCookie(resp) == nil {
		t.Fatal("no cookie after Renew")
	}
	if n := reads() - before; n != 1 {
		t.Errorf("a request with Renew read the store %d times, want 1 (its own load)", n)
	}
	before = reads()
	e.do("/add?item=y", newToken())
	if n := reads() - before; n != 1 {
		t.Errorf("a request with an unknown token read the store %d times, want 1", n)
	}
}
