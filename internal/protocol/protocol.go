// Package protocol is the one write protocol of typedsession: every
// mutation of a store that the session manager (and the inspector) makes
// goes through it — a write (Save, Update, MigrateAll and its batches), a
// delete (Delete, Destroy), a two-key move (MoveTo, quarantine and its
// restore) and an expiry refresh. It owns sending, resending after a lost
// reply, settling what a resend's answer means, undoing a half-done move,
// and the choice between success, ErrConflict and ErrOutcomeUnknown.
//
// # Rules
//
// A reply is "open" when it is an error that does not say for sure that
// nothing was written: anything but store.ErrInvalidKey, store.ErrTooLarge,
// store.ErrClosed and store.ErrCorrupt (the definite errors, returned as
// they are: ErrCorrupt as session.ErrCorrupt, never quarantined). A
// definite error is definite only as the first reply: after an open one,
// the outcome stays open whatever a resend meets. An open
// reply is followed by resends of the same operation, at once and then
// after 2, 8, 32 and 128 ms, while ctx lasts, only where a resend cannot
// apply the operation twice: a compare-and-swap from an old value (every
// value the manager writes carries a unique write identity, so a resend
// that finds its own value reports true), a compare-and-delete (it
// deletes only old) and a Touch (touching twice is touching once). A
// write "only if absent" and a blind Delete are never resent: if the
// first attempt landed and another writer deleted or wrote the key since,
// a resend would apply it a second time. Their open replies are settled
// by reading the key. "Settled by a read" means a Get of the key; a Get
// that fails leaves the outcome open (ErrOutcomeUnknown).
//
//	operation     store needs   first reply        then                  outcome
//	------------  ------------  -----------------  --------------------  ------------------------------------------
//	Write         Swapper       true               -                     done
//	                            false              -                     ErrConflict (a first attempt's false is a
//	                                                                     promise)
//	                            open, old present  resend: true          done (landed now or before)
//	                                               resend: false, read:  the value holds the write's identity → done;
//	                                                                     built on the old value by another writer
//	                                                                     (the old identity followed by another) →
//	                                                                     ErrConflict; else ErrOutcomeUnknown
//	                                               resend open to end    ErrOutcomeUnknown
//	                            open, old absent   read (no resend)      the key holds the write (its bytes or its
//	                                                                     identity) → done; else ErrOutcomeUnknown
//	Write         (no Swapper)  Set: nil → done; open → ErrOutcomeUnknown. The last writer wins.
//	Delete        Deleter       true               -                     done (this call deleted old)
//	(Destroy: the               false              read                  absent → done (gone, as wanted); present →
//	caller wants                                                         ErrConflict
//	old gone)                   open               resend: true          done
//	                                               resend: false, read   absent → done; built on old by a
//	                                                                     compare-and-swap (a Swapper store) →
//	                                                                     ErrConflict; else ErrOutcomeUnknown (the
//	                                                                     first attempt may have deleted old before
//	                                                                     the key was written again: without
//	                                                                     compare-and-swap, even by a value built
//	                                                                     on old)
//	                                               resend open to end    ErrOutcomeUnknown
//	Delete        Swapper, no   refused before anything is sent (errors.ErrUnsupported): a blind delete
//	              Deleter       could erase a newer value another writer saved with compare-and-swap.
//	Delete        (neither)     as DeleteAny. The last writer wins, as for every write on such a store.
//	Move's delete Deleter       as Delete, but exact (did this call remove old?): false and absent → ErrConflict
//	of the old                                   (another writer deleted it; the move is undone); resent,
//	key                                          false and absent → ErrOutcomeUnknown (this call's first attempt
//	                                             or another writer deleted it)
//	DeleteAny     -             Delete once: nil → done; open → read: absent → done; else ErrOutcomeUnknown.
//	Refresh       Toucher       Touch, resent while open: nil → done; ErrNotFound → ErrConflict (deleted or
//	                            expired since the read: writing the value back could undo that); still open →
//	                            ErrOutcomeUnknown.
//	Refresh, swap Swapper       (a Save of an unchanged session only) a compare-and-swap of the old value by
//	(no Toucher)                itself, resent while open: true → done; false → ErrConflict (the value changed
//	                            since it was read); still open → ErrOutcomeUnknown.
//	Refresh       (otherwise)   nothing is sent: a read (Load) never writes a value, and without a conditional
//	                            write an unchanged value is never written back, since that could revert another
//	                            writer's newer value. The expiry is then extended only by writes and by reads
//	                            that extend it (GetAndTouch).
//	Move          Swapper and   Write to the new key "only if absent", then the exact Delete of the old key.
//	              Deleter       The Write's ErrConflict → ErrConflict (ErrKeyTaken), nothing else done; its
//	                            other errors as they are, the old key untouched. The Delete's ErrConflict
//	                            (another writer changed or deleted the old key) → undo: Delete the new key
//	                            against what was written there; done → ErrConflict; the undo failing →
//	                            ErrOutcomeUnknown (both keys may hold a value). The Delete's ErrOutcomeUnknown →
//	                            ErrOutcomeUnknown and no undo: an undo after an open outcome could leave the
//	                            value under neither key.
//	Move          Swapper, no   refused before anything is written (errors.ErrUnsupported), as Delete; a
//	              Deleter       move of nothing (old absent) only writes the new key "only if absent".
//	Move          (neither)     Set the new key, then Delete the old one (the last writer wins). Quarantine
//	                            moves only when Moves reports true: see Config.Quarantine.
//
// A move never leaves the value under neither key.
package protocol

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/typedsession/session/internal/errs"
	"github.com/typedsession/session/internal/format"
	"github.com/typedsession/session/store"
)

