package session

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"time"

	"github.com/typedsession/session/internal/format"
	"github.com/typedsession/session/internal/keylock"
	"github.com/typedsession/session/migrate"
	"github.com/typedsession/session/store"
)

// Session is one user's session: the Data of type T plus what the manager
// needs to save it safely. A Session is not safe for concurrent use; it
// belongs to the handler that loaded it.
type Session[T any] struct {
	// Data is the user's value. Read and write its fields directly.
	Data T

	m        *Manager[T]
	key      string
	storeKey string

	// stored is the value as read from the store (nil: nothing stored),
	// passed as old to CompareAndSwap and CompareAndDelete.
	stored []byte
	// payload is the codec's encoding of the data as loaded, at the
	// latest version (for a new session: of the initial value). Save
	// compares the new encoding with it to skip unchanged writes.
	payload []byte
	// writes are the write identities of the stored envelope.
	writes format.Writes
	// fresh reports that the store's expiry is recent enough (set by the
	// last write, or found far enough by Load) that an unchanged Save
	// need not refresh it.
	fresh bool
	// freshUntil is when the store's expiry, as last learned, falls below
	// TTL − slack (the zero time: it already has, or is unknown).
	freshUntil time.Time
	// seq is the write counter of the key's stripe as of the last store
	// access of this session, and current whether that access succeeded:
	// Handoff uses both.
	seq       uint64
	current   bool
	isNew     bool
	destroyed bool
	version   int
	// moveTo is the key given to MoveTo, or "".
	moveTo string
	// outcome and unknown say what the last save did, for Config.Hook.
	outcome Outcome
	unknown []string
	// layers, keyID and dictID are the layers of the loaded value.
	layers        []string
	keyID, dictID string
	// rewrite makes the next save write even unchanged data (Reseal, a
	// value written with another codec).
	rewrite bool
	// foreign is true when the value was written with another codec
	// (Config.ReadCodecs): payload is in that codec.
	foreign bool
	// quarantined is the key a damaged value was moved to by this Load,
	// and quarantineCause why.
	quarantined     string
	quarantineCause error
}

// Key returns the key as the caller gave it, without the namespace.
func (s *Session[T]) Key() string { return s.key }

// IsNew reports whether nothing was stored for the key when the session was
// loaded (or since it was destroyed): Data holds the initial value.
func (s *Session[T]) IsNew() bool { return s.isNew }

// Version returns the schema version the session was stored with: 0 for
// data without an envelope, and Latest for a new session.
func (s *Session[T]) Version() int { return s.version }

// Reset sets Data back to the initial value. The next Save stores it (a new
// session that is reset and saved stores nothing). Reset does nothing to
// Data if Config.Initial panics.
func (s *Session[T]) Reset() {
	if v, err := s.m.initialValue(); err == nil {
		s.Data = v
	}
	s.destroyed = false
}

// Destroy marks the session for deletion: the next Save deletes it from the
// store and turns the session into a new one holding the initial value.
// On a [store.Deleter] the delete is a compare-and-delete against the value
// loaded, so it never erases another writer's newer save: Save returns
// ErrConflict instead. A new session that is destroyed deletes nothing.
func (s *Session[T]) Destroy() { s.destroyed = true }

// MoveTo marks the session to be stored under key from the next Save on (a
// new cookie token, for instance). That Save writes the data under key only
// if nothing is stored there, then removes the old key with a
// compare-and-delete against the value loaded; if the old key changed in
// between, it removes what it wrote under key again and returns
// ErrConflict, so another writer's save is never lost. After a successful
// Save, Key returns key. A session destroyed after MoveTo is deleted under
// its old key and nothing is written under the new one.
func (s *Session[T]) MoveTo(key string) { s.moveTo = key }

// NewSession returns a new session for key holding the initial value, as
// Load returns for a missing key, without reading the store: for a key that
// cannot exist yet, such as a freshly generated random token. Its Save
// writes only if nothing is stored under key (on a store.Swapper).
func (m *Manager[T]) NewSession(key string) (*Session[T], error) {
	s, err := m.newSession(key)
	if err == nil {
		err = m.renew(s)
	}
	if err != nil {
		return nil, &Error{Op: "load", Key: key, Err: err}
	}
	return s, nil
}

