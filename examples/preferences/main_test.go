package main

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"testing"

	"github.com/typedsession/session/store"
	"github.com/typedsession/session/store/filestore"
)

// browser is a client with its own cookie jar, talking to the app over TLS
// (the session cookie is Secure).
type browser struct {
	t   *testing.T
	c   *http.Client
	url string
}

// newServer starts the app over TLS with its sessions in a new state
// folder.
func newServer(t *testing.T) *httptest.Server {
	t.Helper()
	srv, _ := newServerIn(t, t.TempDir())
	return srv
}

// newServerIn starts the app over TLS with its sessions in dir, as main
// opens them; the server and the store close at cleanup.
func newServerIn(t *testing.T, dir string) (*httptest.Server, *filestore.Store) {
	t.Helper()
	st, m, devices, err := openSessions(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := st.Close(); err != nil && !errors.Is(err, store.ErrClosed) {
			t.Errorf("store Close: %v", err)
		}
	})
	opts := options(devices)
	opts.OnError = func(_ context.Context, op, key string, err error) {
		t.Errorf("session %s %s: %v", op, key, err)
	}
	srv := httptest.NewTLSServer(newApp(m, opts))
	t.Cleanup(srv.Close)
	return srv, st
}

func newBrowser(t *testing.T, srv *httptest.Server) *browser {
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	c := *srv.Client() // a copy: srv.Client returns one client for all callers
	c.Jar = jar
	return &browser{t: t, c: &c, url: srv.URL}
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
	return b.post("/prefs", url.Values{"theme": {theme}, "language": {lang}, "per_page": {perPage}})
}

// post sends a form as a browser does from a page of the app itself:
// with Sec-Fetch-Site: same-origin and the app's Origin.
func (b *browser) post(path string, form url.Values) (int, string) {
	req, _ := http.NewRequest("POST", b.url+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Sec-Fetch-Site", "same-origin")
	req.Header.Set("Origin", b.url)
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

	// A valid form: 303 to /, which the client follows, with the notice
	// "Saved." (a flash: shown once).
	code, body = b.postForm("dark", "de", "50")
	if code != 200 || !strings.Contains(body, `<option value="dark" selected>`) || !strings.Contains(body, `<html lang="de" class="theme-dark">`) ||
		!strings.Contains(body, `value="50"`) || !strings.Contains(body, `id="saved"`) {
		t.Fatalf("after POST: %d\n%s", code, body)
	}
	if len(b.cookies()) != 1 || b.cookies()[0].Name != "__Host-prefs" {
		t.Errorf("cookies = %v, want one named __Host-prefs", b.cookies())
	}
	if _, body := b.get("/"); strings.Contains(body, `id="saved"`) {
		t.Error("the notice Saved. was shown twice")
	}
	want := Prefs{Theme: "dark", Language: "de", PerPage: 50}
	if got := b.prefs(); got != want {
		t.Errorf("prefs = %+v, want %+v", got, want)
	}

	// Invalid values are refused with a message in plain words next to
	// each refused field, the value sent is shown back in its field, and
	// nothing changes.
	cases := []struct {
		name, theme, lang, perPage string
		msgs                       map[string]string // field -> message
		echo                       []string          // in the page
	}{
		{"theme", "pink", "fr", "10",
			map[string]string{"theme": "Choose light or dark; “pink” is not one of them."},
			[]string{`<option value="pink" selected>pink (not available)</option>`, `<option value="fr" selected>`, `value="10"`}},
		{"language", "light", "xx", "10",
			map[string]string{"language": "Choose English, Deutsch or Français; “xx” is not one of them."},
			[]string{`<option value="xx" selected>`}},
		{"per page too big", "light", "fr", "500",
			map[string]string{"per_page": "Enter a whole number from 5 to 100; 500 is too many."},
			[]string{`value="500"`}},
		{"per page too small", "light", "fr", "1",
			map[string]string{"per_page": "Enter a whole number from 5 to 100; 1 is too few."},
			[]string{`value="1"`}},
		{"per page not a number", "light", "fr", "ten",
			map[string]string{"per_page": "Enter a whole number from 5 to 100; “ten” is not one."},
			[]string{`value="ten"`}},
		{"two fields", "pink", "xx", "7",
			map[string]string{"theme": "“pink” is not one of them", "language": "“xx” is not one of them"},
			[]string{`value="7"`, "correct the fields marked below"}},
		{"html in value", "<script>", "fr", "10",
			map[string]string{"theme": "“&lt;script&gt;” is not one of them."},
			[]string{`<option value="&lt;script&gt;" selected>`}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			code, body := b.postForm(tc.theme, tc.lang, tc.perPage)
			if code != http.StatusBadRequest {
				t.Errorf("status = %d, want 400", code)
			}
			for field, msg := range tc.msgs {
				// The message sits in the field's own paragraph.
				if !strings.Contains(body, `<p class="msg" id="`+field+`-msg">`) || !strings.Contains(body, msg) {
					t.Errorf("no message %q at field %s:\n%s", msg, field, body)
				}
			}
			for _, field := range []string{"theme", "language", "per_page"} {
				if _, refused := tc.msgs[field]; !refused && strings.Contains(body, `id="`+field+`-msg"`) {
					t.Errorf("a message at field %s, which was fine", field)
				}
			}
			for _, e := range tc.echo {
				if !strings.Contains(body, e) {
					t.Errorf("page lacks %s", e)
				}
			}
			if strings.Contains(body, "<script>") || strings.Contains(body, "failed on the") {
				t.Error("the value was not escaped, or the validator's developer text is shown")
			}
			if got := b.prefs(); got != want {
				t.Errorf("prefs = %+v after a refused form, want %+v unchanged", got, want)
			}
		})
	}

	// Another visitor has its own preferences.
	if got := newBrowser(t, srv).prefs(); got != defaults().Prefs {
		t.Errorf("a second visitor sees %+v, want the defaults", got)
	}
}

