// The writes of a session: each one exactly once, through lost replies
// and resends (see "Concurrency" in doc.go).

package session

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/typedsession/session/internal/format"
	"github.com/typedsession/session/store"
)

// write stores enc (whose write identity is id) under key in place of old,
// the loaded value whose write identities are oldWrites (old nil: only if
// absent), exactly once. On a store.Swapper a swap that fails is sent again
// (a resent swap that finds its own value reports success, as the store
// contract requires). A first attempt that reports false is a conflict; a
// resend that does is settled by reading the stored value back, since the
// first attempt may have landed and been built on by other writers before
// the resend.
//
// It also returns the value the key's write counter holds after the write
// if no other write of its stripe overlapped it (see Handoff).
func (m *Manager[T]) write(ctx context.Context, key string, old []byte, oldWrites format.Writes, enc []byte, id string) (uint64, error) {
	c, seq := m.seq.begin(key)
	defer c.Add(1)
	if m.swapper == nil {
		if err := m.store.Set(ctx, key, enc, m.ttl); err != nil {
			return 0, writeError(err)
		}
		return seq, nil
	}
	ok, resent, err := resend(ctx, func() (bool, error) {
		return m.swapper.CompareAndSwap(ctx, key, old, enc, m.ttl)
	})
	switch {
	case err != nil:
		return 0, writeError(err)
	case ok:
		return seq, nil
	case !resent:
		return 0, ErrConflict // a first attempt's false is a promise (store.Swapper)
	}
	return seq, m.settle(ctx, key, oldWrites, id)
}

// settle decides what a swap that reported a conflict means, from the write
// identities of the value stored now: nil when the write with identity id
// is there or was built on (it landed, perhaps by an earlier attempt whose
// reply was lost); ErrConflict when they prove that another writer replaced
// the loaded value (its identity, oldWrites[0], is followed by another
// writer's), or, for a loaded value without identities (nothing stored, or
// a value of the first release), when the whole chain of writes since is in
// view without id; ErrOutcomeUnknown when they cannot tell (the loaded
// value's identity was pushed out of the MaxWrites kept).
func (m *Manager[T]) settle(ctx context.Context, key string, oldWrites format.Writes, id string) error {
	unknown := func(why string, cause error) error {
		return &kindError{kind: ErrOutcomeUnknown, msg: "the swap reported a conflict and " + why, cause: cause}
	}
	raw, err := m.store.Get(ctx, key)
	if errors.Is(err, store.ErrNotFound) {
		return unknown("the key is gone: deleted since, perhaps after the write landed", nil)
	}
	if err != nil {
		return unknown("reading back failed", err)
	}
	env, err := m.format.Decode(raw)
	if err != nil {
		return unknown("the value read back does not decode", err)
	}
	if env.Writes.Index(id) >= 0 {
		return nil
	}
	if oldWrites.Len() > 0 {
		if k := env.Writes.Index(oldWrites.At(0)); k >= 1 {
			return ErrConflict
		}
	} else if n := env.Writes.Len(); n > 0 && n < format.MaxWrites {
		return ErrConflict
	}
	return unknown(fmt.Sprintf("the stored write identities (the last %d) cannot tell whether the write landed", format.MaxWrites), nil)
}

// resend calls op, a conditional write that is safe to send again (the
// store contract's resend rules), and sends it again while it fails in a way
// that leaves its outcome open: at once, then after 2, 8, 32 and 128 ms,
// while ctx lasts. It reports whether it resent.
func resend(ctx context.Context, op func() (bool, error)) (ok, resent bool, err error) {
	ok, err = op()
	for wait := time.Duration(0); err != nil && !definite(err) && wait <= 128*time.Millisecond; wait = max(2*time.Millisecond, wait*4) {
		if sleep(ctx, wait) != nil {
			break
		}
		ok, err = op()
		resent = true
	}
	return ok, resent, err
}

// definite reports whether a store error says for sure that nothing was
// written.
func definite(err error) bool {
	return errors.Is(err, store.ErrInvalidKey) || errors.Is(err, store.ErrTooLarge) || errors.Is(err, store.ErrClosed)
}

// writeError classifies the error of a write: one that says for sure that
// nothing was written is returned as the store's error; any other means
// the write may have landed: ErrOutcomeUnknown.
func writeError(err error) error {
	if definite(err) {
		return storeError(err)
	}
	return &kindError{kind: ErrOutcomeUnknown, cause: err}
}

// storeError maps the store's shared errors to the session's.
func storeError(err error) error {
	switch {
	case errors.Is(err, store.ErrCorrupt):
		return wrapKind(ErrCorrupt, err)
	case errors.Is(err, store.ErrTooLarge):
		return wrapKind(ErrTooLarge, err)
	}
	return err
}

// remove deletes storeKey if it still holds stored: with compare-and-delete
// on a store.Deleter (ErrConflict when it changed), unconditionally on other
// stores. A nil stored (nothing was loaded) deletes nothing. Like write, it
// returns the key's write counter after the delete.
func (m *Manager[T]) remove(ctx context.Context, storeKey string, stored []byte) (uint64, error) {
	if stored == nil {
		return 0, nil
	}
	c, seq := m.seq.begin(storeKey)
	defer c.Add(1)
	if m.deleter == nil {
		if err := m.store.Delete(ctx, storeKey); err != nil {
			return 0, writeError(err)
		}
		return seq, nil
	}
	// A compare-and-delete is safe to resend: one whose first attempt
	// landed finds the key absent and reports true.
	ok, _, err := resend(ctx, func() (bool, error) {
		return m.deleter.CompareAndDelete(ctx, storeKey, stored)
	})
	if err != nil {
		return 0, writeError(err)
	}
	if !ok {
		return 0, ErrConflict
	}
	return seq, nil
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
