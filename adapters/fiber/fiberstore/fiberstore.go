// Package fiberstore lets any Fiber storage driver (the fiber.Storage
// interface of Fiber v2: Redis, Postgres, Badger, DynamoDB and the rest of
// github.com/gofiber/storage) serve as a [store.Store] for typed sessions.
//
//	st := fiberstore.New(redis.New(redis.Config{URL: "redis://127.0.0.1:6379"}), fiberstore.Options{Prefix: "sess:"})
//	carts, err := session.New(session.Config[Cart]{Store: st, Namespace: "cart"})
//
// # What it cannot do
//
// fiber.Storage has Get, Set, Delete, Reset and Close, so the Store has
// Get, Set and Delete and none of the optional capabilities:
//
//   - No compare-and-swap ([store.Swapper]) and no compare-and-delete: two
//     processes that save one session at once both succeed, and the later
//     write wins (the earlier one is lost, not reported as
//     session.ErrConflict); Renew and Destroy cannot check what they move
//     or delete. Within one process the middleware's per-key lock still
//     serializes a session's requests. Use a store of this module where
//     several processes write one session.
//   - No Touch and no GetAndTouch (and no compare-and-swap): nothing can
//     extend an expiry without writing the value, and the session manager
//     never writes an unchanged session back (a blind write could revert
//     a newer save of another process). So a session with a TTL is
//     extended only when it is written, that is when its data changes: a
//     session that is only read expires TTL after its last change, however
//     often it is used. A session that must live while it is used needs a
//     field that changes (a last-seen time, updated now and then), or a
//     store of this module.
//   - No Scan: the inspector and MigrateAll cannot list the sessions.
//   - Fiber v2's methods take no context: a Store method returns ctx.Err()
//     when ctx has ended before the call, but cannot stop a call once it
//     started (it runs to the driver's own timeout). A driver that also
//     has the methods of Fiber v3's storage interface (GetWithContext,
//     SetWithContext, DeleteWithContext, as the current drivers do) is
//     called through those, with ctx.
//   - A driver's Get returns nil, nil for a missing key, and many drivers
//     silently skip a Set of an empty value: an empty value cannot be
//     told from no value. So values are stored with a marker where needed:
//     a value that is empty or starts with a NUL byte is stored with one
//     NUL byte in front; any other value (every session the manager
//     writes: a JSON document) is stored as it is, readable in the
//     storage. A stored value that is empty reads as missing.
//   - Whether a Set with no expiry removes an earlier expiry, and how a
//     long TTL is held, is up to the driver (Redis: yes, exact to the
//     millisecond). TTLs are clamped to [store.MaxExpiry].
package fiberstore

import (
	"context"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/typedsession/session/internal/storeutil"
	"github.com/typedsession/session/store"
)

// Options configures a [Store]. The zero value means no prefix.
type Options struct {
	// Prefix is put in front of every key in the storage, so that one
	// storage can hold sessions next to other data. Empty means none. The
	// key limits of [store.CheckKey] apply to the key without the prefix.
	Prefix string
}

// Store is a [store.Store] over a fiber.Storage. It is safe for concurrent
// use when the storage is (every Fiber driver is).
type Store struct {
	s      fiber.Storage
	ctx    contextStorage // s, when it has the context methods; else nil
	prefix string
}

// contextStorage is the part of Fiber v3's storage interface that takes a
// context; drivers of the current github.com/gofiber/storage have it.
type contextStorage interface {
	GetWithContext(ctx context.Context, key string) ([]byte, error)
	SetWithContext(ctx context.Context, key string, val []byte, exp time.Duration) error
	DeleteWithContext(ctx context.Context, key string) error
}

// New returns a Store over s. It panics if s is nil. Closing s is the
// caller's: the Store has no Close of its own.
func New(s fiber.Storage, opts Options) *Store {
	if s == nil {
		panic("fiberstore: nil fiber.Storage; pass a driver such as redis.New(...)")
	}
	st := &Store{s: s, prefix: opts.Prefix}
	st.ctx, _ = s.(contextStorage)
	return st
}

const backend = "fiberstore"

// marker is put in front of a stored value that is empty or starts with
// it, so that no value is stored empty.
const marker = 0

// Get returns a copy of the value under key, or an error matching
// store.ErrNotFound when the storage has none (or an empty one).
func (st *Store) Get(ctx context.Context, key string) ([]byte, error) {
	if err := st.check(ctx, key); err != nil {
		return nil, storeutil.Wrap(backend, "get", key, err)
	}
	var v []byte
	var err error
	if st.ctx != nil {
		v, err = st.ctx.GetWithContext(ctx, st.prefix+key)
	} else {
		v, err = st.s.Get(st.prefix + key)
	}
	switch {
	case err != nil:
		return nil, storeutil.Wrap(backend, "get", key, err)
	case len(v) == 0:
		return nil, storeutil.Wrap(backend, "get", key, store.ErrNotFound)
	case v[0] == marker:
		v = v[1:]
	}
	return append([]byte{}, v...), nil // drivers may hand out their own buffer
}

// Set stores a copy of value under key; a ttl <= 0 means no expiry, and a
// ttl past [store.MaxExpiry] is clamped to it.
func (st *Store) Set(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	if err := st.check(ctx, key); err != nil {
		return storeutil.Wrap(backend, "set", key, err)
	}
	var v []byte
	if len(value) == 0 || value[0] == marker {
		v = append(make([]byte, 0, len(value)+1), marker)
	}
	v = append(v, value...) // a copy: drivers may keep the slice
	if ttl < 0 {
		ttl = 0
	}
	if ttl > 0 {
		now := time.Now()
		ttl = store.Deadline(now, ttl).Sub(now)
	}
	var err error
	if st.ctx != nil {
		err = st.ctx.SetWithContext(ctx, st.prefix+key, v, ttl)
	} else {
		err = st.s.Set(st.prefix+key, v, ttl)
	}
	return storeutil.Wrap(backend, "set", key, err)
}

// Delete removes key; a missing key is not an error.
func (st *Store) Delete(ctx context.Context, key string) error {
	if err := st.check(ctx, key); err != nil {
		return storeutil.Wrap(backend, "delete", key, err)
	}
	var err error
	if st.ctx != nil {
		err = st.ctx.DeleteWithContext(ctx, st.prefix+key)
	} else {
		err = st.s.Delete(st.prefix + key)
	}
	return storeutil.Wrap(backend, "delete", key, err)
}

// check refuses an invalid key, and a call whose ctx has ended (a Fiber v2
// driver could not be stopped once called).
func (st *Store) check(ctx context.Context, key string) error {
	if err := store.CheckKey(key); err != nil {
		return err
	}
	return ctx.Err()
}