func (m *Manager[T]) newSession(key string) (*Session[T], error) {
	sk, err := m.storeKey(key)
	if err != nil {
		return nil, err
	}
	return &Session[T]{m: m, key: key, storeKey: sk}, nil
}

// Load returns the session stored under key. A missing or expired key gives
// a new session holding the initial value (IsNew is true), not an error.
//
// Load decides in this order: a store error is returned, wrapped; bytes the
// codec cannot parse give ErrCorrupt; a stored version above Latest gives
// ErrFutureVersion; a missing or failing migration step gives ErrMigration;
// data that does not decode into T gives ErrCorrupt; data that fails
// validation gives ErrInvalid. With a TTL, a Load that finds the session
// extends it only when less than TTL − Slack remains (one more round trip,
// a Touch), so most Loads only read; on a store that cannot report the
// time left it extends it every time, in the same round trip where the
// store is a store.Refresher.
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
		e := Event{Op: "load", Key: key, Err: err, Duration: time.Since(start)}
		if s != nil {
			e.Outcome, e.Bytes, e.StoredVersion, e.Version = OutcomeFound, len(s.stored), s.version, m.latest
			switch {
			case s.quarantined != "":
				e.Outcome, e.Err = OutcomeQuarantined, s.quarantineCause
			case s.isNew:
				e.Outcome = OutcomeNew
			}
		}
		m.emit(ctx, e)
	}
	return s, err
}

func (m *Manager[T]) load(ctx context.Context, key string) (*Session[T], error) {
	s, err := m.newSession(key)
	if err != nil {
		return nil, err
	}
	s.seq = m.seq.of(s.storeKey).Load()
	raw, err := m.read(ctx, s)
	if errors.Is(err, store.ErrNotFound) {
		if err := m.renew(s); err != nil {
			return nil, err
		}
		s.current = true
		return s, nil
	}
	if err != nil {
		return nil, storeError(err)
	}
	if err := m.fill(s, raw); err != nil {
		if m.quarantineOn && quarantinable(err) {
			if qerr := m.quarantine(ctx, s, raw, err); qerr != nil {
				return nil, errors.Join(err, qerr)
			}
			return s, nil
		}
		return nil, err
	}
	if !s.fresh && m.ttl > 0 && m.toucher != nil {
		// Near expiry: extend it now. A failure (a read-only disk) does
		// not fail the Load; Save tries again.
		now := time.Now()
		if m.toucher.Touch(ctx, s.storeKey, m.ttl) == nil {
			s.fresh, s.freshUntil = true, now.Add(m.slack)
		}
	}
	s.current = s.quarantined == ""
	return s, nil
}

// read gets the stored value of s, noting whether its expiry is fresh.
func (m *Manager[T]) read(ctx context.Context, s *Session[T]) ([]byte, error) {
	switch {
	case m.ttl <= 0:
		s.fresh = true
		return m.store.Get(ctx, s.storeKey)
	case m.ttlGetter != nil:
		now := time.Now()
		raw, left, err := m.ttlGetter.GetWithTTL(ctx, s.storeKey)
		s.fresh = left != store.NoExpiry && left >= m.ttl-m.slack
		if s.fresh {
			s.freshUntil = now.Add(left - (m.ttl - m.slack))
		}
		return raw, err
	case m.refresher != nil:
		s.fresh, s.freshUntil = true, time.Now().Add(m.slack)
		return m.refresher.GetAndTouch(ctx, s.storeKey, m.ttl)
	default:
		return m.store.Get(ctx, s.storeKey)
	}
}

