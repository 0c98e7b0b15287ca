// Package echosession gives Echo (v4) handlers a typed session kept in a
// cookie, with the behaviour of the net/http middleware of
// [github.com/typedsession/session/middleware]: the same random tokens,
// the same store keys (a token's SHA-256), the same cookie attributes and
// headers, Renew on login and Destroy on logout, and one request at a time
// per session. For a session type with a middleware.Web field, the web
// features of HTTPOptions work the same (absolute and renewal timeouts,
// remember-me, your devices), with [Login], [ListDevices], [EndDevice],
// [EndOtherDevices] and [EndAllDevices] taking the echo.Context.
//
//	e := echo.New()
//	e.Use(echosession.Middleware(carts, middleware.HTTPOptions{}))
//	e.POST("/cart", func(c echo.Context) error {
//		s, err := echosession.From[Cart](c)
//		if err != nil {
//			return err
//		}
//		s.Data.Items = append(s.Data.Items, c.FormValue("item"))
//		return c.JSON(http.StatusOK, s.Data)
//	})
//
// # Why not echo.WrapMiddleware
//
// echo.WrapMiddleware(middleware.HTTP(m, opts)) runs, and reads and
// writes cookies, but it decides about saving before Echo has handled the
// handler's error: Echo calls its HTTPErrorHandler only after the whole
// middleware chain returned, so middleware.HTTP sees a handler that wrote
// nothing and returned, commits the session as a success (a 200), and the
// error response then goes out with the new session's cookie and the
// failed handler's changes saved. With HTTPOptions.Buffered it is worse:
// the error response is written to the buffer after middleware.HTTP sent
// what it held, and the client gets an empty 200. [Middleware] decides
// with the handler's error in hand.
package echosession
