package middleware

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"github.com/typedsession/session/store/storetest"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"

	session "github.com/typedsession/session"
)

// cart is the HTTP test session.
type cart struct {
	Items []string `json:"items" validate:"max=5"`
	User  string   `json:"user,omitempty"`
}

// cartApp serves:
//
//	/add?item=x     adds x and answers with the item count
//	/show           answers with the items
//	/none           does not touch the session
//	/fail?item=x    adds x, then answers 500
//	/late?item=x    writes the body, then adds x (too late to be saved)
//	/flush?item=x   adds x, flushes, adds "after-flush"
//	/login?user=u   sets the user and calls Renew
//	/logout         Destroy
//	/sdestroy       s.Destroy() on the session itself
func cartApp() http.Handler {
	mux := http.NewServeMux()
	get := func(w http.ResponseWriter, r *http.Request) *session.Session[cart] {
		s, err := session.From[cart](r.Context())
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return nil
		}
		return s
	}
	mux.HandleFunc("/add", func(w http.ResponseWriter, r *http.Request) {
		if s := get(w, r); s != nil {
			s.Data.Items = append(s.Data.Items, r.FormValue("item"))
			w.Header().Set("X-Handler", "yes")
			fmt.Fprint(w, len(s.Data.Items))
		}
	})
	mux.HandleFunc("/show", func(w http.ResponseWriter, r *http.Request) {
		if s := get(w, r); s != nil {
			fmt.Fprintf(w, "%s|%s", s.Data.User, strings.Join(s.Data.Items, ","))
		}
	})
	mux.HandleFunc("/none", func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "ok") })
	mux.HandleFunc("/fail", func(w http.ResponseWriter, r *http.Request) {
		if s := get(w, r); s != nil {
			s.Data.Items = append(s.Data.Items, r.FormValue("item"))
			http.Error(w, "broken", http.StatusServiceUnavailable)
		}
	})
	mux.HandleFunc("/late", func(w http.ResponseWriter, r *http.Request) {
		if s := get(w, r); s != nil {
			fmt.Fprint(w, "written")
			s.Data.Items = append(s.Data.Items, r.FormValue("item"))
		}
	})
	mux.HandleFunc("/flush", func(w http.ResponseWriter, r *http.Request) {
		if s := get(w, r); s != nil {
			s.Data.Items = append(s.Data.Items, r.FormValue("item"))
			if err := http.NewResponseController(w).Flush(); err != nil {
				http.Error(w, err.Error(), 500)
				return
			}
			s.Data.Items = append(s.Data.Items, "after-flush")
			fmt.Fprint(w, "flushed")
		}
	})
	mux.HandleFunc("/login", func(w http.ResponseWriter, r *http.Request) {
		if s := get(w, r); s != nil {
			if err := Renew[cart](r); err != nil {
				http.Error(w, err.Error(), 500)
				return
			}
			s.Data.User = r.FormValue("user")
		}
	})
	mux.HandleFunc("/logout", func(w http.ResponseWriter, r *http.Request) {
		if err := Destroy[cart](r); err != nil {
			http.Error(w, err.Error(), 500)
		}
	})
	mux.HandleFunc("/sdestroy", func(w http.ResponseWriter, r *http.Request) {
		if s := get(w, r); s != nil {
			s.Destroy()
		}
	})
	return mux
}

type httpEnv struct {
	t      *testing.T
	st     *storetest.Counter
	m      *session.Manager[cart]
	h      http.Handler
	hooks  *hookLog
	cookie string // the cookie's name
}

// cookieNameOf is the name of the cookie that HTTP with opts sets.
func cookieNameOf(opts HTTPOptions) string {
	name := opts.CookieName
	if name == "" {
		name = "session"
	}
	if !opts.Insecure && opts.CookieDomain == "" && (opts.CookiePath == "" || opts.CookiePath == "/") && !opts.NoHostPrefix && !strings.HasPrefix(name, "__") {
		name = "__Host-" + name
	}
	return name
}