// TestDarkTheme: choosing dark changes the page: the class on <html> that
// the style sheet's dark variables hang on.
func TestDarkTheme(t *testing.T) {
	b := newBrowser(t, newServer(t))
	_, body := b.get("/")
	if !strings.Contains(body, `class="theme-light"`) || !strings.Contains(body, ":root.theme-dark {") {
		t.Fatalf("the light page lacks the theme class or the dark rules:\n%s", body)
	}
	b.postForm("dark", "en", "20")
	if _, body := b.get("/"); !strings.Contains(body, `<html lang="en" class="theme-dark">`) {
		t.Fatalf("after choosing dark the page is not dark:\n%s", body)
	}
}

func TestPreferencesJSON(t *testing.T) {
	srv := newServer(t)
	b := newBrowser(t, srv)
	if got := b.prefs(); got != defaults().Prefs {
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
		{`{"language":"es"}`, `"language":"Choose English, Deutsch or Français; “es” is not one of them."`},
		{`{"per_page":101}`, `"per_page":"Enter a whole number from 5 to 100; 101 is too many."`},
		{`{"theme":"dark","per_page":"7"}`, "bad JSON"},
		{`{"colour":"red"}`, "unknown field"},
		{`{"user":"mallory"}`, "unknown field"},
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

// TestLoginLogout: signing in gives a new token (the old one is worth
// nothing) and keeps the preferences; signing out deletes the session.
func TestLoginLogout(t *testing.T) {
	srv := newServer(t)
	b := newBrowser(t, srv)
	b.postForm("dark", "fr", "30")
	before := b.cookies()
	if len(before) != 1 {
		t.Fatalf("cookies = %v, want one", before)
	}

	for _, bad := range []struct{ name, msg string }{
		{"", "Enter a name to sign in."},
		{"   ", "Enter a name to sign in."},
		{strings.Repeat("x", 41), "Use at most 40 characters; “xxxxxxxxxxxxxxxxxxxxxxxxxxxxx…” has 41."},
		{"a\x07b", "Use letters, digits, spaces and punctuation only."},
	} {
		code, body := b.post("/login", url.Values{"name": {bad.name}})
		if code != http.StatusBadRequest || !strings.Contains(body, `<p class="msg" id="name-msg">`+bad.msg) {
			t.Errorf("sign in as %q: %d, want 400 with %q:\n%s", bad.name, code, bad.msg, body)
		}
	}

	code, body := b.post("/login", url.Values{"name": {"Ann"}})
	if code != 200 || !strings.Contains(body, `Signed in as <strong>Ann</strong>`) || !strings.Contains(body, "Bienvenue, Ann") {
		t.Fatalf("after sign-in: %d\n%s", code, body)
	}
	after := b.cookies()
	if len(after) != 1 || after[0].Value == before[0].Value {
		t.Fatalf("cookies %v after sign-in, want one with a new token (was %v)", after, before)
	}
	if got := b.prefs(); got != (Prefs{Theme: "dark", Language: "fr", PerPage: 30}) {
		t.Errorf("prefs after sign-in = %+v, want them kept", got)
	}
	// The token from before the sign-in is worth nothing now.
	old := newBrowser(t, srv)
	u, _ := url.Parse(srv.URL)
	old.c.Jar.SetCookies(u, before)
	if _, body := old.get("/"); strings.Contains(body, "Ann") {
		t.Errorf("the token from before the sign-in still opens Ann's session")
	}

	code, body = b.post("/logout", nil)
	if code != 200 || strings.Contains(body, "Ann") || !strings.Contains(body, `id="login"`) {
		t.Fatalf("after sign-out: %d\n%s", code, body)
	}
	if len(b.cookies()) != 0 {
		t.Errorf("cookies after sign-out = %v, want none", b.cookies())
	}
	if got := b.prefs(); got != defaults().Prefs {
		t.Errorf("prefs after sign-out = %+v, want the defaults", got)
	}
}

// TestCrossOrigin: a form post or a PUT that a browser sends on behalf of
// another site is refused with 403 before the session is touched;
// requests from the app's own pages, and from clients that send neither
// Sec-Fetch-Site nor Origin (curl), pass.
func TestCrossOrigin(t *testing.T) {
	srv := newServer(t)
	b := newBrowser(t, srv)
	b.postForm("dark", "de", "50")
	want := b.prefs()
	send := func(method, path, body, ctype string, headers map[string]string) int {
		req, _ := http.NewRequest(method, srv.URL+path, strings.NewReader(body))
		req.Header.Set("Content-Type", ctype)
		for k, v := range headers {
			req.Header.Set(k, v)
		}
		code, _ := b.do(req)
		return code
	}
	form := url.Values{"theme": {"light"}, "language": {"en"}, "per_page": {"5"}}.Encode()
	const formType = "application/x-www-form-urlencoded"
	for _, tc := range []struct {
		name    string
		method  string
		path    string
		body    string
		ctype   string
		headers map[string]string
	}{
		{"form from another site", "POST", "/prefs", form, formType, map[string]string{"Sec-Fetch-Site": "cross-site", "Origin": "https://evil.example"}},
		{"form from a sibling subdomain", "POST", "/prefs", form, formType, map[string]string{"Sec-Fetch-Site": "same-site"}},
		{"old browser, foreign Origin", "POST", "/prefs", form, formType, map[string]string{"Origin": "https://evil.example"}},
		{"sign-in planted by another site", "POST", "/login", "name=mallory", formType, map[string]string{"Sec-Fetch-Site": "cross-site"}},
		{"sign-out forced by another site", "POST", "/logout", "", formType, map[string]string{"Sec-Fetch-Site": "cross-site"}},
		{"JSON from another site", "PUT", "/api/prefs", `{"theme":"light"}`, "application/json", map[string]string{"Sec-Fetch-Site": "cross-site"}},
	} {
		if code := send(tc.method, tc.path, tc.body, tc.ctype, tc.headers); code != http.StatusForbidden {
			t.Errorf("%s: status %d, want 403", tc.name, code)
		}
		if got := b.prefs(); got != want {
			t.Fatalf("%s: prefs = %+v, want %+v unchanged", tc.name, got, want)
		}
	}
	if _, body := b.get("/"); strings.Contains(body, "mallory") {
		t.Error("a cross-site sign-in got through")
	}
	// The app's own page, and curl, pass.
	if code := send("POST", "/prefs", form, formType, map[string]string{"Sec-Fetch-Site": "same-origin", "Origin": srv.URL}); code != http.StatusOK {
		t.Errorf("same-origin form: status %d, want 200 after the redirect", code)
	}
	if code := send("PUT", "/api/prefs", `{"theme":"dark"}`, "application/json", nil); code != http.StatusOK {
		t.Errorf("PUT without browser headers: status %d, want 200", code)
	}
}

// TestSurvivesRestart: the sessions are files in the state folder, so a
// visitor's preferences and sign-in are there after the app restarts.
func TestSurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	srv, st := newServerIn(t, dir)
	b := newBrowser(t, srv)
	b.post("/login", url.Values{"name": {"Ann"}})
	b.postForm("dark", "de", "40")
	u, _ := url.Parse(srv.URL)
	cookies := b.c.Jar.Cookies(u)
	// A restart: the server stops, the store closes.
	srv.Close()
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}

	files, err := filepath.Glob(filepath.Join(dir, "*"))
	if err != nil || len(files) == 0 {
		t.Fatalf("state folder %s holds %v (%v), want the session's file", dir, files, err)
	}

	srv2, _ := newServerIn(t, dir)
	b2 := newBrowser(t, srv2)
	u2, _ := url.Parse(srv2.URL)
	b2.c.Jar.SetCookies(u2, cookies)
	if got := b2.prefs(); got != (Prefs{Theme: "dark", Language: "de", PerPage: 40}) {
		t.Errorf("prefs after restart = %+v, want them kept", got)
	}
	if _, body := b2.get("/"); !strings.Contains(body, "Signed in as <strong>Ann</strong>") {
		t.Errorf("not signed in after restart:\n%s", body)
	}
}

