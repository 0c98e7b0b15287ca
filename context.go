package session

import (
	"context"

	"github.com/typedsession/session/internal/binding"
)

// From returns the session of type T that middleware bound into ctx,
// loading it first if the binding is lazy. It returns an error matching
// ErrNoSession when there is none (no middleware bound T, the update has no
// key, or the request has ended: From is refused once the middleware has
// decided whether to save, so that no change is made that nobody saves), or
// the error of the load.
func From[T any](ctx context.Context) (*Session[T], error) {
	return binding.From[*Session[T]](ctx)
}