func newHTTPEnv(t *testing.T, opts HTTPOptions) *httpEnv {
	st := newCountingStore(t)
	m := newManager[cart](t, st, "cart")
	hooks := &hookLog{}
	if opts.OnError == nil {
		opts.OnError = hooks.hook
	}
	return &httpEnv{t: t, st: st, m: m, h: HTTP(m, opts)(cartApp()), hooks: hooks, cookie: cookieNameOf(opts)}
}

// do sends one request with the given cookie value ("" for none) and
// returns the response.
func (e *httpEnv) do(path, cookie string) *http.Response {
	e.t.Helper()
	req := httptest.NewRequest("GET", "https://example.com"+path, nil)
	if cookie != "" {
		req.AddCookie(&http.Cookie{Name: e.cookie, Value: cookie})
	}
	rec := httptest.NewRecorder()
	e.h.ServeHTTP(rec, req)
	return rec.Result()
}

func body(t *testing.T, resp *http.Response) string {
	t.Helper()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// sessionCookie returns the session cookie the response set, or nil.
func sessionCookie(resp *http.Response) *http.Cookie {
	for _, c := range resp.Cookies() {
		if c.Name == "__Host-session" || c.Name == "session" {
			return c
		}
	}
	return nil
}

func TestHTTPCookieIssuedOnlyWhenStored(t *testing.T) {
	e := newHTTPEnv(t, HTTPOptions{})
	resp := e.do("/show", "")
	if c := sessionCookie(resp); c != nil {
		t.Errorf("a visitor whose session was not stored got a cookie: %v", c)
	}
	if got := body(t, resp); got != "|" {
		t.Errorf("body = %q, want an empty session", got)
	}
	if w := e.st.Calls("Set") + e.st.Calls("CompareAndSwap"); w != 0 {
		t.Errorf("%d writes for an unchanged new session, want 0", w)
	}

	resp = e.do("/add?item=apple", "")
	c := sessionCookie(resp)
	if c == nil {
		t.Fatal("no cookie after the session was stored")
	}
	if !c.HttpOnly || !c.Secure || c.SameSite != http.SameSiteLaxMode || c.Path != "/" || c.MaxAge != 0 {
		t.Errorf("cookie = %+v, want HttpOnly, Secure, SameSite=Lax, Path=/, no Max-Age", c)
	}
	raw, err := base64.RawURLEncoding.DecodeString(c.Value)
	if err != nil || len(raw) != 32 {
		t.Errorf("token %q: %d bytes, err %v; want 256 bits of base64url", c.Value, len(raw), err)
	}
	// The store key is the token's hash, not the token.
	if _, err := e.st.Unwrap().Get(context.Background(), "cart:"+c.Value); err == nil {
		t.Error("the token itself is a store key")
	}
	if _, err := e.st.Unwrap().Get(context.Background(), "cart:"+tokenKey(c.Value)); err != nil {
		t.Errorf("no session under the token's hash: %v", err)
	}

	// Sent back, the cookie finds the session; no new cookie is set.
	resp = e.do("/add?item=pear", c.Value)
	if got := body(t, resp); got != "2" {
		t.Errorf("body = %q, want 2", got)
	}
	if sessionCookie(resp) != nil {
		t.Error("a known session cookie was set again without CookieMaxAge")
	}
}

func TestHTTPCookieOptions(t *testing.T) {
	e := newHTTPEnv(t, HTTPOptions{Insecure: true, SameSite: http.SameSiteStrictMode, CookieName: "session", CookiePath: "/app", CookieDomain: "example.com", CookieMaxAge: 3600e9})
	c := sessionCookie(e.do("/add?item=x", ""))
	if c == nil {
		t.Fatal("no cookie")
	}
	if c.Secure || c.SameSite != http.SameSiteStrictMode || c.Path != "/app" || c.Domain != "example.com" || c.MaxAge != 3600 {
		t.Errorf("cookie = %+v", c)
	}
	// With a Max-Age the cookie is renewed on every response.
	if sessionCookie(e.do("/show", c.Value)) == nil {
		t.Error("a persistent cookie was not renewed")
	}
}

func TestHTTPTokensDiffer(t *testing.T) {
	e := newHTTPEnv(t, HTTPOptions{})
	seen := map[string]bool{}
	for i := range 50 {
		c := sessionCookie(e.do("/add?item=x", ""))
		if c == nil {
			t.Fatal("no cookie")
		}
		if seen[c.Value] {
			t.Fatalf("token %q issued twice (after %d)", c.Value, i)
		}
		seen[c.Value] = true
	}
}

func TestHTTPForgedOrUnknownCookieGetsNewEmptySession(t *testing.T) {
	e := newHTTPEnv(t, HTTPOptions{})
	victim := sessionCookie(e.do("/add?item=victim-secret", ""))
	if victim == nil {
		t.Fatal("no cookie")
	}
	tok := victim.Value
	flip := "A"
	if tok[0] == 'A' {
		flip = "B"
	}
	cases := []struct{ name, cookie, why string }{
		{"unknown", newToken(), "well-formed, never issued"},
		{"one char changed", flip + tok[1:], "well-formed, never issued"},
		{"store key", tokenKey(tok), "the victim's store key is not a cookie"},
		{"store key with prefix", "cart:" + tokenKey(tok), "nor is the full store key"},
		{"short", tok[:20], "wrong length"},
		{"long", tok + "A", "wrong length"},
		{"padded", base64.URLEncoding.EncodeToString(make([]byte, 32)), "padding is not our form"},
		{"std alphabet", strings.Repeat("+", 43), "wrong charset"},
		{"non-canonical", tok[:42] + "B", "B sets trailing bits that 32 bytes leave zero"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if tc.cookie == tok {
				t.Skip("the case happens to equal the victim's token")
			}
			resp := e.do("/show", tc.cookie)
			if got := body(t, resp); got != "|" {
				t.Fatalf("%s (%s): body = %q, want an empty session", tc.cookie, tc.why, got)
			}
			resp = e.do("/add?item=mine", tc.cookie)
			if got := body(t, resp); got != "1" {
				t.Errorf("body = %q, want 1: a new session", got)
			}
			c := sessionCookie(resp)
			if c == nil {
				t.Fatal("no cookie for the new stored session")
			}
			if c.Value == tc.cookie || c.Value == tok {
				t.Errorf("cookie = %q: the client's token was adopted", c.Value)
			}
			if !validToken(c.Value) {
				t.Errorf("new cookie %q is not a token", c.Value)
			}
			if got := body(t, e.do("/show", c.Value)); got != "|mine" {
				t.Errorf("new session = %q, want |mine", got)
			}
			if _, err := e.st.Unwrap().Get(context.Background(), "cart:"+tokenKey(tc.cookie)); err == nil {
				t.Error("a session was stored under the client's token")
			}
		})
	}
	if got := body(t, e.do("/show", tok)); got != "|victim-secret" {
		t.Errorf("victim's session = %q, want it unchanged", got)
	}
}

