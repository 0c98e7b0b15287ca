// Package keylock is a table of per-key locks for one process: waiters can
// give up when their context ends, and a holder can leave a value for the
// next holder of the same key (the session it has just saved, say).
//
// An entry lives only while someone holds or waits for its key: it is
// refcounted and removed when the last one leaves, so the table does not
// grow with the number of keys ever seen. A channel of capacity one is each
// key's lock, so that a waiter can give up (a sync.Mutex cannot be
// abandoned).
package keylock

import (
	"context"
	"errors"
	"sync"
	"time"
)

// ErrTimeout is returned by Lock when the key stayed locked for the whole
// wait it was given.
var ErrTimeout = errors.New("keylock: the key stayed locked for the whole wait")

// Table is a set of per-key locks. The zero value is not usable; create
// one with New.
type Table[V any] struct {
	mu   sync.Mutex
	m    map[string]*entry[V]
	free sync.Pool // *entry[V] no longer in m, with their channel, for reuse
}

type entry[V any] struct {
	ch   chan struct{}
	refs int // holders and waiters; guarded by Table.mu
	val  V   // left by the last holder for the next; guarded by Table.mu
	has  bool
}

// New returns an empty table.
func New[V any]() *Table[V] { return &Table[V]{m: make(map[string]*entry[V])} }

// Held is a lock held on one key. Its holder calls Unlock or UnlockWith
// exactly once (a second call would release an entry that may serve
// another key by then). The zero Held holds nothing.
type Held[V any] struct {
	t   *Table[V]
	key string
	e   *entry[V]
	// Prev is the value the previous holder left with UnlockWith, if
	// HasPrev.
	Prev    V
	HasPrev bool
}

// Lock takes key's lock, waiting until it is free, ctx ends (then it
// returns ctx.Err()) or, for a maxWait above zero, maxWait has passed (then
// ErrTimeout). A free lock is taken even when ctx has already ended.
func (t *Table[V]) Lock(ctx context.Context, key string, maxWait time.Duration) (Held[V], error) {
	t.mu.Lock()
	e := t.m[key]
	if e == nil {
		if e, _ = t.free.Get().(*entry[V]); e == nil {
			e = &entry[V]{ch: make(chan struct{}, 1)}
		}
		t.m[key] = e
	}
	e.refs++
	t.mu.Unlock()

	// Take the lock at once when it is free, even if ctx has ended; a
	// select with both ready would pick at random.
	select {
	case e.ch <- struct{}{}:
		return t.taken(key, e), nil
	default:
	}
	var timeout <-chan time.Time
	if maxWait > 0 {
		tm := time.NewTimer(maxWait)
		defer tm.Stop()
		timeout = tm.C
	}
	select {
	case e.ch <- struct{}{}:
		return t.taken(key, e), nil
	case <-ctx.Done():
		t.drop(key, e)
		return Held[V]{}, ctx.Err()
	case <-timeout:
		t.drop(key, e)
		return Held[V]{}, ErrTimeout
	}
}

// taken hands the value the previous holder left to the new holder.
func (t *Table[V]) taken(key string, e *entry[V]) Held[V] {
	h := Held[V]{t: t, key: key, e: e}
	t.mu.Lock()
	if e.has {
		var zero V
		h.Prev, h.HasPrev, e.val, e.has = e.val, true, zero, false
	}
	t.mu.Unlock()
	return h
}

// Unlock releases the lock.
func (h *Held[V]) Unlock() {
	<-h.e.ch
	h.t.drop(h.key, h.e)
}

// UnlockWith releases the lock and leaves v for the next holder of the key,
// if someone is waiting for it now; otherwise v is dropped.
func (h *Held[V]) UnlockWith(v V) {
	h.t.mu.Lock()
	if h.e.refs > 1 {
		h.e.val, h.e.has = v, true
	}
	h.t.mu.Unlock()
	h.Unlock()
}

func (t *Table[V]) drop(key string, e *entry[V]) {
	t.mu.Lock()
	e.refs--
	if e.refs == 0 {
		delete(t.m, key)
		var zero V
		e.val, e.has = zero, false
		t.free.Put(e)
	}
	t.mu.Unlock()
}

// Refs returns the number of holders and waiters of key's lock (0, 1 for
// a holder alone, 1 + n with n waiting): for tests that need an update to
// be queued before they go on.
func (t *Table[V]) Refs(key string) int {
	t.mu.Lock()
	defer t.mu.Unlock()
	if e := t.m[key]; e != nil {
		return e.refs
	}
	return 0
}

// Len returns the number of keys held or waited for.
func (t *Table[V]) Len() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.m)
}
