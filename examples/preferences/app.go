package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log"
	"net/http"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/go-playground/validator/v10"

	session "github.com/typedsession/session"
	"github.com/typedsession/session/middleware"
)

// Visitor is the session: a struct of our own. The validate tags are
// checked by the session manager on every load and save, and by the
// handlers before they accept a change.
type Visitor struct {
	// Web is what the middleware keeps about the session: the name the
	// visitor signed in with (Web.User, empty when signed out), when the
	// session began, whether to remember it.
	Web middleware.Web `json:"web"`
	// Flash holds the notices a form leaves for the page its redirect
	// leads to ("Saved."), shown once.
	Flash middleware.Flash[Notice] `json:"flash,omitempty" validate:"max=16"`
	Prefs Prefs                    `json:"prefs"`
}

// Notice is a flash message: its text and the id of its element on the
// page.
type Notice struct {
	ID   string `json:"id"`
	Text string `json:"text"`
}

// Prefs is a visitor's preferences.
type Prefs struct {
	Theme    string `json:"theme" validate:"oneof=light dark"`
	Language string `json:"language" validate:"oneof=en de fr"`
	PerPage  int    `json:"per_page" validate:"min=5,max=100"`
}

// defaults is the value of a new session.
func defaults() Visitor {
	return Visitor{Prefs: Prefs{Theme: "light", Language: "en", PerPage: 20}}
}

// The choices the form offers, in order, with the words it shows.
var (
	themes    = []choice{{"light", "Light"}, {"dark", "Dark"}}
	languages = []choice{{"en", "English"}, {"de", "Deutsch"}, {"fr", "Français"}}
)

type choice struct{ Value, Label string }

var validate = validator.New(validator.WithRequiredStructEnabled())

// form is what the page shows in its preference fields: the stored
// preferences, or the values a refused submission sent (echoed as they
// came), with a message for each field that was refused.
type form struct {
	Theme, Language, PerPage string
	Errors                   map[string]string // field name -> plain-words message
}

func formOf(p Prefs) form {
	return form{Theme: p.Theme, Language: p.Language, PerPage: strconv.Itoa(p.PerPage)}
}

// check turns the submitted values into preferences, or returns the
// fields it refuses, each with a message in plain words. The validator's
// errors (which the library's ErrInvalid wraps, and whose text names the
// field, the rule and the value) are the source; this only words them for
// a person.
func check(f form) (Prefs, map[string]string) {
	errs := map[string]string{}
	p := Prefs{Theme: f.Theme, Language: f.Language}
	n, err := strconv.Atoi(strings.TrimSpace(f.PerPage))
	if err != nil {
		errs["per_page"] = fmt.Sprintf("Enter a whole number from 5 to 100; %s is not one.", quote(f.PerPage))
	}
	p.PerPage = n
	var verrs validator.ValidationErrors
	if err := validate.Struct(p); errors.As(err, &verrs) {
		for _, fe := range verrs {
			switch fe.Field() {
			case "Theme":
				errs["theme"] = fmt.Sprintf("Choose %s; %s is not one of them.", listOf(themes), quote(f.Theme))
			case "Language":
				errs["language"] = fmt.Sprintf("Choose %s; %s is not one of them.", listOf(languages), quote(f.Language))
			case "PerPage":
				if _, bad := errs["per_page"]; bad {
					continue // not a number: said above
				}
				how := "too many"
				if fe.Tag() == "min" {
					how = "too few"
				}
				errs["per_page"] = fmt.Sprintf("Enter a whole number from 5 to 100; %d is %s.", n, how)
			default:
				errs[fe.Field()] = fe.Error()
			}
		}
	} else if err != nil {
		errs["form"] = err.Error()
	}
	if len(errs) > 0 {
		return Prefs{}, errs
	}
	return p, nil
}

// checkName returns the message for a sign-in name it refuses, or "".
func checkName(name string) string {
	switch {
	case strings.TrimSpace(name) == "":
		return "Enter a name to sign in."
	case !utf8.ValidString(name) || utf8.RuneCountInString(name) > 40:
		return fmt.Sprintf("Use at most 40 characters; %s has %d.", quote(name), utf8.RuneCountInString(name))
	case strings.IndexFunc(name, func(r rune) bool { return !unicode.IsPrint(r) }) >= 0:
		return "Use letters, digits, spaces and punctuation only."
	}
	return ""
}

