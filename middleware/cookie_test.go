package middleware

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// TestHTTPCookieMaxAge: a sub-second CookieMaxAge used to give a cookie
// without Max-Age (kept until the browser closes) and a negative one
// Max-Age=0 (deleted at once). Now a positive value is rounded up to whole
// seconds and sent as Max-Age and Expires; a negative one panics when the
// middleware is built.
func TestHTTPCookieMaxAge(t *testing.T) {
	cases := []struct {
		maxAge time.Duration
		want   int
	}{
		{800 * time.Millisecond, 1},
		{time.Second, 1},
		{1500 * time.Millisecond, 2},
		{time.Hour, 3600},
	}
	for _, tc := range cases {
		e := newHTTPEnv(t, HTTPOptions{CookieMaxAge: tc.maxAge})
		before := time.Now()
		c := sessionCookie(e.do("/add?item=x", ""))
		if c == nil {
			t.Fatalf("%v: no cookie", tc.maxAge)
		}
		if c.MaxAge != tc.want {
			t.Errorf("%v: Max-Age = %d, want %d", tc.maxAge, c.MaxAge, tc.want)
		}
		// Expires has a resolution of one second.
		lo, hi := before.Add(tc.maxAge).Add(-time.Second), time.Now().Add(time.Duration(tc.want)*time.Second).Add(time.Second)
		if c.Expires.Before(lo) || c.Expires.After(hi) {
			t.Errorf("%v: Expires = %v, want about now + %ds", tc.maxAge, c.Expires, tc.want)
		}
	}

	// An expired cookie has both too.
	e := newHTTPEnv(t, HTTPOptions{})
	c := sessionCookie(e.do("/add?item=x", ""))
	gone := sessionCookie(e.do("/logout", c.Value))
	if gone == nil || gone.MaxAge >= 0 || gone.Expires.IsZero() || !gone.Expires.Before(time.Now()) {
		t.Errorf("expired cookie = %+v, want Max-Age<0 and Expires in the past", gone)
	}
}

func TestHTTPInvalidOptionsPanic(t *testing.T) {
	st := newCountingStore(t)
	m := newManager[cart](t, st, "cart")
	cases := map[string]HTTPOptions{
		"negative max age":        {CookieMaxAge: -time.Second},
		"cookie name with space":  {CookieName: "my session"},
		"cookie path with ;":      {CookiePath: "/a;b"},
		"SameSite None, Insecure": {SameSite: http.SameSiteNoneMode, Insecure: true},
	}
	for name, opts := range cases {
		t.Run(name, func(t *testing.T) {
			defer func() {
				p := recover()
				if p == nil {
					t.Fatal("no panic")
				}
				if msg, _ := p.(string); !strings.HasPrefix(msg, "session/middleware: HTTPOptions") {
					t.Errorf("panic %v: want a message naming the option", p)
				}
			}()
			HTTP(m, opts)
		})
	}
}

// TestHTTPDuplicateCookieNames: a Cookie header with the name twice
// ("session=bad; session=<valid>", a stale cookie for a parent path next
// to the current one) used to ignore the valid one.
func TestHTTPDuplicateCookieNames(t *testing.T) {
	e := newHTTPEnv(t, HTTPOptions{})
	c := sessionCookie(e.do("/add?item=mine", ""))
	other := sessionCookie(e.do("/add?item=other", ""))
	for _, header := range []string{
		"__Host-session=bad; __Host-session=" + c.Value,
		"__Host-session=" + c.Value + "; __Host-session=" + other.Value, // the first well-formed one counts
		"other=1; __Host-session=; __Host-session=" + c.Value,
	} {
		req := httptest.NewRequest("GET", "https://example.com/show", nil)
		req.Header.Set("Cookie", header)
		rec := httptest.NewRecorder()
		e.h.ServeHTTP(rec, req)
		if got := rec.Body.String(); got != "|mine" {
			t.Errorf("Cookie: %s: session = %q, want |mine", header, got)
		}
	}
}

// TestHTTPCachingHeaders: every response of a cookie session varies by
// Cookie, and one that sets the cookie is not stored by a shared cache
// unless the handler chose its own caching.
func TestHTTPCachingHeaders(t *testing.T) {
	e := newHTTPEnv(t, HTTPOptions{})
	resp := e.do("/add?item=x", "")
	if !strings.Contains(strings.Join(resp.Header.Values("Vary"), ","), "Cookie") {
		t.Errorf("Vary = %q, want Cookie", resp.Header.Values("Vary"))
	}
	if got := resp.Header.Get("Cache-Control"); got != "no-store" {
		t.Errorf("Cache-Control = %q on a response that sets the cookie, want no-store", got)
	}
	c := sessionCookie(resp)
	for _, path := range []string{"/show", "/none", "/fail"} {
		resp := e.do(path, c.Value)
		if v := resp.Header.Values("Vary"); len(v) != 1 || v[0] != "Cookie" {
			t.Errorf("%s: Vary = %q, want one Cookie", path, v)
		}
		if sessionCookie(resp) == nil && resp.Header.Get("Cache-Control") == "no-store" {
			t.Errorf("%s: no-store on a response that sets no cookie", path)
		}
	}
	// A save failure's 500 keeps Vary.
	for i := range 5 {
		e.do("/add?item="+string(rune('a'+i)), c.Value)
	}
	if resp := e.do("/add?item=six", c.Value); resp.StatusCode != 500 || resp.Header.Get("Vary") != "Cookie" {
		t.Errorf("save failure: %d, Vary %q", resp.StatusCode, resp.Header.Get("Vary"))
	}

	// The handler's own Cache-Control stands; Vary is not repeated.
	st := newCountingStore(t)
	m := newManager[cart](t, st, "cart")
	h := HTTP(m, HTTPOptions{})(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s, _ := sessionFrom(r)
		s.Data.Items = []string{"x"}
		w.Header().Set("Cache-Control", "private, max-age=60")
		w.Header().Add("Vary", "Accept-Encoding, cookie")
	}))
	rec := serve(h, request("/", ""))
	if got := rec.Header().Get("Cache-Control"); got != "private, max-age=60" {
		t.Errorf("Cache-Control = %q, want the handler's", got)
	}
	if sessionCookie(rec.Result()) == nil {
		t.Error("no cookie")
	}
}
