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

	mu        sync.Mutex
	committed bool // the commit ran (or is running)
	renew     bool // Renew: move the session to a new token
	destroy   bool // Destroy: delete the session, expire the cookie
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
	if st.destroy {
		s.Destroy() // again: a Reset after Destroy must not undo it
	}
	if st.cookie && (st.renew || (wasNew && st.fromClient)) {
		// A new token: after Renew, or for a session whose cookie
		// named nothing stored (never adopt a token the client
		// chose). Save checks the move against what was loaded.
		tok = newToken()
		s.MoveTo(tokenKey(tok))
	}
	if err := st.cl.save(st.ctx, s, false); err != nil {
		return err
	}
	if !st.cookie {
		return nil
	}

	o := st.mw.opts
	switch stored := !s.IsNew(); {
	case !stored && (st.destroy || !wasNew):
		// Destroyed (by Destroy, or by the handler's s.Destroy()).
		if st.fromClient {
			st.setCookie(header, "", -1)
		}
	case stored && (tok != st.token || !st.fromClient || o.CookieMaxAge > 0):
		// A new or moved token, or a persistent cookie to renew.
		st.setCookie(header, tok, o.CookieMaxAge)
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
