package middleware

import (
	"context"
	"errors"
	"log/slog"

	session "github.com/typedsession/session"
	"github.com/typedsession/session/internal/errs"
)

// ErrNoKey is returned by a [KeyFunc] for an update that has no session: no
// user, a channel post, a health check. The handler then runs without a
// session, and [session.From] reports [session.ErrNoSession]. Return it
// wrapped if you like; the middleware tests with errors.Is.
var ErrNoKey = errors.New("session/middleware: the update has no session key")

// Handler is any handler that takes a context and an update of type U: a
// chat update, a queue message, a job. U is often a pointer.
type Handler[U any] func(ctx context.Context, u U) error

// KeyFunc returns the session key of an update: a user ID, a chat ID. It
// returns [ErrNoKey] (or an error wrapping it) when the update has no
// session; an empty key with a nil error means the same. Any other error
// stops the update: the handler does not run, and the middleware returns
// (and reports to OnError) a *session.Error with Op "key" wrapping it.
// A KeyFunc that panics holds no lock: the panic goes to the caller.
type KeyFunc[U any] func(ctx context.Context, u U) (string, error)

// Options configures a [Middleware], and is embedded in [HTTPOptions]. The
// zero value means the defaults: eager loading, a load error stops the
// update, per-key serialization within the middleware value, no error hook,
// errors logged to slog.Default() by net/http and tgbot (see Logger).
type Options struct {
	// Lazy loads the session only when the handler first calls
	// session.From for it. A handler that never does costs no store round
	// trip at all (and takes no per-key lock). The default loads the
	// session before the handler runs, so that a load error stops the
	// update before the handler does anything.
	Lazy bool

	// ContinueOnLoadError runs the handler even when the session cannot
	// be loaded (the store is down, the stored value is corrupt): the
	// handler's session.From returns the load's error, so it can answer
	// without a session, and nothing is saved. The error still reaches
	// OnError (op "load", or "lock"). The default stops the update: the
	// generic handler returns the error, net/http answers 500. With Lazy,
	// the handler always sees the error in session.From; this option only
	// matters for eager loading.
	ContinueOnLoadError bool

	// NoLock turns off per-key serialization. By default two updates of
	// the same key that reach one middleware value run one after the
	// other (different keys run in parallel), so they never conflict with
	// each other; the lock is taken before the load and released after
	// the save, on every path, panics included. Updates in other
	// processes, or through another middleware value, are not serialized
	// (unless they share a Locker that spans them): there compare-and-swap
	// in the store turns a lost update into session.ErrConflict (see
	// [Middleware.Wrap]).
	NoLock bool

	// RepeatOnConflict, for handlers that are safe to run more than once,
	// runs the whole update again (load, handler, save) when its save
	// fails with session.ErrConflict, with the backoff and attempt limit
	// of session.Manager.Update (Manager.Retry); each attempt loads the
	// session anew, and the conflicts retried are not reported to OnError.
	// Only a handler whose side effects may repeat (none, or idempotent
	// ones) may say so: the handler of a conflicting attempt has already
	// run. The default returns the conflict. The generic wrapper and tgbot
	// honour it; net/http does not (a handler that has written to the
	// client cannot run again).
	RepeatOnConflict bool

	// Locker is the per-key lock. Nil means a [LockTable] of this
	// middleware value's own. Give several middleware values one
	// LockTable to serialize them together, or a Locker backed by a shared
	// store to serialize across processes. Ignored with NoLock. A nil
	// pointer (a LockTable never made) makes New and HTTP panic.
	Locker Locker

	// OnError, when set, is called with every error of the session
	// machinery, before the middleware returns it (or answers 500). op is
	//
	//   - "key": the key function failed (key is "");
	//   - "lock": ctx ended while waiting for the key's lock;
	//   - "load": the session could not be loaded;
	//   - "save": the session could not be saved, deleted or moved
	//     (session.ErrConflict when another writer changed it first);
	//   - "devices": the index of a user's sessions (HTTPOptions.Devices)
	//     could not be read or written, or refused a login or a new token
	//     (session.ErrConflict: the session was ended, or the user logged
	//     out everywhere, meanwhile). A failed login or new token fails
	//     the request; a failed record of a session as seen does not.
	//   - "config": an HTTP middleware of the manager with other
	//     HTTPOptions is nested inside another (see [HTTP]), so its options
	//     cannot hold; it answers 500 (key is "").
	//
	// key is the session key (for cookie sessions, the SHA-256 of the
	// token). Errors of the handler itself are not reported. Use it to log;
	// errors.Is(err, session.ErrConflict) tells a conflict apart, and every
	// err is a *session.Error (errors.As) naming the same op. Beware that
	// err's message names the key and may quote session data (the value a
	// validation refused).
	OnError func(ctx context.Context, op, key string, err error)

	// Logger, when set, logs every error that OnError would see (OnError
	// is still called): at error level ("session middleware: save
	// failed"; a context.Canceled, a client that went away, at warn level)
	// with the attributes op and error. The error attribute says what
	// went wrong without session data and without the key: the kind of
	// error (session.ErrInvalid's "session: invalid", ...), each field a
	// validation refused with its rule but not its value, and for a store
	// or context error its cause ("dial tcp 127.0.0.1:6379: connect:
	// connection refused"). When both Logger and OnError are nil, [HTTP]
	// (and the web framework adapters built on it) and tgbot log to
	// slog.Default(), whose errors would otherwise go unseen (a bare 500);
	// the generic [Middleware] logs nothing, since it returns every error
	// to its caller.
	Logger *slog.Logger

	// LogKeys adds the session key (a user identifier; for cookie
	// sessions the SHA-256 of the token) to Logger's records as the
	// attribute key. False (the default) leaves keys out.
	LogKeys bool
}