func TestHTTPRenew(t *testing.T) {
	e := newHTTPEnv(t, HTTPOptions{})
	old := sessionCookie(e.do("/add?item=apple", ""))
	if old == nil {
		t.Fatal("no cookie")
	}
	resp := e.do("/login?user=ann", old.Value)
	if resp.StatusCode != 200 {
		t.Fatalf("login: %d %s", resp.StatusCode, body(t, resp))
	}
	fresh := sessionCookie(resp)
	if fresh == nil || fresh.Value == old.Value || !validToken(fresh.Value) {
		t.Fatalf("login cookie = %v, want a new token", fresh)
	}
	if got := body(t, e.do("/show", fresh.Value)); got != "ann|apple" {
		t.Errorf("new token's session = %q, want ann|apple (data moved, change after Renew kept)", got)
	}
	if got := body(t, e.do("/show", old.Value)); got != "|" {
		t.Errorf("old token's session = %q, want empty: Renew must invalidate it", got)
	}
	if _, err := e.st.Unwrap().Get(context.Background(), "cart:"+tokenKey(old.Value)); err == nil {
		t.Error("old key still in the store")
	}

	// Renew of a session that stores nothing sets no cookie: there is
	// nothing for a token to name.
	if c := sessionCookie(e.do("/login?user=", "")); c != nil {
		t.Errorf("Renew of a new, unchanged session: cookie = %v, want none", c)
	}
	if c := sessionCookie(e.do("/login?user=bob", "")); c == nil || !validToken(c.Value) {
		t.Errorf("Renew of a new session that stores data: cookie = %v, want one", c)
	}
}

