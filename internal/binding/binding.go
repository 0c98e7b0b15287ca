// Package binding binds one session of each type to one request or update:
// the plumbing between a middleware (this module's, or an adapter for
// another framework, through package middleware) and session.From.
package binding

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/typedsession/session/internal/errs"
)

// key is the context key for a binding of S: one distinct type per S, so
// sessions of different types live side by side in one context.
type key[S any] struct{}

// errEnded is what From reports for a binding that has ended.
var errEnded = fmt.Errorf("%w: the request has ended (From was called after the middleware decided whether to save)", errs.NoSession)

// errLoadPanicked is what a binding reports after its loader panicked.
var errLoadPanicked = errors.New("session: the session's load panicked")

// Binding is the session (of type S, a *session.Session[T]) bound to one
// request or update: what package middleware uses to hand a handler its
// session through session.From and then to decide what to save. The life
// of a binding:
//
//	ctx, b := binding.Bind(ctx, func(ctx context.Context) (*session.Session[T], error) {
//		return m.Load(ctx, key) // runs once: on the first From, or on b.Load
//	})
//	handlerErr := next(ctx)                  // handlers call session.From[T](ctx)
//	if s, ok := b.End(); ok && handlerErr == nil {
//		err = m.Save(ctx, s)                 // the middleware commits
//	}
//
// A Binding is safe for concurrent use. Its loader runs at most once, under
// the binding's own mutex: End waits for a load in progress, and no load
// starts after End, so whatever the loader acquires (a per-key lock) can be
// released safely once End has returned.
type Binding[S comparable] struct {
	mu    sync.Mutex
	load  func(context.Context) (S, error) // nil once run, or for no session
	done  bool                             // the load ran (or there is none to run)
	ended bool
	s     S
	err   error
}

// Bind returns a context carrying a new binding for S, and the binding. The
// session is loaded by load the first time [From] (or [Binding.Load]) asks
// for it, with the context From was given: lazy loading. Call b.Load at once
// for eager loading.
//
// A nil load binds "no session": From reports errs.NoSession. Use it for an
// update that has no session key (no user), so that an outer binding for S
// does not leak into it.
func Bind[S comparable](ctx context.Context, load func(context.Context) (S, error)) (context.Context, *Binding[S]) {
	b := &Binding[S]{load: load, done: load == nil}
	if load == nil {
		b.err = errs.NoSession
	}
	return context.WithValue(ctx, key[S]{}, b), b
}

// Load returns the bound session, loading it on the first call. It returns
// the load's error (the same one on every call), an error matching
// errs.NoSession for a binding made with a nil load, and, after [Binding.End],
// an error matching errs.NoSession that says the request has ended. If the
// loader panics, the panic propagates and later calls report an error.
func (b *Binding[S]) Load(ctx context.Context) (S, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.ended {
		var zero S
		return zero, errEnded
	}
	if !b.done {
		b.done = true
		load := b.load
		b.load = nil
		b.err = errLoadPanicked // stays if load panics
		b.s, b.err = load(ctx)
		var zero S
		if b.s == zero && b.err == nil {
			b.err = fmt.Errorf("%w: the binding's loader returned no session and no error", errs.NoSession)
		}
	}
	return b.s, b.err
}

// Loaded returns the session if it has been loaded without error, and false
// if it was never asked for, its load failed, or the binding has no session.
// It does not load, and it still answers after End.
func (b *Binding[S]) Loaded() (S, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	var zero S
	return b.s, b.done && b.err == nil && b.s != zero
}

// End ends the binding: from now on [From] and [Binding.Load] report an
// error matching errs.NoSession, so a handler (or a goroutine it started)
// can no longer obtain a session whose changes nobody would save. End waits
// for a load in progress. It returns the session if it was loaded without
// error (the caller then decides whether to save it), and false otherwise.
// Calling End again returns the same.
func (b *Binding[S]) End() (S, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.ended = true
	b.load = nil
	var zero S
	return b.s, b.done && b.err == nil && b.s != zero
}

// From returns the session of type S that middleware bound into ctx,
// loading it first if the binding is lazy. It returns an error matching
// errs.NoSession when there is none (no middleware bound T, the update has no
// key, or the request has ended), or the error of the load.
func From[S comparable](ctx context.Context) (S, error) {
	b, ok := ctx.Value(key[S]{}).(*Binding[S])
	if !ok {
		var zero S
		return zero, errs.NoSession
	}
	return b.Load(ctx)
}
