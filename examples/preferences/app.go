package main

import (
	"context"
	"encoding/json"
	"html/template"
	"log"
	"net/http"
	"strconv"

	"github.com/go-playground/validator/v10"

	session "github.com/typedsession/session"
	"github.com/typedsession/session/middleware"
)

// Prefs is a visitor's preferences: the session, a struct of our own. The
// validate tags are checked by the session manager on every load and save,
// and by the handlers before they accept a change.
type Prefs struct {
	Theme    string `json:"theme" validate:"oneof=light dark"`
	Language string `json:"language" validate:"oneof=en de fr"`
	PerPage  int    `json:"per_page" validate:"min=5,max=100"`
}

// defaults is the value of a new session.
func defaults() Prefs { return Prefs{Theme: "light", Language: "en", PerPage: 20} }

var validate = validator.New(validator.WithRequiredStructEnabled())

var page = template.Must(template.New("page").Parse(`<!doctype html>
<html lang="{{.Prefs.Language}}">
<head><meta charset="utf-8"><title>Preferences</title></head>
<body class="{{.Prefs.Theme}}">
<h1>Preferences</h1>
{{with .Error}}<p class="error">{{.}}</p>{{end}}
<form method="post" action="/prefs">
<label>Theme <select name="theme">
{{range .Themes}}<option value="{{.}}"{{if eq . $.Prefs.Theme}} selected{{end}}>{{.}}</option>
{{end}}</select></label>
<label>Language <select name="language">
{{range .Languages}}<option value="{{.}}"{{if eq . $.Prefs.Language}} selected{{end}}>{{.}}</option>
{{end}}</select></label>
<label>Items per page <input type="number" name="per_page" min="5" max="100" value="{{.Prefs.PerPage}}"></label>
<button>Save</button>
</form>
</body>
</html>
`))

type pageData struct {
	Prefs     Prefs
	Error     string
	Themes    []string
	Languages []string
}

// newApp returns the application: the routes wrapped in the session
// middleware of m.
//
//	GET  /           the form
//	POST /prefs      the form's target; 303 to / on success, 400 on a bad value
//	GET  /api/prefs  the preferences as JSON
//	PUT  /api/prefs  change them with JSON (fields left out keep their value)
func newApp(m *session.Manager[Prefs], opts middleware.HTTPOptions) http.Handler {
	if opts.OnError == nil {
		opts.OnError = func(_ context.Context, op, key string, err error) {
			log.Printf("preferences: session %s %s: %v", op, key, err)
		}
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		s, ok := prefs(w, r)
		if !ok {
			return
		}
		render(w, http.StatusOK, s.Data, "")
	})
	mux.HandleFunc("POST /prefs", func(w http.ResponseWriter, r *http.Request) {
		s, ok := prefs(w, r)
		if !ok {
			return
		}
		next := s.Data
		next.Theme = r.PostFormValue("theme")
		next.Language = r.PostFormValue("language")
		n, err := strconv.Atoi(r.PostFormValue("per_page"))
		if err != nil {
			render(w, http.StatusBadRequest, s.Data, "items per page: not a number")
			return
		}
		next.PerPage = n
		if err := validate.Struct(next); err != nil {
			// Refused: the session keeps its old value.
			render(w, http.StatusBadRequest, s.Data, err.Error())
			return
		}
		s.Data = next
		http.Redirect(w, r, "/", http.StatusSeeOther)
	})
	mux.HandleFunc("GET /api/prefs", func(w http.ResponseWriter, r *http.Request) {
		s, ok := prefs(w, r)
		if !ok {
			return
		}
		writeJSON(w, http.StatusOK, s.Data)
	})
	mux.HandleFunc("PUT /api/prefs", func(w http.ResponseWriter, r *http.Request) {
		s, ok := prefs(w, r)
		if !ok {
			return
		}
		next := s.Data
		dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 4096))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&next); err != nil {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": "bad JSON: " + err.Error()})
			return
		}
		if err := validate.Struct(next); err != nil {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": err.Error()})
			return
		}
		s.Data = next
		writeJSON(w, http.StatusOK, s.Data)
	})
	return middleware.HTTP(m, opts)(mux)
}

// prefs returns the request's session, or answers 500 and false.
func prefs(w http.ResponseWriter, r *http.Request) (*session.Session[Prefs], bool) {
	s, err := session.From[Prefs](r.Context())
	if err != nil {
		log.Printf("preferences: %v", err)
		http.Error(w, "preferences are unavailable", http.StatusInternalServerError)
		return nil, false
	}
	return s, true
}

func render(w http.ResponseWriter, code int, p Prefs, msg string) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(code)
	err := page.Execute(w, pageData{Prefs: p, Error: msg, Themes: []string{"light", "dark"}, Languages: []string{"en", "de", "fr"}})
	if err != nil {
		log.Printf("preferences: render: %v", err)
	}
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(v)
}
