// Package fibersession gives Fiber (v2) handlers a typed session kept in a
// cookie, with the behaviour of the net/http middleware of
// [github.com/typedsession/session/middleware]: the same random tokens,
// the same store keys (a token's SHA-256), the same cookie attributes and
// headers, Renew on login and Destroy on logout, and one request at a time
// per session. Handlers use c-based helpers: [From], [Renew], [Destroy].
// For a session type with a middleware.Web field, the web features of
// HTTPOptions work the same (absolute and renewal timeouts, remember-me,
// your devices), with [Login], [ListDevices], [EndDevice],
// [EndOtherDevices] and [EndAllDevices] taking the *fiber.Ctx.
//
//	app := fiber.New()
//	app.Use(fibersession.Middleware(carts, middleware.HTTPOptions{}))
//	app.Post("/cart", func(c *fiber.Ctx) error {
//		s, err := fibersession.From[Cart](c)
//		if err != nil {
//			return err
//		}
//		s.Data.Items = append(s.Data.Items, c.FormValue("item"))
//		return c.JSON(s.Data)
//	})
//
// Fiber runs on fasthttp, where net/http middleware does not work (Fiber's
// adaptor.HTTPMiddleware runs it to its end before the handler, so the
// session is committed before the handler sees it). This package runs
// middleware.HTTP around the handlers with a request and a response writer
// of its own, and copies the cookie and headers it sets into the Fiber
// response: the session is loaded before the handlers and committed after
// they return. See [Middleware] for what that means for errors and for
// streamed responses.
//
// The subpackage fiberstore goes the other way: any Fiber storage driver
// as a session store.
package fibersession
