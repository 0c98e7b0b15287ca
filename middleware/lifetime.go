package middleware

// The lifetime of a web session, for a session type with a Web field: the
// absolute timeout and the forwarding entries of token rotation when a
// session loads, and at the commit the stamps, the rotation, Login and the
// index of devices. Every step that lists a session in the index comes
// after the session's last write and before its cookie goes out; every
// step that removes one comes after its delete (see Devices).

import (
	"context"
	"errors"
	"net/http"
	"reflect"
	"time"

	session "github.com/typedsession/session"
	"github.com/typedsession/session/internal/errs"
)

// maxHops is the most forwarding entries one request follows.
const maxHops = 3

// begin prepares the request's state for the web features.
func (h *httpMiddleware[T]) begin(st *httpState[T], cl *call[T], r *http.Request) {
	if h.web == nil {
		return
	}
	cl.check = st.checkLoaded
	if d := h.opts.Devices; d != nil && d.agent {
		st.agent = truncate(r.UserAgent(), agentLen)
	}
}

// checkLoaded is the call's check: it follows a rotation's forwarding
// entry during its grace, and ends a session whose lifetime is over (or
// that a login put in no index of devices, or that the index counts as
// gone: not recorded as seen for longer than Devices.unseen allows) before
// any handler sees it, giving the request a new session instead.
func (st *httpState[T]) checkLoaded(ctx context.Context, cl *call[T], s *session.Session[T]) (*session.Session[T], error) {
	web, o, m := st.mw.web, &st.mw.opts, st.manager()
	if s.IsNew() {
		st.initial = s.Data
		return s, nil
	}
	w := web.of(s)
	now := time.Now()
	for hops := 0; w.Moved != ""; hops++ {
		if !st.cookie || hops >= maxHops || now.Sub(w.Issued) > o.RenewalGrace {
			// Past its grace, the old token is worth nothing.
			if err := m.Delete(ctx, s.Key()); err != nil {
				cl.c.report(ctx, "load", s.Key(), err)
			}
			st.ended = true
			return st.fresh(s.Key())
		}
		if err := cl.relock(ctx, w.Moved); err != nil {
			return nil, err
		}
		next, err := m.Load(ctx, w.Moved)
		if err != nil {
			cl.c.report(ctx, "load", w.Moved, err)
			return nil, err
		}
		st.resolved = true
		if next.IsNew() {
			st.initial = next.Data
			return next, nil
		}
		s, w = next, web.of(next)
	}
	d := o.Devices
	if o.expired(w, now) || (d != nil && w.User != "" && (w.Seen.IsZero() || d.unseen(w.Seen, now))) {
		st.end(ctx, s, *w)
		st.ended = true
		return st.fresh(s.Key())
	}
	return s, nil
}

// fresh returns a new session for key (which the commit moves to a new
// token if it is stored).
func (st *httpState[T]) fresh(key string) (*session.Session[T], error) {
	s, err := st.manager().NewSession(key)
	if err != nil {
		return nil, err
	}
	st.initial = s.Data
	return s, nil
}

// end ends the stored session s, whose Web field was w, as a logout
// would: its key, its forwarding entry and its entry in the index of
// devices (in that order). Failures are reported, not returned: the
// request gets a new session anyway, and the next request that brings
// the token finds the old one again and ends it again.
func (st *httpState[T]) end(ctx context.Context, s *session.Session[T], w Web) {
	m, c := st.manager(), st.cl.c
	if err := m.Delete(ctx, s.Key()); err != nil {
		c.report(ctx, "load", s.Key(), err)
		return
	}
	if w.Prev != "" {
		if err := m.Delete(ctx, w.Prev); err != nil {
			c.report(ctx, "load", w.Prev, err)
		}
	}
	if d := st.mw.opts.Devices; d != nil && w.User != "" && w.ID != "" {
		if err := d.remove(ctx, w.User, w.ID, s.Key()); err != nil {
			c.report(ctx, "devices", s.Key(), &session.Error{Op: "devices", Key: s.Key(), Err: err})
		}
	}
}

// webPlan is what the commit of a session with a Web field does besides
// the save.
type webPlan struct {
	rotate bool                          // move to a new token, leaving a forwarding entry
	ended  bool                          // the index no longer lists the session: destroyed
	ix     *session.Session[deviceIndex] // Login with Devices: the index read before the write
	drop   string                        // a forwarding entry to delete after the save
}

// plan updates w, the Web field of s, for the commit, at now: a login's
// fields, the stamps of a session's beginning, a new token's issue time;
// and decides whether to rotate the token. With Devices, it reads the
// index before a login writes, and records the session as seen once per
// SeenEvery, before the save (a session the index no longer lists is
// destroyed then).
func (st *httpState[T]) plan(s *session.Session[T], w *Web, wasNew, rekey bool, now time.Time) (webPlan, error) {
	o, d := &st.mw.opts, st.mw.opts.Devices
	var p webPlan
	if l := st.login; l != nil {
		p.drop = w.Prev
		*w = Web{ID: newID(), User: l.user, Remember: l.remember, Created: now, Issued: now}
		if d != nil {
			w.Seen = now
			ix, err := d.begin(st.ctx, l.user)
			if err != nil {
				return p, st.devicesError(err)
			}
			p.ix = ix
		}
		return p, nil
	}
	if wasNew {
		// Stamp a new session only when it is stored anyway: a visitor
		// whose session nobody changed gets no cookie.
		if !reflect.DeepEqual(s.Data, st.initial) {
			w.Created, w.Issued = now, now
		}
		return p, nil
	}
	if w.Created.IsZero() { // stored before these features
		w.Created = now
	}
	if w.Issued.IsZero() {
		w.Issued = w.Created
	}
	if w.Prev != "" && (rekey || now.Sub(w.Issued) > o.RenewalGrace) {
		p.drop, w.Prev = w.Prev, ""
	}
	switch {
	case rekey:
		w.Issued = now
	case st.cookie && !st.resolved && o.RenewalTimeout > 0 && now.Sub(w.Issued) >= o.RenewalTimeout:
		p.rotate = true
	}
	if d == nil || w.User == "" {
		return p, nil
	}
	if rekey || p.rotate {
		w.Seen = now // afterSave lists the new key
		return p, nil
	}
	if now.Sub(w.Seen) < d.seenEvery {
		return p, nil
	}
	keys := []string{s.Key()}
	if w.Prev != "" {
		keys = append(keys, w.Prev)
	}
	switch err := d.touch(st.ctx, w.User, w.ID, keys, st.agent, now); {
	case err == nil:
		w.Seen = now
	case errors.Is(err, errEnded):
		// Ended from another device since this request loaded it.
		s.Destroy()
		p.ended = true
	default:
		// Not recorded: the next request tries again.
		st.devicesError(err)
	}
	return p, nil
}

