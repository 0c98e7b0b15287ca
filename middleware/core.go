package middleware

import (
	"context"
	"errors"
	"sync"

	session "github.com/typedsession/session"
)

// core is what the generic wrapper and the net/http middleware share: the
// manager, the options, and the per-key lock table.
type core[T any] struct {
	m       *session.Manager[T]
	lazy    bool
	locks   *lockTable // nil when per-key locking is off
	onError func(ctx context.Context, op, key string, err error)
}

func newCore[T any](m *session.Manager[T], lazy, noLock bool, onError func(ctx context.Context, op, key string, err error)) *core[T] {
	if m == nil {
		panic("session/middleware: nil *session.Manager; create one with session.New")
	}
	c := &core[T]{m: m, lazy: lazy, onError: onError}
	if !noLock {
		c.locks = &lockTable{m: make(map[string]*lockEntry)}
	}
	return c
}

func (c *core[T]) report(ctx context.Context, op, key string, err error) {
	if c.onError != nil {
		c.onError(ctx, op, key, err)
	}
}

// errEnded is returned by From when a handler asks for a lazy session after
// the middleware that bound it has finished: nothing could save it, and the
// per-key lock could never be released.
var errEnded = errors.New("session/middleware: the request has ended; From was called after the handler returned")

// call is one update's binding of one session type.
type call[T any] struct {
	c       *core[T]
	key     string
	binding *session.Binding[T]

	// mu is held by the loader for the whole lock wait and load, so
	// that end, which takes it too, waits for a load in progress and a
	// load after end is refused: the key lock is never left held.
	mu    sync.Mutex
	held  *lockEntry // the key lock, once acquired
	ended bool
}

// begin binds the session under key into ctx. Eagerly (the default) it
// takes the key lock and loads the session before returning, and returns
// the load's error; lazily it does neither until From asks. The caller
// must call end when the update is over, also after an error.
func (c *core[T]) begin(ctx context.Context, key string) (context.Context, *call[T], error) {
	cl := &call[T]{c: c, key: key}
	ctx, cl.binding = session.Bind(ctx, cl.load)
	if !c.lazy {
		if _, err := cl.binding.Load(ctx); err != nil {
			return ctx, cl, err
		}
	}
	return ctx, cl, nil
}

// load is the binding's loader: it runs at most once, on the first From
// (lazy) or in begin (eager).
func (cl *call[T]) load(ctx context.Context) (*session.Session[T], error) {
	cl.mu.Lock()
	defer cl.mu.Unlock()
	if cl.ended {
		return nil, errEnded
	}
	if cl.c.locks != nil {
		e, err := cl.c.locks.acquire(ctx, cl.key)
		if err != nil {
			err = &session.Error{Op: "lock", Key: cl.key, Err: err}
			cl.c.report(ctx, "lock", cl.key, err)
			return nil, err
		}
		cl.held = e
	}
	s, err := cl.c.m.Load(ctx, cl.key)
	if err != nil {
		cl.c.report(ctx, "load", cl.key, err)
		return nil, err
	}
	return s, nil
}

// loaded returns the session if the handler (or begin) loaded it without
// error.
func (cl *call[T]) loaded() (*session.Session[T], bool) { return cl.binding.Loaded() }

// end refuses later loads and releases the key lock.
func (cl *call[T]) end() {
	cl.mu.Lock()
	defer cl.mu.Unlock()
	cl.ended = true
	if cl.held != nil {
		cl.c.locks.release(cl.key, cl.held)
		cl.held = nil
	}
}

// lockTable serializes updates of one key inside the process. An entry
// lives only while someone holds or waits for its key: it is refcounted and
// removed when the last one leaves, so the table does not grow with the
// number of keys ever seen.
//
// A channel of capacity one is the lock, so that a waiter can give up when
// its context ends (sync.Mutex cannot be abandoned).
type lockTable struct {
	mu sync.Mutex
	m  map[string]*lockEntry
}

type lockEntry struct {
	ch   chan struct{}
	refs int // holders and waiters; guarded by lockTable.mu
}

func (t *lockTable) acquire(ctx context.Context, key string) (*lockEntry, error) {
	t.mu.Lock()
	e := t.m[key]
	if e == nil {
		e = &lockEntry{ch: make(chan struct{}, 1)}
		t.m[key] = e
	}
	e.refs++
	t.mu.Unlock()

	// Take the lock at once when it is free, even if ctx has ended; a
	// select with both ready would pick at random.
	select {
	case e.ch <- struct{}{}:
		return e, nil
	default:
	}
	select {
	case e.ch <- struct{}{}:
		return e, nil
	case <-ctx.Done():
		t.drop(key, e)
		return nil, ctx.Err()
	}
}

func (t *lockTable) release(key string, e *lockEntry) {
	<-e.ch
	t.drop(key, e)
}

func (t *lockTable) drop(key string, e *lockEntry) {
	t.mu.Lock()
	e.refs--
	if e.refs == 0 {
		delete(t.m, key)
	}
	t.mu.Unlock()
}

// size returns the number of keys in the table (for tests).
func (t *lockTable) size() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.m)
}
