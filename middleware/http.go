package middleware

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	session "github.com/typedsession/session"
)

// HTTPOptions configures the [HTTP] middleware. The zero value means the
// defaults: cookie sessions in a cookie named "session" that is HttpOnly,
// Secure and SameSite=Lax with Path "/", loaded eagerly, with per-key
// serialization.
type HTTPOptions struct {
	// Key, when set, finds the session key in the request instead of a
	// cookie: an API key header, the user ID your authentication
	// middleware put in the context. No cookie is read or written, and
	// Renew returns an error. Return ErrNoKey (or "") for a request
	// without a session; any other error is reported to OnError (op
	// "key") and answered with a 500, without running the handler.
	Key func(r *http.Request) (string, error)

	// CookieName is the name of the session cookie. Empty means
	// "session". Give each session type served on one site its own name.
	CookieName string

	// CookiePath is the cookie's Path. Empty means "/".
	CookiePath string

	// CookieDomain is the cookie's Domain. Empty means none: the cookie
	// goes back only to the host that set it.
	CookieDomain string

	// Insecure leaves the Secure attribute off the cookie, so that it is
	// sent over plain HTTP: for development on http://localhost only.
	// The default (false) sets Secure.
	Insecure bool

	// SameSite is the cookie's SameSite attribute. Zero means
	// http.SameSiteLaxMode.
	SameSite http.SameSite

	// CookieMaxAge makes the cookie persistent for that long, renewed on
	// every response for a stored session. Zero means a browser-session
	// cookie (no Max-Age). Pair it with the manager's TTL.
	CookieMaxAge time.Duration

	// Lazy, NoLock and OnError are as in [Options]. OnError also hears
	// op "delete" (Destroy, Renew).
	Lazy    bool
	NoLock  bool
	OnError func(ctx context.Context, op, key string, err error)
}

// tokenBytes is the size of a cookie token: 256 bits from crypto/rand.
const tokenBytes = 32

// tokenLen is the length of a token in unpadded base64url.
var tokenLen = base64.RawURLEncoding.EncodedLen(tokenBytes)

// newToken returns a fresh random token in unpadded base64url.
func newToken() string {
	var b [tokenBytes]byte
	rand.Read(b[:]) // never returns an error; it crashes the program if the OS has no randomness
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// validToken reports whether tok is a token this package could have made:
// 43 characters of base64url that decode, canonically, to 32 bytes.
func validToken(tok string) bool {
	if len(tok) != tokenLen {
		return false
	}
	b, err := base64.RawURLEncoding.Strict().DecodeString(tok)
	return err == nil && len(b) == tokenBytes
}

// tokenKey returns the store key of a token: its SHA-256 in hex. A store
// key that leaks (a log line, a store dump) does not give a valid cookie.
func tokenKey(tok string) string {
	sum := sha256.Sum256([]byte(tok))
	return hex.EncodeToString(sum[:])
}

// HTTP returns net/http middleware that binds the session of type T from m
// into each request's context, for session.From[T](r.Context()).
//
// # Finding the session
//
// Without HTTPOptions.Key, the session is found by a cookie holding a
// 256-bit random token (base64url). The store key is the token's SHA-256
// in hex, not the token. A request without the cookie, or with one that is
// malformed (wrong length or characters), gets a new token and a new,
// empty session. A well-formed token that the store does not know (forged,
// or expired) also gets a new empty session, and when that session is
// first stored it is stored under a fresh token, never under the one the
// client chose. The Set-Cookie header is sent only when the session is
// actually stored (a visitor whose new session was never written gets no
// cookie), and after [Renew] or [Destroy].
//
// # Saving
//
// The session is saved just before the response headers go out: on the
// handler's first WriteHeader, Write or Flush, or when the handler returns
// having written nothing. A save error (including session.ErrConflict) is
// reported to OnError and turns the response into a 500 Internal Server
// Error: the handler's headers are dropped and its body is discarded.
// Changes a handler makes after the headers went out are not saved.
//
// A handler that writes a status of 500 or above is a failed handler: its
// changes are discarded, as when a generic handler returns an error. A
// handler that panics saves nothing.
//
// A load error (a store error, session.ErrCorrupt, ...) is reported to
// OnError and answered with a 500; the handler does not run (with Lazy,
// session.From returns the error to the handler instead). The stored value
// is left as it is; to start such a user over, delete the key in OnError.
//
// # Locking
//
// Requests for one session key through one HTTP middleware value run one
// after the other (see [Options.NoLock]). Build the middleware once and
// wrap all routes with the same value.
//
// The response writer passed to the handler implements http.Flusher and
// Unwrap, so http.NewResponseController works with it. HTTP panics if m is
// nil.
func HTTP[T any](m *session.Manager[T], opts HTTPOptions) func(http.Handler) http.Handler {
	h := &httpMiddleware[T]{core: newCore(m, opts.Lazy, opts.NoLock, opts.OnError), opts: opts}
	if h.opts.CookieName == "" {
		h.opts.CookieName = "session"
	}
	if h.opts.CookiePath == "" {
		h.opts.CookiePath = "/"
	}
	if h.opts.SameSite == 0 {
		h.opts.SameSite = http.SameSiteLaxMode
	}
	return func(next http.Handler) http.Handler {
		if next == nil {
			panic("session/middleware: HTTP(m, opts)(nil)")
		}
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { h.serve(next, w, r) })
	}
}

