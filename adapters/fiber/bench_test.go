package fibersession_test

import (
	"testing"

	"github.com/gofiber/fiber/v2"
	"github.com/valyala/fasthttp"

	fibersession "github.com/typedsession/session/adapters/fiber"
	"github.com/typedsession/session/middleware"
)

// BenchmarkUnchanged serves a request that reads its session and changes
// nothing (one store read, no write), straight into the app's fasthttp
// handler (app.Test would measure its connection more than the adapter).
func BenchmarkUnchanged(b *testing.B) {
	m, _ := newManager(b)
	app := newApp(fibersession.Middleware(m, middleware.HTTPOptions{}))
	c := start(b, app)
	h := app.Handler()
	var ctx fasthttp.RequestCtx
	b.ReportAllocs()
	for b.Loop() {
		ctx.Request.Reset()
		ctx.Response.Reset()
		ctx.Request.SetRequestURI("/show")
		ctx.Request.Header.SetMethod(fiber.MethodGet)
		ctx.Request.Header.SetCookie(c.Name, c.Value)
		h(&ctx)
		if ctx.Response.StatusCode() != fiber.StatusOK {
			b.Fatalf("status %d", ctx.Response.StatusCode())
		}
	}
}
