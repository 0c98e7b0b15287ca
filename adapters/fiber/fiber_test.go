package fibersession_test

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
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/gofiber/fiber/v2/middleware/adaptor"
	"github.com/google/go-cmp/cmp"

	session "github.com/typedsession/session"
	fibersession "github.com/typedsession/session/adapters/fiber"
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
//	/fail         N++, returns a plain error (Fiber answers 500)
//	/bad          N++, returns fiber.NewError(400)
//	/down         N++, answers 503 itself
//	/after        answers "written", then N++: saved (nothing was sent yet)
//	/stream       N++, then a streamed body; the stream finds no session
//	/login?user=u sets User, Renew
//	/logout       Destroy
func newApp(mw fiber.Handler) *fiber.App {
	app := fiber.New()
	app.Use(mw)
	with := func(h func(c *fiber.Ctx, s *session.Session[visits]) error) fiber.Handler {
		return func(c *fiber.Ctx) error {
			s, err := fibersession.From[visits](c)
			if err != nil {
				return err
			}
			return h(c, s)
		}
	}
	app.Get("/inc", with(func(c *fiber.Ctx, s *session.Session[visits]) error {
		s.Data.N++
		return c.SendString(strconv.Itoa(s.Data.N))
	}))
	app.Get("/show", with(func(c *fiber.Ctx, s *session.Session[visits]) error {
		return c.SendString(fmt.Sprintf("%s|%d", s.Data.User, s.Data.N))
	}))
	app.Get("/none", func(c *fiber.Ctx) error { return c.SendString("ok") })
	app.Get("/fail", with(func(c *fiber.Ctx, s *session.Session[visits]) error {
		s.Data.N++
		return errors.New("boom")
	}))
	app.Get("/bad", with(func(c *fiber.Ctx, s *session.Session[visits]) error {
		s.Data.N++
		return fiber.NewError(http.StatusBadRequest, "bad input")
	}))
	app.Get("/down", with(func(c *fiber.Ctx, s *session.Session[visits]) error {
		s.Data.N++
		return c.Status(http.StatusServiceUnavailable).SendString("down")
	}))
	app.Get("/after", with(func(c *fiber.Ctx, s *session.Session[visits]) error {
		err := c.SendString("written")
		s.Data.N++
		return err
	}))
	app.Get("/stream", with(func(c *fiber.Ctx, s *session.Session[visits]) error {
		s.Data.N++
		ctx := c.UserContext()
		return c.SendStream(&lateReader{read: func() string {
			if _, err := session.From[visits](ctx); err != nil {
				return "no session in the stream"
			}
			return "session in the stream"
		}})
	}))
	app.Get("/login", with(func(c *fiber.Ctx, s *session.Session[visits]) error {
		s.Data.User = c.Query("user")
		if err := fibersession.Renew[visits](c); err != nil {
			return err
		}
		return c.SendString("ok")
	}))
	app.Get("/logout", func(c *fiber.Ctx) error {
		if err := fibersession.Destroy[visits](c); err != nil {
			return err
		}
		return c.SendString("bye")
	})
	return app
}

// lateReader produces its content when the body is read: after the
// handler returned.
type lateReader struct {
	read func() string
	r    io.Reader
}

func (l *lateReader) Read(p []byte) (int, error) {
	if l.r == nil {
		l.r = strings.NewReader(l.read())
	}
	return l.r.Read(p)
}

