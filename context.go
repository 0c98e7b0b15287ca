package session

import (
	"context"
	"errors"
	"fmt"
	"sync"
)

// bindingKey is the context key for a binding of T: one distinct type per T,
// so sessions of different types live side by side in one context.
type bindingKey[T any] struct{}

// errEnded is what From reports for a binding that has ended.
var errEnded = fmt.Errorf("%w: the request has ended (From was called after the middleware decided whether to save)", ErrNoSession)

// errLoadPanicked is what a binding reports after its loader panicked.
var errLoadPanicked = errors.New("session: the session's load panicked")

// Binding is the session of one type T bound to one request or update: the
// one API that middleware (this module's, or an adapter for another
// framework) uses to hand a handler its session through [From] and then to
// decide what to save. The life of a binding:
//
//	ctx, b := session.Bind(ctx, func(ctx context.Context) (*session.Session[T], error) {
//		return m.Load(ctx, key) // runs once: on the first From, or on b.Load
//	})
//	handlerErr := next(ctx)                  // handlers call session.From[T](ctx)
//	if s, ok := b.End(); ok && handlerErr == nil {
//		err = m.Save(ctx, s)                 // the adapter commits
//	}
//
// A Binding is safe for concurrent use. Its loader runs at most once, under
// the binding's own mutex: End waits for a load in progress, and no load
// starts after End, so whatever the loader acquires (a per-key lock) can be
// released safely once End has returned.
type Binding[T any] struct {
	mu    sync.Mutex
	load  func(context.Context) (*Session[T], error) // nil once run, or for no session
	done  bool                                       // the load ran (or there is none to run)
	ended bool
	s     *Session[T]
	err   error
}

// Bind returns a context carrying a new binding for T, and the binding. The
// session is loaded by load the first time [From] (or [Binding.Load]) asks
// for it, with the context From was given: lazy loading. Call b.Load at once
// for eager loading.
//
// A nil load binds "no session": From reports ErrNoSession. Use it for an
// update that has no session key (no user), so that an outer binding for T
// does not leak into it.
func Bind[T any](ctx context.Context, load func(context.Context) (*Session[T], error)) (context.Context, *Binding[T]) {
	b := &Binding[T]{load: load, done: load == nil}
	if load == nil {
		b.err = ErrNoSession
	}
	return context.WithValue(ctx, bindingKey[T]{}, b), b
}

// Load returns the bound session, loading it on the first call. It returns
// the load's error (the same one on every call), an error matching
// ErrNoSession for a binding made with a nil load, and, after [Binding.End],
// an error matching ErrNoSession that says the request has ended. If the
// loader panics, the panic propagates and later calls report an error.
func (b *Binding[T]) Load(ctx context.Context) (*Session[T], error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.ended {
		return nil, errEnded
	}
	if !b.done {
		b.done = true
		load := b.load
		b.load = nil
		b.err = errLoadPanicked // stays if load panics
		b.s, b.err = load(ctx)
		if b.s == nil && b.err == nil {
			b.err = fmt.Errorf("%w: the binding's loader returned no session and no error", ErrNoSession)
		}
	}
	return b.s, b.err
}

// Loaded returns the session if it has been loaded without error, and false
// if it was never asked for, its load failed, or the binding has no session.
// It does not load, and it still answers after End.
func (b *Binding[T]) Loaded() (*Session[T], bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.s, b.done && b.err == nil && b.s != nil
}

// End ends the binding: from now on [From] and [Binding.Load] report an
// error matching ErrNoSession, so a handler (or a goroutine it started)
// can no longer obtain a session whose changes nobody would save. End waits
// for a load in progress. It returns the session if it was loaded without
// error (the caller then decides whether to save it), and false otherwise.
// Calling End again returns the same.
func (b *Binding[T]) End() (*Session[T], bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.ended = true
	b.load = nil
	return b.s, b.done && b.err == nil && b.s != nil
}

// From returns the session of type T that middleware bound into ctx,
// loading it first if the binding is lazy. It returns an error matching
// ErrNoSession when there is none (no middleware bound T, the update has no
// key, or the request has ended), or the error of the load.
func From[T any](ctx context.Context) (*Session[T], error) {
	b, ok := ctx.Value(bindingKey[T]{}).(*Binding[T])
	if !ok {
		return nil, ErrNoSession
	}
	return b.Load(ctx)
}
