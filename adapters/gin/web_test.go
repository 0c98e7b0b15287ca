package ginsession

import (
	"strings"
	"testing"

	"github.com/gin-gonic/gin"

	session "github.com/typedsession/session"
	"github.com/typedsession/session/internal/webtest"
	"github.com/typedsession/session/middleware"
	"github.com/typedsession/session/store"
	"github.com/typedsession/session/store/memstore"
)

// TestWeb runs the web middleware's tests (internal/webtest) through Gin
// and this adapter's functions, on memstore.
func TestWeb(t *testing.T) {
	fw := webtest.Framework[*gin.Context]{
		From:      From[webtest.Visit],
		Form:      func(c *gin.Context, name string) string { return c.Query(name) },
		Login:     Login[webtest.Visit],
		Renew:     Renew[webtest.Visit],
		Destroy:   Destroy[webtest.Visit],
		List:      ListDevices[webtest.Visit],
		End:       EndDevice[webtest.Visit],
		EndOthers: EndOtherDevices[webtest.Visit],
		EndAll:    EndAllDevices[webtest.Visit],
	}
	app := func(t testing.TB, m *session.Manager[webtest.Visit], opts middleware.HTTPOptions) webtest.Doer {
		gin.SetMode(gin.TestMode)
		r := gin.New()
		r.Use(Middleware(m, opts))
		for _, route := range webtest.Routes {
			method, path, _ := strings.Cut(route, " ")
			r.Handle(method, path, func(c *gin.Context) {
				rep := webtest.Serve(fw, route, c)
				if rep.Location != "" {
					c.Redirect(rep.Status, rep.Location)
					return
				}
				c.String(rep.Status, rep.Body)
			})
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
