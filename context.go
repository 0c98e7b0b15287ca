package session

import (
	"context"

	"github.com/typedsession/session/internal/binding"
)

// From returns the session of type T that middleware bound into ctx,
// loading it first if the binding is lazy. It returns an error matching
// ErrNoSession when there is none (no middleware bound T, the update has no
// key, or the request has ended), or the error of the load. From is
// refused once the middleware has decided whether to save. The session is
// the handler's until it returns: a goroutine it starts must be done with
// the session before the handler returns, since a From that runs while the
// handler is returning (woken by one of its defers) may still get the
// session, whose later changes nobody saves. Hand such a goroutine the key
// for Manager.Update instead.
func From[T any](ctx context.Context) (*Session[T], error) {
	return binding.From[*Session[T]](ctx)
}
