package session

import (
	"context"
	"sync"
)

// bindingKey is the context key for a binding of T: one distinct type per T,
// so sessions of different types live side by side in one context.
type bindingKey[T any] struct{}

// Binding carries the session of one type T through a context, for [From].
// Middleware makes one with [Bind] (or [BindSession] when it already has the
// session) and, after the handler, asks it what to save. A Binding is safe
// for concurrent use; its loader runs at most once.
type Binding[T any] struct {
	mu    sync.Mutex
	load  func(context.Context) (*Session[T], error)
	done  bool
	s     *Session[T]
	err   error
	noKey bool
}

// Bind returns a context carrying a binding for T whose session is loaded
// by load the first time [From] asks for it (lazy loading). Call
// [Binding.Load] at once for eager loading. load receives the context that
// From was called with.
func Bind[T any](ctx context.Context, load func(context.Context) (*Session[T], error)) (context.Context, *Binding[T]) {
	b := &Binding[T]{load: load}
	return context.WithValue(ctx, bindingKey[T]{}, b), b
}

// BindSession returns a context carrying s for [From].
func BindSession[T any](ctx context.Context, s *Session[T]) (context.Context, *Binding[T]) {
	b := &Binding[T]{done: true, s: s}
	return context.WithValue(ctx, bindingKey[T]{}, b), b
}

// BindNone returns a context in which [From] for T reports ErrNoSession:
// the update has no key (no user), and an outer binding for T must not leak
// into it.
func BindNone[T any](ctx context.Context) context.Context {
	return context.WithValue(ctx, bindingKey[T]{}, &Binding[T]{done: true, noKey: true})
}

// Load returns the bound session, loading it on the first call.
func (b *Binding[T]) Load(ctx context.Context) (*Session[T], error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.done {
		b.done = true
		b.s, b.err = b.load(ctx)
		b.load = nil
	}
	if b.noKey {
		return nil, ErrNoSession
	}
	return b.s, b.err
}

// Loaded returns the session if it has been loaded without error, and
// false if it was never asked for or its load failed.
func (b *Binding[T]) Loaded() (*Session[T], bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.s, b.done && b.err == nil && b.s != nil
}

// From returns the session of type T that middleware bound into ctx,
// loading it first if the binding is lazy. It returns an error matching
// ErrNoSession when there is none, or the error of the load.
func From[T any](ctx context.Context) (*Session[T], error) {
	b, ok := ctx.Value(bindingKey[T]{}).(*Binding[T])
	if !ok {
		return nil, ErrNoSession
	}
	return b.Load(ctx)
}
