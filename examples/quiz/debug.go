package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/typedsession/session"
	"github.com/typedsession/session/store"
)

// debugKey carries the store and namespace that /debug reads, from run to
// respond.
type debugKey struct{}

type debugStore struct {
	st        store.Store
	namespace string
}

func withDebug(ctx context.Context, st store.Store, namespace string) context.Context {
	return context.WithValue(ctx, debugKey{}, debugStore{st, namespace})
}

// debug answers /debug: the player's own session as stored, with its
// schema version, size and TTL left. It reads only.
func debug(ctx context.Context, s *session.Session[Quiz]) string {
	data, _ := json.Marshal(s.Data)
	if s.IsNew() {
		return fmt.Sprintf("Your session (key %s) is not stored yet: %s", s.Key(), data)
	}
	d, ok := ctx.Value(debugKey{}).(debugStore)
	if !ok {
		return fmt.Sprintf("Your session (key %s), version %d: %s", s.Key(), s.Version(), data)
	}
	k := s.Key()
	if d.namespace != "" {
		k = d.namespace + ":" + k
	}
	size, left := "?", "unknown"
	var raw []byte
	var ttl time.Duration
	var err error
	if g, ok := d.st.(store.TTLGetter); ok {
		raw, ttl, err = g.GetWithTTL(ctx, k)
		left = ttl.Truncate(time.Second).String()
		if ttl == store.NoExpiry {
			left = "no expiry"
		}
	} else {
		raw, err = d.st.Get(ctx, k)
	}
	switch {
	case errors.Is(err, store.ErrNotFound):
		size, left = "0 bytes (expired just now)", "none"
	case err != nil:
		return fmt.Sprintf("Your session (key %s): reading it from the store failed: %v", s.Key(), err)
	default:
		size = fmt.Sprintf("%d bytes", len(raw))
	}
	return fmt.Sprintf("Your session (store key %s): schema version %d, %s, %s left.\n%s", k, s.Version(), size, left, data)
}
