// Package ginsession gives Gin handlers a typed session kept in a cookie,
// with the behaviour of the net/http middleware of
// [github.com/typedsession/session/middleware]: the same random tokens,
// the same store keys (a token's SHA-256), the same cookie attributes and
// headers, Renew on login and Destroy on logout, and one request at a time
// per session. Handlers use c-based helpers: [From], [Renew], [Destroy].
// For a session type with a middleware.Web field, the web features of
// HTTPOptions work the same (absolute and renewal timeouts, remember-me,
// your devices), with [Login], [ListDevices], [EndDevice],
// [EndOtherDevices] and [EndAllDevices] taking the *gin.Context.
//
//	r := gin.New()
//	r.Use(ginsession.Middleware(carts, middleware.HTTPOptions{}))
//	r.POST("/cart", func(c *gin.Context) {
//		s, err := ginsession.From[Cart](c)
//		if err != nil {
//			c.AbortWithError(http.StatusInternalServerError, err)
//			return
//		}
//		s.Data.Items = append(s.Data.Items, c.PostForm("item"))
//		c.JSON(http.StatusOK, s.Data)
//	})
//
// # Why not wrap middleware.HTTP by hand
//
// The usual way to run net/http middleware in Gin, calling it with
// c.Writer and c.Next() inside, drops the session cookie: the handlers
// write to Gin's writer, not to the one middleware.HTTP hands on, so the
// response has gone out before the middleware commits, and the Set-Cookie
// header it adds then reaches nobody (a new visitor's session is stored
// but the visitor never learns its token). It also saves the changes of a
// handler that answered c.AbortWithStatus(500), because Gin holds that
// status until the chain returns. [Middleware] gives the handlers a writer
// of Gin's shape over middleware.HTTP's, and writes a held status before
// the commit.
package ginsession