// fill decodes raw, the stored value of s, into s.Data (migrating it) and
// validates it.
func (m *Manager[T]) fill(s *Session[T], raw []byte) error {
	if m.maxBytes > 0 && len(raw) > m.maxBytes {
		return &kindError{kind: ErrTooLarge, msg: fmt.Sprintf("stored value is %d bytes, Config.MaxBytes is %d", len(raw), m.maxBytes)}
	}
	f, err := m.formatOf(raw)
	if err != nil {
		return err
	}
	env, err := f.Decode(raw)
	if err != nil {
		return damaged(err)
	}
	if env.Codec != "" && env.Codec != f.Name() {
		if f, err = m.readFormat(env.Codec); err != nil {
			return err
		}
	}
	s.version = env.Version
	if env.Version != m.latest && f.JSONForm() && len(env.Layers) == 0 {
		// Off the hot path, the envelope's payload is proven whole before
		// a version is believed (corrupt comes before future) and before
		// steps see it.
		if err := format.Check(raw, &env); err != nil {
			return damaged(err)
		}
	}
	if len(env.Layers) > 0 {
		if env.Payload, err = m.unwrap(&env, s.key); err != nil {
			return err
		}
		if f.JSONForm() && !json.Valid(env.Payload) {
			return damaged(errors.New("the payload inside the layers is not JSON"))
		}
		env.Checked = true
	}
	if env.Version > m.latest {
		return &kindError{kind: ErrFutureVersion, msg: fmt.Sprintf("stored version %d, this binary knows up to %d", env.Version, m.latest)}
	}
	payload := env.Payload
	if env.Version < m.latest {
		if payload, err = m.migrateUp(f, env.Version, payload); err != nil {
			return err
		}
		env.Checked = true
	}
	var data T
	if err := f.Unmarshal(raw, &env, payload, &data); err != nil {
		return damaged(err)
	}
	if m.unknown == RejectUnknown {
		if unk := f.Unknown(payload); len(unk) > 0 {
			return &kindError{kind: ErrCorrupt, msg: "stored members that the session type does not have (Config.UnknownMembers is RejectUnknown): " + strings.Join(unk, ", ")}
		}
	}
	if err := m.validate(&data); err != nil {
		return err
	}
	s.Data, s.stored, s.payload, s.writes = data, raw, payload, env.Writes
	s.layers, s.keyID, s.dictID = env.Layers, env.KeyID, env.DictID
	s.foreign = f != m.format
	s.rewrite = s.foreign
	return nil
}

// formatOf returns the format that reads raw: the manager's, or for a value
// in the other envelope form (binary for a JSON codec, JSON for a binary
// one) the format of the read codec it names.
func (m *Manager[T]) formatOf(raw []byte) (*format.Format, error) {
	if m.format.JSONForm() {
		if !bytes.HasPrefix(raw, []byte("\x00TS")) {
			return m.format, nil
		}
		// A binary envelope: no JSON codec wrote it.
		env, err := format.Decode(raw, false)
		if err != nil {
			return nil, damaged(err)
		}
		return m.readFormat(env.Codec)
	}
	if t := bytes.TrimLeft(raw, " \t\r\n"); len(t) > 0 && (t[0] == '{' || t[0] == '[') && json.Valid(raw) {
		// JSON, for a binary codec: the JSON codec wrote it (an envelope)
		// or another framework did.
		return m.readFormat("json")
	}
	return m.format, nil
}

// readFormat returns the format of the read codec named name.
func (m *Manager[T]) readFormat(name string) (*format.Format, error) {
	if f, ok := m.readFormats[name]; ok {
		return f, nil
	}
	if name == "" {
		name = "(unnamed)"
	}
	return nil, &kindError{kind: ErrUnknownCodec, msg: fmt.Sprintf("the value was written with codec %s; list it in Config.ReadCodecs to read it", name)}
}

// damaged is ErrCorrupt for a value damaged by its content (what
// Config.Quarantine may move aside).
func damaged(err error) error { return &kindError{kind: ErrCorrupt, cause: err, damaged: true} }

// migrateUp runs the steps from version to Latest. When the manager writes
// an older version, it also checks that each step it crosses at or above
// the write version gives back what it was given, so that a down function
// that does not invert its up function is an error, not a slow corruption.
func (m *Manager[T]) migrateUp(f *format.Format, version int, payload []byte) ([]byte, error) {
	payload, err := m.plan.Up(f.Codec(), version, m.latest, payload)
	if err != nil {
		return nil, &kindError{kind: ErrMigration, cause: err, damaged: true}
	}
	if m.writeVersion < m.latest && version >= m.writeVersion && f == m.format {
		if err := m.checkRoundTrip(payload); err != nil {
			return nil, err
		}
	}
	return payload, nil
}

