package middleware

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"time"

	session "github.com/typedsession/session"
)

// httpState is one request's HTTP session state: the binding, the cookie
// token, and what Renew and Destroy asked for, until the commit.
type httpState[T any] struct {
	mw  *httpMiddleware[T]
	ctx context.Context // the request's context, for the commit's store calls
	cl  *call[T]

	cookie     bool   // cookie mode
	token      string // cookie mode: the token the key derives from
	fromClient bool   // the token came in the request's cookie

	// Set while the session loads (under the binding's mutex), read by
	// the commit after the binding ended.
	resolved bool   // the token was a rotation's old one: the session is under the new token's key
	ended    bool   // the load ended the session the token named (its lifetime was over)
	initial  T      // a new session's data as it was loaded (a shallow copy)
	agent    string // the User-Agent to record in the index of devices, when it records one

	mu        sync.Mutex
	committed bool      // the commit ran (or is running)
	renew     bool      // Renew: move the session to a new token
	destroy   bool      // Destroy: delete the session, expire the cookie
	login     *loginReq // Login: log the session in (with renew)
}

// commit runs once, when the response is about to go out with status
// code: it ends the binding, saves the session (unless code says the
// handler failed), sets or expires the cookie in header, and releases the
// key lock. An error has been reported to OnError; the response must
// become a 500.
func (st *httpState[T]) commit(header http.Header, code int) error {
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.committed {
		return nil
	}
	st.committed = true
	defer st.cl.finish()
	s, loaded := st.cl.b.End()
	switch {
	case code >= 500:
		return nil // a failed handler: discard its changes
	case !loaded:
		return nil // never asked for (lazy), or the load failed: nothing to save
	}

	wasNew, tok := s.IsNew(), st.token
	w := st.mw.web.of(s) // nil when T has no Web field
	var was Web
	if w != nil {
		was = *w
	}
	if st.destroy {
		s.Destroy() // again: a Reset after Destroy must not undo it
	}
	// A new token: after Renew or Login, or for a session whose cookie
	// named nothing stored (never adopt a token the client chose).
	rekey := st.cookie && (st.renew || (wasNew && st.fromClient))
	now := time.Now()
	var p webPlan
	if w != nil && !st.destroy {
		var err error
		if p, err = st.plan(s, w, wasNew, rekey, now); err != nil {
			return err
		}
	}
	if rekey && !p.ended {
		// Save checks the move against what was loaded.
		tok = newToken()
		s.MoveTo(tokenKey(tok))
	}
	if err := st.cl.save(st.ctx, s, false); err != nil {
		return err
	}
	if p.rotate && !s.IsNew() { // not if the handler destroyed it
		var err error
		if s, tok, err = st.rotate(s, now); err != nil {
			return err
		}
	}
	if w != nil {
		if err := st.afterSave(s, was, rekey, p, now); err != nil {
			return err
		}
	}
	if !st.cookie {
		return nil
	}

	o := &st.mw.opts
	switch stored := !s.IsNew(); {
	case !stored && (st.destroy || !wasNew || st.ended):
		// Destroyed (by Destroy, or by the handler's s.Destroy()), or
		// ended by the load.
		if st.fromClient {
			st.setCookie(header, "", -1)
		}
		if len(o.ClearSiteData) > 0 {
			header.Set("Clear-Site-Data", clearSiteDataHeader(o.ClearSiteData))
		}
	case stored && (tok != st.token || !st.fromClient || (o.CookieMaxAge > 0 && !st.resolved)):
		// A new or moved token, or a persistent cookie to renew (not
		// with a rotation's old token: that would undo the rotation).
		st.setCookie(header, tok, o.cookieMaxAge(st.mw.web.of(s), now))
	}
	return nil
}

// setCookie sets the session cookie to tok; a negative maxAge expires it.
// A response that sets the cookie must not be stored by a shared cache,
// which would hand the cookie to the next visitor: it gets Cache-Control
// no-store unless the handler chose its own caching.
func (st *httpState[T]) setCookie(header http.Header, tok string, maxAge time.Duration) {
	c := st.mw.cookie(tok)
	switch {
	case maxAge < 0:
		c.MaxAge, c.Expires = -1, time.Unix(1, 0)
	case maxAge > 0:
		c.MaxAge, c.Expires = int(maxAge/time.Second), time.Now().Add(maxAge)
	}
	header.Add("Set-Cookie", c.String())
	if header.Get("Cache-Control") == "" {
		header.Set("Cache-Control", "no-store")
	}
}

// addVary adds "Vary: Cookie" to header unless it says so already.
func addVary(header http.Header) {
	for _, v := range header.Values("Vary") {
		for f := range strings.SplitSeq(v, ",") {
			if f = strings.TrimSpace(f); f == "*" || strings.EqualFold(f, "Cookie") {
				return
			}
		}
	}
	header.Add("Vary", "Cookie")
}

func (st *httpState[T]) manager() *session.Manager[T] { return st.mw.core.m }

// state returns the request's HTTP session state for T.
func state[T any](r *http.Request) (*httpState[T], error) {
	st, ok := r.Context().Value(activeKey[T]{}).(*httpState[T])
	if !ok {
		return nil, errNoHTTPSession
	}
	return st, nil
}
