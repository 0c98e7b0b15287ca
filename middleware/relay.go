package middleware

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	session "github.com/typedsession/session"
)

// relayPause is how long a middleware stops handing sessions on after a
// handed session's save conflicted: proof that something outside the
// middleware's lock writes its keys, which makes handed sessions stale.
const relayPause = time.Minute

// relay hands the session an update has just saved to the next update of
// the same key waiting for the key's lock (Session.Handoff), so that
// queued updates of one user skip the load. An entry lives only while
// someone waits for its key.
type relay[T any] struct {
	mu      sync.Mutex
	batons  map[string]*baton[T]
	offTill atomic.Int64 // Unix nanoseconds: no handoff before then
}

// baton is one key's entry: how many updates wait for its lock, and the
// session its holder saved last, for the next holder.
type baton[T any] struct {
	waiting int
	s       *session.Session[T]
}

func newRelay[T any]() *relay[T] { return &relay[T]{batons: make(map[string]*baton[T])} }

// wait notes an update about to wait for key's lock.
func (r *relay[T]) wait(key string) {
	r.mu.Lock()
	b := r.batons[key]
	if b == nil {
		b = &baton[T]{}
		r.batons[key] = b
	}
	b.waiting++
	r.mu.Unlock()
}

// take ends a wait that wait began (the lock taken or not) and returns the
// session left for the key, if any; the entry is emptied either way, so a
// session is handed on at most once, and only to the update that took the
// lock right after its holder left it.
func (r *relay[T]) take(key string) *session.Session[T] {
	r.mu.Lock()
	defer r.mu.Unlock()
	b := r.batons[key]
	if b == nil {
		return nil
	}
	s := b.s
	b.s = nil
	if b.waiting--; b.waiting == 0 {
		delete(r.batons, key)
	}
	return s
}

// give leaves s, saved by the holder of key's lock, for the next holder,
// if an update is waiting for the lock.
func (r *relay[T]) give(key string, s *session.Session[T]) {
	r.mu.Lock()
	if b := r.batons[key]; b != nil && b.waiting > 0 {
		b.s = s
	}
	r.mu.Unlock()
}

// on reports whether handing on is on now.
func (r *relay[T]) on() bool { return time.Now().UnixNano() >= r.offTill.Load() }

// pause turns handing on off for relayPause.
func (r *relay[T]) pause() { r.offTill.Store(time.Now().Add(relayPause).UnixNano()) }

// handed returns the session the previous holder of the key's lock left,
// handed on, or nil.
func (r *relay[T]) handed(ctx context.Context, prev *session.Session[T]) *session.Session[T] {
	if prev == nil || !r.on() {
		return nil
	}
	s, ok := prev.Handoff(ctx)
	if !ok {
		return nil
	}
	return s
}

// conflicted notes the outcome of the save of a handed session.
func (r *relay[T]) conflicted(err error) {
	if errors.Is(err, session.ErrConflict) {
		r.pause()
	}
}
