package echosession_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/labstack/echo/v4"
	echomw "github.com/labstack/echo/v4/middleware"

	session "github.com/typedsession/session"
	echosession "github.com/typedsession/session/adapters/echo"
	"github.com/typedsession/session/middleware"
	"github.com/typedsession/session/store/memstore"
	"github.com/typedsession/session/store/storetest"
)

// visits is the test session.
type visits struct {
	N    int    `json:"n"`
	User string `json:"user,omitempty"`
}

const namespace = "visits"

// newManager returns a manager over a fresh memstore wrapped in a call
// counter.
func newManager(t testing.TB) (*session.Manager[visits], *storetest.Counter) {
	t.Helper()
	ms, err := memstore.New(memstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ms.Close() })
	st := storetest.NewCounter(ms)
	m, err := session.New(session.Config[visits]{Store: st, Namespace: namespace})
	if err != nil {
		t.Fatal(err)
	}
	return m, st
}

// newApp serves, under the session middleware mw:
//
//	/inc          N++, answers N
//	/show         answers "user|N"
//	/none         does not touch the session
//	/fail         N++, returns a plain error (Echo answers 500)
//	/bad          N++, returns echo.NewHTTPError(400)
//	/down         N++, answers 503 itself
//	/panic        N++, panics (echo's Recover middleware answers 500)
//	/late         answers 200, then N++ and returns an error (too late to discard)
//	/login?user=u sets User, Renew
//	/logout       Destroy
func newApp(mw echo.MiddlewareFunc) *echo.Echo {
	e := echo.New()
	e.Use(echomw.Recover(), mw)
	get := func(c echo.Context) (*session.Session[visits], error) { return echosession.From[visits](c) }
	e.GET("/inc", func(c echo.Context) error {
		s, err := get(c)
		if err != nil {
			return err
		}
		s.Data.N++
		return c.String(http.StatusOK, strconv.Itoa(s.Data.N))
	})
	e.GET("/show", func(c echo.Context) error {
		s, err := get(c)
		if err != nil {
			return err
		}
		return c.String(http.StatusOK, fmt.Sprintf("%s|%d", s.Data.User, s.Data.N))
	})
	e.GET("/none", func(c echo.Context) error { return c.String(http.StatusOK, "ok") })
	e.GET("/fail", func(c echo.Context) error {
		s, err := get(c)
		if err != nil {
			return err
		}
		s.Data.N++
		return errors.New("boom")
	})
	e.GET("/bad", func(c echo.Context) error {
		s, err := get(c)
		if err != nil {
			return err
		}
		s.Data.N++
		return echo.NewHTTPError(http.StatusBadRequest, "bad input")
	})
	e.GET("/down", func(c echo.Context) error {
		s, err := get(c)
		if err != nil {
			return err
		}
		s.Data.N++
		return c.String(http.StatusServiceUnavailable, "down")
	})
	e.GET("/panic", func(c echo.Context) error {
		s, err := get(c)
		if err != nil {
			return err
		}
		s.Data.N++
		panic("handler bug")
	})
	e.GET("/late", func(c echo.Context) error {
		s, err := get(c)
		if err != nil {
			return err
		}
		s.Data.N++
		if err := c.String(http.StatusOK, "written"); err != nil {
			return err
		}
		return errors.New("after the response")
	})
	e.GET("/login", func(c echo.Context) error {
		s, err := get(c)
		if err != nil {
			return err
		}
		s.Data.User = c.QueryParam("user")
		if err := echosession.Renew[visits](c); err != nil {
			return err
		}
		return c.String(http.StatusOK, "ok")
	})
	e.GET("/logout", func(c echo.Context) error {
		if err := echosession.Destroy[visits](c); err != nil {
			return err
		}
		return c.String(http.StatusOK, "bye")
	})
	return e
}

