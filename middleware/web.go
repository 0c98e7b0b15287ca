package middleware

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"math"
	"net/http"
	"reflect"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	session "github.com/typedsession/session"
)

// Web is what [HTTP] keeps in a session about the session itself: when it
// began, when its cookie token was issued, who logged in, whether to
// remember the login. Give the session type a field of this type (one, at
// the top level, exported; its name and tag are yours) to use the absolute
// timeout, token rotation, [Login], remember-me and [Devices]:
//
//	type Visitor struct {
//		Web   middleware.Web `json:"web"`
//		Prefs Prefs          `json:"prefs"`
//	}
//
// The middleware sets its fields; handlers read them (s.Data.Web.User is
// the user [Login] logged in) and leave them alone. A session type without
// such a field keeps working as before, without these features (HTTP
// panics when an option needs one).
type Web struct {
	// ID identifies the login in the user's list of devices ([Device].ID):
	// 128 random bits in base64url, set by Login. Empty before a login.
	ID string `json:"id,omitempty"`

	// User is the user that Login logged in; empty for a visitor who did
	// not log in.
	User string `json:"user,omitempty"`

	// Created is when the session began: when it was first stored, and
	// again at each Login. The absolute timeout counts from it; Renew and
	// token rotation keep it.
	Created time.Time `json:"created,omitzero"`

	// Issued is when the session's current cookie token was issued (its
	// first store, Login, Renew or a rotation); HTTPOptions.RenewalTimeout
	// counts from it. In a session that moved to a new token (see Moved),
	// it is the time of the move.
	Issued time.Time `json:"issued,omitzero"`

	// Seen is when the user's index of sessions ([Devices]) last recorded
	// this session as seen; zero when no index lists it.
	Seen time.Time `json:"seen,omitzero"`

	// Remember says that Login was asked to remember this session: its
	// cookie is persistent, and it lasts HTTPOptions.RememberFor.
	Remember bool `json:"remember,omitempty"`

	// Prev is the session key of the token this session rotated away
	// from, kept as a forwarding entry for HTTPOptions.RenewalGrace and
	// deleted by the first response after it.
	Prev string `json:"prev,omitempty"`

	// Moved, in the forwarding entry a rotation leaves under the old
	// token, is the session key the session moved to. The middleware
	// follows it during the grace and never hands such a value to a
	// handler.
	Moved string `json:"moved,omitempty"`
}

// LoginOptions are the options of one [Login].
type LoginOptions struct {
	// Remember makes this session's cookie persistent: it is kept across
	// browser restarts for HTTPOptions.RememberFor from the login (a
	// "remember me" box), and the session lasts that long on the server
	// (instead of HTTPOptions.AbsoluteTimeout), unless the idle timeout
	// ends it first. False (the default) gives a browser-session cookie,
	// one the browser forgets when it closes (unless
	// HTTPOptions.CookieMaxAge says otherwise).
	Remember bool
}

// ErrNotLoggedIn is returned by the functions of the devices list for a
// session that no [Login] logged in.
var ErrNotLoggedIn = errors.New("session/middleware: the session is not logged in (see Login)")

// loginReq is what Login asked for, until the commit.
type loginReq struct {
	user     string
	remember bool
}

