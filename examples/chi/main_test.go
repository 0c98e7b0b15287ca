package main

import (
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	session "github.com/typedsession/session"
	"github.com/typedsession/session/middleware"
	"github.com/typedsession/session/store/memstore"
)

// browser is an HTTPS client with a cookie jar, as a browser is.
type browser struct {
	t      *testing.T
	srv    *httptest.Server
	client *http.Client
}

func newBrowser(t *testing.T, h http.Handler) *browser {
	srv := httptest.NewTLSServer(h)
	t.Cleanup(srv.Close)
	client := srv.Client()
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	client.Jar = jar
	return &browser{t: t, srv: srv, client: client}
}

// do sends a request and checks the status and the body.
func (b *browser) do(method, path string, code int, want string) {
	b.t.Helper()
	req, err := http.NewRequest(method, b.srv.URL+path, nil)
	if err != nil {
		b.t.Fatal(err)
	}
	res, err := b.client.Do(req)
	if err != nil {
		b.t.Fatal(err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	if res.StatusCode != code || strings.TrimSpace(string(body)) != want {
		b.t.Fatalf("%s %s: got %d %q, want %d %q", method, path, res.StatusCode, body, code, want)
	}
}

func (b *browser) cookies() []*http.Cookie {
	u, _ := url.Parse(b.srv.URL)
	return b.client.Jar.Cookies(u)
}

func newManager(t *testing.T, st *memstore.Store) *session.Manager[Visit] {
	t.Helper()
	m, err := session.New(session.Config[Visit]{Store: st, Namespace: "visit"})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func newStore(t *testing.T, opts memstore.Options) *memstore.Store {
	t.Helper()
	st, err := memstore.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func TestBrowserFlow(t *testing.T) {
	st := newStore(t, memstore.Options{})
	defer st.Close()
	b := newBrowser(t, newApp(newManager(t, st), middleware.HTTPOptions{}))

	b.do("GET", "/", 200, "hello guest, visit 1")
	b.do("GET", "/", 200, "hello guest, visit 2")
	b.do("POST", "/notes?text=hi", 401, "log in first")
	before := b.cookies()
	b.do("POST", "/login?user=ann", 200, "logged in as ann")
	after := b.cookies()
	if len(before) != 1 || len(after) != 1 || before[0].Value == after[0].Value {
		t.Fatalf("login did not renew the cookie: %v -> %v", before, after)
	}
	b.do("POST", "/notes?text=hello", 200, "1 notes")
	b.do("POST", "/notes?text=", 422, "a note is 1 to 200 bytes, 20 notes at most")
	b.do("POST", "/notes?text=world", 200, "2 notes")
	b.do("GET", "/notes", 200, "hello\nworld")
	b.do("GET", "/", 200, "hello ann, visit 3")
	b.do("POST", "/logout", 200, "logged out")
	if cs := b.cookies(); len(cs) != 0 {
		t.Fatalf("jar holds %v after logout", cs)
	}
	b.do("GET", "/", 200, "hello guest, visit 1")
}

// TestConcurrentVisits: requests of one visitor at once lose no visit.
func TestConcurrentVisits(t *testing.T) {
	st := newStore(t, memstore.Options{})
	defer st.Close()
	b := newBrowser(t, newApp(newManager(t, st), middleware.HTTPOptions{}))
	b.do("GET", "/", 200, "hello guest, visit 1")
	var wg sync.WaitGroup
	for range 40 {
		wg.Go(func() {
			res, err := b.client.Get(b.srv.URL + "/")
			if err != nil {
				t.Error(err)
				return
			}
			res.Body.Close()
			if res.StatusCode != 200 {
				t.Errorf("status %d", res.StatusCode)
			}
		})
	}
	wg.Wait()
	b.do("GET", "/", 200, "hello guest, visit 42")
}

// TestRestart: with a snapshot file, a logged-in visitor is still logged
// in after the server restarts.
func TestRestart(t *testing.T) {
	opts := memstore.Options{BackupPath: filepath.Join(t.TempDir(), "sessions.snap")}
	st := newStore(t, opts)
	var app atomic.Pointer[http.Handler] // the running server's app; replaced at the restart
	h := newApp(newManager(t, st), middleware.HTTPOptions{})
	app.Store(&h)
	b := newBrowser(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { (*app.Load()).ServeHTTP(w, r) }))
	b.do("POST", "/login?user=bob", 200, "logged in as bob")
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}

	st = newStore(t, opts)
	defer st.Close()
	h = newApp(newManager(t, st), middleware.HTTPOptions{})
	app.Store(&h)
	b.do("GET", "/", 200, "hello bob, visit 1")
}
