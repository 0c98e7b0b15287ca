package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	session "github.com/typedsession/session"
	"github.com/typedsession/session/middleware"
	"github.com/typedsession/session/store/memstore"
)

// browser is a client with its own cookie jar, talking to the app over TLS
// (the session cookie is Secure).
type browser struct {
	t   *testing.T
	c   *http.Client
	url string
}

func newServer(t *testing.T) *httptest.Server {
	t.Helper()
	st, err := memstore.New(memstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	m, err := session.New(session.Config[Prefs]{Store: st, Namespace: "prefs", TTL: time.Hour, Initial: defaults})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewTLSServer(newApp(m, middleware.HTTPOptions{
		CookieName: "prefs",
		Options: middleware.Options{OnError: func(_ context.Context, op, key string, err error) {
			t.Errorf("session %s %s: %v", op, key, err)
		}},
	}))
	t.Cleanup(srv.Close)
	return srv
}

func newBrowser(t *testing.T, srv *httptest.Server) *browser {
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	c := srv.Client()
	c.Jar = jar
	return &browser{t: t, c: c, url: srv.URL}
}

func (b *browser) do(req *http.Request) (int, string) {
	b.t.Helper()
	resp, err := b.c.Do(req)
	if err != nil {
		b.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		b.t.Fatal(err)
	}
	return resp.StatusCode, string(body)
}

func (b *browser) get(path string) (int, string) {
	req, _ := http.NewRequest("GET", b.url+path, nil)
	return b.do(req)
}

func (b *browser) postForm(theme, lang, perPage string) (int, string) {
	form := url.Values{"theme": {theme}, "language": {lang}, "per_page": {perPage}}
	req, _ := http.NewRequest("POST", b.url+"/prefs", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return b.do(req)
}

func (b *browser) putJSON(body string) (int, string) {
	req, _ := http.NewRequest("PUT", b.url+"/api/prefs", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	return b.do(req)
}

func (b *browser) prefs() Prefs {
	b.t.Helper()
	code, body := b.get("/api/prefs")
	if code != 200 {
		b.t.Fatalf("GET /api/prefs: %d %s", code, body)
	}
	var p Prefs
	if err := json.Unmarshal([]byte(body), &p); err != nil {
		b.t.Fatalf("GET /api/prefs: %v in %q", err, body)
	}
	return p
}

func (b *browser) cookies() []*http.Cookie {
	u, _ := url.Parse(b.url)
	return b.c.Jar.Cookies(u)
}

func TestPreferencesForm(t *testing.T) {
	srv := newServer(t)
	b := newBrowser(t, srv)

	code, body := b.get("/")
	if code != 200 || !strings.Contains(body, `<option value="light" selected>`) || !strings.Contains(body, `value="20"`) {
		t.Fatalf("GET /: %d, want the form with the defaults:\n%s", code, body)
	}
	if len(b.cookies()) != 0 {
		t.Errorf("cookies %v after only reading defaults, want none", b.cookies())
	}

	// A valid form: 303 to /, which the client follows.
	code, body = b.postForm("dark", "de", "50")
	if code != 200 || !strings.Contains(body, `<option value="dark" selected>`) || !strings.Contains(body, `<html lang="de">`) || !strings.Contains(body, `value="50"`) {
		t.Fatalf("after POST: %d\n%s", code, body)
	}
	if len(b.cookies()) != 1 || b.cookies()[0].Name != "prefs" {
		t.Errorf("cookies = %v, want one named prefs", b.cookies())
	}
	want := Prefs{Theme: "dark", Language: "de", PerPage: 50}
	if got := b.prefs(); got != want {
		t.Errorf("prefs = %+v, want %+v", got, want)
	}

	// Invalid values are refused with the validator's message and change
	// nothing.
	cases := []struct {
		name, theme, lang, perPage, msg string
	}{
		{"theme", "pink", "fr", "10", "'Theme' failed on the 'oneof' tag"},
		{"language", "light", "xx", "10", "'Language' failed on the 'oneof' tag"},
		{"per page too big", "light", "fr", "500", "'PerPage' failed on the 'max' tag"},
		{"per page too small", "light", "fr", "1", "'PerPage' failed on the 'min' tag"},
		{"per page not a number", "light", "fr", "ten", "not a number"},
		{"html in value", "<script>", "fr", "10", "'Theme' failed on the 'oneof' tag"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			code, body := b.postForm(tc.theme, tc.lang, tc.perPage)
			if code != http.StatusBadRequest {
				t.Errorf("status = %d, want 400", code)
			}
			if !strings.Contains(body, templateEscape(tc.msg)) {
				t.Errorf("body lacks %q:\n%s", tc.msg, body)
			}
			if strings.Contains(body, "<script>") {
				t.Error("the value was not escaped")
			}
			if got := b.prefs(); got != want {
				t.Errorf("prefs = %+v after a refused form, want %+v unchanged", got, want)
			}
		})
	}

	// Another visitor has its own preferences.
	if got := newBrowser(t, srv).prefs(); got != defaults() {
		t.Errorf("a second visitor sees %+v, want the defaults", got)
	}
}

// templateEscape is how html/template writes the apostrophes of msg.
func templateEscape(msg string) string { return strings.ReplaceAll(msg, "'", "&#39;") }

func TestPreferencesJSON(t *testing.T) {
	srv := newServer(t)
	b := newBrowser(t, srv)
	if got := b.prefs(); got != defaults() {
		t.Fatalf("prefs = %+v, want defaults", got)
	}
	code, body := b.putJSON(`{"theme":"dark","per_page":100}`)
	if code != 200 {
		t.Fatalf("PUT: %d %s", code, body)
	}
	want := Prefs{Theme: "dark", Language: "en", PerPage: 100}
	if got := b.prefs(); got != want {
		t.Errorf("prefs = %+v, want %+v (fields left out keep their value)", got, want)
	}
	for _, bad := range []struct{ body, msg string }{
		{`{"language":"es"}`, "'Language' failed on the 'oneof' tag"},
		{`{"per_page":101}`, "'PerPage' failed on the 'max' tag"},
		{`{"theme":"dark","per_page":"7"}`, "bad JSON"},
		{`{"colour":"red"}`, "unknown field"},
		{`not json`, "bad JSON"},
	} {
		code, body := b.putJSON(bad.body)
		if code != http.StatusBadRequest || !strings.Contains(body, bad.msg) {
			t.Errorf("PUT %s: %d %s, want 400 with %q", bad.body, code, body, bad.msg)
		}
		if got := b.prefs(); got != want {
			t.Errorf("after PUT %s: prefs = %+v, want %+v unchanged", bad.body, got, want)
		}
	}
	// The form shows what the JSON set.
	if _, body := b.get("/"); !strings.Contains(body, `<option value="dark" selected>`) {
		t.Errorf("the form does not show the JSON change:\n%s", body)
	}
}
