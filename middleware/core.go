package middleware

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	session "github.com/typedsession/session"
	"github.com/typedsession/session/internal/binding"
	"github.com/typedsession/session/internal/errs"
	"github.com/typedsession/session/internal/logsafe"
	"github.com/typedsession/session/internal/storeutil"
)

// core is what the generic wrapper and the net/http middleware share: the
// manager, the options, and the per-key lock.
//
// An update that waited for its key's lock loads its session like any
// other (one round trip): handing it the session its predecessor saved
// would skip that read, but a handler that only reads would then see what
// the predecessor left although another process may have written since,
// and nothing could tell it before the handler acted on it.
type core[T any] struct {
	m      *session.Manager[T]
	opts   Options
	locker Locker // nil when per-key locking is off
}

func newCore[T any](m *session.Manager[T], opts Options) *core[T] {
	if m == nil {
		panic("session/middleware: nil *session.Manager; create one with session.New")
	}
	if opts.Locker != nil && storeutil.NilInside(opts.Locker) {
		panic(fmt.Sprintf("session/middleware: Options.Locker is a nil %T; create it (NewLockTable, redislock.New) or leave Locker nil", opts.Locker))
	}
	c := &core[T]{m: m, opts: opts, locker: opts.Locker}

	if opts.NoLock {
		c.locker = nil
	} else if c.locker == nil {
		lt := NewLockTable()
		if lockTableMade != nil {
			lockTableMade(lt)
		}
		c.locker = lt
	}
	return c
}

// lockTableMade, when set (by the tests), hears of every default lock
// table, so that the tests can check that each is empty at the end.
var lockTableMade func(*LockTable)

// report hands an error of the session machinery to OnError and Logger.
func (c *core[T]) report(ctx context.Context, op, key string, err error) {
	if c.opts.OnError != nil {
		c.opts.OnError(ctx, op, key, err)
	}
	if c.opts.Logger != nil {
		logError(ctx, c.opts.Logger, c.opts.LogKeys, op, key, err)
	}
}

// logError writes one record for an error of the session machinery to
// logger, without session data and, unless logKeys, without the key.
func logError(ctx context.Context, logger *slog.Logger, logKeys bool, op, key string, err error) {
	level := slog.LevelError
	if errors.Is(err, context.Canceled) {
		level = slog.LevelWarn
	}
	if !logger.Enabled(ctx, level) {
		return
	}
	// The session package's one redaction rule: no session data, no key
	// unless logKeys.
	text := errs.Redact(err)
	if !logKeys {
		text = errs.Redact(err, key)
	}
	attrs := []slog.Attr{slog.String("op", op), slog.String("error", text)}
	if logKeys && key != "" {
		attrs = append(attrs, slog.String("key", key))
	}
	logger.LogAttrs(ctx, level, "session middleware: "+op+" failed", attrs...)
}

// logByDefault returns opts with Logger set to slog.Default() (as it is at
// each record) when neither OnError nor Logger is: for the middleware
// whose errors the caller does not see (net/http answers a bare 500).
func logByDefault(opts Options) Options {
	if opts.OnError == nil && opts.Logger == nil {
		opts.Logger = logsafe.Default()
	}
	return opts
}

// keyError wraps the error of a key function, so that errors.As finds a
// *session.Error with Op "key".
func keyError(err error) error {
	return &session.Error{Op: "key", Err: err}
}

// activeKey is the context key that marks a context as inside an active
// binding of T; its value (the generic core, or an HTTP request's state)
// names the binding's manager.
type activeKey[T any] struct{}

// binder is a value under activeKey[T].
type binder[T any] interface {
	manager() *session.Manager[T]
}

func (c *core[T]) manager() *session.Manager[T] { return c.m }

// nested reports whether ctx is already inside an active binding of T by
// the same manager (the same middleware wrapped twice, or nested router
// groups): the inner one must reuse it, and leave the commit to the outer.
func (c *core[T]) nested(ctx context.Context) bool {
	b, ok := ctx.Value(activeKey[T]{}).(binder[T])
	return ok && b.manager() == c.m
}

// call is one update's binding of one session type: the binding that loads
// the session once, and the key lock its loader took.
type call[T any] struct {
	c     *core[T]
	key   string
	fresh bool // a key nobody can know yet (a new random token): no read, no lock
	b     *binding.Binding[*session.Session[T]]

	// unlock is set by load, which runs under the binding's mutex; it is
	// read only after b.End, which waits for a load in progress.
	unlock func()

	// check, when set (by the HTTP middleware), sees every session load
	// loads and returns the session to bind instead: it may end it, or
	// follow it to another key (relock). It runs under the binding's
	// mutex, like load.
	check func(ctx context.Context, cl *call[T], s *session.Session[T]) (*session.Session[T], error)
}