// Store is a store with its optional capabilities resolved once. It is
// safe for concurrent use.
type Store struct {
	st    store.Store
	sw    store.Swapper
	del   store.Deleter
	touch store.Toucher
	batch store.BatchSwapper
}

// New returns the protocol over st.
func New(st store.Store) *Store {
	p := &Store{st: st}
	p.sw, _ = st.(store.Swapper)
	p.del, _ = st.(store.Deleter)
	p.touch, _ = st.(store.Toucher)
	if p.sw != nil {
		p.batch, _ = st.(store.BatchSwapper)
	}
	return p
}

// Swaps reports whether writes are compare-and-swaps.
func (p *Store) Swaps() bool { return p.sw != nil }

// Old is what the caller last read of a key: Raw nil for an absent key.
type Old struct {
	Raw    []byte
	Writes format.Writes // Raw's write identities, newest first
}

// Value is a value to write: its bytes, its newest write identity ("" for
// bytes that carry none, such as a damaged value moved aside) and its ttl
// (0: no expiry).
type Value struct {
	Raw []byte
	ID  string
	TTL time.Duration
}

// Write stores v under key in place of old (see the package's rules).
func (p *Store) Write(ctx context.Context, key string, old Old, v Value) error {
	if p.sw == nil {
		return openError(p.st.Set(ctx, key, v.Raw, v.TTL))
	}
	ok, err := p.sw.CompareAndSwap(ctx, key, old.Raw, v.Raw, v.TTL)
	return p.finishWrite(ctx, key, old, v, ok, err)
}

// finishWrite decides a write from its first attempt's reply (ok, err):
// the one place where a write is resent and settled, for single writes
// and for the swaps of a batch.
func (p *Store) finishWrite(ctx context.Context, key string, old Old, v Value, ok bool, err error) error {
	switch {
	case err == nil && ok:
		return nil
	case err == nil:
		return errs.Conflict // a first attempt's false is a promise
	case definite(err):
		return storeError(err)
	case old.Raw == nil:
		// Never resent: if the first attempt landed and the key was
		// deleted since, a resend would create it a second time.
		return lostReply(p.settleCreate(ctx, key, v), err)
	}
	sent := err
	ok, err = resend(ctx, true, func() (bool, error) { return p.sw.CompareAndSwap(ctx, key, old.Raw, v.Raw, v.TTL) })
	switch {
	case err != nil:
		return lostReply(err, sent)
	case ok:
		return nil
	}
	return lostReply(p.settleWrite(ctx, key, old, v), sent)
}

// lostReply makes sent, the error of the attempt whose reply was lost,
// a cause of an outcome that settling it could not learn: the outcome is
// unknown because of that error, so errors.Is finds it (a store's "writes
// are down" stays visible behind ErrOutcomeUnknown). Other results are
// returned as they are.
func lostReply(err, sent error) error {
	var e *errs.Error
	if sent == nil || !errors.As(err, &e) || e.Kind != errs.OutcomeUnknown || errors.Is(e, sent) {
		return err
	}
	msg := e.Msg
	if msg == "" && e.Cause != nil {
		msg = e.Cause.Error()
	}
	return &errs.Error{Kind: e.Kind, Cause: errors.Join(sent, e.Cause), Msg: msg + " (the lost reply: " + sent.Error() + ")"}
}