// checkRoundTrip checks, for a manager that writes an older version, that
// payload (at the latest version) survives the way down to the write
// version and up again: the steps' down functions must invert their up
// functions, or every Save of a session nobody changed would write
// different data. The data is compared as T encodes it, so member order
// and members T does not have do not count. It returns ErrMigration
// wrapping migrate.ErrNotInverse.
func (m *Manager[T]) checkRoundTrip(payload []byte) error {
	c := m.format.Codec()
	down, err := m.plan.Down(c, m.latest, m.writeVersion, payload)
	if err != nil {
		return wrapKind(ErrMigration, err)
	}
	back, err := m.plan.Up(c, m.writeVersion, m.latest, down)
	if err != nil {
		return wrapKind(ErrMigration, err)
	}
	a, aerr := m.canonical(payload)
	b, berr := m.canonical(back)
	if aerr != nil || berr != nil || !bytes.Equal(a, b) {
		return &kindError{kind: ErrMigration, cause: migrate.ErrNotInverse, msg: fmt.Sprintf(
			"the steps %d→%d do not give back what they were given (down, then up): %s became %s; fix the down function",
			m.writeVersion, m.latest, shortBytes(a), shortBytes(b))}
	}
	return nil
}

// canonical is payload decoded into T and encoded again.
func (m *Manager[T]) canonical(payload []byte) ([]byte, error) {
	var v T
	if err := m.format.Unmarshal(nil, nil, payload, &v); err != nil {
		return nil, err
	}
	return m.format.AppendPayload(nil, &v)
}

func shortBytes(b []byte) string {
	if len(b) > 80 {
		return string(b[:77]) + "..."
	}
	return string(b)
}

// renew turns s into a new session holding the initial value.
func (m *Manager[T]) renew(s *Session[T]) error {
	v, err := m.initialValue()
	if err != nil {
		return err
	}
	s.Data = v
	s.stored, s.writes, s.isNew, s.destroyed, s.fresh, s.version = nil, "", true, false, false, m.latest
	s.freshUntil = time.Time{}
	if m.initialFn == nil {
		s.payload, err = m.zeroPayload()
	} else {
		s.payload, err = m.format.AppendPayload(nil, &s.Data)
	}
	if err != nil {
		return fmt.Errorf("encode the initial value: %w", err)
	}
	return nil
}

// Save validates the session and writes it. It writes nothing when the data
// equals what was loaded (with a TTL it then only refreshes the expiry, and
// only when the session is near expiry), nor for a new session still at its
// initial value; a session loaded at an older version is written (that is
// its migration). On a store.Swapper it writes with CompareAndSwap against
// the loaded bytes and returns ErrConflict when another writer saved first;
// on other stores it overwrites. A session marked with Destroy is deleted.
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
	key, storedVersion := s.key, s.version
	err := m.save(ctx, s)
	if err != nil {
		err = &Error{Op: "save", Key: key, Err: err}
	}
	if m.observing() {
		m.emit(ctx, m.saveEvent("save", key, s, storedVersion, err, start))
	}
	return err
}

// saveEvent describes the save of s, for Config.Hook.
func (m *Manager[T]) saveEvent(op, key string, s *Session[T], storedVersion int, err error, start time.Time) Event {
	e := Event{Op: op, Key: key, Err: err, Duration: time.Since(start), Outcome: s.outcome, Unknown: s.unknown,
		StoredVersion: storedVersion, Version: storedVersion}
	if err == nil && s.outcome == OutcomeWritten {
		e.Bytes, e.Version = len(s.stored), s.version
	}
	return e
}

