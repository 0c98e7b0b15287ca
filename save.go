// Saving a session: prepare (check, encode, decide), then write through
// the write protocol, then commit what was written to the session.

package session

import (
	"context"
	"fmt"
	"time"

	"github.com/typedsession/session/internal/errs"
	"github.com/typedsession/session/internal/format"
	"github.com/typedsession/session/internal/protocol"
)

// Save validates the session and writes it. It writes nothing when the data
// equals what was loaded (with a TTL it then only extends the expiry, and
// only when the session is near expiry and the store can do it
// conditionally), nor for a new session still at its initial value; a
// session loaded at an older version is written (that is its migration).
// On a store.Swapper it writes with CompareAndSwap against the loaded bytes
// and returns ErrConflict when another writer saved first; on other stores
// it overwrites. A session marked with Destroy is deleted, one marked with
// MoveTo moved.
//
// A value that would not read back as saved (a string that is not valid
// UTF-8, nesting deeper than the decoder allows) gives ErrInvalid naming the
// field, and nothing is written. A write whose outcome cannot be learned
// (the store failed and did not answer again within ctx) gives
// ErrOutcomeUnknown: it may or may not have landed.
func (m *Manager[T]) Save(ctx context.Context, s *Session[T]) error {
	if s == nil || s.m != m {
		panic("session: Save of a session that this Manager did not load; pass the *Session that m.Load returned")
	}
	var start time.Time
	if m.observing() {
		start = time.Now()
	}
	key, storedVersion := s.key, s.stored.Version
	err := m.save(ctx, s)
	if err != nil {
		err = &Error{Op: "save", Key: key, Err: err}
	}
	if m.observing() {
		m.emit(ctx, m.saveEvent("save", key, s, storedVersion, err, start), s.pending.moveTo)
	}
	return err
}

// Validate reports what Save would refuse in v itself, without a session
// or a store: the validation of T (validate tags, a Validate method), a
// value the codec cannot store or read back as it is, a payload over
// Config.MaxBytes as Save measures it (at Config.WriteVersion), and, with
// a WriteVersion below the latest, a step down that fails or does not
// invert its step up. The error matches ErrInvalid (or ErrTooLarge, or
// ErrMigration) and names each failing field and rule; errors.As finds
// validator.ValidationErrors. A web handler can check a form with it and
// answer 400 with the field messages before it changes the session.
func (m *Manager[T]) Validate(v T) error { return m.pipe.Check(&v) }

// Copy returns a deep copy of v as the manager stores it: v encoded with
// the codec and decoded into a new T (no envelope, layers, validation or
// migration), so that the copy shares no map, slice or pointer with v.
// Fields the codec does not store (json:"-", unexported fields) are zero
// in the copy. Code that must be able to undo its changes to a session's
// Data (a step that may fail half way) copies it first and puts the copy
// back. It returns an error matching ErrInvalid when v does not encode or
// would not read back (see Validate).
func (m *Manager[T]) Copy(v *T) (T, error) {
	var out T
	f := m.pipe.Format()
	b, err := f.AppendPayload(nil, v)
	if err == nil {
		err = f.Unmarshal(b, nil, b, &out)
	}
	if err != nil {
		return out, errs.Wrap(errs.Invalid, err)
	}
	return out, nil
}

// saveEvent describes the save of s, for Config.Hook.
func (m *Manager[T]) saveEvent(op, key string, s *Session[T], storedVersion int, err error, start time.Time) Event {
	e := Event{Op: op, Key: key, Err: err, Duration: time.Since(start), Outcome: s.report.outcome, Extra: s.report.extra,
		StoredVersion: storedVersion, Version: storedVersion}
	if err == nil && s.report.outcome == OutcomeWritten {
		e.Bytes, e.Version = len(s.stored.Raw), s.stored.Version
	}
	return e
}

// save moves s to its next state (see Session): it prepares what to
// write, then writes it through the write protocol.
func (m *Manager[T]) save(ctx context.Context, s *Session[T]) error {
	s.report = report{}
	synced := s.synced
	s.synced = false // until this save succeeds
	if s.pending.destroy {
		return m.destroy(ctx, s)
	}
	e, err := m.prepare(s)
	if err != nil {
		return err
	}
	if s.pending.moveTo != "" {
		return m.move(ctx, s, e)
	}
	if e.Bytes == nil {
		// The same data: nothing to write, only an expiry to extend.
		s.report.outcome = OutcomeUnchanged
		if err := m.refresh(ctx, s); err != nil {
			return err
		}
		s.synced = synced
		return nil
	}
	return m.commit(s, e, m.write(ctx, s, e))
}

