// Update: load, apply, save, with retries, one key at a time per Manager.

package session

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/typedsession/session/internal/errs"
	"github.com/typedsession/session/internal/keylock"
	"github.com/typedsession/session/internal/protocol"
	"github.com/typedsession/session/store"
)

// Update loads the session under key, applies fn to its data and saves it.
// When another writer saved in between (ErrConflict), it loads again and
// applies fn again, after a jittered exponential backoff, until the save
// succeeds, ctx ends or Config.MaxAttempts is used up; so no update is ever
// lost. fn may therefore run more than once and must only change the data
// it is given. An error from fn aborts the update without writing and is
// returned wrapped in an *Error. A write whose outcome is unknown
// (ErrOutcomeUnknown) is never retried: running fn again could apply it
// twice. A panic in fn is not recovered; it reaches the caller as it would
// from any inline code, after Update has released what it holds. A nil fn
// panics before anything else. Update
// returns the data as saved, which equals what the next Load returns.
//
// Concurrent Updates of one key through one Manager run one after the
// other, as the middleware's per-key lock runs updates, instead of
// conflicting with each other: each waits for the one before (while ctx
// lasts, and for at most a second; then it goes on without waiting, and
// compare-and-swap keeps it correct; on a store without compare-and-swap
// it waits as long as ctx lasts), and starts from the session that one
// has just saved instead of loading it, so that queued Updates of one key
// that change it cost one round trip each. A handed-on session is as
// current as a Load: a write of the key through any Manager of this
// process in between (Save, Delete, MigrateAll) makes the next one load
// instead; a write from another process is caught by the compare-and-swap
// of a change, or, when fn changes nothing, by a read of the key (one
// round trip, as the Load it replaces). Such a stale start is not counted
// as an attempt (the Update loads and runs fn again at once) and turns
// handing on off for a minute. On a store without compare-and-swap
// nothing is handed on, and only the Updates of one Manager are kept from
// losing each other's writes: a write from anywhere else may be
// overwritten (the last writer wins). fn must not call Update for the same key of the
// same Manager: the inner call would wait a second for its caller, and
// its write would make the caller's save conflict.
func (m *Manager[T]) Update(ctx context.Context, key string, fn func(*T) error) (T, error) {
	if fn == nil {
		panic("session: Update with a nil fn; pass the function that changes the session's data")
	}
	var start time.Time
	if m.observing() {
		start = time.Now()
	}
	var out T
	var last, prev, saved *Session[T]
	storedVersion := 0
	wait := updateWait
	if !m.proto.Swaps() {
		// Nothing else keeps the Updates of this Manager from losing
		// each other's writes: wait for the one before as long as ctx
		// lasts.
		wait = 0
	}
	h, err := m.updates.Lock(ctx, key, wait)
	if err == nil {
		defer func() {
			if saved != nil {
				h.UnlockWith(saved)
			} else {
				h.Unlock()
			}
		}()
		if h.HasPrev && m.handingOn() {
			prev = h.Prev
		}
	}
	attempts := 0
	if err == nil || errors.Is(err, keylock.ErrTimeout) {
		attempts, err = m.retry(ctx, func() error {
			s, handed := m.handedOn(ctx, prev)
			prev = nil
			for {
				if s == nil {
					var err error
					var loadStart time.Time
					if m.observing() {
						loadStart = time.Now()
					}
					if s, err = m.load(ctx, key); err != nil {
						return err
					}
					if s.report.quarantined != "" && m.observing() {
						// The load moved a damaged value aside: Hook
						// hears of it as from Load (the update's own
						// event reports its write).
						m.emit(ctx, m.loadEvent(key, s, nil, loadStart))
					}
				}
				last, storedVersion = s, s.stored.Version
				if err := fn(&s.Data); err != nil {
					return err
				}
				err := m.save(ctx, s)
				if err == nil && handed && s.report.outcome != OutcomeWritten {
					// Nothing was written, so no compare-and-swap
					// proved the handed session current: a read does,
					// so that Update returns what a Load would show.
					err = m.verify(ctx, s)
				}
				if err == nil {
					out, saved = s.Data, s
					return nil
				}
				if !handed || !errors.Is(err, ErrConflict) {
					return err
				}
				// The handed session was stale: another process wrote
				// the key after the save it was handed from, which a
				// Load would have read. That conflict is not this
				// attempt's (with MaxAttempts 1 it would fail an Update
				// that a Load lets succeed): load and run fn again now.
				m.pauseHandingOn()
				s, handed = nil, false
			}
		})
	}
	if err != nil {
		err = &Error{Op: "update", Key: key, Err: err}
	}
	if m.observing() {
		e := Event{Op: "update", Key: key, Err: err, Duration: time.Since(start)}
		if last != nil {
			e = m.saveEvent("update", key, last, storedVersion, err, start)
		}
		e.Attempts, e.Conflicts = attempts, max(attempts-1, 0)
		if errors.Is(err, ErrConflict) {
			e.Conflicts = attempts
		}
		m.emit(ctx, e)
	}
	if err != nil {
		var zero T
		return zero, err
	}
	return out, nil
}