func (m *Manager[T]) save(ctx context.Context, s *Session[T]) error {
	s.outcome, s.unknown = "", nil
	wasCurrent := s.current
	s.current = false
	if s.destroyed {
		hadStored := s.stored != nil
		seq, err := m.remove(ctx, s.storeKey, s.stored)
		if err != nil {
			return err
		}
		s.moveTo, s.outcome = "", OutcomeDeleted
		if err := m.renew(s); err != nil {
			return err
		}
		if hadStored {
			s.seq, wasCurrent = seq, true // the key is absent now
		}
		s.current = wasCurrent
		return nil
	}
	if err := m.validate(&s.Data); err != nil {
		return err
	}
	buf, payload, err := m.encodePayload(s)
	if err != nil {
		return err
	}
	unchanged := bytes.Equal(payload, s.payload) && !s.rewrite && !s.foreign
	if !unchanged && s.stored != nil && !s.foreign {
		if payload, unchanged, err = m.reconcile(s, payload); err != nil {
			return err
		}
	}
	if s.moveTo != "" {
		return m.move(ctx, s, payload, unchanged)
	}
	s.rewrite = false
	if unchanged && s.stored == nil {
		s.outcome = OutcomeUnchanged
		s.current = wasCurrent
		return nil // a new session nobody changed: store nothing
	}
	if unchanged && s.version >= m.writeVersion {
		s.outcome = OutcomeUnchanged
		if err := m.refresh(ctx, s); err != nil {
			return err
		}
		s.current = wasCurrent
		return nil
	}
	enc, writes, err := m.encode(s, s.key, buf, payload)
	if err != nil {
		return err
	}
	now := time.Now()
	seq, err := m.write(ctx, s.storeKey, s.stored, s.writes, enc, writes.At(0))
	if err != nil {
		return err
	}
	s.commit(enc, payload, writes, m.writeVersion, now, seq)
	s.outcome = OutcomeWritten
	return nil
}

// commit records a write of s that began at now and left the key's write
// counter at seq.
func (s *Session[T]) commit(enc, payload []byte, writes format.Writes, version int, now time.Time, seq uint64) {
	s.freshUntil, s.seq, s.current = now.Add(s.m.slack), seq, true
	s.stored, s.payload, s.writes, s.isNew, s.fresh, s.version = enc, payload, writes, false, true, version
	s.layers, s.keyID, s.dictID, s.foreign = nil, "", "", false // not needed after a write
}

// encodePayload encodes s.Data at the latest version. It returns the
// payload and the buffer it lies in, which holds room before it for the
// envelope header that encode writes when the session is written as it is.
func (m *Manager[T]) encodePayload(s *Session[T]) (buf, payload []byte, err error) {
	hint := len(s.payload)
	if hint == 0 {
		hint = int(m.sizeHint.Load())
	}
	hlen := m.headerLen(s)
	buf, err = m.format.AppendPayload(make([]byte, hlen, hlen+hint+2), &s.Data)
	var pe *format.PanicError
	switch {
	case errors.As(err, &pe):
		return nil, nil, fmt.Errorf("encode: %w", err) // a bug in a MarshalJSON, not the data
	case err != nil:
		// The codec cannot encode this value (or Load could not read it
		// back): the data is what is wrong.
		return nil, nil, &kindError{kind: ErrInvalid, cause: err}
	}
	if n := int64(len(buf) - hlen); m.sizeHint.Load() != n {
		m.sizeHint.Store(n)
	}
	return buf, buf[hlen:], nil
}

// headerLen is the length of the header of the next write of s.
func (m *Manager[T]) headerLen(s *Session[T]) int {
	return format.HeaderLenFor(m.format.JSONForm(), m.writeVersion, min(s.writes.Len()+1, format.MaxWrites))
}

// reconcile compares a changed-looking payload with the loaded one more
// closely. It puts back stored members that T does not have (by the
// UnknownMembers policy) and, for a session loaded at an older version,
// compares the data as loaded with the data as saved, both encoded from T,
// so that member order alone is not a change. It returns the payload to
// write and whether it equals what was loaded.
func (m *Manager[T]) reconcile(s *Session[T], payload []byte) ([]byte, bool, error) {
	if !m.format.JSONForm() {
		return payload, false, nil
	}
	unk := m.format.Unknown(s.payload)
	unchanged := false
	if s.version != m.latest || len(unk) > 0 {
		// Off the hot path: the loaded payload is not T's own encoding
		// (migrated, or holding members T does not have), so compare the
		// data itself, both encoded from T.
		var loaded T
		if err := m.format.Unmarshal(nil, nil, s.payload, &loaded); err == nil {
			if again, err := m.format.AppendPayload(nil, &loaded); err == nil && bytes.Equal(again, payload) {
				unchanged = true
			}
		}
	}
	if len(unk) == 0 {
		return payload, unchanged, nil
	}
	// Whether or not the data changed, what is written (a migration, a
	// move to another key) carries the members T does not have.
	s.unknown = unk
	if m.unknown == DropUnknown {
		return payload, unchanged, nil
	}
	merged, err := m.format.Merge(s.payload, payload)
	if err != nil {
		return nil, false, &kindError{kind: ErrInvalid, cause: err}
	}
	return merged, unchanged, nil
}

