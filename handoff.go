// Handing a saved session to the next update of the same key.

package session

import (
	"context"
	"hash/maphash"
	"sync/atomic"
	"time"
)

// handoff returns a new session for the same key that starts from the
// value s last read from or wrote to the store, without a store round
// trip: the value is decoded anew from those bytes (and validated, as Load
// does), so the new session's Data is its own, never s.Data. Update uses
// it for the next Update of the key queued behind the one that saved s.
//
// The bytes are the stored value only if nothing else has written the key
// since: a write through any Manager of this process is seen (writeSeq),
// a write from another process is not. The caller must therefore prove
// the handed session current before it returns anything read from it: a
// change is saved with a compare-and-swap against those bytes (a stale
// start gives ErrConflict), and a session that saves nothing must be
// compared with a read (Manager.verify).
//
// ctx is passed to Config.Hook, which hears of the handoff as a load with
// Event.Handoff set.
//
// handoff reports false, and the caller should Load, when s cannot be
// handed on: the store has no compare-and-swap, so that nothing would
// catch a stale start of a change; s's last store access failed, or a
// Destroy or MoveTo is pending; its stored value no longer decodes or
// validates; or a write of the same store key through any Manager of this
// process (another session's Save, Update, Delete, MigrateAll) may have
// happened since s last touched the store. The expiry is treated as Load
// treats it: the new session's save extends it only when less than TTL −
// slack remains by the time s last learned it.
func (s *Session[T]) handoff(ctx context.Context) (*Session[T], bool) {
	m := s.m
	if m == nil || !m.proto.Swaps() || !s.synced || s.pending != (pending{}) ||
		m.seq.of(s.storeKey).Load() != s.seq {
		return nil, false
	}
	n := &Session[T]{m: m, key: s.key, storeKey: s.storeKey, seq: s.seq}
	var start time.Time
	if m.observing() {
		start = time.Now()
	}
	if s.stored.Raw == nil {
		if m.renew(n) != nil {
			return nil, false
		}
	} else {
		stored, v, err := m.pipe.Decode(s.stored.Raw, s.key)
		if err != nil {
			return nil, false
		}
		n.Data, n.stored, n.synced = *v.(*T), stored, true
	}
	n.freshUntil = s.freshUntil
	if m.observing() {
		e := m.loadEvent(n.key, n, nil, start)
		e.Handoff = true
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