func listOf(cs []choice) string {
	words := make([]string, len(cs))
	for i, c := range cs {
		words[i] = strings.ToLower(c.Label)
		if c.Value != strings.ToLower(c.Label) {
			words[i] = c.Label
		}
	}
	if len(words) == 1 {
		return words[0]
	}
	return strings.Join(words[:len(words)-1], ", ") + " or " + words[len(words)-1]
}

// quote shows a value a visitor sent, shortened, in quotation marks.
func quote(s string) string {
	if s == "" {
		return "an empty field"
	}
	if utf8.RuneCountInString(s) > 30 {
		r := []rune(s)
		s = string(r[:29]) + "…"
	}
	return "“" + s + "”"
}

// newApp returns the application: the routes wrapped in the session
// middleware of m, and that in the standard library's protection against
// cross-site requests, which refuses a POST or PUT that a browser made on
// behalf of another site before it reaches the session.
//
//	GET  /                     the page: sign-in and the preferences form
//	POST /login                sign in with a name, "remember me" or not
//	                           (a new session token)
//	POST /logout               sign out (the session is deleted)
//	POST /prefs                the form's target; 303 to / with the notice
//	                           "Saved." on success, 400 with the page and a
//	                           message at each refused field
//	GET  /devices              your devices: the sessions you are signed in with
//	POST /devices/end          sign out one of them (form field id)
//	POST /devices/end-others   sign out every other device
//	POST /devices/end-all      sign out everywhere, this device too
//	GET  /api/prefs            the preferences as JSON
//	PUT  /api/prefs            change them with JSON (fields left out keep
//	                           their value)
func newApp(m *session.Manager[Visitor], opts middleware.HTTPOptions) http.Handler {
	if opts.OnError == nil {
		opts.OnError = func(_ context.Context, op, key string, err error) {
			log.Printf("preferences: session %s %s: %v", op, key, err)
		}
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		s, ok := visitor(w, r)
		if !ok {
			return
		}
		// Take the notices the last form left: shown once.
		render(w, http.StatusOK, pageData{Visitor: s.Data, Form: formOf(s.Data.Prefs), Notices: s.Data.Flash.Take()})
	})
	mux.HandleFunc("POST /login", func(w http.ResponseWriter, r *http.Request) {
		s, ok := visitor(w, r)
		if !ok {
			return
		}
		name := strings.TrimSpace(r.PostFormValue("name"))
		if msg := checkName(name); msg != "" {
			render(w, http.StatusBadRequest, pageData{Visitor: s.Data, Form: formOf(s.Data.Prefs), Name: name, NameError: msg})
			return
		}
		// A real app checks a password here. Login gives the session a
		// new token, so that a token planted before it (session fixation)
		// is worth nothing after it, records the name in s.Data.Web, and
		// lists the session among the user's devices. "Remember me"
		// makes the cookie outlive the browser (HTTPOptions.RememberFor).
		remember := r.PostFormValue("remember") == "on"
		if err := middleware.Login[Visitor](r, name, middleware.LoginOptions{Remember: remember}); err != nil {
			log.Printf("preferences: login: %v", err)
			http.Error(w, "signing in failed", http.StatusInternalServerError)
			return
		}
		http.Redirect(w, r, "/", http.StatusSeeOther)
	})
	mux.HandleFunc("POST /logout", func(w http.ResponseWriter, r *http.Request) {
		if err := middleware.Destroy[Visitor](r); err != nil {
			log.Printf("preferences: destroy: %v", err)
			http.Error(w, "signing out failed", http.StatusInternalServerError)
			return
		}
		http.Redirect(w, r, "/", http.StatusSeeOther)
	})
	mux.HandleFunc("POST /prefs", func(w http.ResponseWriter, r *http.Request) {
		s, ok := visitor(w, r)
		if !ok {
			return
		}
		f := form{Theme: r.PostFormValue("theme"), Language: r.PostFormValue("language"), PerPage: r.PostFormValue("per_page")}
		p, errs := check(f)
		if errs != nil {
			// Refused: the session keeps its old value, the page shows
			// what was sent, with a message at each refused field.
			f.Errors = errs
			render(w, http.StatusBadRequest, pageData{Visitor: s.Data, Form: f})
			return
		}
		s.Data.Prefs = p
		s.Data.Flash.Add(Notice{ID: "saved", Text: "Saved."})
		http.Redirect(w, r, "/", http.StatusSeeOther)
	})
	mux.HandleFunc("GET /devices", func(w http.ResponseWriter, r *http.Request) {
		s, ok := visitor(w, r)
		if !ok {
			return
		}
		list, err := middleware.ListDevices[Visitor](r)
		switch {
		case errors.Is(err, middleware.ErrNotLoggedIn):
			http.Redirect(w, r, "/", http.StatusSeeOther)
			return
		case err != nil:
			log.Printf("preferences: devices: %v", err)
			http.Error(w, "your devices are unavailable", http.StatusInternalServerError)
			return
		}
		renderDevices(w, devicesData{Visitor: s.Data, Devices: list, Notices: s.Data.Flash.Take()})
	})
	// Signing devices out: each answers 303 to the devices page with a
	// notice, or to / once this device is signed out too.
	endDevices := func(end func(r *http.Request, s *session.Session[Visitor]) (note Notice, self bool, err error)) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			s, ok := visitor(w, r)
			if !ok {
				return
			}
			note, self, err := end(r, s)
			switch {
			case errors.Is(err, middleware.ErrNotLoggedIn):
				self = true
			case err != nil:
				log.Printf("preferences: %s: %v", r.URL.Path, err)
				http.Error(w, "signing out failed", http.StatusInternalServerError)
				return
			}
			if self {
				http.Redirect(w, r, "/", http.StatusSeeOther)
				return
			}
			s.Data.Flash.Add(note)
			http.Redirect(w, r, "/devices", http.StatusSeeOther)
		}
	}
	mux.HandleFunc("POST /devices/end", endDevices(func(r *http.Request, s *session.Session[Visitor]) (Notice, bool, error) {
		id := r.PostFormValue("id")
		return Notice{ID: "ended", Text: "That device is signed out."}, id == s.Data.Web.ID, middleware.EndDevice[Visitor](r, id)
	}))
	mux.HandleFunc("POST /devices/end-others", endDevices(func(r *http.Request, _ *session.Session[Visitor]) (Notice, bool, error) {
		return Notice{ID: "ended-others", Text: "Your other devices are signed out."}, false, middleware.EndOtherDevices[Visitor](r)
	}))
	mux.HandleFunc("POST /devices/end-all", endDevices(func(r *http.Request, _ *session.Session[Visitor]) (Notice, bool, error) {
		return Notice{}, true, middleware.EndAllDevices[Visitor](r)
	}))
	mux.HandleFunc("GET /api/prefs", func(w http.ResponseWriter, r *http.Request) {
		s, ok := visitor(w, r)
		if !ok {
			return
		}
		writeJSON(w, http.StatusOK, s.Data.Prefs)
	})
	mux.HandleFunc("PUT /api/prefs", func(w http.ResponseWriter, r *http.Request) {
		s, ok := visitor(w, r)
		if !ok {
			return
		}
		next := s.Data.Prefs
		dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 4096))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&next); err != nil {
			writeJSON(w, http.StatusBadRequest, apiError{Error: "bad JSON: " + err.Error()})
			return
		}
		p, errs := check(formOf(next))
		if errs != nil {
			writeJSON(w, http.StatusBadRequest, apiError{Error: "refused: nothing was changed", Fields: errs})
			return
		}
		s.Data.Prefs = p
		writeJSON(w, http.StatusOK, s.Data.Prefs)
	})

	app := middleware.HTTP(m, opts)(mux)
	// Cross-site request protection (Go 1.25): a POST, PUT, PATCH or
	// DELETE whose Sec-Fetch-Site header says another site sent it, or
	// (for older browsers) whose Origin is not this host, gets 403 before
	// the session is loaded. GET and HEAD pass, so they must not change
	// anything; requests without either header (curl, other servers) pass.
	cop := http.NewCrossOriginProtection()
	cop.SetDenyHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "Refused: this form was sent from another site.", http.StatusForbidden)
	}))
	return cop.Handler(app)
}

type apiError struct {
	Error  string            `json:"error"`
	Fields map[string]string `json:"fields,omitempty"`
}

// visitor returns the request's session, or answers 500 and false.
func visitor(w http.ResponseWriter, r *http.Request) (*session.Session[Visitor], bool) {
	s, err := session.From[Visitor](r.Context())
	if err != nil {
		log.Printf("preferences: %v", err)
		http.Error(w, "preferences are unavailable", http.StatusInternalServerError)
		return nil, false
	}
	return s, true
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(v)
}