type httpMiddleware[T any] struct {
	core *core[T]
	opts HTTPOptions
}

// httpStateKey is the context key of a request's *httpState[T].
type httpStateKey[T any] struct{}

// httpState is one request's cookie session state, for Renew and Destroy
// and for the commit before the headers.
type httpState[T any] struct {
	mw  *httpMiddleware[T]
	ctx context.Context
	cl  *call[T]
	key string

	cookie     bool   // cookie mode
	token      string // cookie mode: the token key derives from
	fromClient bool   // the token came in the request's cookie

	mu        sync.Mutex
	committed bool   // the headers went out (or are going)
	renew     string // the new token after Renew
	destroy   bool
}

func (h *httpMiddleware[T]) serve(next http.Handler, w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	st := &httpState[T]{mw: h}
	if h.opts.Key != nil {
		key, err := h.opts.Key(r)
		if errors.Is(err, ErrNoKey) || (err == nil && key == "") {
			next.ServeHTTP(w, r.WithContext(session.BindNone[T](ctx)))
			return
		}
		if err != nil {
			h.core.report(ctx, "key", "", fmt.Errorf("session/middleware: session key: %w", err))
			internalError(w)
			return
		}
		st.key = key
	} else {
		st.cookie = true
		if c, err := r.Cookie(h.opts.CookieName); err == nil && validToken(c.Value) {
			st.token, st.fromClient = c.Value, true
		} else {
			st.token = newToken()
		}
		st.key = tokenKey(st.token)
	}

	hctx, cl, err := h.core.begin(ctx, st.key)
	defer cl.end()
	if err != nil {
		internalError(w)
		return
	}
	st.cl, st.ctx = cl, ctx
	hctx = context.WithValue(hctx, httpStateKey[T]{}, st)
	rw := &responseWriter{ResponseWriter: w, commit: st.commit}

	next.ServeHTTP(rw, r.WithContext(hctx))

	if !rw.wroteHeader {
		// The handler wrote nothing: the server will send 200 once
		// this returns, so the session is saved now.
		if err := st.commit(w.Header(), http.StatusOK); err != nil {
			rw.fail()
		}
	}
}

func internalError(w http.ResponseWriter) {
	http.Error(w, http.StatusText(http.StatusInternalServerError), http.StatusInternalServerError)
}

// commit runs once, just before the headers go out with status code: it
// saves the session (unless code says the handler failed), and sets or
// expires the cookie in header. An error has been reported to OnError; the
// response must become a 500.
func (st *httpState[T]) commit(header http.Header, code int) error {
	st.mu.Lock()
	defer st.mu.Unlock()
	st.committed = true
	if code >= 500 {
		return nil // a failed handler: discard its changes
	}
	h, m, ctx := st.mw, st.mw.core.m, st.ctx
	if st.destroy {
		if err := m.Delete(ctx, st.key); err != nil {
			h.core.report(ctx, "delete", st.key, err)
			return err
		}
		if st.fromClient {
			st.setCookie(header, "", -1)
		}
		return nil
	}
	s, loaded := st.cl.loaded()
	if !loaded {
		return nil // lazy and never asked for: nothing to save, no cookie
	}
	wasNew := s.IsNew()
	if st.cookie && (st.renew != "" || (wasNew && st.fromClient)) {
		// Move the data to a new token: after Renew, or for the first
		// store of a session whose cookie named nothing (never adopt a
		// token the client chose).
		tok := st.renew
		if tok == "" {
			tok = newToken()
		}
		key := tokenKey(tok)
		ns, err := m.Load(ctx, key)
		if err != nil {
			h.core.report(ctx, "load", key, err)
			return err
		}
		ns.Data = s.Data
		if err := m.Save(ctx, ns); err != nil {
			h.core.report(ctx, "save", key, err)
			return err
		}
		if st.renew != "" && !wasNew {
			if err := m.Delete(ctx, st.key); err != nil {
				h.core.report(ctx, "delete", st.key, err)
				return err
			}
		}
		if st.renew != "" || !ns.IsNew() {
			st.setCookie(header, tok, h.opts.CookieMaxAge)
		}
		return nil
	}
	if err := m.Save(ctx, s); err != nil {
		h.core.report(ctx, "save", st.key, err)
		return err
	}
	if !st.cookie {
		return nil
	}
	switch {
	case !wasNew && s.IsNew(): // the handler called s.Destroy()
		st.setCookie(header, "", -1)
	case !s.IsNew() && (!st.fromClient || h.opts.CookieMaxAge > 0):
		st.setCookie(header, st.token, h.opts.CookieMaxAge)
	}
	return nil
}