// encode builds the stored form of payload at the write version, with a
// new write identity on top of the loaded ones. When payload still lies in
// buf after the room encodePayload left, the header goes into that room:
// one buffer, no copy.
func (m *Manager[T]) encode(s *Session[T], key string, buf, payload []byte) ([]byte, format.Writes, error) {
	if m.writeVersion < m.latest {
		// What goes down must come back up the same, or a binary of the
		// latest version would read other data than this one saved.
		if err := m.checkRoundTrip(payload); err != nil {
			return nil, "", err
		}
		var err error
		if payload, err = m.plan.Down(m.format.Codec(), m.latest, m.writeVersion, payload); err != nil {
			return nil, "", wrapKind(ErrMigration, err)
		}
	}
	e := format.Envelope{Version: m.writeVersion, Writes: s.writes.Next(format.NewWriteID()), Payload: payload}
	if !m.format.JSONForm() {
		e.Codec = m.format.Name() // the binary frame says which codec wrote it
	}
	if m.layered() {
		if err := m.wrap(&e, key, payload); err != nil {
			return nil, "", err
		}
	}
	var enc []byte
	hlen := len(buf) - len(payload)
	if !m.layered() && hlen >= 0 && len(payload) > 0 && &buf[hlen] == &payload[0] && format.HeaderLen(m.format.JSONForm(), &e) == hlen {
		format.AppendHeader(buf[:0], m.format.JSONForm(), &e)
		enc = format.AppendTrailer(buf, m.format.JSONForm())
	} else {
		enc = format.Append(make([]byte, 0, format.HeaderLen(m.format.JSONForm(), &e)+len(payload)+1), m.format.JSONForm(), &e)
	}
	if m.maxBytes > 0 && len(enc) > m.maxBytes {
		return nil, "", &kindError{kind: ErrTooLarge, msg: fmt.Sprintf("%d bytes encoded, Config.MaxBytes is %d", len(enc), m.maxBytes)}
	}
	return enc, e.Writes, nil
}

// move stores payload under s.moveTo (only if nothing is there) and
// removes the old key against what was loaded, undoing the new write on a
// conflict. A new session nobody changed only changes its key.
func (m *Manager[T]) move(ctx context.Context, s *Session[T], payload []byte, unchanged bool) error {
	newKey, err := m.storeKey(s.moveTo)
	if err != nil {
		return err
	}
	if s.stored != nil || !unchanged {
		enc, writes, err := m.encode(s, s.moveTo, nil, payload)
		if err != nil {
			return err
		}
		now := time.Now()
		seq, err := m.write(ctx, newKey, nil, "", enc, writes.At(0))
		if err != nil {
			if errors.Is(err, ErrConflict) {
				return fmt.Errorf("%w: key %s is taken", ErrConflict, quoteKey(s.moveTo))
			}
			return err
		}
		if _, err := m.remove(ctx, s.storeKey, s.stored); err != nil {
			if !errors.Is(err, ErrConflict) {
				// The old key may be gone already: undoing the new write
				// could lose the session. Both keys may hold it now.
				return err
			}
			if _, uerr := m.remove(ctx, newKey, enc); uerr != nil {
				return errors.Join(err, fmt.Errorf("undo the write under %s: %w", quoteKey(s.moveTo), uerr))
			}
			return err
		}
		s.commit(enc, payload, writes, m.writeVersion, now, seq)
		s.outcome = OutcomeWritten
	} else {
		// A new session nobody changed: nothing is stored under either
		// key; the new key's counter is the one to watch from now on.
		s.outcome = OutcomeUnchanged
		s.seq, s.current = m.seq.of(newKey).Load(), true
	}
	s.key, s.storeKey, s.moveTo = s.moveTo, newKey, ""
	return nil
}