// rotate moves s, just saved, to a new token and returns the session
// under it and the token. It writes the data under the new key (only if
// nothing is there), then replaces what s holds under the old key with a
// forwarding entry
// (the initial value, or the data when that does not validate, with Moved
// set) by compare-and-swap: a session deleted or changed in between (a
// logout, log out everywhere, another instance's save) makes it fail
// with session.ErrConflict and removes the new key again, so that a
// rotation never brings an ended session back.
func (st *httpState[T]) rotate(s *session.Session[T], now time.Time) (*session.Session[T], string, error) {
	m, web := st.manager(), st.mw.web
	tok := newToken()
	next, err := m.NewSession(tokenKey(tok))
	if err != nil {
		return nil, "", err
	}
	next.Data = s.Data
	nw := web.of(next)
	nw.Issued, nw.Prev = now, s.Key()
	if err := st.cl.save(st.ctx, next, false); err != nil {
		return nil, "", err
	}
	data := s.Data
	s.Reset()
	if m.Validate(s.Data) != nil {
		s.Data = data
	}
	*web.of(s) = Web{Issued: now, Moved: next.Key()}
	if err := st.cl.save(st.ctx, s, false); err != nil {
		if errs.DefiniteConflict(err) {
			next.Destroy()
			if uerr := m.Save(st.ctx, next); uerr != nil {
				st.cl.c.report(st.ctx, "save", next.Key(), uerr)
			}
		}
		return nil, "", err
	}
	return next, tok, nil
}

// afterSave does what comes after the save of s (was is its Web field as
// loaded): delete the forwarding entry it no longer needs, and with
// Devices list a login's session or a new token's key before the cookie
// goes out (removing the session again when the index refuses it), or
// remove a destroyed session from the index.
func (st *httpState[T]) afterSave(s *session.Session[T], was Web, rekey bool, p webPlan, now time.Time) error {
	m, o, d, ctx := st.manager(), &st.mw.opts, st.mw.opts.Devices, st.ctx
	if p.drop != "" {
		if err := m.Delete(ctx, p.drop); err != nil {
			st.cl.c.report(ctx, "save", p.drop, err)
		}
	}
	stored := !s.IsNew()
	if !stored && was.Prev != "" && (d == nil || was.ID == "") {
		if err := m.Delete(ctx, was.Prev); err != nil {
			st.cl.c.report(ctx, "save", was.Prev, err)
		}
	}
	if d == nil {
		return nil
	}
	w := st.mw.web.of(s)
	switch {
	case st.login != nil && stored:
		e := deviceEntry{ID: w.ID, Keys: []string{s.Key()}, Created: now, Seen: now, Until: o.until(w), Remember: w.Remember}
		if d.agent {
			e.Agent = st.agent
		}
		replace := ""
		if was.User == w.User {
			replace = was.ID
		}
		if err := d.add(ctx, w.User, p.ix, e, replace); err != nil {
			st.unlist(s.Key(), "")
			return st.devicesError(err)
		}
		if was.User != "" && was.User != w.User && was.ID != "" {
			if err := d.End(ctx, was.User, was.ID); err != nil {
				st.devicesError(err)
			}
		}
	case (rekey || p.rotate) && stored && w.User != "":
		keys := []string{s.Key()}
		if w.Prev != "" {
			keys = append(keys, w.Prev)
		}
		if err := d.touch(ctx, w.User, w.ID, keys, st.agent, now); err != nil {
			st.unlist(s.Key(), w.Prev)
			return st.devicesError(err)
		}
	case !stored && !p.ended && was.User != "" && was.ID != "":
		// Destroyed: its key is gone, now its entry (and, through it,
		// its forwarding entry).
		if err := d.remove(ctx, was.User, was.ID, st.cl.key); err != nil {
			st.devicesError(err)
		}
	}
	return nil
}

// unlist deletes the keys of a session the index would not list, so that
// no session whose cookie never went out is left behind.
func (st *httpState[T]) unlist(keys ...string) {
	for _, k := range keys {
		if k == "" {
			continue
		}
		if err := st.manager().Delete(st.ctx, k); err != nil {
			st.cl.c.report(st.ctx, "devices", k, &session.Error{Op: "devices", Key: k, Err: err})
		}
	}
}

// devicesError reports err, an error of the index of devices, to OnError
// (op "devices") and returns it as the commit's error: a *session.Error
// matching session.ErrConflict when the index no longer lists the session
// or refused a login.
func (st *httpState[T]) devicesError(err error) error {
	err = &session.Error{Op: "devices", Key: st.cl.key, Err: conflictError(err)}
	st.cl.c.report(st.ctx, "devices", st.cl.key, err)
	return err
}
