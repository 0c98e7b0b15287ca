package main

import (
	"strings"
	"testing"

	"github.com/go-chi/chi/v5"

	session "github.com/typedsession/session"
	"github.com/typedsession/session/internal/webtest"
	"github.com/typedsession/session/middleware"
	"github.com/typedsession/session/store"
	"github.com/typedsession/session/store/memstore"
)

// TestWeb runs the web middleware's tests (internal/webtest) through a chi
// router: middleware.HTTP in r.Use, the routes on r, the middleware's
// net/http functions (Login, ListDevices, ...) in the handlers.
func TestWeb(t *testing.T) {
	app := func(t testing.TB, m *session.Manager[webtest.Visit], opts middleware.HTTPOptions) webtest.Doer {
		r := chi.NewRouter()
		r.Use(middleware.HTTP(m, opts))
		for _, route := range webtest.Routes {
			method, path, _ := strings.Cut(route, " ")
			r.Method(method, path, webtest.Handler(route))
		}
		return webtest.Serving(r)
	}
	webtest.Run(t, webtest.Env{NewApp: app, NewStore: func(t testing.TB) store.Store {
		st, err := memstore.New(memstore.Options{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		return st
	}})
}
