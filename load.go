// Loading a session: read the stored bytes, then open them (decode,
// quarantine, extend the expiry).

package session

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/typedsession/session/internal/errs"
	"github.com/typedsession/session/internal/format"
	"github.com/typedsession/session/internal/protocol"
	"github.com/typedsession/session/store"
)

// Load returns the session stored under key. A missing or expired key gives
// a new session holding the initial value (IsNew is true), not an error.
//
// Load decides in the order of the failure table in the package
// documentation: a store error is returned, wrapped; a value over the size
// limit gives ErrTooLarge; bytes that are not a value of a codec the
// manager reads give ErrCorrupt; a seal opens before the version is
// believed; a stored version above Latest gives ErrFutureVersion; a
// missing or failing migration step gives ErrMigration; data that does not
// decode into T gives ErrCorrupt; data that fails validation gives
// ErrInvalid. With a TTL, a Load that finds the session extends it only
// when less than TTL − Slack remains (one more round trip), so most Loads
// only read; on a store that cannot report the time left it extends it
// every time, in the same round trip where the store is a
// store.Refresher, by a Touch where it is a store.Toucher. A Load never
// writes a value: on a store with neither, only writes (and a Save of an
// unchanged session, by a compare-and-swap) extend the expiry.
func (m *Manager[T]) Load(ctx context.Context, key string) (*Session[T], error) {
	var start time.Time
	if m.observing() {
		start = time.Now()
	}
	s, err := m.load(ctx, key)
	if err != nil {
		err = &Error{Op: "load", Key: key, Err: err}
		s = nil
	}
	if m.observing() {
		m.emit(ctx, m.loadEvent(key, s, err, start))
	}
	return s, err
}

// loadEvent describes the load of s (nil: it failed), for Config.Hook.
func (m *Manager[T]) loadEvent(key string, s *Session[T], err error, start time.Time) Event {
	e := Event{Op: "load", Key: key, Err: err, Duration: time.Since(start)}
	if s != nil {
		e.Outcome, e.Bytes, e.StoredVersion, e.Version = OutcomeFound, len(s.stored.Raw), s.stored.Version, m.latest
		switch {
		case s.report.quarantined != "":
			e.Outcome, e.Err = OutcomeQuarantined, s.report.cause
		case s.IsNew():
			e.Outcome = OutcomeNew
		}
	}
	return e
}

// load is Load without the hook: read, then open.
func (m *Manager[T]) load(ctx context.Context, key string) (*Session[T], error) {
	s, err := m.newSession(key)
	if err != nil {
		return nil, err
	}
	s.seq = m.seq.of(s.storeKey).Load() // before the read: see writeSeq
	raw, until, err := m.read(ctx, s.storeKey)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return nil, protocol.StoreError(err)
	}
	if err := m.open(ctx, s, raw, until); err != nil {
		return nil, err
	}
	return s, nil
}

// read gets the value stored under storeKey (nil and store.ErrNotFound
// when absent) and until when its expiry needs no extension.
func (m *Manager[T]) read(ctx context.Context, storeKey string) (raw []byte, freshUntil time.Time, err error) {
	switch now := time.Now(); {
	case m.ttl <= 0:
		raw, err = m.store.Get(ctx, storeKey)
	case m.ttlGetter != nil:
		var left time.Duration
		raw, left, err = m.ttlGetter.GetWithTTL(ctx, storeKey)
		freshUntil = m.freshUntil(now, left)
	case m.refresher != nil:
		raw, err = m.refresher.GetAndTouch(ctx, storeKey, m.ttl)
		freshUntil = now.Add(m.slack)
	default:
		raw, err = m.store.Get(ctx, storeKey)
	}
	if err != nil {
		raw = nil
	}
	return raw, freshUntil, err
}

// freshUntil is the one rule of the idle timeout's precision: a value
// read at now with left before it expires needs no extension until less
// than TTL − slack remains. The TTL compared is the one the store keeps: a
// store clamps an expiry to store.MaxExpiry, so a longer TTL is clamped
// here too, on both sides of the comparison.
func (m *Manager[T]) freshUntil(now time.Time, left time.Duration) time.Time {
	if left == store.NoExpiry || left <= 0 {
		return time.Time{}
	}
	ttl := min(m.ttl, store.MaxExpiry.Sub(now))
	return now.Add(left - (ttl - m.slack))
}

// open is the second half of a load, shared by Load, Update and
// MigrateAll's batches: it fills s from raw, the value read under its key
// (nil: nothing stored), whose expiry needs no extension until freshUntil.
// A damaged value is moved aside when Config.Quarantine is on (and the
// store can move exactly: protocol.Store.Moves); a session near expiry is
// extended by a touch only (a read never writes a value back, and a
// failure to extend does not fail the load: a read must not depend on a
// write).
func (m *Manager[T]) open(ctx context.Context, s *Session[T], raw []byte, freshUntil time.Time) error {
	if raw == nil {
		return m.renew(s)
	}
	stored, v, err := m.pipe.Decode(raw, s.key)
	if err != nil {
		if m.quarantineOn && errs.Damaged(err) {
			if qerr := m.quarantine(ctx, s, raw, err); qerr != nil {
				return errors.Join(err, qerr)
			}
			return nil
		}
		return err
	}
	s.Data, s.stored, s.freshUntil, s.synced = *v.(*T), stored, freshUntil, true
	if !m.fresh(s) {
		now := time.Now()
		if sent, err := m.proto.Refresh(ctx, s.storeKey, s.old(), m.ttl, false); sent && err == nil {
			s.freshUntil = now.Add(m.slack)
		}
	}
	return nil
}

// old is what s last knew of its key, for the write protocol.
func (s *Session[T]) old() protocol.Old {
	return protocol.Old{Raw: s.stored.Raw, Writes: s.stored.Writes}
}

// QuarantinePrefix begins the store key of every value that
// Config.Quarantine moved aside: ":quarantine:" (no namespace contains ':',
// so no namespace's scan meets it), then the time of the move in Unix
// nanoseconds, ':', and the value's store key.
const QuarantinePrefix = ":quarantine:"

// quarantine moves raw, the damaged value under s's key, to a quarantine
// key with the write protocol's move (the copy is written only where
// nothing is; the original is removed only if it still holds raw; the
// copy is removed again only after a definite conflict), and leaves s a
// new session.
func (m *Manager[T]) quarantine(ctx context.Context, s *Session[T], raw []byte, cause error) error {
	qkey := QuarantinePrefix + strconv.FormatInt(time.Now().UnixNano(), 10) + ":" + s.storeKey
	if err := store.CheckKey(qkey); err != nil {
		// The caller's key is valid; only the quarantine key is not:
		// the value stays where it is, as without Quarantine (the text
		// only, so that the Load's error does not match
		// store.ErrInvalidKey).
		return fmt.Errorf("quarantine: the value stays where it is: its quarantine key is refused: %v", err)
	}
	w, _ := format.WritesOf(raw)
	c, seq := m.seq.begin(s.storeKey)
	err := m.proto.Move(ctx, s.storeKey, protocol.Old{Raw: raw, Writes: w}, qkey, protocol.Value{Raw: raw})
	c.Add(1)
	if err != nil {
		return fmt.Errorf("quarantine: %w", err)
	}
	if err := m.renew(s); err != nil {
		return err
	}
	s.report.quarantined, s.report.cause, s.seq = qkey, cause, seq
	return nil
}