// updateWait is the longest an Update waits for the Update of the same key
// before it (through the same Manager) to finish; then it goes on without
// waiting.
const updateWait = time.Second

// handedOn returns prev handed on (Session.handoff) and true, or nil and
// false.
func (m *Manager[T]) handedOn(ctx context.Context, prev *Session[T]) (*Session[T], bool) {
	if prev == nil || prev.key == "" {
		return nil, false
	}
	s, ok := prev.handoff(ctx)
	return s, ok
}

// verify returns nil when the key of s, a session handed on, still holds
// what s was handed, and ErrConflict when another writer changed it.
func (m *Manager[T]) verify(ctx context.Context, s *Session[T]) error {
	raw, err := m.store.Get(ctx, s.storeKey)
	switch {
	case errors.Is(err, store.ErrNotFound):
		raw = nil
	case err != nil:
		return protocol.StoreError(err)
	}
	if (raw == nil) != (s.stored.Raw == nil) || !bytes.Equal(raw, s.stored.Raw) {
		return &errs.Error{Kind: ErrConflict, Msg: "the key changed after the save the session was handed on from"}
	}
	return nil
}

// handingOn reports whether Update hands sessions on now.
func (m *Manager[T]) handingOn() bool { return time.Now().UnixNano() >= m.handoffOffTill.Load() }

// pauseHandingOn turns Update's handing on off for a minute: a handed
// session conflicted, so something outside this Manager's Updates writes
// the keys.
func (m *Manager[T]) pauseHandingOn() {
	m.handoffOffTill.Store(time.Now().Add(time.Minute).UnixNano())
}

// Retry runs attempt, and runs it again while it returns an error matching
// ErrConflict, with Update's policy: a jittered exponential backoff from
// 0.5 ms to 50 ms between attempts, at most Config.MaxAttempts attempts,
// while ctx lasts. It returns attempt's last error (wrapped, when the
// attempts ran out), or ctx's. It is for code that loads, changes and saves
// a session itself (a handler that is safe to run again, say); attempt must
// load the session anew each time. ErrOutcomeUnknown is never retried. A
// nil attempt panics.
func (m *Manager[T]) Retry(ctx context.Context, attempt func() error) error {
	if attempt == nil {
		panic("session: Retry with a nil attempt; pass the function that loads, changes and saves")
	}
	_, err := m.retry(ctx, attempt)
	return err
}

// retry runs attempt until it returns anything but ErrConflict, with a
// jittered exponential backoff between attempts, at most MaxAttempts times
// and while ctx lasts, and returns how many attempts ran. It is the one
// retry policy of Update and MigrateAll.
func (m *Manager[T]) retry(ctx context.Context, attempt func() error) (int, error) {
	backoff := 500 * time.Microsecond
	for n := 1; ; n++ {
		err := attempt()
		if !errs.DefiniteConflict(err) {
			// An unknown outcome caused by a conflict (a move whose
			// undo met another writer's value) may have landed: never
			// run again.
			return n, err
		}
		if n >= m.maxAttempts {
			return n, fmt.Errorf("%w (gave up after %d attempts)", err, n)
		}
		if err := sleep(ctx, rand.N(backoff)+backoff/2); err != nil {
			return n, err
		}
		backoff = min(backoff*2, 50*time.Millisecond)
	}
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
