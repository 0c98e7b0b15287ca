package echosession

import (
	"strings"
	"testing"

	"github.com/labstack/echo/v4"

	session "github.com/typedsession/session"
	"github.com/typedsession/session/internal/webtest"
	"github.com/typedsession/session/middleware"
	"github.com/typedsession/session/store"
	"github.com/typedsession/session/store/memstore"
)

// TestWeb runs the web middleware's tests (internal/webtest) through Echo
// and this adapter's functions, on memstore.
func TestWeb(t *testing.T) {
	fw := webtest.Framework[echo.Context]{
		From:      From[webtest.Visit],
		Form:      func(c echo.Context, name string) string { return c.QueryParam(name) },
		Login:     Login[webtest.Visit],
		Renew:     Renew[webtest.Visit],
		Destroy:   Destroy[webtest.Visit],
		List:      ListDevices[webtest.Visit],
		End:       EndDevice[webtest.Visit],
		EndOthers: EndOtherDevices[webtest.Visit],
		EndAll:    EndAllDevices[webtest.Visit],
	}
	app := func(t testing.TB, m *session.Manager[webtest.Visit], opts middleware.HTTPOptions) webtest.Doer {
		e := echo.New()
		e.Use(Middleware(m, opts))
		for _, route := range webtest.Routes {
			method, path, _ := strings.Cut(route, " ")
			e.Add(method, path, func(c echo.Context) error {
				rep := webtest.Serve(fw, route, c)
				if rep.Location != "" {
					return c.Redirect(rep.Status, rep.Location)
				}
				return c.String(rep.Status, rep.Body)
			})
		}
		return webtest.Serving(e)
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