// Login logs the cookie session of type T in as user, at the commit: as
// [Renew] it moves the session to a new token (the data stays, a token
// seen before the login is worth nothing after it), and in T's [Web]
// field it records the user, a new login ID, the beginning of the
// session's lifetime (the absolute timeout counts from the login) and
// opts.Remember. With HTTPOptions.Devices set, the session is added to the
// user's list of devices, and the new cookie goes out only once the list
// holds it (see [Devices] for why, and for the limit on a user's
// sessions). A session logged in as another user before leaves that
// user's list.
//
// Call it once the user proved who they are (a password checked). It
// loads the session first if it is lazy. It returns an error matching
// session.ErrNoSession when the request has no cookie session of type T,
// an error when T has no Web field or user is empty (or, with Devices, is
// not a valid store key), the load's error, and [ErrCommitted] after the
// commit or after [Destroy]. A login that "log out everywhere" for the same
// user overtakes (see [Devices]) fails at the commit with
// session.ErrConflict: a 500, and no cookie.
func Login[T any](r *http.Request, user string, opts LoginOptions) error {
	st, err := state[T](r)
	if err != nil {
		return err
	}
	if !st.cookie {
		return fmt.Errorf("%w: Login needs a cookie session; HTTPOptions.Key is set", session.ErrNoSession)
	}
	if st.mw.web == nil {
		return errNoWebField[T]()
	}
	if user == "" {
		return errors.New("session/middleware: Login with an empty user")
	}
	if d := st.mw.opts.Devices; d != nil {
		if err := d.checkUser(user); err != nil {
			return err
		}
	}
	if err := st.load(r); err != nil {
		return err
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.committed || st.destroy {
		return ErrCommitted
	}
	st.login = &loginReq{user: user, remember: opts.Remember}
	st.renew = true
	return nil
}

// load loads the request's session (if lazy), mapping a From after the
// commit to ErrCommitted.
func (st *httpState[T]) load(r *http.Request) error {
	if _, err := session.From[T](r.Context()); err != nil {
		if st.isCommitted() {
			return ErrCommitted
		}
		return err
	}
	return nil
}

func errNoWebField[T any]() error {
	return fmt.Errorf("session/middleware: the session type %v has no middleware.Web field; add one (Web middleware.Web `json:\"web\"`)", reflect.TypeFor[T]())
}

// webAccess finds the Web field of T's values.
type webAccess[T any] struct {
	index []int
}

// newWebAccess returns the accessor of T's Web field, nil when T has none,
// and panics when T has more than one.
func newWebAccess[T any]() *webAccess[T] {
	t := reflect.TypeFor[T]()
	if t.Kind() != reflect.Struct {
		return nil
	}
	var found *webAccess[T]
	for i := range t.NumField() {
		f := t.Field(i)
		if f.Type != reflect.TypeFor[Web]() || !f.IsExported() {
			continue
		}
		if found != nil {
			panic(fmt.Sprintf("session/middleware: the session type %v has more than one middleware.Web field; keep one", t))
		}
		found = &webAccess[T]{index: f.Index}
	}
	return found
}

// of returns the Web field of s's data (nil for a nil accessor).
func (a *webAccess[T]) of(s *session.Session[T]) *Web {
	if a == nil {
		return nil
	}
	return reflect.ValueOf(&s.Data).Elem().FieldByIndex(a.index).Addr().Interface().(*Web)
}

// Defaults of the web options.
const (
	defaultRenewalGrace = time.Minute
	defaultRememberFor  = 30 * 24 * time.Hour
)

// hostPrefix and securePrefix are the cookie name prefixes of RFC 6265bis
// (section 4.1.3): a __Host- cookie must be Secure, have Path=/ and no
// Domain; a __Secure- cookie must be Secure. Browsers refuse others, and
// match the prefixes case-insensitively ("__host-" is one too).
const (
	hostPrefix   = "__Host-"
	securePrefix = "__Secure-"
)

// hasPrefixFold reports whether name begins with prefix, ignoring ASCII
// case, as browsers match the cookie name prefixes.
func hasPrefixFold(name, prefix string) bool {
	return len(name) >= len(prefix) && strings.EqualFold(name[:len(prefix)], prefix)
}

// clearSiteData lists the directives of the Clear-Site-Data header (W3C
// Clear Site Data).
var clearSiteData = []string{"cache", "cookies", "storage", "executionContexts", "clientHints", "prefetchCache", "prerenderCache", "*"}

// webOptions checks and completes the options of the web features for a
// session type with the Web accessor web (nil: none) and manager m. It
// panics, as HTTP does, on options that cannot work.
func webOptions[T any](o *HTTPOptions, m *session.Manager[T], web *webAccess[T]) {
	need := func(what string) {
		if web == nil {
			panic(fmt.Sprintf("session/middleware: HTTPOptions.%s needs a middleware.Web field in the session type %v, where the middleware keeps the session's beginning and login; add one (Web middleware.Web `json:\"web\"`)", what, reflect.TypeFor[T]()))
		}
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{{"AbsoluteTimeout", o.AbsoluteTimeout}, {"RenewalTimeout", o.RenewalTimeout}, {"RenewalGrace", o.RenewalGrace}, {"RememberFor", o.RememberFor}} {
		if d.v < 0 {
			panic(fmt.Sprintf("session/middleware: HTTPOptions.%s is negative (%v)", d.name, d.v))
		}
	}
	if o.AbsoluteTimeout > 0 {
		need("AbsoluteTimeout")
	}
	if o.RenewalTimeout > 0 {
		need("RenewalTimeout")
		if o.Key != nil {
			panic("session/middleware: HTTPOptions.RenewalTimeout rotates cookie tokens, but HTTPOptions.Key is set (no cookie)")
		}
	}
	if o.RenewalGrace == 0 {
		o.RenewalGrace = defaultRenewalGrace
	}
	if o.RenewalTimeout > 0 && o.RenewalTimeout <= o.RenewalGrace {
		panic(fmt.Sprintf("session/middleware: HTTPOptions.RenewalTimeout (%v) must be longer than RenewalGrace (%v)", o.RenewalTimeout, o.RenewalGrace))
	}
	if o.RememberFor == 0 {
		o.RememberFor = defaultRememberFor
	}
	if o.Devices != nil {
		need("Devices")
		if o.Devices.owner != any(m) {
			panic("session/middleware: HTTPOptions.Devices was made by NewDevices for another session Manager; make one for this one")
		}
	}
	for _, d := range o.ClearSiteData {
		if !slices.Contains(clearSiteData, d) {
			panic(fmt.Sprintf("session/middleware: HTTPOptions.ClearSiteData has %q, which is not one of %s", d, strings.Join(clearSiteData, ", ")))
		}
	}
	if o.Partitioned && o.Insecure {
		panic("session/middleware: HTTPOptions.Partitioned needs a Secure cookie (browsers drop a Partitioned cookie without it), but Insecure is set")
	}
	// The cookie's name: __Host- by default when the cookie qualifies.
	name := o.CookieName
	switch {
	case hasPrefixFold(name, hostPrefix):
		if o.Insecure || o.CookieDomain != "" || o.CookiePath != "/" {
			panic(fmt.Sprintf("session/middleware: HTTPOptions.CookieName %q has the __Host- prefix, which browsers accept only on a Secure cookie with Path / and no Domain; drop the prefix or the conflicting option", name))
		}
	case hasPrefixFold(name, securePrefix):
		if o.Insecure {
			panic(fmt.Sprintf("session/middleware: HTTPOptions.CookieName %q has the __Secure- prefix, which browsers accept only on a Secure cookie, but Insecure is set", name))
		}
	case !o.NoHostPrefix && !o.Insecure && o.CookieDomain == "" && o.CookiePath == "/":
		o.CookieName = hostPrefix + name
	}
}

// clearSiteDataHeader returns the header value for the directives ds.
func clearSiteDataHeader(ds []string) string {
	q := make([]string, len(ds))
	for i, d := range ds {
		q[i] = `"` + d + `"`
	}
	return strings.Join(q, ", ")
}

// newID returns a fresh login ID: 128 random bits in base64url.
func newID() string {
	var b [16]byte
	rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// lifetime returns how long the session of w lasts from w.Created: the
// RememberFor of a remembered session, else AbsoluteTimeout (0: no limit).
func (o *HTTPOptions) lifetime(w *Web) time.Duration {
	if w.Remember {
		return o.RememberFor
	}
	return o.AbsoluteTimeout
}

// expired reports whether the session of w has outlived its absolute
// timeout at now.
func (o *HTTPOptions) expired(w *Web, now time.Time) bool {
	limit := o.lifetime(w)
	return limit > 0 && !w.Created.IsZero() && !now.Before(w.Created.Add(limit))
}

// until returns the end of the session of w's lifetime, or the zero time
// when it has none.
func (o *HTTPOptions) until(w *Web) time.Time {
	if limit := o.lifetime(w); limit > 0 && !w.Created.IsZero() {
		return w.Created.Add(limit)
	}
	return time.Time{}
}

// cookieMaxAge returns the Max-Age of the cookie of the session of w (nil:
// T has no Web field) at now: for a remembered session the time left of
// its RememberFor; otherwise CookieMaxAge, at most the time left before
// the absolute timeout; 0 for a browser-session cookie. It is rounded up
// to whole seconds, and at least one.
func (o *HTTPOptions) cookieMaxAge(w *Web, now time.Time) time.Duration {
	maxAge := o.CookieMaxAge
	if w != nil {
		if w.Remember {
			maxAge = o.RememberFor
		}
		if end := o.until(w); maxAge > 0 && !end.IsZero() {
			maxAge = min(maxAge, end.Sub(now))
		}
	}
	if maxAge <= 0 {
		return 0
	}
	return max(ceilSeconds(maxAge), time.Second)
}

// ceilSeconds returns d (not negative) rounded up to whole seconds, the
// unit of a cookie's Max-Age; near the largest duration, the largest
// whole number of seconds instead of an overflow.
func ceilSeconds(d time.Duration) time.Duration {
	r := d % time.Second
	if r == 0 {
		return d
	}
	if d > math.MaxInt64-(time.Second-r) {
		return d - r
	}
	return d + time.Second - r
}

// agentLen is the most bytes of a User-Agent header an index keeps.
const agentLen = 256

// truncate returns s cut to at most n bytes on a rune boundary, with
// invalid UTF-8 replaced.
func truncate(s string, n int) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}