// settleWrite decides a resent write that reported false: its first
// attempt may have landed and been built on since.
func (p *Store) settleWrite(ctx context.Context, key string, old Old, v Value) error {
	_, now, err := p.current(ctx, key)
	if err != nil {
		return err
	}
	switch {
	case v.ID != "" && now.Index(v.ID) >= 0:
		return nil
	case old.Writes.Len() > 0 && now.Index(old.Writes.At(0)) >= 1:
		// Another writer's value was built on the old one: only one swap
		// can replace the old value, so this one did not.
		return errs.Conflict
	}
	return unknown(fmt.Sprintf("the stored write identities (the last %d) cannot tell whether the write landed", format.MaxWrites), nil)
}

// settleCreate decides a write "only if absent" whose reply is open, by a
// read instead of a resend: the key holds the write (its bytes, or a value
// whose write identities hold the write's) → done; anything else (absent:
// never landed, or landed and deleted since; another value: created by
// another writer first, or after this write was deleted) → unknown.
func (p *Store) settleCreate(ctx context.Context, key string, v Value) error {
	raw, now, err := p.current(ctx, key)
	if err != nil {
		return err
	}
	if bytes.Equal(raw, v.Raw) || v.ID != "" && now.Index(v.ID) >= 0 {
		return nil
	}
	return unknown("the key holds another value: written by another writer first, or after this write landed and was deleted", nil)
}

// Delete removes key if it still holds old, for a caller that wants old
// gone (Destroy; see the package's rules). A nil old.Raw deletes nothing.
func (p *Store) Delete(ctx context.Context, key string, old Old) error {
	return p.delete(ctx, key, old, false)
}

// delete is Delete; exact (a move's delete of its old key) asks whether
// this call removed old, where Delete asks only whether old is gone.
func (p *Store) delete(ctx context.Context, key string, old Old, exact bool) error {
	if old.Raw == nil {
		return nil
	}
	if p.del == nil {
		if p.sw != nil {
			return errNoCompareAndDelete
		}
		return p.DeleteAny(ctx, key)
	}
	ok, err := p.del.CompareAndDelete(ctx, key, old.Raw)
	resent, sent := false, err
	if err != nil {
		if definite(err) {
			return storeError(err)
		}
		resent = true
		ok, err = resend(ctx, true, func() (bool, error) { return p.del.CompareAndDelete(ctx, key, old.Raw) })
		if err != nil {
			return lostReply(err, sent)
		}
	}
	if ok {
		return nil // this call deleted old (a resend: the first attempt had not)
	}
	return lostReply(p.settleDelete(ctx, key, old, resent, exact), sent)
}

// settleDelete decides a compare-and-delete that reported false (it did
// not delete the key) by reading the key: resent tells that an earlier
// attempt's reply was lost (it may have deleted old).
func (p *Store) settleDelete(ctx context.Context, key string, old Old, resent, exact bool) error {
	_, now, err := p.current(ctx, key)
	switch {
	case errors.Is(err, errs.OutcomeUnknown) && errors.Is(err, store.ErrNotFound):
		switch {
		case !exact:
			return nil // gone: what the caller wants, whoever deleted it
		case !resent:
			return &errs.Error{Kind: errs.Conflict, Cause: ErrGone} // another writer deleted it
		}
		return unknown("the key is gone: deleted by this call's first attempt or by another writer", nil)
	case err != nil:
		return err
	case !resent:
		return errs.Conflict // it held another value when this delete ran
	case p.sw != nil && old.Writes.Len() > 0 && now.Index(old.Writes.At(0)) >= 1:
		// Built on the old value by a compare-and-swap, which replaced
		// old while it was there: it was there when this delete was not.
		// Without compare-and-swap the value built on old may have been
		// written blindly after this delete landed: unknown.
		return errs.Conflict
	}
	return unknown("the key holds another value: written after this delete landed, or before it", nil)
}

