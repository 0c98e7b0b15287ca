package middleware

import (
	"context"

	"github.com/typedsession/session/internal/keylock"
)

// Locker serializes the updates of one session key: the middleware takes
// the key's lock before it loads the session and releases it after the
// save, so two updates of one key never interleave their load and save.
//
// Lock blocks until the key is free or ctx ends; then it returns ctx's
// error (or another error of the implementation) and no unlock function.
// On success the caller must call unlock exactly once, from any goroutine.
// key is the session key as the middleware uses it (the KeyFunc's result,
// or the SHA-256 of a cookie token), without the manager's namespace: a
// Locker shared by middleware of several namespaces must keep them apart
// itself (a prefix of its own per middleware, for instance).
//
// The default, [LockTable], serializes within one process; a Locker backed
// by a shared store (Redis) extends that across processes. Implementations
// must be safe for concurrent use.
type Locker interface {
	Lock(ctx context.Context, key string) (unlock func(), err error)
}

// LockTable is the in-process [Locker], the default of every middleware
// (each middleware value makes its own unless [Options].Locker names one to
// share). An entry lives only while someone holds or waits for its key: it
// is refcounted and removed when the last one leaves, so the table does not
// grow with the number of keys ever seen. The zero value is not usable;
// create one with [NewLockTable].
//
// A channel of capacity one is each key's lock, so that a waiter can give
// up when its context ends (a sync.Mutex cannot be abandoned).
type LockTable struct {
	t *keylock.Table[struct{}]
}

// NewLockTable returns an empty in-process lock table.
func NewLockTable() *LockTable {
	return &LockTable{t: keylock.New[struct{}]()}
}

// Lock takes key's lock, waiting until it is free or ctx ends (then it
// returns ctx.Err()). A free lock is taken even when ctx has already ended.
func (t *LockTable) Lock(ctx context.Context, key string) (func(), error) {
	h, err := t.t.Lock(ctx, key, 0)
	if err != nil {
		return nil, err
	}
	return h.Unlock, nil
}

// Len returns the number of keys held or waited for: 0 when no update is in
// progress. For tests and metrics.
func (t *LockTable) Len() int { return t.t.Len() }
