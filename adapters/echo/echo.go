package echosession

import (
	"net/http"

	"github.com/labstack/echo/v4"

	session "github.com/typedsession/session"
	"github.com/typedsession/session/middleware"
)

// Middleware returns Echo middleware that gives each request the cookie
// session of type T from m: the behaviour of [middleware.HTTP] (the same
// tokens, store keys, cookie attributes, Vary and Cache-Control headers,
// per-key lock, Renew and Destroy), with opts meaning what they mean there.
// Handlers read the session with [From] (or session.From[T] on
// c.Request().Context()).
//
// The session is committed when the response starts, as with
// middleware.HTTP: on the first write of the status or the body, or when
// the handler returns having written nothing. A status of 500 or above
// discards the changes. In addition, a handler that returns an error
// (any error, an *echo.HTTPError of any code included) before it wrote
// its response saves nothing: its changes, [Renew] and [Destroy] are
// discarded, no session cookie is set, and the error goes on to Echo's
// HTTPErrorHandler, which writes the response as usual. (Plain
// echo.WrapMiddleware(middleware.HTTP(m, opts)) gets this wrong: the
// handler's error reaches the error handler only after the wrapped
// middleware returned, which for middleware.HTTP means a handler that
// wrote nothing succeeded with a 200, so its changes are saved, and a new
// session's cookie is set on the error response.)
//
// A handler that takes the connection over (c.Response().Hijack(), a
// WebSocket upgrade) starts its response there: the session is committed
// at the hijack and the key's lock released, as with middleware.HTTP, so
// that a WebSocket does not hold the user's other requests for its
// lifetime.
//
// A handler that panics before its response started saves nothing either
// (the key's lock is released); put Echo's Recover middleware outside this
// one. When the session cannot be loaded (see [middleware.HTTP]) the
// handler does not run and the response is a 500, unless
// opts.ContinueOnLoadError or opts.Lazy. After the middleware returns, or
// a panic passes through it, c.Request() and c.Response() are the ones it
// was given, so that middleware further out (a logger, Recover) sees the
// status that was actually sent and writes where it should.
//
// Build the middleware once and use it for every route that shares the
// sessions (e.Use, or a group's Use): requests for one session key through
// one value run one after the other. Middleware panics where
// middleware.HTTP panics (a nil m, invalid cookie options).
func Middleware[T any](m *session.Manager[T], opts middleware.HTTPOptions) echo.MiddlewareFunc {
	mw := middleware.HTTP(m, opts)
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			req, res := c.Request(), c.Response()
			defer func() { // on every path, panics included
				c.SetRequest(req)
				c.SetResponse(res)
			}()
			g := &gate{ResponseWriter: res}
			var herr error
			mw(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				inner := echo.NewResponse(w, c.Echo())
				c.SetRequest(r)
				c.SetResponse(inner)
				herr = next(c)
				if herr != nil && !inner.Committed {
					// A failed handler: commit with a 500, which
					// discards its changes, but let none of it through
					// the gate; Echo's error handler writes the
					// response to res once the chain returns.
					g.closed = true
					w.WriteHeader(http.StatusInternalServerError)
				}
			})).ServeHTTP(g, req)
			return herr
		}
	}
}

// gate is the writer middleware.HTTP writes to: the Echo response, until the
// adapter closes it to discard a failed handler's session without a
// response.
type gate struct {
	http.ResponseWriter
	closed bool
}

func (g *gate) WriteHeader(code int) {
	if !g.closed {
		g.ResponseWriter.WriteHeader(code)
	}
}

func (g *gate) Write(b []byte) (int, error) {
	if g.closed {
		return len(b), nil
	}
	return g.ResponseWriter.Write(b)
}

// FlushError flushes the Echo response unless the gate is closed; it is
// what http.ResponseController calls.
func (g *gate) FlushError() error {
	if g.closed {
		return nil
	}
	return http.NewResponseController(g.ResponseWriter).Flush()
}

// Unwrap returns the Echo response, for http.ResponseController.
func (g *gate) Unwrap() http.ResponseWriter { return g.ResponseWriter }

// From returns the session of type T that [Middleware] bound to the request,
// loading it first when the middleware is lazy. It returns an error matching
// session.ErrNoSession when no middleware for T bound the request, or once
// the session was committed, and the load's error when it failed.
func From[T any](c echo.Context) (*session.Session[T], error) {
	return session.From[T](c.Request().Context())
}

// Renew gives the session of type T a new token when the response is
// committed, and moves its data there: call it when the user logs in. See
// [middleware.Renew] for what it does and returns.
func Renew[T any](c echo.Context) error {
	return middleware.Renew[T](c.Request())
}

// Destroy deletes the session of type T and expires its cookie when the
// response is committed: call it when the user logs out. See
// [middleware.Destroy] for what it does and returns.
func Destroy[T any](c echo.Context) error {
	return middleware.Destroy[T](c.Request())
}

// Login logs the session of type T in as user when the response is committed: a new
// token, the login recorded in T's middleware.Web field, and with
// HTTPOptions.Devices the session listed among the user's devices. Call
// it once the user proved who they are. See [middleware.Login] for what
// it does and returns.
func Login[T any](c echo.Context, user string, opts middleware.LoginOptions) error {
	return middleware.Login[T](c.Request(), user, opts)
}

// ListDevices returns the sessions of the user the session of type T is
// logged in as ("your devices"). See [middleware.ListDevices].
func ListDevices[T any](c echo.Context) ([]middleware.Device, error) {
	return middleware.ListDevices[T](c.Request())
}

// EndDevice ends one session of the user the session of type T is logged
// in as, at once. See [middleware.EndDevice].
func EndDevice[T any](c echo.Context, id string) error {
	return middleware.EndDevice[T](c.Request(), id)
}

// EndOtherDevices ends every other session of the user the session of
// type T is logged in as ("log out other devices"), at once. See
// [middleware.EndOtherDevices].
func EndOtherDevices[T any](c echo.Context) error {
	return middleware.EndOtherDevices[T](c.Request())
}

// EndAllDevices ends every session of the user the session of type T is
// logged in as ("log out everywhere"), this one when the response is committed.
// See [middleware.EndAllDevices].
func EndAllDevices[T any](c echo.Context) error {
	return middleware.EndAllDevices[T](c.Request())
}
