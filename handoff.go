// Handing a saved session to the next update of the same key.

package session

import (
	"context"
	"hash/maphash"
	"sync/atomic"
	"time"
)

// Handoff returns a new session for the same key that starts from the
// value s last read from or wrote to the store, without a store round
// trip: the value is decoded anew from those bytes (and validated, as
// Load does), so the new session's Data is its own, never s.Data.
//
// It is for code that serializes the updates of one key itself and would
// otherwise load again what it has just saved: the middleware's per-key
// lock hands each waiting update the session its predecessor saved, so
// that queued updates of one user cost one round trip each (the save).
// The bytes are the stored value only if nothing else has written the key
// since; a save of the returned session is a compare-and-swap against
// them (on a [store.Swapper]), so a stale start gives ErrConflict, never a
// lost update. Call it only where a conflict would be no worse than after
// a Load.
//
// ctx is passed to Config.Hook, which hears of the handoff as a load with
// Event.Handoff set.
//
// Handoff reports false, and the caller should Load, when s cannot be
// handed on: the store has no compare-and-swap (store.Swapper), so that
// nothing would catch a stale start; s was not loaded or saved
// successfully (a failed Save, a Save still pending after Destroy or
// MoveTo); its stored value no longer decodes or validates; or a write of
// the same store key through any Manager of this process (another
// session's Save, Update, Delete, MigrateAll) may have happened since s
// last touched the store. Writes from other processes are not seen; the
// compare-and-swap catches them. The expiry
// is treated as Load treats it: the new session's Save extends it only
// when less than TTL − slack remains by the time s last learned it.
func (s *Session[T]) Handoff(ctx context.Context) (*Session[T], bool) {
	m := s.m
	if m == nil || m.swapper == nil || !s.current || s.destroyed || s.moveTo != "" || s.quarantined != "" ||
		m.seq.of(s.storeKey).Load() != s.seq {
		return nil, false
	}
	n := &Session[T]{m: m, key: s.key, storeKey: s.storeKey, seq: s.seq, freshUntil: s.freshUntil, current: true}
	var start time.Time
	if m.observing() {
		start = time.Now()
	}
	if s.stored == nil {
		if m.renew(n) != nil {
			return nil, false
		}
	} else if m.fill(n, s.stored) != nil {
		return nil, false
	}
	n.fresh = m.ttl <= 0 || time.Now().Before(s.freshUntil)
	if m.observing() {
		e := Event{Op: "load", Key: n.key, Handoff: true, Duration: time.Since(start),
			Outcome: OutcomeFound, Bytes: len(n.stored), StoredVersion: n.version, Version: m.latest}
		if n.isNew {
			e.Outcome = OutcomeNew
		}
		m.emit(ctx, e)
	}
	return n, true
}

// writeSeq counts the writes that the managers of this process make, per
// stripe of store keys: each write adds one before it is sent and one after
// it returns, so that a session can tell whether any write of its key's
// stripe overlapped or followed its own store access (Handoff). One table
// serves every Manager, so that a write through another Manager of the
// same namespace (a second Config for the same sessions, an admin tool in
// the same binary) is seen too; keys of other namespaces or stores that
// share a stripe only make Handoff decline more often.
type writeSeq struct {
	seed    maphash.Seed
	stripes [4096]atomic.Uint64
}

// writes is the process's one writeSeq.
var writes = &writeSeq{seed: maphash.MakeSeed()}

// newWriteSeq returns the process's write counters (shared by every
// Manager: see writeSeq).
func newWriteSeq() *writeSeq { return writes }

// of returns the counter of key's stripe.
func (w *writeSeq) of(key string) *atomic.Uint64 {
	return &w.stripes[maphash.String(w.seed, key)%uint64(len(w.stripes))]
}

// begin marks the start of a write of key and returns the value its
// counter will hold once the write has ended, if no other write of the
// stripe overlaps it; the caller marks the end with c.Add(1).
func (w *writeSeq) begin(key string) (c *atomic.Uint64, after uint64) {
	c = w.of(key)
	return c, c.Add(1) + 1
}
