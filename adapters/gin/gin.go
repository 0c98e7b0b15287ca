package ginsession

import (
	"bufio"
	"errors"
	"io"
	"net"
	"net/http"

	"github.com/gin-gonic/gin"

	session "github.com/typedsession/session"
	"github.com/typedsession/session/middleware"
)

// Middleware returns a Gin handler that gives the handlers after it the
// cookie session of type T from m: the behaviour of [middleware.HTTP] (the
// same tokens, store keys, cookie attributes, Vary and Cache-Control
// headers, per-key lock, Renew and Destroy), with opts meaning what they
// mean there. Handlers read the session with [From].
//
// The session is committed when the response starts, as with
// middleware.HTTP: when the body is first written or flushed, or when the
// handlers return. A status without a body (c.Status, c.AbortWithStatus,
// c.AbortWithError, a redirect) is held until then, so that the commit
// sees it. A status of 500 or above discards the changes. So do errors
// the handlers attach to the context (c.Error, c.AbortWithError) when they
// return without having written the body: nothing is saved, no session
// cookie is set, and the status they chose goes out. A handler that
// panics before the body was written saves nothing (the key's lock is
// released); put gin.Recovery outside this middleware. A handler that
// takes the connection over (c.Writer.Hijack(), a WebSocket upgrade)
// starts its response there: the session is committed at the hijack and
// the key's lock released, so that a WebSocket does not hold the user's
// other requests for its lifetime.
//
// When the session cannot be loaded (see [middleware.HTTP]) the response
// is a 500 and the chain is aborted: the handlers after the middleware do
// not run (unless opts.ContinueOnLoadError or opts.Lazy). After the
// middleware returns, c.Request and c.Writer are the ones it was given,
// so that handlers further out (a logger) see the status actually sent,
// also when a handler panicked.
//
// Build the middleware once and use it for every route that shares the
// sessions (r.Use, or a group's Use): requests for one session key through
// one value run one after the other. Middleware panics where
// middleware.HTTP panics (a nil m, invalid cookie options).
func Middleware[T any](m *session.Manager[T], opts middleware.HTTPOptions) gin.HandlerFunc {
	mw := middleware.HTTP(m, opts)
	return func(c *gin.Context) {
		req, orig := c.Request, c.Writer
		g := &gate{ResponseWriter: orig}
		var gw *writer
		ran := false
		func() {
			defer func() { c.Request, c.Writer = req, orig }() // on every path, panics included
			mw(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				ran = true
				gw = &writer{ResponseWriter: w, orig: orig, status: http.StatusOK, size: -1}
				c.Request, c.Writer = r, gw
				c.Next()
				switch {
				case gw.sent || gw.hijacked:
				case len(c.Errors) > 0:
					// A failed handler: commit with a 500, which
					// discards its changes, but let none of it through
					// the gate; the handler's status is written below.
					g.closed = true
					w.WriteHeader(http.StatusInternalServerError)
				case gw.Written() || gw.statusSet:
					gw.send() // commit with the handler's status
				}
			})).ServeHTTP(g, req)
		}()
		switch {
		case !ran:
			c.Abort() // middleware.HTTP answered 500 without running the handlers
		case g.closed:
			orig.WriteHeader(gw.status) // Gin writes it when the chain returns
		}
	}
}

// gate is the writer middleware.HTTP writes to: Gin's writer, until the
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

// FlushError flushes Gin's writer unless the gate is closed; it is what
// http.ResponseController calls.
func (g *gate) FlushError() error {
	if g.closed {
		return nil
	}
	return http.NewResponseController(g.ResponseWriter).Flush()
}

// Unwrap returns Gin's writer, for http.ResponseController.
func (g *gate) Unwrap() http.ResponseWriter { return g.ResponseWriter }

// From returns the session of type T that [Middleware] bound to the request,
// loading it first when the middleware is lazy. It returns an error matching
// session.ErrNoSession when no middleware for T bound the request, or once
// the session was committed, and the load's error when it failed.
func From[T any](c *gin.Context) (*session.Session[T], error) {
	return session.From[T](c.Request.Context())
}

// Renew gives the session of type T a new token when the response is
// committed, and moves its data there: call it when the user logs in. See
// [middleware.Renew] for what it does and returns.
func Renew[T any](c *gin.Context) error {
	return middleware.Renew[T](c.Request)
}

// Destroy deletes the session of type T and expires its cookie when the
// response is committed: call it when the user logs out. See
// [middleware.Destroy] for what it does and returns.
func Destroy[T any](c *gin.Context) error {
	return middleware.Destroy[T](c.Request)
}