// begin binds the session under key into ctx, without loading it, and
// marks ctx with mark (see nested). The caller must defer cl.finish() at
// once, before anything that can panic, and then, in eager mode, call
// cl.loadEager.
func (c *core[T]) begin(ctx context.Context, key string, fresh bool, mark binder[T]) (context.Context, *call[T]) {
	cl := &call[T]{c: c, key: key, fresh: fresh}
	ctx, cl.b = binding.Bind(ctx, cl.load)
	ctx = context.WithValue(ctx, boundKey[T]{}, key)
	return context.WithValue(ctx, activeKey[T]{}, mark), cl
}

// unbound returns ctx for an update without a session of T: session.From
// reports ErrNoSession and KeyFrom false, whatever an outer binding of T
// (another manager's) said.
func unbound[T any](ctx context.Context) context.Context {
	ctx, _ = binding.Bind[*session.Session[T]](ctx, nil)
	return context.WithValue(ctx, boundKey[T]{}, nil)
}

// boundKey is the context key of the session key a binding of T was made
// for (see KeyFrom).
type boundKey[T any] struct{}

// KeyFrom returns the session key under which a middleware bound the
// session of type T to ctx's update or request: what the [KeyFunc]
// returned (a Telegram adapter's ChatKey, say), or for a cookie session
// the SHA-256 of its token in hex, the key the session is loaded from. It
// does not load the session. It reports false when no middleware for T
// bound ctx, or the update had no key ([ErrNoKey]). A handler uses it to
// log, or to tell which conversation it serves without a store round trip
// (with [Options].Lazy); s.Key() of the loaded session says the same, and
// after [Renew] the key the session moves to.
func KeyFrom[T any](ctx context.Context) (string, bool) {
	k, ok := ctx.Value(boundKey[T]{}).(string)
	return k, ok
}

// load is the binding's loader: it runs at most once, on the first From
// (lazy) or when the middleware loads eagerly, and never after finish.
func (cl *call[T]) load(ctx context.Context) (*session.Session[T], error) {
	if cl.fresh {
		s, err := cl.c.m.NewSession(cl.key)
		if err != nil || cl.check == nil {
			return s, err
		}
		return cl.check(ctx, cl, s)
	}
	if cl.c.locker != nil {
		unlock, err := cl.c.locker.Lock(ctx, cl.key)
		if err != nil {
			err = &session.Error{Op: "lock", Key: cl.key, Err: err}
			cl.c.report(ctx, "lock", cl.key, err)
			return nil, err
		}
		cl.unlock = unlock
	}
	s, err := cl.c.m.Load(ctx, cl.key)
	if err != nil {
		cl.c.report(ctx, "load", cl.key, err)
		return nil, err
	}
	if cl.check != nil {
		return cl.check(ctx, cl, s)
	}
	return s, nil
}

// relock moves the call to key: it releases the lock of the current key
// and takes key's, so that the session under key is loaded and saved
// under its own lock. A failure is reported (op "lock") and returned.
func (cl *call[T]) relock(ctx context.Context, key string) error {
	if cl.unlock != nil {
		cl.unlock()
		cl.unlock = nil
	}
	cl.key = key
	if cl.c.locker == nil {
		return nil
	}
	unlock, err := cl.c.locker.Lock(ctx, key)
	if err != nil {
		err = &session.Error{Op: "lock", Key: key, Err: err}
		cl.c.report(ctx, "lock", key, err)
		return err
	}
	cl.unlock = unlock
	return nil
}

// loadEager loads the session when the middleware is not lazy. It returns
// the load's error when that must stop the update: with
// Options.ContinueOnLoadError it returns nil, and the handler finds the
// error in session.From.
func (cl *call[T]) loadEager(ctx context.Context) error {
	if cl.c.opts.Lazy {
		return nil
	}
	if _, err := cl.b.Load(ctx); err != nil && !cl.c.opts.ContinueOnLoadError {
		return err
	}
	return nil
}

// finish ends the binding (a later From is refused) and releases the key
// lock. It is safe to call more than once, and it is deferred before
// anything that can panic, so that no path leaves the key locked.
func (cl *call[T]) finish() {
	cl.b.End()
	if cl.unlock != nil {
		cl.unlock()
		cl.unlock = nil
	}
}

// save saves s, reporting an error to OnError unless quiet (a conflict
// that RepeatOnConflict retries is reported once, if it gives up).
func (cl *call[T]) save(ctx context.Context, s *session.Session[T], quiet bool) error {
	if err := cl.c.m.Save(ctx, s); err != nil {
		if !quiet || !errors.Is(err, session.ErrConflict) || errors.Is(err, session.ErrOutcomeUnknown) {
			cl.c.report(ctx, "save", cl.key, err)
		}
		return err
	}
	return nil
}