// refresh extends the TTL of an unchanged session unless it is fresh.
func (m *Manager[T]) refresh(ctx context.Context, s *Session[T]) error {
	if m.ttl <= 0 || s.fresh {
		return nil
	}
	now := time.Now()
	switch {
	case m.toucher != nil:
		if err := m.toucher.Touch(ctx, s.storeKey, m.ttl); err != nil {
			if errors.Is(err, store.ErrNotFound) {
				// Deleted or expired since Load: writing it back
				// could undo another writer's Delete.
				return ErrConflict
			}
			return storeError(err)
		}
	case m.swapper != nil:
		ok, err := m.swapper.CompareAndSwap(ctx, s.storeKey, s.stored, s.stored, m.ttl)
		if err != nil {
			return storeError(err)
		}
		if !ok {
			return ErrConflict
		}
	default:
		if err := m.store.Set(ctx, s.storeKey, s.stored, m.ttl); err != nil {
			return storeError(err)
		}
	}
	s.fresh, s.freshUntil = true, now.Add(m.slack)
	return nil
}

// Delete removes the session stored under key, whatever it holds. An
// absent key is not an error.
func (m *Manager[T]) Delete(ctx context.Context, key string) error {
	var start time.Time
	if m.observing() {
		start = time.Now()
	}
	sk, err := m.storeKey(key)
	if err == nil {
		c, _ := m.seq.begin(sk)
		err = storeError(m.store.Delete(ctx, sk))
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

// Update loads the session under key, applies fn to its data and saves it.
// When another writer saved in between (ErrConflict), it loads again and
// applies fn again, after a jittered exponential backoff, until the save
// succeeds, ctx ends or Config.MaxAttempts is used up; so no update is ever
// lost. fn may therefore run more than once and must only change the data
// it is given. An error from fn aborts the update without writing and is
// returned wrapped in an *Error. A write whose outcome is unknown
// (ErrOutcomeUnknown) is never retried: running fn again could apply it
// twice. A panic in fn is not recovered; it reaches the caller as it would
// from any inline code, after Update has released what it holds. Update
// returns the data as saved, which equals what the next Load returns.
//
// Concurrent Updates of one key through one Manager run one after the
// other, as the middleware's per-key lock runs updates, instead of
// conflicting with each other: each waits for the one before (while ctx
// lasts, and for at most UpdateWait; then it goes on without waiting, and
// compare-and-swap keeps it correct), and starts from the session that one
// has just saved (Session.Handoff) instead of loading it, so that queued
// Updates of one key cost one round trip each. A write of the key through
// any Manager of this process in between (Save, Delete, MigrateAll)
// makes the next one load instead; a write from another process is caught
// by compare-and-swap, and that conflict of a handed-on session is not
// counted as an attempt (the Update loads and runs fn again at once) and
// turns handing on off for a minute. On a store without compare-and-swap
// nothing is handed on. fn must not call Update for the same key of the
// same Manager: the inner call would wait UpdateWait for its caller, and
// its write would make the caller's save conflict.
func (m *Manager[T]) Update(ctx context.Context, key string, fn func(*T) error) (T, error) {
	var start time.Time
	if m.observing() {
		start = time.Now()
	}
	var out T
	var last, prev, saved *Session[T]
	storedVersion := 0
	h, err := m.updates.Lock(ctx, key, UpdateWait)
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
					if s, err = m.load(ctx, key); err != nil {
						return err
					}
				}
				last, storedVersion = s, s.version
				if err := fn(&s.Data); err != nil {
					return err
				}
				err := m.save(ctx, s)
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

// UpdateWait is the longest an Update waits for the Update of the same key
// before it (through the same Manager) to finish; then it goes on without
// waiting.
const UpdateWait = time.Second

// handedOn returns prev handed on (Session.Handoff) and true, or nil and
// false.
func (m *Manager[T]) handedOn(ctx context.Context, prev *Session[T]) (*Session[T], bool) {
	if prev == nil || prev.key == "" {
		return nil, false
	}
	s, ok := prev.Handoff(ctx)
	return s, ok
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
// load the session anew each time. ErrOutcomeUnknown is never retried.
func (m *Manager[T]) Retry(ctx context.Context, attempt func() error) error {
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
		if !errors.Is(err, ErrConflict) {
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