// do serves one GET of path through app.Test, with the session cookie when
// c is not nil.
func do(t testing.TB, app *fiber.App, path string, c *http.Cookie) *http.Response {
	t.Helper()
	req := httptest.NewRequest(http.MethodGet, path, nil)
	if c != nil {
		req.AddCookie(c)
	}
	res, err := app.Test(req, -1)
	if err != nil {
		t.Fatal(err)
	}
	return res
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
func start(t testing.TB, h *fiber.App) *http.Cookie {
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
	app := newApp(fibersession.Middleware(m, middleware.HTTPOptions{}))

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
	app := newApp(fibersession.Middleware(m, middleware.HTTPOptions{}))
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
// above, saves nothing; the status Fiber's error handler chose goes out.
func TestErrorDiscards(t *testing.T) {
	for _, buffered := range []bool{false, true} {
		for _, tc := range []struct {
			path string
			code int
		}{
			{"/fail", http.StatusInternalServerError},
			{"/bad", http.StatusBadRequest},
			{"/down", http.StatusServiceUnavailable},
		} {
			t.Run(fmt.Sprintf("%s/buffered=%v", tc.path[1:], buffered), func(t *testing.T) {
				m, st := newManager(t)
				app := newApp(fibersession.Middleware(m, middleware.HTTPOptions{Buffered: buffered}))

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

func TestRenewDestroy(t *testing.T) {
	m, st := newManager(t)
	app := newApp(fibersession.Middleware(m, middleware.HTTPOptions{}))
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

// TestConcurrent: concurrent updates of one session through one middleware
// run one after the other, and none is lost; through two middleware values
// (two processes, say) compare-and-swap refuses the losers with a 500, and
// every update that was answered 200 is in the store.
func TestConcurrent(t *testing.T) {
	const n = 64
	t.Run("one middleware", func(t *testing.T) {
		m, _ := newManager(t)
		app := newApp(fibersession.Middleware(m, middleware.HTTPOptions{}))
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
		apps := []*fiber.App{
			newApp(fibersession.Middleware(m, middleware.HTTPOptions{})),
			newApp(fibersession.Middleware(m, middleware.HTTPOptions{})),
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

// TestAdaptor shows why the adapter exists: Fiber's adaptor for net/http
// middleware runs middleware.HTTP to its end (its commit included) before
// the handler, which then finds no session.
func TestAdaptor(t *testing.T) {
	m, st := newManager(t)
	app := newApp(adaptor.HTTPMiddleware(middleware.HTTP(m, middleware.HTTPOptions{})))
	res := do(t, app, "/inc", nil)
	if res.StatusCode == http.StatusOK || sessionCookie(res) != nil || st.Writes() != 0 {
		t.Fatalf("adaptor: %d, cookie %v, %d writes; want a failed handler (Fiber changed? update the package doc)", res.StatusCode, sessionCookie(res), st.Writes())
	}
}

// TestAfterBody: fasthttp sends nothing before the handler returns, so a
// change made after the body was written is saved.
func TestAfterBody(t *testing.T) {
	m, _ := newManager(t)
	app := newApp(fibersession.Middleware(m, middleware.HTTPOptions{}))
	c := start(t, app)
	expect(t, do(t, app, "/after", c), http.StatusOK, "written")
	expect(t, do(t, app, "/show", c), http.StatusOK, "|2")
}

// TestStream: a streamed body is produced after the commit: the change
// made before returning is saved, the stream finds no session.
func TestStream(t *testing.T) {
	m, _ := newManager(t)
	app := newApp(fibersession.Middleware(m, middleware.HTTPOptions{}))
	c := start(t, app)
	expect(t, do(t, app, "/stream", c), http.StatusOK, "no session in the stream")
	expect(t, do(t, app, "/show", c), http.StatusOK, "|2")
}

// TestLoadError: a session that cannot be loaded answers 500, the handler
// does not run, and the stored value is left alone.
func TestLoadError(t *testing.T) {
	m, st := newManager(t)
	var ran atomic.Bool
	app := fiber.New()
	app.Use(fibersession.Middleware(m, middleware.HTTPOptions{}))
	app.Get("/", func(c *fiber.Ctx) error { ran.Store(true); return c.SendString("ran") })
	tok := strings.Repeat("A", 43)
	sum := sha256.Sum256([]byte(tok))
	key := namespace + ":" + hex.EncodeToString(sum[:])
	if err := st.Set(context.Background(), key, []byte("not json"), 0); err != nil {
		t.Fatal(err)
	}
	res := do(t, app, "/", &http.Cookie{Name: "__Host-session", Value: tok})
	expect(t, res, http.StatusInternalServerError, "Internal Server Error\n")
	if ran.Load() {
		t.Error("the handler ran after a load error")
	}
	if v, _ := st.Get(context.Background(), key); string(v) != "not json" {
		t.Errorf("stored value = %q, want it left alone", v)
	}
}

// failingSets fails every Set and CompareAndSwap, as a store that is down
// for writes.
type failingSets struct{ *memstore.Store }

var errWrite = errors.New("writes are down")

func (failingSets) Set(context.Context, string, []byte, time.Duration) error { return errWrite }
func (failingSets) CompareAndSwap(context.Context, string, []byte, []byte, time.Duration) (bool, error) {
	return false, errWrite
}

// TestSaveError: a failed save turns the whole response into a 500 (the
// handler's headers and body dropped, Vary kept) and reaches OnError.
func TestSaveError(t *testing.T) {
	ms, err := memstore.New(memstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer ms.Close()
	m, err := session.New(session.Config[visits]{Store: failingSets{ms}, Namespace: namespace})
	if err != nil {
		t.Fatal(err)
	}
	var reported atomic.Int64
	app := newApp(fibersession.Middleware(m, middleware.HTTPOptions{Options: middleware.Options{
		OnError: func(_ context.Context, op, _ string, err error) {
			if op == "save" && errors.Is(err, errWrite) {
				reported.Add(1)
			}
		},
	}}))
	res := do(t, app, "/inc", nil)
	expect(t, res, http.StatusInternalServerError, "Internal Server Error\n")
	if c := sessionCookie(res); c != nil {
		t.Errorf("cookie %v on a failed save", c)
	}
	if !contains(res.Header.Values("Vary"), "Cookie") {
		t.Errorf("Vary = %q, want Cookie kept", res.Header.Values("Vary"))
	}
	if reported.Load() != 1 {
		t.Errorf("OnError saw %d save errors, want 1", reported.Load())
	}
}

// TestCookieJar drives the app like a browser: a cookie jar on an https
// URL (the cookie is Secure), through app.Test.
func TestCookieJar(t *testing.T) {
	m, _ := newManager(t)
	app := newApp(fibersession.Middleware(m, middleware.HTTPOptions{}))
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	base, _ := url.Parse("https://shop.example/")
	get := func(path, want string) {
		t.Helper()
		req := httptest.NewRequest(http.MethodGet, "https://shop.example"+path, nil)
		for _, c := range jar.Cookies(base) {
			req.AddCookie(c)
		}
		res, err := app.Test(req, -1)
		if err != nil {
			t.Fatal(err)
		}
		jar.SetCookies(base, res.Cookies())
		expect(t, res, http.StatusOK, want)
	}
	get("/inc", "1")
	get("/inc", "2")
	get("/login?user=bob", "ok")
	get("/inc", "3")
	get("/show", "bob|3")
	get("/logout", "bye")
	if cs := jar.Cookies(base); len(cs) != 0 {
		t.Errorf("jar holds %v after logout", cs)
	}
	get("/show", "|0")
}

// TestKeyFunction: HTTPOptions.Key sees the request's headers, URL and
// context; no cookie is read or written.
func TestKeyFunction(t *testing.T) {
	m, _ := newManager(t)
	app := newApp(fibersession.Middleware(m, middleware.HTTPOptions{
		Key: func(r *http.Request) (string, error) {
			if r.URL.Path == "/none" {
				return "", middleware.ErrNoKey
			}
			return r.Header.Get("X-User"), nil
		},
	}))
	get := func(path, user string) *http.Response {
		t.Helper()
		req := httptest.NewRequest(http.MethodGet, path, nil)
		req.Header.Set("X-User", user)
		res, err := app.Test(req, -1)
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	expect(t, get("/inc", "ann"), http.StatusOK, "1")
	expect(t, get("/inc", "bob"), http.StatusOK, "1")
	res := get("/inc", "ann")
	expect(t, res, http.StatusOK, "2")
	if c := sessionCookie(res); c != nil {
		t.Errorf("a Key session set cookie %v", c)
	}
	expect(t, get("/none", "ann"), http.StatusOK, "ok")
}
