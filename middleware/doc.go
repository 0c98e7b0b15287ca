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
// returns an error (in net/http: that writes a status of 500 or above)
// leaves the stored session as it was. Save writes nothing when the data
// did not change, and nothing for a new session nobody changed.
//
// # Loading
//
// By default the session is loaded before the handler runs, and a load
// error stops the update. With [Options.Lazy] it is loaded by the first
// session.From; a handler that never asks costs no store round trip.
//
// # Concurrency
//
// Two updates of one key that go through one Middleware (or one HTTP
// middleware) run one after the other; different keys run in parallel. The
// lock table holds only keys in use. Across processes, or across separate
// Middleware values, the store's compare-and-swap catches the race: the
// later save fails with [session.ErrConflict], writes nothing, and is
// reported to [Options.OnError] and returned (net/http: a 500). Nothing is
// lost silently; the update that failed may be retried.
//
// # Several sessions
//
// Sessions of different types live side by side in one context: wrap a
// handler with one Middleware per type. A [KeyFunc] that returns
// [ErrNoKey] runs the handler without that session.
//
// # net/http
//
// [HTTP] finds the session by a cookie holding a random 256-bit token, or by
// a key function of yours (an API key, a user ID from your authentication).
// The store key of a cookie session is the SHA-256 of the token, so a
// leaked store key is not a valid cookie, and a token the store does not
// know is never adopted. [Renew] issues a new token on login; [Destroy]
// ends the session and expires the cookie. The session is saved before the
// response headers go out.
package middleware