func TestHTTPRenewWithoutCookieSession(t *testing.T) {
	st := newCountingStore(t)
	m := newManager[cart](t, st, "cart")
	var got error
	h := HTTP(m, HTTPOptions{Key: func(r *http.Request) (string, error) { return "k", nil }})(
		http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { got = Renew[cart](r) }))
	h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/", nil))
	if !errors.Is(got, session.ErrNoSession) {
		t.Errorf("Renew with a key function: %v, want ErrNoSession", got)
	}
	if err := Renew[cart](httptest.NewRequest("GET", "/", nil)); !errors.Is(err, session.ErrNoSession) {
		t.Errorf("Renew without middleware: %v, want ErrNoSession", err)
	}
}

func TestHTTPDestroy(t *testing.T) {
	for _, path := range []string{"/logout", "/sdestroy"} {
		t.Run(path, func(t *testing.T) {
			e := newHTTPEnv(t, HTTPOptions{})
			c := sessionCookie(e.do("/add?item=apple", ""))
			if c == nil {
				t.Fatal("no cookie")
			}
			resp := e.do(path, c.Value)
			gone := sessionCookie(resp)
			if gone == nil || gone.MaxAge >= 0 || gone.Value != "" {
				t.Errorf("cookie after %s = %+v, want it expired", path, gone)
			}
			if _, err := e.st.Unwrap().Get(context.Background(), "cart:"+tokenKey(c.Value)); err == nil {
				t.Error("session still stored")
			}
			if got := body(t, e.do("/show", c.Value)); got != "|" {
				t.Errorf("after %s: %q, want empty", path, got)
			}
		})
	}
}

func TestHTTPFailedHandlerDiscardsChanges(t *testing.T) {
	e := newHTTPEnv(t, HTTPOptions{})
	c := sessionCookie(e.do("/add?item=apple", ""))
	resp := e.do("/fail?item=pear", c.Value)
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("status = %d, want the handler's 503", resp.StatusCode)
	}
	if got := body(t, e.do("/show", c.Value)); got != "|apple" {
		t.Errorf("session = %q, want |apple: a 5xx handler's changes are discarded", got)
	}
	// A new visitor's failed request stores nothing and gets no cookie.
	resp = e.do("/fail?item=x", "")
	if sessionCookie(resp) != nil {
		t.Error("cookie set for a failed request")
	}
}