// setCookie sets the session cookie to tok; a negative maxAge expires it.
func (st *httpState[T]) setCookie(header http.Header, tok string, maxAge time.Duration) {
	o := st.mw.opts
	c := &http.Cookie{
		Name:     o.CookieName,
		Value:    tok,
		Path:     o.CookiePath,
		Domain:   o.CookieDomain,
		HttpOnly: true,
		Secure:   !o.Insecure,
		SameSite: o.SameSite,
	}
	switch {
	case maxAge < 0:
		c.MaxAge = -1
	case maxAge > 0:
		c.MaxAge = int(maxAge / time.Second)
	}
	if v := c.String(); v != "" {
		header.Add("Set-Cookie", v)
	}
}

// ErrCommitted is returned by [Renew] and [Destroy] after the response
// headers went out: the cookie can no longer change.
var ErrCommitted = errors.New("session/middleware: the response headers were already written")

// state returns the request's HTTP session state for T.
func state[T any](r *http.Request) (*httpState[T], error) {
	st, ok := r.Context().Value(httpStateKey[T]{}).(*httpState[T])
	if !ok {
		return nil, fmt.Errorf("%w: no HTTP session middleware for this type bound the request", session.ErrNoSession)
	}
	return st, nil
}

// Renew gives the cookie session of type T a new token and moves its data
// there; call it when the user logs in (or gains privileges), so that a
// token an attacker planted or saw before is worthless after (session
// fixation). When the response is committed, the data is stored under the
// new token, the old key is deleted, and the new cookie is set, even if
// the session holds nothing yet. Changes the handler makes to the session
// after Renew are kept.
//
// Renew loads the session first if it is lazy and not yet loaded, and
// returns that load's error. It returns an error matching
// session.ErrNoSession when the request has no cookie session of type T
// (HTTPOptions.Key is set, or no HTTP middleware for T bound it), and
// [ErrCommitted] after the headers were written or after [Destroy].
func Renew[T any](r *http.Request) error {
	st, err := state[T](r)
	if err != nil {
		return err
	}
	if !st.cookie {
		return fmt.Errorf("%w: Renew needs a cookie session; HTTPOptions.Key is set", session.ErrNoSession)
	}
	if _, err := session.From[T](r.Context()); err != nil {
		return err
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.committed || st.destroy {
		return ErrCommitted
	}
	st.renew = newToken()
	return nil
}

// Destroy ends the session of type T: when the response is committed, its
// key is deleted from the store and, for a cookie session, the cookie is
// expired. Changes made to the session in this request are discarded. It
// costs no load. It returns an error matching session.ErrNoSession when no
// HTTP middleware for T bound the request, and [ErrCommitted] after the
// headers were written.
func Destroy[T any](r *http.Request) error {
	st, err := state[T](r)
	if err != nil {
		return err
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.committed {
		return ErrCommitted
	}
	st.destroy, st.renew = true, ""
	return nil
}

// responseWriter commits the session before the headers go out.
type responseWriter struct {
	http.ResponseWriter
	commit      func(http.Header, int) error
	wroteHeader bool
	failed      bool // the commit failed: a 500 went out instead
}

func (w *responseWriter) WriteHeader(code int) {
	if w.wroteHeader {
		w.ResponseWriter.WriteHeader(code) // let net/http log the superfluous call
		return
	}
	if code >= 100 && code < 200 && code != http.StatusSwitchingProtocols {
		w.ResponseWriter.WriteHeader(code) // informational: not the final header
		return
	}
	w.wroteHeader = true
	if err := w.commit(w.Header(), code); err != nil {
		w.fail()
		return
	}
	w.ResponseWriter.WriteHeader(code)
}

// fail replaces the response with a 500, dropping the handler's headers;
// the handler's later writes are discarded.
func (w *responseWriter) fail() {
	w.failed = true
	h := w.ResponseWriter.Header()
	for k := range h {
		delete(h, k)
	}
	internalError(w.ResponseWriter)
}

func (w *responseWriter) Write(b []byte) (int, error) {
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	if w.failed {
		return len(b), nil
	}
	return w.ResponseWriter.Write(b)
}

// FlushError commits the session if the headers have not gone out, then
// flushes; http.ResponseController.Flush calls it.
func (w *responseWriter) FlushError() error {
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	if w.failed {
		return nil
	}
	return http.NewResponseController(w.ResponseWriter).Flush()
}

// Flush implements http.Flusher.
func (w *responseWriter) Flush() { _ = w.FlushError() }

// Unwrap returns the underlying writer, for http.ResponseController.
func (w *responseWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