// DeleteAny removes key whatever it holds (the caller's Manager.Delete,
// and Delete on a store without compare-and-delete). It is sent once: a
// resend after a lost reply could land after another writer's value
// followed the first attempt's delete, and delete that too. An open reply
// is settled by a read: the key absent → done (the delete holds, whoever
// made it); anything else → ErrOutcomeUnknown.
func (p *Store) DeleteAny(ctx context.Context, key string) error {
	err := p.st.Delete(ctx, key)
	if err == nil || definite(err) {
		return storeError(err)
	}
	if _, _, rerr := p.current(ctx, key); errors.Is(rerr, errs.OutcomeUnknown) && errors.Is(rerr, store.ErrNotFound) {
		return nil
	}
	return unknown("reading the key back did not show it gone (written again since, or the delete did not land)", err)
}

// current returns the value stored under key now and its write
// identities, for settling; every failure to learn them is
// ErrOutcomeUnknown (an absent key also matches store.ErrNotFound).
func (p *Store) current(ctx context.Context, key string) ([]byte, format.Writes, error) {
	raw, err := p.st.Get(ctx, key)
	if errors.Is(err, store.ErrNotFound) {
		return nil, "", unknown("the key is gone: deleted since, perhaps after the write landed", err)
	}
	if err != nil {
		return nil, "", unknown("reading it back failed", err)
	}
	w, _ := format.WritesOf(raw)
	return raw, w, nil
}

// Refresh extends the expiry of key, which still holds old, to ttl (see
// the package's rules). With swap (a Save of an unchanged session) it may
// use a compare-and-swap of old by itself where the store cannot Touch;
// without (a Load: a read never writes a value) it only touches. It
// reports whether it sent anything.
func (p *Store) Refresh(ctx context.Context, key string, old Old, ttl time.Duration, swap bool) (bool, error) {
	switch {
	case old.Raw == nil:
		return false, nil
	case p.touch != nil:
		found, err := resend(ctx, false, func() (bool, error) {
			err := p.touch.Touch(ctx, key, ttl)
			if errors.Is(err, store.ErrNotFound) {
				return false, nil
			}
			return err == nil, err
		})
		switch {
		case err != nil:
			return true, err
		case !found:
			// Deleted or expired since the read (or since an earlier
			// attempt landed): writing the value back could undo that.
			return true, errs.Conflict
		}
		return true, nil
	case swap && p.sw != nil:
		ok, err := resend(ctx, false, func() (bool, error) { return p.sw.CompareAndSwap(ctx, key, old.Raw, old.Raw, ttl) })
		switch {
		case err != nil:
			return true, err
		case !ok:
			return true, errs.Conflict
		}
		return true, nil
	}
	return false, nil
}

// Refreshes reports whether Refresh with swap can extend an expiry at all.
func (p *Store) Refreshes() bool { return p.touch != nil || p.sw != nil }

// Moves reports whether Move is exact: the store can write "only if
// absent" and delete "only if unchanged". Without, a move is a Set and a
// Delete, the last writer wins.
func (p *Store) Moves() bool { return p.sw != nil && p.del != nil }

// Move stores v under to (only if nothing is there) and removes from,
// which holds old (see the package's rules). A nil old.Raw (nothing stored
// under from) only writes to.
func (p *Store) Move(ctx context.Context, from string, old Old, to string, v Value) error {
	if old.Raw != nil && p.sw != nil && p.del == nil {
		return errNoCompareAndDelete // before anything is written
	}
	if err := p.Write(ctx, to, Old{}, v); err != nil {
		if errors.Is(err, errs.Conflict) {
			return &errs.Error{Kind: errs.Conflict, Cause: ErrKeyTaken}
		}
		return err
	}
	err := p.delete(ctx, from, old, true)
	if err == nil || !errs.DefiniteConflict(err) {
		// Done, or open: never undo after an open outcome, which could
		// leave the value under neither key.
		return err
	}
	// Another writer changed or deleted the old key since it was read:
	// undo the new write, so that the other writer's change stands alone.
	w, _ := format.WritesOf(v.Raw)
	if uerr := p.Delete(ctx, to, Old{Raw: v.Raw, Writes: w}); uerr != nil {
		return &errs.Error{Kind: errs.OutcomeUnknown, Cause: fmt.Errorf("the old key changed since it was read and undoing the write under the new key failed (both keys may hold a value now): %w", uerr)}
	}
	return err
}