func TestHTTPSaveFailureIs500(t *testing.T) {
	e := newHTTPEnv(t, HTTPOptions{})
	var c *http.Cookie
	for i := range 5 {
		resp := e.do("/add?item="+strconv.Itoa(i), cookieValue(c))
		if nc := sessionCookie(resp); nc != nil {
			c = nc
		}
	}
	// A sixth item fails validate:"max=5" on save.
	resp := e.do("/add?item=six", c.Value)
	b := body(t, resp)
	if resp.StatusCode != 500 {
		t.Errorf("status = %d, want 500", resp.StatusCode)
	}
	if strings.Contains(b, "6") || resp.Header.Get("X-Handler") != "" {
		t.Errorf("body %q / header X-Handler %q: the handler's response leaked", b, resp.Header.Get("X-Handler"))
	}
	calls := e.hooks.get()
	if len(calls) != 1 || calls[0].op != "save" || calls[0].key != tokenKey(c.Value) || !errors.Is(calls[0].err, session.ErrInvalid) {
		t.Errorf("hook = %+v, want one save ErrInvalid", calls)
	}

	// Also when the handler writes nothing.
	st := newCountingStore(t)
	m := newManager[cart](t, st, "cart")
	h := HTTP(m, HTTPOptions{})(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s, _ := session.From[cart](r.Context())
		s.Data.Items = make([]string, 9)
		w.Header().Set("X-Handler", "yes")
	}))
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
	if rec.Code != 500 || rec.Header().Get("X-Handler") != "" || len(rec.Result().Cookies()) != 0 {
		t.Errorf("silent handler with invalid session: %d, headers %v", rec.Code, rec.Header())
	}
}

func cookieValue(c *http.Cookie) string {
	if c == nil {
		return ""
	}
	return c.Value
}

func TestHTTPChangesAfterHeadersAreNotSaved(t *testing.T) {
	e := newHTTPEnv(t, HTTPOptions{})
	c := sessionCookie(e.do("/add?item=apple", ""))
	if got := body(t, e.do("/late?item=late", c.Value)); got != "written" {
		t.Fatalf("body = %q", got)
	}
	if got := body(t, e.do("/show", c.Value)); got != "|apple" {
		t.Errorf("session = %q, want |apple: changes after the headers are not saved", got)
	}
}

func TestHTTPFlushSavesFirst(t *testing.T) {
	e := newHTTPEnv(t, HTTPOptions{})
	srv := httptest.NewTLSServer(e.h)
	defer srv.Close()
	resp, err := srv.Client().Get(srv.URL + "/flush?item=apple")
	if err != nil {
		t.Fatal(err)
	}
	if got := body(t, resp); got != "flushed" {
		t.Fatalf("body = %q", got)
	}
	c := sessionCookie(resp)
	if c == nil {
		t.Fatal("no cookie: the session was not saved before the flush")
	}
	if got := body(t, e.do("/show", c.Value)); got != "|apple" {
		t.Errorf("session = %q, want |apple (saved at the flush, not after)", got)
	}
}