// Middleware loads the session of type T for each update before a handler
// and saves it after. Create one with [New] and wrap any number of handlers
// with it: they share its per-key lock. A Middleware is safe for concurrent
// use.
type Middleware[U, T any] struct {
	core *core[T]
	key  KeyFunc[U]
}

// New returns a Middleware that keeps sessions of type T in m, keyed by key.
// It panics if m or key is nil, or Options.Locker is a nil pointer.
func New[U, T any](m *session.Manager[T], key KeyFunc[U], opts Options) *Middleware[U, T] {
	if key == nil {
		panic("session/middleware: nil KeyFunc; pass a function that returns the update's user or chat ID")
	}
	return &Middleware[U, T]{core: newCore(m, opts), key: key}
}

// Wrap returns a handler that, for each update:
//
//  1. asks the KeyFunc for the key. With ErrNoKey (or ""), next runs with a
//     context in which session.From[T] reports session.ErrNoSession, and
//     its result is returned. Any other error is reported to OnError
//     (op "key") and returned as a *session.Error with Op "key"; next does
//     not run.
//  2. takes the key's lock (unless Options.NoLock) and loads the session
//     (unless Options.Lazy, in which case both happen in the first
//     session.From[T]). A load error is reported to OnError (op "load")
//     and returned; next does not run, unless
//     Options.ContinueOnLoadError, which runs next with the error in
//     session.From and saves nothing. In lazy mode From returns the error
//     to next instead, and OnError is called too.
//  3. runs next with the session bound to its context; next reads and
//     changes it through session.From[T].
//  4. ends the binding: from here on session.From[T] on next's context
//     (from a goroutine next started, say) reports session.ErrNoSession.
//     A goroutine that runs From while next is returning (woken by one of
//     next's defers) may still get the session: next must wait for the
//     goroutines that use it (see the package documentation, # Loading).
//  5. if next returned an error (or panicked), discards the changes: nothing
//     is saved, and next's error is returned as it is.
//  6. otherwise saves the session, if it was loaded (Save writes nothing
//     when the data did not change, and deletes a session the handler
//     destroyed). A save error is reported to OnError (op "save") and
//     returned. On a store with compare-and-swap, a save that finds the
//     session changed by another process since the load fails with
//     session.ErrConflict and writes nothing: next's side effects have
//     happened but its session changes have not. Retry the update if it is
//     safe to run next twice; within one Middleware the per-key lock makes
//     conflicts come only from outside.
//  7. releases the key's lock, on every path: a panic in the KeyFunc, the
//     load (a Validate method, a migration step), next or the save
//     included.
//
// Wrapping a handler with several Middleware values of different T gives
// the handler several sessions, each bound and saved on its own: the
// innermost is saved first, and a failed save of an inner one makes the
// outer one see an error and discard its changes too. A Middleware nested
// inside another binding of T by the same manager (the same middleware
// applied twice, nested router groups) does nothing: the handler gets the
// outer session, and the outer one saves it.
func (mw *Middleware[U, T]) Wrap(next Handler[U]) Handler[U] {
	if next == nil {
		panic("session/middleware: Wrap(nil)")
	}
	c := mw.core
	return func(ctx context.Context, u U) error {
		if c.nested(ctx) {
			return next(ctx, u)
		}
		key, err := mw.key(ctx, u)
		if errors.Is(err, ErrNoKey) || (err == nil && key == "") {
			ctx = unbound[T](ctx)
			return next(ctx, u)
		}
		if err != nil {
			err = keyError(err)
			c.report(ctx, "key", "", err)
			return err
		}
		if !c.opts.RepeatOnConflict {
			return mw.once(ctx, key, u, next)
		}
		err = c.m.Retry(ctx, func() error { return mw.once(ctx, key, u, next) })
		if errs.DefiniteConflict(err) {
			c.report(ctx, "save", key, err) // the attempts ran out
		}
		return err
	}
}

// once runs one attempt of an update: bind, load, next, save; the key lock
// is released when it returns, on every path.
func (mw *Middleware[U, T]) once(ctx context.Context, key string, u U, next Handler[U]) error {
	c := mw.core
	hctx, cl := c.begin(ctx, key, false, c)
	defer cl.finish()
	if err := cl.loadEager(hctx); err != nil {
		return err
	}
	if err := next(hctx, u); err != nil {
		return err
	}
	s, ok := cl.b.End()
	if !ok {
		return nil
	}
	return cl.save(ctx, s, c.opts.RepeatOnConflict)
}

// Handle is New(m, key, opts).Wrap(next), for a single handler. Handlers
// wrapped separately do not share a per-key lock; wrap them with one
// [Middleware] (or give them one [Options].Locker) when they update the
// same sessions.
func Handle[U, T any](m *session.Manager[T], key KeyFunc[U], next Handler[U], opts Options) Handler[U] {
	return New(m, key, opts).Wrap(next)
}
