package main

import (
	"fmt"
	"net/http"
	"strings"

	"github.com/go-chi/chi/v5"
	chimw "github.com/go-chi/chi/v5/middleware"

	session "github.com/typedsession/session"
	"github.com/typedsession/session/middleware"
)

// Visit is the session: who is logged in, and what they did.
type Visit struct {
	User  string   `json:"user,omitempty" validate:"omitempty,alphanum,max=32"`
	Views int      `json:"views"`
	Notes []string `json:"notes,omitempty" validate:"max=20,dive,max=200"`
}

// newApp returns the routes. chi's middleware has net/http's shape, so
// middleware.HTTP goes straight into r.Use:
//
//	GET  /            counts the visit, answers who you are and the count
//	POST /login       ?user=name: logs in (Renew: a new cookie token)
//	POST /logout      Destroy: the session and its cookie are gone
//	POST /notes       ?text=...: adds a note (logged-in users only)
//	GET  /notes       lists the notes
func newApp(m *session.Manager[Visit], opts middleware.HTTPOptions) http.Handler {
	r := chi.NewRouter()
	r.Use(chimw.Recoverer)
	r.Use(middleware.HTTP(m, opts))

	r.Get("/", func(w http.ResponseWriter, r *http.Request) {
		s, ok := visit(w, r)
		if !ok {
			return
		}
		s.Data.Views++
		fmt.Fprintf(w, "hello %s, visit %d\n", name(s.Data.User), s.Data.Views)
	})
	r.Post("/login", func(w http.ResponseWriter, r *http.Request) {
		s, ok := visit(w, r)
		if !ok {
			return
		}
		user := r.FormValue("user")
		if user == "" {
			http.Error(w, "user is required", http.StatusBadRequest)
			return
		}
		// A real app checks a password here.
		s.Data.User = user
		if err := middleware.Renew[Visit](r); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		fmt.Fprintf(w, "logged in as %s\n", user)
	})
	r.Post("/logout", func(w http.ResponseWriter, r *http.Request) {
		if err := middleware.Destroy[Visit](r); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		fmt.Fprintln(w, "logged out")
	})
	r.Route("/notes", func(r chi.Router) {
		r.Use(loggedIn)
		r.Get("/", func(w http.ResponseWriter, r *http.Request) {
			s, ok := visit(w, r)
			if !ok {
				return
			}
			fmt.Fprintln(w, strings.Join(s.Data.Notes, "\n"))
		})
		r.Post("/", func(w http.ResponseWriter, r *http.Request) {
			s, ok := visit(w, r)
			if !ok {
				return
			}
			text := r.FormValue("text")
			if len(s.Data.Notes) >= 20 || text == "" || len(text) > 200 {
				// Check before changing the session: a 4xx answer saves
				// what the handler changed (only 500 and above discard).
				http.Error(w, "a note is 1 to 200 bytes, 20 notes at most", http.StatusUnprocessableEntity)
				return
			}
			s.Data.Notes = append(s.Data.Notes, text)
			fmt.Fprintf(w, "%d notes\n", len(s.Data.Notes))
		})
	})
	return r
}

// loggedIn is chi middleware that reads the session: it runs inside
// middleware.HTTP, like the handlers.
func loggedIn(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s, ok := visit(w, r)
		if !ok {
			return
		}
		if s.Data.User == "" {
			http.Error(w, "log in first", http.StatusUnauthorized)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// visit returns the request's session, or answers 500 and false.
func visit(w http.ResponseWriter, r *http.Request) (*session.Session[Visit], bool) {
	s, err := session.From[Visit](r.Context())
	if err != nil {
		http.Error(w, http.StatusText(http.StatusInternalServerError), http.StatusInternalServerError)
		return nil, false
	}
	return s, true
}

func name(user string) string {
	if user == "" {
		return "guest"
	}
	return user
}