func TestDefaultStateDir(t *testing.T) {
	t.Setenv("XDG_STATE_HOME", "/srv/state")
	if got, want := defaultStateDir(), "/srv/state/typedsession-preferences"; got != want {
		t.Errorf("defaultStateDir() = %q, want %q", got, want)
	}
	t.Setenv("XDG_STATE_HOME", "")
	t.Setenv("HOME", "/home/ann")
	if got, want := defaultStateDir(), "/home/ann/.local/state/typedsession-preferences"; got != want {
		t.Errorf("defaultStateDir() = %q, want %q", got, want)
	}
}

// postNoFollow posts a form as post does, without following a redirect,
// and returns the response (its Set-Cookie headers).
func (b *browser) postNoFollow(path string, form url.Values) *http.Response {
	b.t.Helper()
	c := *b.c
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	req, _ := http.NewRequest("POST", b.url+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Sec-Fetch-Site", "same-origin")
	req.Header.Set("Origin", b.url)
	resp, err := c.Do(req)
	if err != nil {
		b.t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp
}

// TestRememberMe: a sign-in asked to be remembered gets a cookie that
// outlives the browser (30 days); one that is not, a browser-session
// cookie.
func TestRememberMe(t *testing.T) {
	srv := newServer(t)
	for _, tc := range []struct {
		remember string
		maxAge   int
	}{{"", 0}, {"on", 30 * 24 * 3600}} {
		b := newBrowser(t, srv)
		resp := b.postNoFollow("/login", url.Values{"name": {"Ann"}, "remember": {tc.remember}})
		var c *http.Cookie
		for _, rc := range resp.Cookies() {
			if rc.Name == "__Host-prefs" {
				c = rc
			}
		}
		if resp.StatusCode != http.StatusSeeOther || c == nil || c.MaxAge < tc.maxAge-60 || c.MaxAge > tc.maxAge {
			t.Errorf("sign in (remember %q): %d, cookie %v; want a 303 and Max-Age %d", tc.remember, resp.StatusCode, c, tc.maxAge)
		}
	}
}

// TestDevicesPage: two browsers signed in as Ann see each other on the
// devices page; "sign out other devices" from one signs the other out;
// "sign out everywhere" signs out all.
func TestDevicesPage(t *testing.T) {
	srv := newServer(t)
	one, two := newBrowser(t, srv), newBrowser(t, srv)
	one.post("/login", url.Values{"name": {"Ann"}})
	two.post("/login", url.Values{"name": {"Ann"}, "remember": {"on"}})
	code, body := one.get("/devices")
	if code != 200 || strings.Count(body, `<li class="device"`) != 2 || !strings.Contains(body, `id="this-device"`) || !strings.Contains(body, "remembered") {
		t.Fatalf("devices page: %d\n%s", code, body)
	}
	if code, body := newBrowser(t, srv).get("/devices"); code != 200 || !strings.Contains(body, `id="login"`) {
		t.Errorf("the devices page of a visitor who did not sign in: %d, want the sign-in page", code)
	}

	code, body = one.post("/devices/end-others", nil)
	if code != 200 || strings.Count(body, `<li class="device"`) != 1 || !strings.Contains(body, `id="ended-others"`) {
		t.Errorf("after signing out the other devices: %d\n%s", code, body)
	}
	if _, body := two.get("/"); !strings.Contains(body, `id="login"`) {
		t.Errorf("the other browser is still signed in:\n%s", body)
	}

	two.post("/login", url.Values{"name": {"Ann"}})
	code, body = one.post("/devices/end-all", nil)
	if code != 200 || !strings.Contains(body, `id="login"`) {
		t.Errorf("after signing out everywhere: %d\n%s", code, body)
	}
	if _, body := two.get("/"); !strings.Contains(body, `id="login"`) {
		t.Errorf("the other browser is still signed in after signing out everywhere:\n%s", body)
	}
	if len(one.cookies()) != 0 {
		t.Errorf("cookies after signing out everywhere: %v, want none", one.cookies())
	}
}
