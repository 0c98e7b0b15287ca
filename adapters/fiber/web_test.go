package fibersession

import (
	"net/http"
	"strings"
	"testing"

	"github.com/gofiber/fiber/v2"

	session "github.com/typedsession/session"
	"github.com/typedsession/session/internal/webtest"
	"github.com/typedsession/session/middleware"
	"github.com/typedsession/session/store"
	"github.com/typedsession/session/store/memstore"
)

// TestWeb runs the web middleware's tests (internal/webtest) through Fiber
// and this adapter's functions, on memstore.
func TestWeb(t *testing.T) {
	fw := webtest.Framework[*fiber.Ctx]{
		From:      From[webtest.Visit],
		Form:      func(c *fiber.Ctx, name string) string { return c.Query(name) },
		Login:     Login[webtest.Visit],
		Renew:     Renew[webtest.Visit],
		Destroy:   Destroy[webtest.Visit],
		List:      ListDevices[webtest.Visit],
		End:       EndDevice[webtest.Visit],
		EndOthers: EndOtherDevices[webtest.Visit],
		EndAll:    EndAllDevices[webtest.Visit],
	}
	app := func(t testing.TB, m *session.Manager[webtest.Visit], opts middleware.HTTPOptions) webtest.Doer {
		app := fiber.New()
		app.Use(Middleware(m, opts))
		for _, route := range webtest.Routes {
			method, path, _ := strings.Cut(route, " ")
			app.Add(method, path, func(c *fiber.Ctx) error {
				rep := webtest.Serve(fw, route, c)
				if rep.Location != "" {
					return c.Redirect(rep.Location, rep.Status)
				}
				return c.Status(rep.Status).SendString(rep.Body)
			})
		}
		return func(r *http.Request) *http.Response {
			res, err := app.Test(r, -1)
			if err != nil {
				t.Errorf("%s %s: %v", r.Method, r.URL, err)
				return &http.Response{StatusCode: 599, Header: http.Header{}, Body: http.NoBody}
			}
			return res
		}
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
