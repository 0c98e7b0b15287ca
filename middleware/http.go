package middleware

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"reflect"
	"strings"
	"time"

	session "github.com/typedsession/session"
)

// HTTPOptions configures the [HTTP] middleware. The zero value means the
// defaults: cookie sessions in a cookie named "session" that is HttpOnly,
// Secure and SameSite=Lax with Path "/", loaded eagerly, with per-key
// serialization, committed when the response starts.
type HTTPOptions struct {
	// Options are the options every middleware shares: Lazy,
	// ContinueOnLoadError, NoLock, Locker, OnError and Logger. With
	// neither OnError nor Logger set, errors are logged to
	// slog.Default(), without session data or keys (see Options.Logger).
	Options

	// Key, when set, finds the session key in the request instead of a
	// cookie: an API key header, the user ID your authentication
	// middleware put in the context. No cookie is read or written, and
	// Renew returns an error. Return ErrNoKey (or "") for a request
	// without a session; any other error is reported to OnError (op
	// "key") and answered with a 500, without running the handler.
	Key func(r *http.Request) (string, error)

	// CookieName is the name of the session cookie. Empty means
	// "session". Give each session type served on one site its own name.
	// A cookie that is Secure, has Path / and no Domain (the default) gets
	// the prefix "__Host-" in front of it (see NoHostPrefix).
	CookieName string

	// CookiePath is the cookie's Path. Empty means "/"; another must
	// start with '/' (HTTP panics otherwise: browsers ignore such a
	// Path).
	CookiePath string

	// CookieDomain is the cookie's Domain. Empty means none: the cookie
	// goes back only to the host that set it.
	CookieDomain string

	// Insecure leaves the Secure attribute off the cookie, so that it is
	// sent over plain HTTP: for development on http://localhost only.
	// The default (false) sets Secure.
	Insecure bool

	// SameSite is the cookie's SameSite attribute. Zero means
	// http.SameSiteLaxMode. http.SameSiteNoneMode needs Secure (browsers
	// drop such a cookie otherwise), so HTTP panics if Insecure is set
	// with it.
	SameSite http.SameSite

	// CookieMaxAge makes the cookie persistent for that long (Max-Age and
	// Expires), renewed on every response for a stored session, and never
	// past the session's absolute timeout. Zero means a browser-session
	// cookie (no Max-Age), which is what a login gets unless it asks to be
	// remembered (see LoginOptions.Remember and RememberFor). It is
	// rounded up to whole seconds, the cookie's unit; a negative value
	// makes HTTP panic. Pair it with the manager's TTL.
	CookieMaxAge time.Duration

	// Buffered holds the whole response (status, headers, body) until the
	// handler returns, and commits the session only then: a handler that
	// fails anywhere (a panic, or a status of 500 or above, even one
	// written after the body, which then becomes the response's status)
	// saves nothing, and a failed save turns the whole response into a
	// 500. The cost is memory for the body and no streaming (Flush does
	// nothing until the handler returns). The default commits when the
	// response starts; see [HTTP].
	Buffered bool

	// AbsoluteTimeout ends a session that long after it began, however
	// active it is: the absolute timeout of the OWASP Session Management
	// Cheat Sheet (mandatory there; 4 to 8 hours for an office
	// application), enforced on the server next to the idle timeout (the
	// manager's Config.TTL). A session begins when it is first stored and
	// again at each [Login]; [Renew] and the rotation of RenewalTimeout
	// keep its beginning, so renewing never extends it. The first request
	// after the timeout finds the session deleted (and gone from the
	// user's [Devices]) and gets a new, empty one under a new token. A
	// session logged in with LoginOptions.Remember lasts RememberFor
	// instead. A persistent cookie (CookieMaxAge) never outlives it. Zero
	// means no absolute timeout. It needs a [Web] field in T: HTTP panics
	// without one.
	AbsoluteTimeout time.Duration

	// RenewalTimeout gives a stored cookie session a new token when its
	// token is that old (OWASP's renewal timeout): the response to the
	// first request after it moves the session to a new token and sets
	// the new cookie. The old token stays valid for RenewalGrace (for the
	// requests the browser sent with it before the new cookie arrived):
	// a request that brings it is served from the session under the new
	// token, without a cookie, and a request after the grace gets a new,
	// empty session. The beginning of the session (AbsoluteTimeout) is
	// kept. Zero (the default) never rotates. It needs a [Web] field in T
	// and cookie sessions, and must be longer than RenewalGrace.
	RenewalTimeout time.Duration

	// RenewalGrace is how long the token a rotation replaced stays valid.
	// Zero means one minute. Keep it short: whoever holds the old token
	// reaches the session for that long. Login and Renew leave no grace:
	// the token before them is worthless at once (session fixation).
	RenewalGrace time.Duration

	// RememberFor is how long a session that [Login] was asked to
	// remember (LoginOptions.Remember) lasts from its login: its cookie is
	// persistent for that long (Max-Age), and the server ends the session
	// then, in place of AbsoluteTimeout. Zero means 30 days.
	RememberFor time.Duration

	// NoHostPrefix keeps the cookie's name as CookieName says. By default
	// a cookie that is Secure, has Path / and no Domain is named with the
	// prefix "__Host-" (CookieName "session" gives "__Host-session"),
	// which browsers accept only from a secure origin, for that host
	// alone and for the whole site: a sibling subdomain or a page served
	// over plain HTTP cannot plant or overwrite it (OWASP, RFC 6265bis).
	NoHostPrefix bool

	// Partitioned sets the cookie's Partitioned attribute (CHIPS): a
	// browser that partitions third-party cookies keeps it apart for each
	// top-level site the app is embedded in. For an app served in an
	// iframe on other sites (with SameSite None). It needs Secure: HTTP
	// panics if Insecure is set with it.
	Partitioned bool

	// ClearSiteData, when set, adds a Clear-Site-Data header with these
	// directives ("cache", "cookies", "storage", "executionContexts",
	// "clientHints", "prefetchCache", "prerenderCache", or "*") to the
	// response that destroys a session ([Destroy], [EndAllDevices]), so
	// that the browser forgets what the logged-in pages left behind.
	// "cookies" clears every cookie of the registrable domain, other
	// subdomains' too. An unknown directive makes HTTP panic. Nil (the
	// default) sends none.
	ClearSiteData []string

	// Devices, when set, keeps each user's logged-in sessions in that
	// index, for "your devices" and "log out everywhere": [Login] adds a
	// session to it, [Destroy] and the absolute timeout remove it, and
	// [ListDevices], [EndDevice], [EndOtherDevices] and [EndAllDevices]
	// use it. Make it with [NewDevices] for the same manager. It needs a
	// [Web] field in T. Nil (the default) keeps no index.
	Devices *Devices
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
// empty session, without a store read. When the Cookie header carries the
// name more than once, the first well-formed token counts. A well-formed
// token that the store does not know (forged, or expired) also gets a new
// empty session, and when that session is first stored it is stored under
// a fresh token, never under the one the client chose. The Set-Cookie
// header is sent only when the session is actually stored (a visitor whose
// new session was never written gets no cookie), after [Renew], and to
// expire the cookie after [Destroy]. Every response of a cookie session
// carries "Vary: Cookie", and one that sets the cookie also
// "Cache-Control: no-store" unless the handler set a Cache-Control of its
// own, so that a shared cache never hands one visitor's cookie to another.
//
// # Saving
//
// By default the session is committed (saved, moved, or deleted) when the
// response starts: on the handler's first WriteHeader, Write or Flush, or
// when the handler returns having written nothing. That is, changes are
// committed when the first byte of the body is written (or the status,
// whichever comes first), so that a save error can still become the
// response: it is reported to OnError (and logged: with neither OnError
// nor Logger set, to slog.Default()) and turns the response into a 500
// Internal Server Error (the handler's headers are dropped and its body is
// discarded). A handler that writes a status of 500 or above is a failed
// handler: its changes are discarded. After the commit the session is
// settled: session.From reports session.ErrNoSession, changes to a session
// the handler holds are not saved, and a panic or error after that point
// cannot undo what was committed. Set [HTTPOptions].Buffered to hold the
// response until the handler returns, so that a failure anywhere discards
// the changes. A handler that panics before the commit saves nothing.
//
// A handler that takes the connection over (http.NewResponseController(w).
// Hijack(), or a WebSocket library's upgrade, which does the same) starts
// its response there: the session is committed at the hijack, with status
// 101 unless the handler wrote another, and the key's lock is released,
// so that a WebSocket that lives for an hour does not hold the user's
// other requests for an hour. From then on the connection has no session:
// session.From reports session.ErrNoSession, and changes to a session the
// handler holds are not saved; to change the session while the connection
// lives, call Manager.Update with the key [KeyFrom] gives (the lock is
// not held). A commit that fails makes Hijack return an error, after a
// 500 sent in its place. A cookie the commit sets (a new session, [Renew],
// [Destroy]) is in w.Header() at the hijack, and reaches the client only
// if the handshake writes w.Header(): coder/websocket's Accept does; pass
// w.Header() as the response header of gorilla/websocket's Upgrade.
//
// A streamed response (Flush, server-sent events) is committed at its
// first byte, like any other: the key's lock is held until then, not for
// the whole stream; so write or flush at once, before waiting for the
// first event. With Buffered nothing goes out until the handler returns,
// and a stream holds the lock until its end: do not stream with Buffered.
//
// A load error (a store error, session.ErrCorrupt, ...) is reported to
// OnError (and logged, see [Options].Logger) and answered with a 500; the handler does not run (with Lazy,
// session.From returns the error to the handler instead; with
// ContinueOnLoadError the handler runs and finds the error in From). The
// stored value is left as it is; to start such a user over, delete the key
// in OnError.
//
// # Web sessions
//
// For a session type with a [Web] field, HTTPOptions adds the absolute
// timeout, token rotation, remember-me ([Login]), the index of each user's
// devices and the cookie options that the package documentation lists
// under "Web sessions"; their checks run when the session loads and at
// the commit, as above.
//
// # Locking
//
// Requests for one session key through one HTTP middleware value run one
// after the other (see [Options].NoLock): the key's lock is held from the
// load to the commit, and released on every path. Build the middleware
// once and wrap all routes with the same value; applied again inside
// itself (nested router groups), it reuses the outer session. So does
// another HTTP middleware of the same manager made with the same options;
// one made with other options (an AbsoluteTimeout, Devices or cookie of
// its own) cannot honour them inside the outer one, so it answers 500
// without running the handler and reports op "config" to OnError.
//
// The response writer passed to the handler implements http.Flusher and
// Unwrap, so http.NewResponseController works with it. HTTP panics if m is
// nil or an option is invalid (a negative CookieMaxAge, a cookie name,
// path or domain that a cookie cannot carry, a path that does not start
// with '/', a SameSite that is not an
// http.SameSite mode, SameSite None with Insecure).
func HTTP[T any](m *session.Manager[T], opts HTTPOptions) func(http.Handler) http.Handler {
	h := &httpMiddleware[T]{core: newCore(m, logByDefault(opts.Options)), opts: opts}
	o := &h.opts
	if o.CookieName == "" {
		o.CookieName = "session"
	}
	if o.CookiePath == "" {
		o.CookiePath = "/"
	}
	if o.SameSite == 0 {
		o.SameSite = http.SameSiteLaxMode
	}
	if !strings.HasPrefix(o.CookiePath, "/") {
		// Browsers ignore such a Path and scope the cookie to the
		// folder of the request that set it (RFC 6265, 5.2.4): the
		// session would be lost on every other page.
		panic(fmt.Sprintf("session/middleware: HTTPOptions.CookiePath %q does not start with '/'; browsers would ignore it", o.CookiePath))
	}
	if o.CookieMaxAge < 0 {
		panic(fmt.Sprintf("session/middleware: HTTPOptions.CookieMaxAge is negative (%v); use 0 for a cookie that lasts until the browser closes, or a positive duration", o.CookieMaxAge))
	}
	o.CookieMaxAge = ceilSeconds(o.CookieMaxAge) // Max-Age counts whole seconds
	if o.SameSite < http.SameSiteDefaultMode || o.SameSite > http.SameSiteNoneMode {
		// net/http writes no attribute for a value it does not know.
		panic(fmt.Sprintf("session/middleware: HTTPOptions.SameSite %d is not an http.SameSite mode; use http.SameSiteLaxMode, StrictMode or NoneMode", o.SameSite))
	}
	if o.SameSite == http.SameSiteNoneMode && o.Insecure {
		panic("session/middleware: HTTPOptions.SameSite is None with Insecure; browsers drop SameSite=None cookies without Secure, so use Lax or Strict for plain-HTTP development")
	}
	h.web = newWebAccess[T]()
	webOptions(o, m, h.web)
	if o.Key == nil {
		if err := h.cookie(newToken()).Valid(); err != nil {
			panic(fmt.Sprintf("session/middleware: HTTPOptions cookie settings are invalid (%v); check CookieName, CookiePath and CookieDomain", err))
		}
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
	opts HTTPOptions   // with the defaults filled in
	web  *webAccess[T] // T's Web field; nil when it has none
}

func (h *httpMiddleware[T]) serve(next http.Handler, w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	if h.core.nested(ctx) {
		if err := h.nestedIn(ctx); err != nil {
			h.core.report(ctx, "config", "", err)
			internalError(w)
			return
		}
		next.ServeHTTP(w, r) // the outer binding of this manager commits
		return
	}
	st := &httpState[T]{mw: h, ctx: ctx}
	var key string
	fresh := false
	if h.opts.Key != nil {
		k, err := h.opts.Key(r)
		if errors.Is(err, ErrNoKey) || (err == nil && k == "") {
			ctx = unbound[T](ctx)
			next.ServeHTTP(w, r.WithContext(ctx))
			return
		}
		if err != nil {
			h.core.report(ctx, "key", "", keyError(err))
			internalError(w)
			return
		}
		key = k
	} else {
		st.cookie = true
		addVary(w.Header())
		if tok, ok := requestToken(r, h.opts.CookieName); ok {
			st.token, st.fromClient = tok, true
		} else {
			st.token, fresh = newToken(), true
		}
		key = tokenKey(st.token)
	}

	hctx, cl := h.core.begin(ctx, key, fresh, st)
	defer cl.finish()
	st.cl = cl
	h.begin(st, cl, r)
	if err := cl.loadEager(hctx); err != nil {
		internalError(w)
		return
	}
	rw := &responseWriter{ResponseWriter: w, commit: st.commit, buffered: h.opts.Buffered}
	next.ServeHTTP(rw, r.WithContext(hctx))
	rw.finish()
}

// nestedIn returns an error when the binding of h's manager that ctx
// carries was made by an HTTP middleware with other options than h's: the
// outer one serves the request, so h's options (an absolute timeout, an
// index of devices, another cookie) would silently not hold.
func (h *httpMiddleware[T]) nestedIn(ctx context.Context) error {
	outer, ok := ctx.Value(activeKey[T]{}).(*httpState[T])
	if !ok || outer.mw == h {
		return nil
	}
	if name := differs(&outer.mw.opts, &h.opts); name != "" {
		return &session.Error{Op: "config", Err: fmt.Errorf("session/middleware: an HTTP middleware of this manager with other options (HTTPOptions.%s differs) is nested inside another; the outer one serves the request, so the inner one's options would not hold: wrap the routes in one middleware value, or give the inner ones their own Manager and CookieName", name)}
	}
	return nil
}

// differs returns the name of the first field of HTTPOptions (with the
// defaults filled in; the embedded Options aside, whose hooks may differ
// between router groups) in which a and b differ, or "". Functions are
// compared by their code, and nil-ness.
func differs(a, b *HTTPOptions) string {
	va, vb := reflect.ValueOf(a).Elem(), reflect.ValueOf(b).Elem()
	for i := range va.NumField() {
		f := va.Type().Field(i)
		if f.Anonymous {
			continue
		}
		x, y := va.Field(i), vb.Field(i)
		if f.Type.Kind() == reflect.Func {
			if x.IsNil() != y.IsNil() || (!x.IsNil() && x.Pointer() != y.Pointer()) {
				return f.Name
			}
			continue
		}
		if !reflect.DeepEqual(x.Interface(), y.Interface()) {
			return f.Name
		}
	}
	return ""
}

// cookie returns the session cookie holding tok, without an expiry.
func (h *httpMiddleware[T]) cookie(tok string) *http.Cookie {
	o := &h.opts
	return &http.Cookie{
		Name:        o.CookieName,
		Value:       tok,
		Path:        o.CookiePath,
		Domain:      o.CookieDomain,
		HttpOnly:    true,
		Secure:      !o.Insecure,
		SameSite:    o.SameSite,
		Partitioned: o.Partitioned,
	}
}

// ErrCommitted is returned by [Renew] and [Destroy] after the session was
// committed (the response started; see [HTTP]): the cookie and the stored
// session can no longer change.
var ErrCommitted = errors.New("session/middleware: the session was already committed (the response has started)")

// errNoHTTPSession says that no HTTP middleware for T bound the request.
var errNoHTTPSession = fmt.Errorf("%w: no HTTP session middleware for this type bound the request", session.ErrNoSession)

// Renew gives the cookie session of type T a new token and moves its data
// there; call it when the user logs in (or gains privileges), so that a
// token an attacker planted or saw before is worthless after (session
// fixation). At the commit, the data is written under the new token only
// if nothing is there, the old key is removed with a compare-and-delete
// against the value loaded, and the new cookie is set. If another instance
// saved the session in between, nothing is moved, nothing is lost, and the
// commit fails with session.ErrConflict (a 500, reported to OnError as
// "save"). Changes the handler makes to the session after Renew are kept.
// A session that holds nothing stored and unchanged gets no cookie.
//
// Renew loads the session first if it is lazy and not yet loaded, and
// returns that load's error. It returns an error matching
// session.ErrNoSession when the request has no cookie session of type T
// (HTTPOptions.Key is set, or no HTTP middleware for T bound it), and
// [ErrCommitted] after the commit or after [Destroy].
func Renew[T any](r *http.Request) error {
	st, err := state[T](r)
	if err != nil {
		return err
	}
	if !st.cookie {
		return fmt.Errorf("%w: Renew needs a cookie session; HTTPOptions.Key is set", session.ErrNoSession)
	}
	if _, err := session.From[T](r.Context()); err != nil {
		if st.isCommitted() {
			return ErrCommitted
		}
		return err
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.committed || st.destroy {
		return ErrCommitted
	}
	st.renew = true
	return nil
}

// Destroy ends the session of type T: at the commit, its key is deleted
// from the store with a compare-and-delete against the value loaded (a
// session another instance changed in between makes the commit fail with
// session.ErrConflict, and nothing is deleted), and, for a cookie session,
// the cookie is expired. Changes made to the session in this request are
// discarded. It loads the session first if it is lazy and not yet loaded,
// and returns that load's error. It returns an error matching
// session.ErrNoSession when no HTTP middleware for T bound the request,
// and [ErrCommitted] after the commit.
//
// A handler may also call Destroy on the session itself
// (session.From[T] then s.Destroy()): the same happens.
func Destroy[T any](r *http.Request) error {
	st, err := state[T](r)
	if err != nil {
		return err
	}
	if _, err := session.From[T](r.Context()); err != nil {
		if st.isCommitted() {
			return ErrCommitted
		}
		return err
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.committed {
		return ErrCommitted
	}
	st.destroy, st.renew, st.login = true, false, nil
	return nil
}

func (st *httpState[T]) isCommitted() bool {
	st.mu.Lock()
	defer st.mu.Unlock()
	return st.committed
}
