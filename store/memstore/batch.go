package memstore

import (
	"context"
	"errors"
	"time"

	"github.com/typedsession/session/internal/storeutil"
	"github.com/typedsession/session/store"
)

// The batch reads: a memstore has no round trips to save, so they are
// GetWithTTL in a loop. They exist so that bulk work (MigrateAll, the
// inspector) takes the same path on a memstore as on Redis, and so that
// tests of that path need no server. memstore has no [store.BatchSwapper]:
// batched writes would save nothing here, and without them MigrateAll
// writes key by key, stopping at the exact key where ctx ends.

var (
	_ store.BatchGetter    = (*Store)(nil)
	_ store.BatchTTLGetter = (*Store)(nil)
)

// GetMany returns copies of the values under keys, nil for an absent or
// expired key. Every key is checked before any is read; an invalid key
// gives an error matching [store.ErrInvalidKey], a closed store
// [store.ErrClosed], an ended ctx ctx.Err(), each for the whole call.
func (s *Store) GetMany(ctx context.Context, keys []string) ([][]byte, error) {
	values, _, err := s.getMany(ctx, "get many", keys)
	return values, err
}

// GetManyWithTTL is GetMany that also returns the time each key has left
// ([store.NoExpiry] for none, 0 for an absent key), at nanosecond
// precision.
func (s *Store) GetManyWithTTL(ctx context.Context, keys []string) ([][]byte, []time.Duration, error) {
	return s.getMany(ctx, "get many with ttl", keys)
}

func (s *Store) getMany(ctx context.Context, op string, keys []string) ([][]byte, []time.Duration, error) {
	for _, k := range keys {
		if err := store.CheckKey(k); err != nil {
			return nil, nil, storeutil.Wrap(backend, op, k, err)
		}
	}
	values := make([][]byte, len(keys))
	ttls := make([]time.Duration, len(keys))
	for i, k := range keys {
		if err := ctx.Err(); err != nil {
			return nil, nil, storeutil.Wrap(backend, op, k, err)
		}
		v, left, err := s.GetWithTTL(ctx, k)
		switch {
		case errors.Is(err, store.ErrNotFound):
		case err != nil:
			return nil, nil, err
		default:
			values[i], ttls[i] = v, left
		}
	}
	return values, ttls, nil
}