func TestHTTPKeyFunc(t *testing.T) {
	st := newCountingStore(t)
	m := newManager[cart](t, st, "cart")
	var hooks hookLog
	badKey := errors.New("bad key")
	h := HTTP(m, HTTPOptions{Options: Options{OnError: hooks.hook}, Key: func(r *http.Request) (string, error) {
		switch k := r.Header.Get("X-API-Key"); k {
		case "":
			return "", ErrNoKey
		case "bad":
			return "", badKey
		default:
			return "api:" + k, nil
		}
	}})(cartApp())
	do := func(path, key string) *http.Response {
		req := httptest.NewRequest("GET", path, nil)
		if key != "" {
			req.Header.Set("X-API-Key", key)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec.Result()
	}
	for range 2 {
		resp := do("/add?item=x", "k1")
		if len(resp.Cookies()) != 0 {
			t.Error("a key-function session set a cookie")
		}
	}
	if got := body(t, do("/show", "k1")); got != "|x,x" {
		t.Errorf("k1 = %q, want |x,x", got)
	}
	if got := body(t, do("/show", "k2")); got != "|" {
		t.Errorf("k2 = %q, want empty", got)
	}
	resp := do("/show", "")
	if got := body(t, resp); resp.StatusCode != 500 || !strings.Contains(got, "no session") {
		t.Errorf("no key: %d %q, want the handler's ErrNoSession answer", resp.StatusCode, got)
	}
	resp = do("/show", "bad")
	if resp.StatusCode != 500 {
		t.Errorf("key error: status %d, want 500", resp.StatusCode)
	}
	if c := hooks.get(); len(c) != 1 || c[0].op != "key" || !errors.Is(c[0].err, badKey) {
		t.Errorf("hooks = %+v, want one key", c)
	}
	// Destroy works without a cookie.
	do("/logout", "k1")
	if got := body(t, do("/show", "k1")); got != "|" {
		t.Errorf("after Destroy: %q, want empty", got)
	}
}

func TestHTTPLoadErrorIs500(t *testing.T) {
	e := newHTTPEnv(t, HTTPOptions{})
	tok := newToken()
	e.st.Unwrap().Set(context.Background(), "cart:"+tokenKey(tok), []byte("{corrupt"), 0)
	resp := e.do("/add?item=x", tok)
	if resp.StatusCode != 500 || strings.Contains(body(t, resp), "1") {
		t.Errorf("status %d: want 500 without running the handler", resp.StatusCode)
	}
	if c := e.hooks.get(); len(c) != 1 || c[0].op != "load" || !errors.Is(c[0].err, session.ErrCorrupt) {
		t.Errorf("hooks = %+v, want one load ErrCorrupt", c)
	}
	if raw, _ := e.st.Unwrap().Get(context.Background(), "cart:"+tokenKey(tok)); string(raw) != "{corrupt" {
		t.Errorf("stored value changed to %q", raw)
	}
}

func TestHTTPLazyUntouchedCostsNothing(t *testing.T) {
	e := newHTTPEnv(t, HTTPOptions{Options: Options{Lazy: true}})
	c := sessionCookie(e.do("/add?item=x", ""))
	if c == nil {
		t.Fatal("no cookie")
	}
	before := e.st.Calls()
	for _, cookie := range []string{"", c.Value, "garbage"} {
		resp := e.do("/none", cookie)
		if sessionCookie(resp) != nil {
			t.Errorf("cookie %q: a Set-Cookie for an untouched lazy session", cookie)
		}
	}
	if n := e.st.Calls() - before; n != 0 {
		t.Errorf("untouched lazy sessions made %d store calls, want 0", n)
	}
}

// 100 concurrent requests for one cookie through one middleware: the
// per-key lock serializes them and none is lost.
func TestHTTPConcurrentOneKey(t *testing.T) {
	st := newCountingStore(t)
	m := newManager[counter](t, st, "n")
	var hooks hookLog
	incrHandler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s, err := session.From[counter](r.Context())
		if err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		s.Data.N++
		fmt.Fprint(w, s.Data.N)
	})
	mw := HTTP(m, HTTPOptions{Options: Options{OnError: hooks.hook}})
	h := mw(incrHandler)
	// Create the session.
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
	tok := sessionCookie(rec.Result()).Value

	run := func(hs ...http.Handler) (ok, retried int) {
		var mu sync.Mutex
		var wg sync.WaitGroup
		for i := range 100 {
			wg.Go(func() {
				for {
					req := httptest.NewRequest("GET", "/", nil)
					req.AddCookie(&http.Cookie{Name: "__Host-session", Value: tok})
					rec := httptest.NewRecorder()
					hs[i%len(hs)].ServeHTTP(rec, req)
					mu.Lock()
					if rec.Code == 200 {
						ok++
						mu.Unlock()
						return
					}
					retried++
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		return ok, retried
	}
	if _, retried := run(h); retried != 0 {
		t.Errorf("%d requests failed through one middleware, want 0", retried)
	}
	s, _ := m.Load(context.Background(), tokenKey(tok))
	if s.Data.N != 101 {
		t.Errorf("N = %d, want 101", s.Data.N)
	}
	if len(hooks.get()) != 0 {
		t.Errorf("hooks = %v", hooks.get())
	}

	// Two middleware values share no lock: conflicts become 500s, which
	// the client retries; still nothing is lost.
	hooks = hookLog{}
	h2 := HTTP(m, HTTPOptions{Options: Options{OnError: hooks.hook}})(incrHandler)
	_, retried := run(h, h2)
	s, _ = m.Load(context.Background(), tokenKey(tok))
	if s.Data.N != 201 {
		t.Errorf("N = %d after two instances, want 201", s.Data.N)
	}
	for _, c := range hooks.get() {
		if c.op != "save" || !errors.Is(c.err, session.ErrConflict) {
			t.Errorf("hook %+v, want only save conflicts", c)
		}
	}
	if len(hooks.get()) != retried {
		t.Errorf("%d conflicts reported, %d retries", len(hooks.get()), retried)
	}
	t.Logf("two instances: %d conflicts retried", retried)
}

func TestHTTPLockTableEmptiesAfterLoad(t *testing.T) {
	st := newCountingStore(t)
	m := newManager[cart](t, st, "cart")
	h := &httpMiddleware[cart]{core: newCore(m, Options{}), opts: HTTPOptions{CookieName: "session", CookiePath: "/", SameSite: http.SameSiteLaxMode}}
	app := cartApp()
	var wg sync.WaitGroup
	for i := range 50 {
		wg.Go(func() {
			req := httptest.NewRequest("GET", "/add?item=x", nil)
			if i%2 == 0 {
				req.AddCookie(&http.Cookie{Name: "session", Value: "shared-but-malformed"})
			}
			h.serve(app, httptest.NewRecorder(), req)
		})
	}
	wg.Wait()
	if n := h.core.lockLen(); n != 0 {
		t.Errorf("lock table holds %d keys, want 0", n)
	}
}

func TestHTTPTwoCookieSessions(t *testing.T) {
	st := newCountingStore(t)
	carts := newManager[cart](t, st, "cart")
	counters := newManager[counter](t, st, "n")
	h := HTTP(carts, HTTPOptions{})(HTTP(counters, HTTPOptions{CookieName: "visits", Options: Options{Lazy: true}})(
		http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			c, err := session.From[cart](r.Context())
			if err != nil {
				http.Error(w, err.Error(), 500)
				return
			}
			n, err := session.From[counter](r.Context())
			if err != nil {
				http.Error(w, err.Error(), 500)
				return
			}
			c.Data.Items = append(c.Data.Items, "x")
			n.Data.N++
			fmt.Fprintf(w, "%d %d", len(c.Data.Items), n.Data.N)
		})))
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
	cookies := rec.Result().Cookies()
	if len(cookies) != 2 {
		t.Fatalf("cookies = %v, want two", cookies)
	}
	req := httptest.NewRequest("GET", "/", nil)
	for _, c := range cookies {
		req.AddCookie(c)
	}
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if got := rec.Body.String(); got != "2 2" {
		t.Errorf("body = %q, want 2 2", got)
	}
}

func TestHTTPPanicReleasesLockAndSavesNothing(t *testing.T) {
	st := newCountingStore(t)
	m := newManager[cart](t, st, "cart")
	h := &httpMiddleware[cart]{core: newCore(m, Options{}), opts: HTTPOptions{CookieName: "session", CookiePath: "/", SameSite: http.SameSiteLaxMode}}
	app := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s, _ := session.From[cart](r.Context())
		s.Data.Items = []string{"half-made"}
		panic(http.ErrAbortHandler)
	})
	func() {
		defer func() {
			if recover() == nil {
				t.Error("the panic did not reach the server")
			}
		}()
		h.serve(app, httptest.NewRecorder(), httptest.NewRequest("GET", "/", nil))
	}()
	if n := h.core.lockLen(); n != 0 {
		t.Errorf("lock table holds %d keys after a panic, want 0", n)
	}
	if w := st.Calls("Set") + st.Calls("CompareAndSwap"); w != 0 {
		t.Errorf("%d writes after a panic, want 0", w)
	}
}

func sessionFrom(r *http.Request) (*session.Session[cart], error) {
	return session.From[cart](r.Context())
}