// errNoCompareAndDelete refuses a delete that must be conditional (a
// Destroy, a move's delete of its old key) on a store that has
// compare-and-swap but no compare-and-delete: a blind delete there could
// erase a newer value that another writer saved with compare-and-swap, a
// write the store otherwise never loses. (On a store with neither, every
// write is blind and the last writer wins, so a blind delete is what the
// caller expects there.)
var errNoCompareAndDelete = &errs.Error{Kind: errors.ErrUnsupported, Msg: "the store has compare-and-swap but no compare-and-delete (store.Deleter): " +
	"deleting the old value unconditionally could erase a newer value another writer saved; the store needs CompareAndDelete for this"}

// ErrGone is the cause of a Move's ErrConflict when another writer
// deleted the old key since it was read: the write under the new key was
// undone.
var ErrGone = errors.New("the old key was deleted since it was read")

// ErrKeyTaken is the cause of a Move's ErrConflict when the new key
// holds a value: nothing was changed.
var ErrKeyTaken = errors.New("the new key is taken")

// Item is one write of a WriteMany.
type Item struct {
	Key string
	Old Old
	New Value
}

// WriteMany makes the writes of items, each as Write makes it, the first
// attempts of all in one round trip on a store.BatchSwapper. It returns
// one error per item, in order. batchErr is not nil when the batch sent
// nothing (then errs is nil and every write is still to make).
func (p *Store) WriteMany(ctx context.Context, items []Item) (results []error, batchErr error) {
	results = make([]error, len(items))
	if p.batch == nil {
		for i, it := range items {
			results[i] = p.Write(ctx, it.Key, it.Old, it.New)
		}
		return results, nil
	}
	swaps := make([]store.Swap, len(items))
	for i, it := range items {
		swaps[i] = store.Swap{Key: it.Key, Old: it.Old.Raw, Value: it.New.Raw, TTL: it.New.TTL}
	}
	res, err := p.batch.CompareAndSwapMany(ctx, swaps)
	if err != nil {
		return nil, err
	}
	for i, it := range items {
		results[i] = p.finishWrite(ctx, it.Key, it.Old, it.New, res[i].Swapped, res[i].Err)
	}
	return results, nil
}

// resend calls op, and again while it fails with an open reply: at once,
// then after 2, 8, 32 and 128 ms, while ctx lasts. opened tells that an
// attempt before the first call was open already (the caller's own first
// attempt). It returns op's last answer, its error classed by the cause
// of the outcome: a definite error only when no attempt was open before
// it; once one was, that attempt may have landed, whatever a later one
// met (a closed store, a refusal), so the outcome is ErrOutcomeUnknown.
func resend(ctx context.Context, opened bool, op func() (bool, error)) (ok bool, err error) {
	ok, err = op()
	for wait := time.Duration(0); err != nil && !definite(err) && wait <= 128*time.Millisecond; wait = max(2*time.Millisecond, wait*4) {
		opened = true
		if sleep(ctx, wait) != nil {
			break
		}
		ok, err = op()
	}
	switch {
	case err == nil:
		return ok, nil
	case opened || !definite(err):
		return ok, errs.Wrap(errs.OutcomeUnknown, err)
	}
	return ok, storeError(err)
}

// definite reports whether a store error says for sure that nothing was
// written: a key refused, a value over the store's cap, a closed store,
// and a stored value the store cannot read back whole (store.ErrCorrupt:
// the store contract leaves it in place), which no resend can change.
func definite(err error) bool {
	return errors.Is(err, store.ErrInvalidKey) || errors.Is(err, store.ErrTooLarge) || errors.Is(err, store.ErrClosed) ||
		errors.Is(err, store.ErrCorrupt)
}

// openError classes the error of a write that was sent once and not
// resent: definite errors as they are, others ErrOutcomeUnknown.
func openError(err error) error {
	if err == nil || definite(err) {
		return storeError(err)
	}
	return errs.Wrap(errs.OutcomeUnknown, err)
}

func unknown(why string, cause error) error {
	if cause != nil {
		why += ": " + cause.Error()
	}
	return &errs.Error{Kind: errs.OutcomeUnknown, Msg: "the write's reply was lost and " + why, Cause: cause}
}

// StoreError maps the store's shared errors to the session's: a value the
// store cannot read back whole is ErrCorrupt, one over the store's cap
// ErrTooLarge; others are returned as they are.
func StoreError(err error) error { return storeError(err) }

func storeError(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, store.ErrCorrupt):
		return errs.Wrap(errs.Corrupt, err)
	case errors.Is(err, store.ErrTooLarge):
		return errs.Wrap(errs.TooLarge, err)
	}
	return err
}

func sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