// Login logs the session of type T in as user when the response is committed: a new
// token, the login recorded in T's middleware.Web field, and with
// HTTPOptions.Devices the session listed among the user's devices. Call
// it once the user proved who they are. See [middleware.Login] for what
// it does and returns.
func Login[T any](c *gin.Context, user string, opts middleware.LoginOptions) error {
	return middleware.Login[T](c.Request, user, opts)
}

// ListDevices returns the sessions of the user the session of type T is
// logged in as ("your devices"). See [middleware.ListDevices].
func ListDevices[T any](c *gin.Context) ([]middleware.Device, error) {
	return middleware.ListDevices[T](c.Request)
}

// EndDevice ends one session of the user the session of type T is logged
// in as, at once. See [middleware.EndDevice].
func EndDevice[T any](c *gin.Context, id string) error {
	return middleware.EndDevice[T](c.Request, id)
}

// EndOtherDevices ends every other session of the user the session of
// type T is logged in as ("log out other devices"), at once. See
// [middleware.EndOtherDevices].
func EndOtherDevices[T any](c *gin.Context) error {
	return middleware.EndOtherDevices[T](c.Request)
}

// EndAllDevices ends every session of the user the session of type T is
// logged in as ("log out everywhere"), this one when the response is committed.
// See [middleware.EndAllDevices].
func EndAllDevices[T any](c *gin.Context) error {
	return middleware.EndAllDevices[T](c.Request)
}

// writer is the gin.ResponseWriter the handlers get: Gin's own semantics
// over middleware.HTTP's writer, which commits the session when the status
// goes out. Gin holds a status until the body is written; this writer also
// holds one that WriteHeaderNow wrote without a body (c.AbortWithStatus,
// c.AbortWithError) until the body, a Flush, or the end of the handlers, so
// that an error attached right after it can still discard the changes.
type writer struct {
	http.ResponseWriter                    // middleware.HTTP's writer
	orig                gin.ResponseWriter // Gin's writer, under it
	status              int
	statusSet           bool // a handler set the status
	size                int  // -1: nothing written (Gin's meaning of Written)
	sent                bool // the status went to middleware.HTTP's writer: committed
	hijacked            bool
}

var _ gin.ResponseWriter = (*writer)(nil)

func (w *writer) WriteHeader(code int) {
	if code <= 0 || w.Written() {
		return
	}
	w.status, w.statusSet = code, true
}

// WriteHeaderNow marks the status as written; it goes out (and the session
// is committed) with the body, a Flush, or when the handlers return.
func (w *writer) WriteHeaderNow() {
	if !w.Written() {
		w.size = 0
	}
}

// send writes the status to middleware.HTTP's writer, which commits.
func (w *writer) send() {
	if !w.sent {
		w.sent = true
		if w.size < 0 {
			w.size = 0
		}
		w.ResponseWriter.WriteHeader(w.status)
	}
}

func (w *writer) Write(b []byte) (int, error) {
	w.send()
	n, err := w.ResponseWriter.Write(b)
	w.size += n
	return n, err
}

func (w *writer) WriteString(s string) (int, error) {
	w.send()
	n, err := io.WriteString(w.ResponseWriter, s)
	w.size += n
	return n, err
}

func (w *writer) Status() int   { return w.status }
func (w *writer) Size() int     { return w.size }
func (w *writer) Written() bool { return w.size != -1 }

func (w *writer) Flush() {
	w.send()
	_ = http.NewResponseController(w.ResponseWriter).Flush()
}

// Hijack takes over the connection, as Gin's writer does: refused once body
// bytes were written. middleware.HTTP's writer commits the session at the
// hijack (see middleware.HTTP) and releases the key's lock, so that a
// WebSocket does not hold the user's other requests for its lifetime; a
// cookie the commit sets is in c.Writer.Header() for the handshake.
func (w *writer) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	if w.size > 0 {
		return nil, nil, errHijackAfterWrite
	}
	if w.size < 0 {
		w.size = 0
	}
	conn, rw, err := http.NewResponseController(w.ResponseWriter).Hijack()
	w.hijacked = err == nil
	return conn, rw, err
}

var errHijackAfterWrite = errors.New("ginsession: response body already written")

// CloseNotify is Gin's writer's.
//
// Deprecated: use the request's context, as http.CloseNotifier says.
func (w *writer) CloseNotify() <-chan bool { return w.orig.CloseNotify() }

func (w *writer) Pusher() http.Pusher { return w.orig.Pusher() }

// Unwrap returns middleware.HTTP's writer, for http.ResponseController.
func (w *writer) Unwrap() http.ResponseWriter { return w.ResponseWriter }
