package ginsession_test

import (
	"net/http"
	"net/http/httptest"
	"testing"

	ginsession "github.com/typedsession/session/adapters/gin"
	"github.com/typedsession/session/middleware"
)

// BenchmarkUnchanged serves a request that reads its session and changes
// nothing: one store read, no write.
func BenchmarkUnchanged(b *testing.B) {
	m, _ := newManager(b)
	app := newApp(ginsession.Middleware(m, middleware.HTTPOptions{}))
	c := start(b, app)
	req := httptest.NewRequest(http.MethodGet, "/show", nil)
	req.AddCookie(c)
	b.ReportAllocs()
	for b.Loop() {
		app.ServeHTTP(httptest.NewRecorder(), req)
	}
}