// do serves one GET of path, with the session cookie when c is not nil.
func do(t testing.TB, h http.Handler, path string, c *http.Cookie) *http.Response {
	t.Helper()
	req := httptest.NewRequest(http.MethodGet, path, nil)
	if c != nil {
		req.AddCookie(c)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec.Result()
}

func body(t testing.TB, res *http.Response) string {
	t.Helper()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// sessionCookie returns the response's session cookie, or nil.
func sessionCookie(res *http.Response) *http.Cookie {
	for _, c := range res.Cookies() {
		if c.Name == "__Host-session" {
			return c
		}
	}
	return nil
}

// expect checks the status and the body of res.
func expect(t testing.TB, res *http.Response, code int, want string) {
	t.Helper()
	got := body(t, res)
	if res.StatusCode != code || (want != "" && got != want) {
		t.Fatalf("got %d %q, want %d %q", res.StatusCode, got, code, want)
	}
}

// start makes a session with N=1 and returns its cookie.
func start(t testing.TB, h http.Handler) *http.Cookie {
	t.Helper()
	res := do(t, h, "/inc", nil)
	expect(t, res, http.StatusOK, "1")
	c := sessionCookie(res)
	if c == nil {
		t.Fatal("no session cookie on the first save")
	}
	return c
}

func TestNewSession(t *testing.T) {
	m, st := newManager(t)
	app := newApp(echosession.Middleware(m, middleware.HTTPOptions{}))

	res := do(t, app, "/none", nil)
	expect(t, res, http.StatusOK, "ok")
	if c := sessionCookie(res); c != nil || st.Writes() != 0 {
		t.Fatalf("a request that stores nothing got cookie %v and made %d writes", c, st.Writes())
	}

	res = do(t, app, "/inc", nil)
	expect(t, res, http.StatusOK, "1")
	c := sessionCookie(res)
	if c == nil {
		t.Fatal("no session cookie for a stored new session")
	}
	want := http.Cookie{Name: "__Host-session", Value: c.Value, Path: "/", HttpOnly: true, Secure: true, SameSite: http.SameSiteLaxMode}
	got := http.Cookie{Name: c.Name, Value: c.Value, Path: c.Path, HttpOnly: c.HttpOnly, Secure: c.Secure, SameSite: c.SameSite}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("cookie mismatch (-want +got):\n%s", diff)
	}
	if len(c.Value) != 43 {
		t.Errorf("token %q is not 43 characters of base64url", c.Value)
	}
	if got := res.Header.Get("Cache-Control"); got != "no-store" {
		t.Errorf("Cache-Control = %q, want no-store", got)
	}
	if got := res.Header.Values("Vary"); !contains(got, "Cookie") {
		t.Errorf("Vary = %q, want Cookie in it", got)
	}
	// The store key is the token's SHA-256, not the token.
	sum := sha256.Sum256([]byte(c.Value))
	if _, err := st.Get(context.Background(), namespace+":"+hex.EncodeToString(sum[:])); err != nil {
		t.Errorf("stored session under the token's SHA-256: %v", err)
	}
}

func contains(list []string, s string) bool {
	for _, v := range list {
		for f := range strings.SplitSeq(v, ",") {
			if strings.TrimSpace(f) == s {
				return true
			}
		}
	}
	return false
}

func TestChangedAndUnchanged(t *testing.T) {
	m, st := newManager(t)
	app := newApp(echosession.Middleware(m, middleware.HTTPOptions{}))
	c := start(t, app)

	res := do(t, app, "/inc", c)
	expect(t, res, http.StatusOK, "2")
	if got := sessionCookie(res); got != nil {
		t.Errorf("a changed session with an unchanged token set cookie %v again", got)
	}
	if st.Writes() != 2 {
		t.Errorf("writes after two changed updates = %d, want 2", st.Writes())
	}

	before := st.Writes()
	res = do(t, app, "/show", c)
	expect(t, res, http.StatusOK, "|2")
	if st.Writes() != before {
		t.Errorf("an unchanged update wrote %d times", st.Writes()-before)
	}
	if got := sessionCookie(res); got != nil {
		t.Errorf("an unchanged update set cookie %v", got)
	}
}

// TestErrorDiscards: a handler that returns an error, or answers 500 or
// above, saves nothing; the status Echo's error handler chose goes out.
func TestErrorDiscards(t *testing.T) {
	for _, buffered := range []bool{false, true} {
		for _, tc := range []struct {
			path string
			code int
		}{
			{"/fail", http.StatusInternalServerError},
			{"/bad", http.StatusBadRequest},
			{"/down", http.StatusServiceUnavailable},
			{"/panic", http.StatusInternalServerError},
		} {
			t.Run(fmt.Sprintf("%s/buffered=%v", tc.path[1:], buffered), func(t *testing.T) {
				m, st := newManager(t)
				app := newApp(echosession.Middleware(m, middleware.HTTPOptions{Buffered: buffered}))

				// A new visitor: nothing stored, no cookie.
				res := do(t, app, tc.path, nil)
				expect(t, res, tc.code, "")
				if c := sessionCookie(res); c != nil || st.Writes() != 0 {
					t.Fatalf("failed new session: cookie %v, %d writes; want none", c, st.Writes())
				}

				// A stored session keeps its value.
				c := start(t, app)
				res = do(t, app, tc.path, c)
				expect(t, res, tc.code, "")
				if got := sessionCookie(res); got != nil {
					t.Errorf("failed update set cookie %v", got)
				}
				expect(t, do(t, app, "/show", c), http.StatusOK, "|1")
			})
		}
	}
}

// TestWrapMiddleware shows why the adapter exists: the naive
// echo.WrapMiddleware(middleware.HTTP(...)) saves the changes of a
// handler that returned an error, and sets a new session's cookie on the
// error response; with Buffered it sends an empty 200 instead of the
// error. The same requests through Middleware pass TestErrorDiscards.
func TestWrapMiddleware(t *testing.T) {
	t.Run("streaming", func(t *testing.T) {
		m, st := newManager(t)
		app := newApp(echo.WrapMiddleware(middleware.HTTP(m, middleware.HTTPOptions{})))
		res := do(t, app, "/fail", nil)
		expect(t, res, http.StatusInternalServerError, "")
		if sessionCookie(res) == nil || st.Writes() != 1 {
			t.Fatalf("naive: failed new session: cookie %v, %d writes; echo changed, update the package doc", sessionCookie(res), st.Writes())
		}
		c := start(t, app)
		expect(t, do(t, app, "/fail", c), http.StatusInternalServerError, "")
		expect(t, do(t, app, "/show", c), http.StatusOK, "|2") // the failed handler's N++ was saved
	})
	t.Run("buffered", func(t *testing.T) {
		m, _ := newManager(t)
		app := newApp(echo.WrapMiddleware(middleware.HTTP(m, middleware.HTTPOptions{Buffered: true})))
		expect(t, do(t, app, "/bad", nil), http.StatusOK, "") // the 400 is lost
	})
}

// TestCommittedBeforeError: a handler that wrote its response and then
// returned an error has committed; Echo's error handler writes nothing more.
func TestCommittedBeforeError(t *testing.T) {
	m, _ := newManager(t)
	app := newApp(echosession.Middleware(m, middleware.HTTPOptions{}))
	c := start(t, app)
	expect(t, do(t, app, "/late", c), http.StatusOK, "written")
	expect(t, do(t, app, "/show", c), http.StatusOK, "|2")
}

func TestRenewDestroy(t *testing.T) {
	m, st := newManager(t)
	app := newApp(echosession.Middleware(m, middleware.HTTPOptions{}))
	old := start(t, app)

	res := do(t, app, "/login?user=ann", old)
	expect(t, res, http.StatusOK, "ok")
	renewed := sessionCookie(res)
	if renewed == nil || renewed.Value == old.Value {
		t.Fatalf("Renew: cookie %v, want a new token", renewed)
	}
	expect(t, do(t, app, "/show", renewed), http.StatusOK, "ann|1")
	expect(t, do(t, app, "/show", old), http.StatusOK, "|0") // the old token names nothing now

	res = do(t, app, "/logout", renewed)
	expect(t, res, http.StatusOK, "bye")
	gone := sessionCookie(res)
	if gone == nil || gone.MaxAge >= 0 {
		t.Fatalf("Destroy: cookie %v, want one that expires the session cookie", gone)
	}
	expect(t, do(t, app, "/show", renewed), http.StatusOK, "|0")
	n := 0
	st.Unwrap().(*memstore.Store).Scan(context.Background(), "", func(string) error { n++; return nil })
	if n != 0 {
		t.Errorf("%d keys stored after Destroy, want 0", n)
	}
}

// TestLoadError: a session that cannot be loaded answers 500 without
// running the handler, and the stored value is left alone.
func TestLoadError(t *testing.T) {
	m, st := newManager(t)
	var ran atomic.Bool
	e := echo.New()
	e.Use(echosession.Middleware(m, middleware.HTTPOptions{}))
	e.GET("/", func(c echo.Context) error { ran.Store(true); return c.String(http.StatusOK, "ran") })
	tok := strings.Repeat("A", 43)
	sum := sha256.Sum256([]byte(tok))
	key := namespace + ":" + hex.EncodeToString(sum[:])
	if err := st.Set(context.Background(), key, []byte("not json"), 0); err != nil {
		t.Fatal(err)
	}
	res := do(t, e, "/", &http.Cookie{Name: "__Host-session", Value: tok})
	expect(t, res, http.StatusInternalServerError, "")
	if ran.Load() {
		t.Error("the handler ran after a load error")
	}
	if v, _ := st.Get(context.Background(), key); string(v) != "not json" {
		t.Errorf("stored value = %q, want it left alone", v)
	}
}

// TestConcurrent: concurrent updates of one session through one middleware
// run one after the other, and none is lost; through two middleware values
// (two processes, say) compare-and-swap refuses the losers with a 500, and
// every update that was answered 200 is in the store.
func TestConcurrent(t *testing.T) {
	const n = 64
	t.Run("one middleware", func(t *testing.T) {
		m, _ := newManager(t)
		app := newApp(echosession.Middleware(m, middleware.HTTPOptions{}))
		c := start(t, app)
		var wg sync.WaitGroup
		for range n {
			wg.Go(func() {
				if res := do(t, app, "/inc", c); res.StatusCode != http.StatusOK {
					t.Errorf("status %d", res.StatusCode)
				}
			})
		}
		wg.Wait()
		expect(t, do(t, app, "/show", c), http.StatusOK, fmt.Sprintf("|%d", n+1))
	})
	t.Run("two middleware", func(t *testing.T) {
		m, _ := newManager(t)
		apps := []*echo.Echo{
			newApp(echosession.Middleware(m, middleware.HTTPOptions{})),
			newApp(echosession.Middleware(m, middleware.HTTPOptions{})),
		}
		c := start(t, apps[0])
		var wg sync.WaitGroup
		var ok atomic.Int64
		for i := range n {
			wg.Go(func() {
				switch res := do(t, apps[i%2], "/inc", c); res.StatusCode {
				case http.StatusOK:
					ok.Add(1)
				case http.StatusInternalServerError: // a conflict, refused
				default:
					t.Errorf("status %d", res.StatusCode)
				}
			})
		}
		wg.Wait()
		expect(t, do(t, apps[0], "/show", c), http.StatusOK, fmt.Sprintf("|%d", ok.Load()+1))
		t.Logf("%d of %d concurrent updates through two middleware values succeeded", ok.Load(), n)
	})
}

// TestCookieJar drives the app like a browser: over TLS (the cookie is
// Secure), with a cookie jar.
func TestCookieJar(t *testing.T) {
	m, _ := newManager(t)
	srv := httptest.NewTLSServer(newApp(echosession.Middleware(m, middleware.HTTPOptions{})))
	defer srv.Close()
	client := srv.Client()
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	client.Jar = jar
	get := func(path, want string) {
		t.Helper()
		res, err := client.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		expect(t, res, http.StatusOK, want)
	}
	get("/inc", "1")
	get("/inc", "2")
	get("/login?user=bob", "ok")
	get("/inc", "3")
	get("/show", "bob|3")
	get("/logout", "bye")
	u, _ := url.Parse(srv.URL)
	if cs := jar.Cookies(u); len(cs) != 0 {
		t.Errorf("jar holds %v after logout", cs)
	}
	get("/show", "|0")
}