// prepare is the first half of a save, shared with MigrateAll's batches:
// it checks and encodes s.Data for its key (the new one, for a move) and
// decides whether there is anything to write: Encoded.Bytes is nil when
// the data is the same as stored and nothing asks for a rewrite.
func (m *Manager[T]) prepare(s *Session[T]) (format.Encoded, error) {
	key := s.key
	if s.pending.moveTo != "" {
		key = s.pending.moveTo
	}
	build := s.pending.moveTo != "" && s.stored.Present() || s.pending.reseal && s.stored.Stale
	e, err := m.pipe.Encode(&s.Data, &s.stored, key, build)
	if err != nil {
		return format.Encoded{}, err
	}
	s.report.extra = e.Extra
	if e.Same && !build {
		e.Bytes = nil
	}
	return e, nil
}

// write is the second half of a save: the write of e under s's key in
// place of what s loaded, through the write protocol.
func (m *Manager[T]) write(ctx context.Context, s *Session[T], e format.Encoded) error {
	c, seq := m.seq.begin(s.storeKey)
	defer c.Add(1)
	err := m.proto.Write(ctx, s.storeKey, s.old(), protocol.Value{Raw: e.Bytes, ID: e.ID, TTL: m.ttl})
	if err == nil {
		s.seq = seq
	}
	return err
}

// commit records in s the outcome err of writing e: on success s is stored
// in step with e; otherwise it stays unsynced.
func (m *Manager[T]) commit(s *Session[T], e format.Encoded, err error) error {
	if err != nil {
		return err
	}
	s.stored = e.Stored(m.writeVersion)
	s.freshUntil = time.Now().Add(m.slack)
	s.synced = true
	s.pending.reseal = false
	s.report.outcome = OutcomeWritten
	return nil
}

// destroy deletes what s loaded (a compare-and-delete, on a store with
// one) and leaves s a new session.
func (m *Manager[T]) destroy(ctx context.Context, s *Session[T]) error {
	if s.stored.Present() {
		c, seq := m.seq.begin(s.storeKey)
		err := m.proto.Delete(ctx, s.storeKey, s.old())
		c.Add(1)
		if err != nil {
			return err
		}
		s.seq = seq
	}
	if err := m.renew(s); err != nil {
		return err
	}
	s.pending.moveTo, s.report.outcome = "", OutcomeDeleted
	return nil
}

// move stores s under its pending new key with the write protocol's move
// (see Session.MoveTo). A new session nobody changed only changes its key.
func (m *Manager[T]) move(ctx context.Context, s *Session[T], e format.Encoded) error {
	to := s.pending.moveTo
	newKey, err := m.storeKey(to)
	if err != nil {
		return err
	}
	if e.Bytes == nil {
		// Nothing stored and nothing changed: nothing to write under
		// either key; the new key's counter is the one to watch now.
		s.key, s.storeKey, s.pending.moveTo = to, newKey, ""
		s.seq, s.synced = m.seq.of(newKey).Load(), true
		s.report.outcome = OutcomeUnchanged
		return nil
	}
	c1, _ := m.seq.begin(s.storeKey)
	c2, seq := m.seq.begin(newKey)
	err = m.proto.Move(ctx, s.storeKey, s.old(), newKey, protocol.Value{Raw: e.Bytes, ID: e.ID, TTL: m.ttl})
	c1.Add(1)
	c2.Add(1)
	if err != nil {
		if errs.DefiniteConflict(err) {
			return fmt.Errorf("%w (moving to the new key %s)", err, quoteKey(to))
		}
		return err
	}
	s.key, s.storeKey, s.pending.moveTo = to, newKey, ""
	s.seq = seq
	return m.commit(s, e, nil)
}

// refresh extends the expiry of an unchanged session unless it is fresh,
// with the write protocol's refresh: conditionally, or not at all.
func (m *Manager[T]) refresh(ctx context.Context, s *Session[T]) error {
	if m.fresh(s) {
		return nil
	}
	now := time.Now()
	sent, err := m.proto.Refresh(ctx, s.storeKey, s.old(), m.ttl, true)
	if err != nil {
		return err
	}
	if sent {
		s.freshUntil = now.Add(m.slack)
	}
	return nil
}

// Delete removes the session stored under key, whatever it holds. An
// absent key is not an error. The delete is sent once (a resend after a
// lost reply could delete a value another writer saved after the first
// attempt landed): a lost reply is settled by reading the key, absent
// meaning done; when the key still holds a value, or the read fails too,
// Delete returns ErrOutcomeUnknown.
func (m *Manager[T]) Delete(ctx context.Context, key string) error {
	var start time.Time
	if m.observing() {
		start = time.Now()
	}
	sk, err := m.storeKey(key)
	if err == nil {
		c, _ := m.seq.begin(sk)
		err = m.proto.DeleteAny(ctx, sk)
		c.Add(1)
	}
	if err != nil {
		err = &Error{Op: "delete", Key: key, Err: err}
	}
	if m.observing() {
		m.emit(ctx, Event{Op: "delete", Key: key, Err: err, Outcome: OutcomeDeleted, Duration: time.Since(start)})
	}
	return err
}
