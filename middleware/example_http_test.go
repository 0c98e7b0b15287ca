package middleware_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"

	session "github.com/typedsession/session"
	"github.com/typedsession/session/middleware"
	"github.com/typedsession/session/store/memstore"
)

// Visit is a web visitor's session.
type Visit struct {
	User  string `json:"user,omitempty"`
	Views int    `json:"views"`
}

func ExampleHTTP() {
	st, _ := memstore.New(memstore.Options{})
	defer st.Close()
	visits, _ := session.New(session.Config[Visit]{Store: st, Namespace: "visit"})

	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		s, err := session.From[Visit](r.Context())
		if err != nil {
			http.Error(w, "session unavailable", http.StatusInternalServerError)
			return
		}
		s.Data.Views++
		fmt.Fprintf(w, "hello %q, view %d", s.Data.User, s.Data.Views)
	})
	mux.HandleFunc("/login", func(w http.ResponseWriter, r *http.Request) {
		s, err := session.From[Visit](r.Context())
		if err != nil {
			http.Error(w, "session unavailable", http.StatusInternalServerError)
			return
		}
		// A new token on login defeats session fixation.
		if err := middleware.Renew[Visit](r); err != nil {
			http.Error(w, "session unavailable", http.StatusInternalServerError)
			return
		}
		s.Data.User = r.FormValue("user")
	})
	mux.HandleFunc("/logout", func(w http.ResponseWriter, r *http.Request) {
		middleware.Destroy[Visit](r)
	})
	handler := middleware.HTTP(visits, middleware.HTTPOptions{})(mux)

	// A tiny browser: it keeps the one cookie it is given.
	var cookie *http.Cookie
	get := func(path string) {
		req := httptest.NewRequest("GET", "https://example.com"+path, nil)
		if cookie != nil {
			req.AddCookie(cookie)
		}
		rec := httptest.NewRecorder()
		handler.ServeHTTP(rec, req)
		note := ""
		for _, c := range rec.Result().Cookies() {
			switch {
			case c.MaxAge < 0:
				note, cookie = " (cookie expired)", nil
			case cookie == nil || c.Value != cookie.Value:
				note, cookie = " (new cookie)", c
			}
		}
		fmt.Printf("%-13s %d %s%s\n", path, rec.Code, strings.TrimSpace(rec.Body.String()), note)
	}

	get("/")
	get("/")
	get("/login?user=ann")
	get("/")
	get("/logout")
	get("/")
	// Output:
	// /             200 hello "", view 1 (new cookie)
	// /             200 hello "", view 2
	// /login?user=ann 200  (new cookie)
	// /             200 hello "ann", view 3
	// /logout       200  (cookie expired)
	// /             200 hello "", view 1 (new cookie)
}
