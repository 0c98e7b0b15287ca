package fibersession

import (
	"bytes"
	"net/http"
	"net/url"
	"strings"

	"github.com/gofiber/fiber/v2"

	session "github.com/typedsession/session"
	"github.com/typedsession/session/middleware"
)

// Middleware returns a Fiber (v2) handler that gives the handlers after it
// the cookie session of type T from m: the behaviour of [middleware.HTTP]
// (the same tokens, store keys, cookie attributes, Vary and Cache-Control
// headers, per-key lock, Renew and Destroy), with opts meaning what they
// mean there. Handlers read the session with [From] (or session.From[T] on
// c.UserContext()).
//
// # When the session is saved
//
// Fiber runs on fasthttp, which sends nothing until the handler returns,
// and has no response writer to hook. So the session is committed when
// the handlers after the middleware return (c.Next()), before any byte of
// the response goes out, with the response's status then:
//
//   - a handler that returns an error, or leaves a status of 500 or above,
//     saves nothing: its changes, [Renew] and [Destroy] are discarded, no
//     session cookie is set, and the error goes on to Fiber's
//     ErrorHandler as usual;
//   - a save that fails (session.ErrConflict, a store error) is reported
//     to opts.OnError and turns the whole response into a 500: the
//     handler's headers and body are dropped (Vary is kept);
//   - changes made after the handler wrote its body (c.SendString, then
//     s.Data.N++) are saved, since nothing was sent yet; the streaming and
//     buffered modes of middleware.HTTP are one here, and
//     opts.Buffered changes nothing.
//
// A streamed body (c.SendStream, c.Context().SetBodyStreamWriter), and a
// connection taken over (c.Context().Hijack, the WebSocket middleware of
// gofiber/contrib), run after the handler returned, so after the commit,
// holding no lock: the user's other requests go on meanwhile. The stream's
// code cannot change the session (changes it makes to a session it holds
// are not saved, and From reports session.ErrNoSession there), and an
// error it meets cannot undo the commit. Make the session's changes before
// returning, and stream after.
//
// When the session cannot be loaded, or opts.Key fails (see
// [middleware.HTTP]), the response is a 500 and the handlers after the
// middleware do not run (unless opts.ContinueOnLoadError or opts.Lazy).
// opts.Key gets an *http.Request copied from the fasthttp request: method,
// URL, headers, host, remote address, and c.UserContext() as its context;
// no body.
//
// Build the middleware once and use it for every route that shares the
// sessions (app.Use, or a group's Use): requests for one session key
// through one value run one after the other. Middleware panics where
// middleware.HTTP panics (a nil m, invalid cookie options).
func Middleware[T any](m *session.Manager[T], opts middleware.HTTPOptions) fiber.Handler {
	mw := middleware.HTTP(m, opts)
	return func(c *fiber.Ctx) error {
		req := newRequest(c)
		rec := &recorder{header: make(http.Header)}
		prevCtx, prevReq := c.UserContext(), c.Locals(requestKey{})
		defer func() {
			c.SetUserContext(prevCtx)
			c.Locals(requestKey{}, prevReq)
		}()

		var herr error
		ran, code := false, 0
		mw(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			ran = true
			c.SetUserContext(r.Context())
			c.Locals(requestKey{}, r)
			herr = c.Next()
			code = c.Response().StatusCode()
			if herr != nil {
				// A failed handler: the commit discards its changes.
				// The client's status comes from Fiber's ErrorHandler.
				code = http.StatusInternalServerError
			}
			w.WriteHeader(code) // middleware.HTTP commits here
		})).ServeHTTP(rec, req)

		if !ran || rec.code != code {
			// middleware.HTTP answered 500 itself: the key function or
			// the load failed (the handlers did not run), or the save
			// failed. That answer replaces the handler's response.
			c.Response().Reset()
			c.Status(rec.code)
			for k, vs := range rec.header {
				for _, v := range vs {
					c.Response().Header.Add(k, v)
				}
			}
			c.Response().SetBody(rec.body.Bytes())
			return nil
		}
		h := &c.Response().Header
		for _, v := range rec.header.Values("Set-Cookie") {
			h.Add(fiber.HeaderSetCookie, v)
		}
		for _, v := range rec.header.Values("Vary") {
			c.Vary(strings.Split(v, ", ")...)
		}
		if cc := rec.header.Get("Cache-Control"); cc != "" && len(h.Peek(fiber.HeaderCacheControl)) == 0 {
			h.Set(fiber.HeaderCacheControl, cc)
		}
		if csd := rec.header.Get("Clear-Site-Data"); csd != "" {
			h.Set("Clear-Site-Data", csd)
		}
		return herr
	}
}

