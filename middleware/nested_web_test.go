package middleware_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	session "github.com/typedsession/session"
	"github.com/typedsession/session/internal/webtest"
	"github.com/typedsession/session/middleware"
)

// TestNestedStricterMiddlewareIsNotIgnored: an HTTP middleware of a
// manager nested inside another of the same manager reuses the outer
// session. When the inner one was made with other options (a site-wide
// middleware, and around /account one with an absolute timeout), those
// options used to be dropped without a word: the inner AbsoluteTimeout
// was never enforced, a session two hours old was served by a route that
// promises one hour. The inner middleware must not serve the request as
// if its options held: it answers 500 and reports why (op "config"); the
// same options nested again (the same value, or one built the same way)
// still reuse the outer session.
func TestNestedStricterMiddlewareIsNotIgnored(t *testing.T) {
	m, err := session.New(session.Config[webtest.Visit]{Store: memStore(t), Namespace: webtest.SessionNS, TTL: webtest.TTL})
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var reported []string
	onError := func(_ context.Context, op, _ string, err error) {
		mu.Lock()
		reported = append(reported, op+": "+err.Error())
		mu.Unlock()
	}
	site := middleware.HTTP(m, middleware.HTTPOptions{Options: middleware.Options{OnError: onError}})
	strict := middleware.HTTP(m, middleware.HTTPOptions{Options: middleware.Options{OnError: onError}, AbsoluteTimeout: time.Hour})
	count := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s, err := session.From[webtest.Visit](r.Context())
		if err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		s.Data.N++
	})
	h := site(strict(count))

	// A session stored two hours ago, through the site-wide middleware.
	rec := httptest.NewRecorder()
	site(count).ServeHTTP(rec, httptest.NewRequest("POST", "https://example.com/", nil))
	var tok string
	for _, c := range rec.Result().Cookies() {
		if c.Name == webtest.CookieName {
			tok = c.Value
		}
	}
	if tok == "" {
		t.Fatal("no session cookie")
	}
	key := webtest.KeyOf(tok)
	if _, err := m.Update(context.Background(), key, func(v *webtest.Visit) error {
		v.Web.Created = v.Web.Created.Add(-2 * time.Hour)
		return nil
	}); err != nil {
		t.Fatal(err)
	}

	req := httptest.NewRequest("POST", "https://example.com/account", nil)
	req.AddCookie(&http.Cookie{Name: webtest.CookieName, Value: tok})
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	s, err := m.Load(context.Background(), key)
	if err != nil {
		t.Fatal(err)
	}
	if rec.Code == http.StatusOK && !s.IsNew() && s.Data.N == 2 {
		t.Fatalf("a session 2 h old was served and saved (N = %d) behind a middleware with AbsoluteTimeout 1 h nested in one without", s.Data.N)
	}
	if rec.Code != http.StatusInternalServerError {
		t.Errorf("status %d, want 500 for middleware of one manager nested with other options", rec.Code)
	}
	mu.Lock()
	got := strings.Join(reported, "\n")
	mu.Unlock()
	if !strings.Contains(got, "config: ") || !strings.Contains(got, "AbsoluteTimeout") {
		t.Errorf("reported %q, want an error of op config naming the option that differs", got)
	}

	// The same options again, nested: the outer session, as before.
	again := middleware.HTTP(m, middleware.HTTPOptions{Options: middleware.Options{OnError: onError}})
	for _, inner := range []func(http.Handler) http.Handler{site, again} {
		rec = httptest.NewRecorder()
		site(inner(count)).ServeHTTP(rec, httptest.NewRequest("POST", "https://example.com/", nil))
		if rec.Code != http.StatusOK || len(rec.Result().Cookies()) != 1 {
			t.Errorf("the same options nested: %d, cookies %v; want 200 and one cookie", rec.Code, rec.Result().Cookies())
		}
	}
}
