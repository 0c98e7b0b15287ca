package middleware_test

import (
	"crypto/rand"
	"crypto/subtle"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"

	session "github.com/typedsession/session"
	"github.com/typedsession/session/middleware"
	"github.com/typedsession/session/store/memstore"
)

// account is the session of docs/web.md's CSRF recipe.
type account struct {
	Web  middleware.Web `json:"web"`
	CSRF string         `json:"csrf,omitempty"`
}

func csrfToken(s *session.Session[account]) string {
	if s.Data.CSRF == "" {
		s.Data.CSRF = rand.Text()
	}
	return s.Data.CSRF
}

func csrfOK(r *http.Request, s *session.Session[account]) bool {
	sent := r.PostFormValue("csrf")
	return s.Data.CSRF != "" && subtle.ConstantTimeCompare([]byte(sent), []byte(s.Data.CSRF)) == 1
}

// TestCSRFRecipe runs the CSRF recipe of docs/web.md: a token in the
// session, in every form, checked on every POST, the login's included,
// and a new one at login with the new session token.
func TestCSRFRecipe(t *testing.T) {
	st, err := memstore.New(memstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	m, err := session.New(session.Config[account]{Store: st, Namespace: "acct"})
	if err != nil {
		t.Fatal(err)
	}
	from := func(w http.ResponseWriter, r *http.Request) *session.Session[account] {
		s, err := session.From[account](r.Context())
		if err != nil {
			http.Error(w, "no session", http.StatusInternalServerError)
		}
		return s
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /form", func(w http.ResponseWriter, r *http.Request) {
		if s := from(w, r); s != nil {
			fmt.Fprintf(w, `<input type="hidden" name="csrf" value="%s">`, csrfToken(s))
		}
	})
	mux.HandleFunc("POST /login", func(w http.ResponseWriter, r *http.Request) {
		s := from(w, r)
		if s == nil {
			return
		}
		if !csrfOK(r, s) {
			http.Error(w, "refused", http.StatusForbidden)
			return
		}
		if err := middleware.Login[account](r, r.PostFormValue("user"), middleware.LoginOptions{}); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		s.Data.CSRF = rand.Text()
	})
	mux.HandleFunc("POST /action", func(w http.ResponseWriter, r *http.Request) {
		if s := from(w, r); s != nil && !csrfOK(r, s) {
			http.Error(w, "refused", http.StatusForbidden)
		}
	})
	h := middleware.HTTP(m, middleware.HTTPOptions{})(mux)
	cookie := ""
	do := func(method, path string, form url.Values) (int, string) {
		req := httptest.NewRequest(method, "https://example.com"+path, strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		if cookie != "" {
			req.AddCookie(&http.Cookie{Name: "__Host-session", Value: cookie})
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		for _, c := range rec.Result().Cookies() {
			cookie = c.Value
		}
		return rec.Code, rec.Body.String()
	}
	token := func() string {
		_, body := do("GET", "/form", nil)
		return regexp.MustCompile(`value="([^"]+)"`).FindStringSubmatch(body)[1]
	}

	before := token()
	if code, _ := do("POST", "/login", url.Values{"user": {"ann"}}); code != http.StatusForbidden {
		t.Errorf("a login without the token (login CSRF): %d, want 403", code)
	}
	if code, _ := do("POST", "/login", url.Values{"user": {"ann"}, "csrf": {"forged"}}); code != http.StatusForbidden {
		t.Errorf("a login with a wrong token: %d, want 403", code)
	}
	if code, body := do("POST", "/login", url.Values{"user": {"ann"}, "csrf": {before}}); code != http.StatusOK {
		t.Fatalf("a login with the form's token: %d %s", code, body)
	}
	if code, _ := do("POST", "/action", url.Values{"csrf": {before}}); code != http.StatusForbidden {
		t.Errorf("the token from before the login, after it: %d, want 403", code)
	}
	after := token()
	if after == before {
		t.Fatal("the login kept the CSRF token")
	}
	if code, _ := do("POST", "/action", url.Values{"csrf": {after}}); code != http.StatusOK {
		t.Errorf("the new token: %d, want 200", code)
	}
}
