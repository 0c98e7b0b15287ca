// Package middleware loads a typed session before a handler and saves it
// after: for any handler shape that takes a context ([Middleware]), and for
// net/http ([HTTP]). Handlers read and change the session with
// [session.From].
//
//	mw := middleware.New(counters, func(ctx context.Context, u *Update) (string, error) {
//		if u.UserID == 0 {
//			return "", middleware.ErrNoKey
//		}
//		return strconv.FormatInt(u.UserID, 10), nil
//	}, middleware.Options{})
//	handle := mw.Wrap(func(ctx context.Context, u *Update) error {
//		s, err := session.From[Counter](ctx)
//		if err != nil {
//			return err
//		}
//		s.Data.N++
//		return nil
//	})
//
// # What is saved
//
// The session is saved only when the handler succeeds: a handler that
// returns an error (in net/http: that writes a status of 500 or above, or
// panics before its response starts) leaves the stored session as it was.
// Save writes nothing when the data did not change, and nothing for a new
// session nobody changed. A session a successful handler destroys
// (s.Destroy(), or [Destroy] in net/http) is deleted, whether it was
// stored or new and whatever its cookie; a failed handler's Destroy is
// discarded with its other changes.
//
// net/http commits when the response starts: changes are committed when
// the first byte of the body (or the status) is written, so that a save
// error can still become a 500; a panic or error after that point cannot
// undo them. [HTTPOptions].Buffered holds the response until the handler
// returns instead, so that a failure anywhere discards the changes.
//
// # Loading
//
// By default the session is loaded before the handler runs, and a load
// error stops the update ([Options].ContinueOnLoadError runs the handler
// anyway, with the error in session.From, and saves nothing). With
// [Options].Lazy it is loaded by the first session.From; a handler that
// never asks costs no store round trip. Once the middleware has decided
// whether to save, session.From on the handler's context reports
// [session.ErrNoSession].
//
// The session is the handler's until it returns: a goroutine the handler
// starts must be done with it (and with session.From) before the handler
// returns. The middleware ends the binding right after the handler
// returns, not at the handler's last instruction, so a goroutine woken by
// the handler's own return path (a deferred close of a channel it waits
// on) may still call session.From in between and get the session, whose
// changes then race with the save and are not saved (in 200,000 tries, 7
// to 11 did; woken after the wrapped handler returned, none). Wait for
// such goroutines before returning (a sync.WaitGroup), or let work that
// outlives the update change the session with Manager.Update, under the
// key [KeyFrom] gives.
//
// # Concurrency
//
// Two updates of one key that go through one middleware value run one
// after the other; different keys run in parallel. The lock is a
// [Locker]: by default a [LockTable] of the middleware's own, which holds
// only keys in use, and is released on every path (a panic in the key
// function, a Validate method, a migration step, the handler or the save
// included). Across processes, or across separate middleware values that
// do not share a Locker, the store's compare-and-swap catches the race:
// the later save fails with [session.ErrConflict], writes nothing, and is
// reported to [Options].OnError (and logged, see [Options].Logger) and
// returned (net/http: a 500). Nothing is
// lost silently; the update that failed may be retried. Moving a session
// to a new token ([Renew]) and deleting it ([Destroy]) are checked against
// what was loaded in the same way (compare-and-delete on a
// store.Deleter). All of this needs the compare-and-swap of the manager's
// own store (a store.Swapper; a wrapper of a store must forward
// CompareAndSwap): on a store without it only the Locker keeps updates
// apart, and across processes the later save overwrites the earlier one
// (the last writer wins), so [NewDevices] refuses such a manager.
//
// # Several sessions
//
// Sessions of different types live side by side in one context: wrap a
// handler with one middleware per type. A [KeyFunc] that returns
// [ErrNoKey] runs the handler without that session. A middleware nested
// inside a binding of the same manager (the same middleware applied twice,
// nested router groups) reuses the outer session; the outer one saves. An
// HTTP middleware nested so with other HTTPOptions than the outer one's
// answers 500 instead (op "config"; see [HTTP]): its options would not
// hold.
//
// # net/http
//
// [HTTP] finds the session by a cookie holding a random 256-bit token, or by
// a key function of yours (an API key, a user ID from your authentication).
// The store key of a cookie session is the SHA-256 of the token, so a
// leaked store key is not a valid cookie, and a token the store does not
// know is never adopted. [Renew] issues a new token on login; [Destroy]
// ends the session and expires the cookie.
//
// # Web sessions
//
// A session type with a [Web] field gets what the OWASP Session Management
// Cheat Sheet asks of a web session, through [HTTPOptions]: an absolute
// timeout next to the idle one (AbsoluteTimeout; Renew keeps the session's
// beginning), a token that rotates every RenewalTimeout with a short grace
// for the old one, [Login] with remember-me (a persistent cookie for this
// login only), and with [Devices] each user's list of sessions: "your
// devices", [EndOtherDevices] and "log out everywhere" ([EndAllDevices]),
// kept by compare-and-swap in one value per user, so that no session
// escapes it. [Flash] carries typed messages to the next page. The cookie
// is named with the __Host- prefix when it qualifies; Partitioned and
// Clear-Site-Data are options. docs/web.md has the checklist.
//
// # Adapters
//
// An adapter for another framework (Echo, Gin, Fiber, telebot, telego)
// needs no internal package: for a handler that takes a context, wrap it
// with [Middleware.Wrap] (U is the framework's request or update type); for
// a framework built on net/http, wrap [HTTP]; share a [Locker] for the
// per-key lock.
package middleware