// requestKey is the Locals key of the *http.Request that middleware.HTTP
// handed on, for Renew and Destroy.
type requestKey struct{}

// newRequest copies what middleware.HTTP and an HTTPOptions.Key function
// may read from the fasthttp request into an *http.Request. Strings are
// copied: fasthttp reuses its buffers after the handler returns.
func newRequest(c *fiber.Ctx) *http.Request {
	h := make(http.Header)
	c.Request().Header.VisitAll(func(k, v []byte) { h.Add(string(k), string(v)) })
	r := &http.Request{
		Method:     strings.Clone(c.Method()),
		URL:        &url.URL{Path: strings.Clone(c.Path()), RawQuery: string(c.Request().URI().QueryString())},
		Proto:      "HTTP/1.1",
		ProtoMajor: 1,
		ProtoMinor: 1,
		Header:     h,
		Body:       http.NoBody,
		Host:       string(c.Request().Host()),
		RemoteAddr: c.Context().RemoteAddr().String(),
		RequestURI: strings.Clone(c.OriginalURL()),
	}
	return r.WithContext(c.UserContext())
}

// recorder is the http.ResponseWriter middleware.HTTP writes to: it keeps
// the headers the middleware sets (Set-Cookie, Vary, Cache-Control,
// Clear-Site-Data), the status that went through it, and the body of its
// own 500.
type recorder struct {
	header http.Header
	code   int
	body   bytes.Buffer
}

func (w *recorder) Header() http.Header { return w.header }

func (w *recorder) WriteHeader(code int) {
	if w.code == 0 {
		w.code = code
	}
}

func (w *recorder) Write(b []byte) (int, error) {
	if w.code == 0 {
		w.code = http.StatusOK
	}
	return w.body.Write(b)
}

// From returns the session of type T that [Middleware] bound to the request,
// loading it first when the middleware is lazy. It returns an error matching
// session.ErrNoSession when no middleware for T bound the request, or once
// the session was committed, and the load's error when it failed.
func From[T any](c *fiber.Ctx) (*session.Session[T], error) {
	return session.From[T](c.UserContext())
}

// Renew gives the session of type T a new token when the handlers return,
// and moves its data there: call it when the user logs in. See
// [middleware.Renew] for what it does and returns.
func Renew[T any](c *fiber.Ctx) error {
	return middleware.Renew[T](request(c))
}

// Destroy deletes the session of type T and expires its cookie when the
// handlers return: call it when the user logs out. See [middleware.Destroy]
// for what it does and returns.
func Destroy[T any](c *fiber.Ctx) error {
	return middleware.Destroy[T](request(c))
}

// Login logs the session of type T in as user when the handlers return:
// a new token, the login recorded in T's middleware.Web field, and with
// HTTPOptions.Devices the session listed among the user's devices. Call
// it once the user proved who they are. See [middleware.Login] for what
// it does and returns.
func Login[T any](c *fiber.Ctx, user string, opts middleware.LoginOptions) error {
	return middleware.Login[T](request(c), user, opts)
}

// ListDevices returns the sessions of the user the session of type T is
// logged in as ("your devices"). See [middleware.ListDevices].
func ListDevices[T any](c *fiber.Ctx) ([]middleware.Device, error) {
	return middleware.ListDevices[T](request(c))
}

// EndDevice ends one session of the user the session of type T is logged
// in as, at once. See [middleware.EndDevice].
func EndDevice[T any](c *fiber.Ctx, id string) error {
	return middleware.EndDevice[T](request(c), id)
}

// EndOtherDevices ends every other session of the user the session of
// type T is logged in as ("log out other devices"), at once. See
// [middleware.EndOtherDevices].
func EndOtherDevices[T any](c *fiber.Ctx) error {
	return middleware.EndOtherDevices[T](request(c))
}

// EndAllDevices ends every session of the user the session of type T is
// logged in as ("log out everywhere"), this one when the handlers return.
// See [middleware.EndAllDevices].
func EndAllDevices[T any](c *fiber.Ctx) error {
	return middleware.EndAllDevices[T](request(c))
}

// request returns the *http.Request that middleware.HTTP handed on, with
// the handler's context, or an empty one (for which the middleware's
// functions report session.ErrNoSession) outside the middleware.
func request(c *fiber.Ctx) *http.Request {
	r, ok := c.Locals(requestKey{}).(*http.Request)
	if !ok {
		return &http.Request{}
	}
	return r.WithContext(c.UserContext())
}
