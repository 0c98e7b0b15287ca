package session

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"reflect"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-playground/validator/v10"

	"github.com/typedsession/session/codec"
	"github.com/typedsession/session/internal/envelope"
	"github.com/typedsession/session/migrate"
	"github.com/typedsession/session/store"
)

// Config configures a Manager. Only Store is required; every other field's
// zero value means its documented default.
type Config[T any] struct {
	// Store keeps the encoded sessions. Required.
	Store store.Store

	// Codec encodes T. Nil means codec.JSON{}.
	Codec codec.Codec

	// Namespace prefixes every key: the store key is Namespace + ":" + key,
	// or the key alone when Namespace is empty. Give each session type its
	// own namespace.
	Namespace string

	// TTL is an idle timeout: every Load that finds the session and every
	// write extend its life to TTL from now. Zero means sessions never
	// expire.
	TTL time.Duration

	// Initial returns the value of a new or expired session. Nil means the
	// zero T. It must return a value that passes validation.
	Initial func() T

	// Migrations is the plan of schema versions of T. Nil means version 1
	// with no steps.
	Migrations *migrate.Plan

	// WriteVersion is the schema version that Save writes. Zero means
	// Migrations.Latest(). Set it to the previous version during a rolling
	// deploy, while binaries that only know that version still run; every
	// step above it needs a down function.
	WriteVersion int

	// Validator checks validate struct tags. Nil means one shared
	// validator.New(validator.WithRequiredStructEnabled()).
	Validator *validator.Validate

	// SkipTagValidation turns off validate tags; a Validate method on T is
	// still called.
	SkipTagValidation bool

	// MaxBytes caps the size of a stored value, on Save and on Load. Zero
	// means 1 MiB; a negative value means no limit.
	MaxBytes int

	// MaxAttempts caps the loads and saves of one Update under contention.
	// Zero means 100.
	MaxAttempts int
}

// Manager loads and saves sessions of type T. It is safe for concurrent use;
// create one per session type with New and share it.
type Manager[T any] struct {
	cfg          Config[T]
	codec        codec.Codec
	jsonForm     bool
	latest       int
	writeVersion int
	maxBytes     int
	maxAttempts  int
	validate     func(*T) error

	// appender is the codec as a codec.Appender, or nil: with it, encode
	// writes the payload straight into the envelope buffer.
	appender codec.Appender
	// sizeHint is the length of the last encoding, used to size the
	// buffer of the next one when there is no stored value to go by.
	sizeHint atomic.Int64
	// zeroEnc caches the encoding of the zero T, the initial value of
	// every new session when Config.Initial is nil.
	zeroEnc func() ([]byte, error)

	swapper   store.Swapper   // nil if the store has none
	toucher   store.Toucher   // nil if the store has none
	refresher store.Refresher // nil if the store has none
	deleter   store.Deleter   // nil if the store has none
}

// New returns a Manager for cfg, or an error naming what is wrong with it.
func New[T any](cfg Config[T]) (*Manager[T], error) {
	if cfg.Store == nil {
		return nil, errors.New("session: Config.Store is nil; give it a store such as memstore.New")
	}
	if cfg.TTL < 0 {
		return nil, fmt.Errorf("session: Config.TTL is negative (%v); use 0 for sessions that never expire", cfg.TTL)
	}
	if cfg.MaxAttempts < 0 {
		return nil, fmt.Errorf("session: Config.MaxAttempts is negative (%d)", cfg.MaxAttempts)
	}
	m := &Manager[T]{
		cfg:          cfg,
		codec:        cfg.Codec,
		latest:       cfg.Migrations.Latest(),
		writeVersion: cfg.WriteVersion,
		maxBytes:     cfg.MaxBytes,
		maxAttempts:  cfg.MaxAttempts,
	}
	if m.codec == nil {
		m.codec = codec.JSON{}
	}
	if j, ok := m.codec.(codec.JSONPayload); ok {
		m.jsonForm = j.PayloadIsJSON()
	}
	m.appender = appenderOf(m.codec)
	if m.writeVersion == 0 {
		m.writeVersion = m.latest
	}
	if err := cfg.Migrations.CanWrite(m.writeVersion); err != nil {
		return nil, fmt.Errorf("session: Config.WriteVersion: %w", err)
	}
	if m.maxBytes == 0 {
		m.maxBytes = 1 << 20
	}
	if m.maxAttempts == 0 {
		m.maxAttempts = 100
	}
	m.validate = newValidateFunc[T](cfg.Validator, cfg.SkipTagValidation)
	// The zero T always encodes the same, so a new session's initial
	// encoding is computed once; it is only ever compared, never written
	// or changed, so sessions share it.
	m.zeroEnc = sync.OnceValues(func() ([]byte, error) {
		var zero T
		return m.encode(&zero, 0)
	})
	m.swapper, _ = cfg.Store.(store.Swapper)
	m.toucher, _ = cfg.Store.(store.Toucher)
	m.refresher, _ = cfg.Store.(store.Refresher)
	m.deleter, _ = cfg.Store.(store.Deleter)
	return m, nil
}

// Session is one user's session: the Data of type T plus what the manager
// needs to save it safely. A Session is not safe for concurrent use; it
// belongs to the handler that loaded it.
type Session[T any] struct {
	// Data is the user's value. Read and write its fields directly.
	Data T

	m        *Manager[T]
	key      string
	storeKey string

	// stored is the value as read from the store (nil: nothing stored).
	// Save compares the new encoding with it to skip unchanged writes,
	// and passes it as old to CompareAndSwap.
	stored []byte
	// initial is the encoding of the initial value of a new session, so
	// that a new session nobody changed is never written.
	initial []byte
	// fresh reports that the store's TTL for the key was set to the full
	// TTL by the Load (GetAndTouch) or by the last write, so an unchanged
	// Save need not refresh it.
	fresh     bool
	isNew     bool
	destroyed bool
	version   int
	// moveTo is the key given to MoveTo, or "".
	moveTo string
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
// session that is reset and saved stores nothing).
func (s *Session[T]) Reset() {
	s.Data = s.m.initialValue()
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

func (m *Manager[T]) initialValue() T {
	if m.cfg.Initial != nil {
		return m.cfg.Initial()
	}
	var zero T
	return zero
}

func (m *Manager[T]) storeKey(key string) string {
	if m.cfg.Namespace == "" {
		return key
	}
	return m.cfg.Namespace + ":" + key
}

// Load returns the session stored under key. A missing or expired key gives
// a new session holding the initial value (IsNew is true), not an error.
//
// Load decides in this order: a store error is returned, wrapped; bytes the
// codec cannot parse give ErrCorrupt; a stored version above Latest gives
// ErrFutureVersion; a missing or failing migration step gives ErrMigration;
// data that does not decode into T gives ErrCorrupt; data that fails
// validation gives ErrInvalid. With a TTL, a Load that finds the session
// extends it, in the same round trip when the store is a store.Refresher.
func (m *Manager[T]) Load(ctx context.Context, key string) (*Session[T], error) {
	s, err := m.load(ctx, key)
	if err != nil {
		return nil, &Error{Op: "load", Key: key, Err: err}
	}
	return s, nil
}

// NewSession returns a new session for key holding the initial value, as
// Load returns for a missing key, without reading the store: for a key that
// cannot exist yet, such as a freshly generated random token. Its Save
// writes only if nothing is stored under key (on a store.Swapper).
func (m *Manager[T]) NewSession(key string) (*Session[T], error) {
	if key == "" {
		return nil, &Error{Op: "load", Key: key, Err: errors.New("empty key")}
	}
	s := &Session[T]{m: m, key: key, storeKey: m.storeKey(key)}
	if err := m.renew(s); err != nil {
		return nil, &Error{Op: "load", Key: key, Err: err}
	}
	return s, nil
}

func (m *Manager[T]) load(ctx context.Context, key string) (*Session[T], error) {
	if key == "" {
		return nil, errors.New("empty key")
	}
	s := &Session[T]{m: m, key: key, storeKey: m.storeKey(key)}
	var raw []byte
	var err error
	if m.cfg.TTL > 0 && m.refresher != nil {
		raw, err = m.refresher.GetAndTouch(ctx, s.storeKey, m.cfg.TTL)
		s.fresh = true
	} else {
		raw, err = m.cfg.Store.Get(ctx, s.storeKey)
	}
	if errors.Is(err, store.ErrNotFound) {
		if err := m.renew(s); err != nil {
			return nil, err
		}
		return s, nil
	}
	if err != nil {
		return nil, err
	}
	return s, m.fill(s, raw)
}

// fill decodes raw, the stored value of s, into s.Data and validates it.
func (m *Manager[T]) fill(s *Session[T], raw []byte) error {
	var err error
	if s.version, err = m.decode(raw, &s.Data); err != nil {
		return err
	}
	if err := m.validate(&s.Data); err != nil {
		return err
	}
	s.stored = raw
	return nil
}

// renew turns s into a new session holding the initial value.
func (m *Manager[T]) renew(s *Session[T]) error {
	s.Data = m.initialValue()
	s.stored, s.isNew, s.destroyed, s.fresh, s.version = nil, true, false, false, m.latest
	var enc []byte
	var err error
	if m.cfg.Initial == nil {
		enc, err = m.zeroEnc()
	} else {
		enc, err = m.encode(&s.Data, 0)
	}
	if err != nil {
		return fmt.Errorf("encode the initial value: %w", err)
	}
	s.initial = enc
	return nil
}

// decode turns stored bytes into *data, running migrations, and returns the
// stored version. It does not validate.
func (m *Manager[T]) decode(raw []byte, data *T) (int, error) {
	if m.maxBytes > 0 && len(raw) > m.maxBytes {
		return 0, &kindError{kind: ErrTooLarge, msg: fmt.Sprintf("stored value is %d bytes, Config.MaxBytes is %d", len(raw), m.maxBytes)}
	}
	version, payload, err := envelope.Decode(raw, m.jsonForm)
	if err != nil {
		return 0, wrapKind(ErrCorrupt, err)
	}
	if version == 0 && m.jsonForm && !jsonValid(raw) {
		return 0, &kindError{kind: ErrCorrupt, msg: "not JSON and not an envelope"}
	}
	if version > m.latest {
		return version, &kindError{kind: ErrFutureVersion, msg: fmt.Sprintf("stored version %d, this binary knows up to %d", version, m.latest)}
	}
	if version < m.latest {
		payload, err = m.cfg.Migrations.Up(m.codec, version, m.latest, payload)
		if err != nil {
			return version, wrapKind(ErrMigration, err)
		}
	}
	if err := m.codec.Unmarshal(payload, data); err != nil {
		if version == m.latest && m.jsonForm {
			// The fast envelope split expects the exact form Save
			// writes; a reformatted envelope gets a full parse.
			if _, p, perr := envelope.Reparse(raw); perr == nil && !bytes.Equal(p, payload) {
				var fresh T
				if err2 := m.codec.Unmarshal(p, &fresh); err2 == nil {
					*data = fresh
					return version, nil
				}
			}
		}
		return version, wrapKind(ErrCorrupt, err)
	}
	return version, nil
}

// encode returns the stored form of *data at the write version. hint is
// the expected length (that of the stored value, or 0 when unknown).
func (m *Manager[T]) encode(data *T, hint int) ([]byte, error) {
	if m.appender != nil && m.writeVersion == m.latest {
		// One buffer, one copy: header, the codec's output appended in
		// place, trailer. The buffer becomes the session's stored value,
		// so it is not pooled.
		if hint == 0 {
			hint = int(m.sizeHint.Load())
		}
		dst := make([]byte, 0, hint+64)
		dst = envelope.AppendHeader(dst, m.jsonForm, m.writeVersion)
		dst, err := m.appender.AppendMarshal(dst, data)
		if err != nil {
			return nil, err
		}
		dst = envelope.AppendTrailer(dst, m.jsonForm)
		if n := int64(len(dst)); m.sizeHint.Load() != n {
			m.sizeHint.Store(n)
		}
		return dst, nil
	}
	payload, err := m.codec.Marshal(data)
	if err != nil {
		return nil, err
	}
	if m.writeVersion < m.latest {
		payload, err = m.cfg.Migrations.Down(m.codec, m.latest, m.writeVersion, payload)
		if err != nil {
			return nil, wrapKind(ErrMigration, err)
		}
	}
	out := make([]byte, 0, envelope.Size(m.jsonForm, m.writeVersion, payload))
	return envelope.Encode(out, m.jsonForm, m.writeVersion, payload), nil
}

// Save validates the session and writes it. It writes nothing when the
// encoding equals what was loaded (with a TTL it then only refreshes the
// expiry, unless Load already did), nor for a new session still at its
// initial value. On a store.Swapper it writes with CompareAndSwap against
// the loaded bytes and returns ErrConflict when another writer saved first;
// on other stores it overwrites. A session marked with Destroy is deleted.
func (m *Manager[T]) Save(ctx context.Context, s *Session[T]) error {
	if s == nil || s.m != m {
		panic("session: Save of a session that this Manager did not load; pass the *Session that m.Load returned")
	}
	if err := m.save(ctx, s); err != nil {
		return &Error{Op: "save", Key: s.key, Err: err}
	}
	return nil
}

func (m *Manager[T]) save(ctx context.Context, s *Session[T]) error {
	if s.destroyed {
		if err := m.remove(ctx, s.storeKey, s.stored); err != nil {
			return err
		}
		s.moveTo = ""
		return m.renew(s)
	}
	if err := m.validate(&s.Data); err != nil {
		return err
	}
	enc, err := m.encode(&s.Data, len(s.stored))
	if err != nil {
		if errors.Is(err, ErrMigration) {
			return err
		}
		return fmt.Errorf("encode: %w", err)
	}
	if m.maxBytes > 0 && len(enc) > m.maxBytes {
		return &kindError{kind: ErrTooLarge, msg: fmt.Sprintf("%d bytes encoded, Config.MaxBytes is %d", len(enc), m.maxBytes)}
	}
	if s.moveTo != "" {
		return m.move(ctx, s, enc)
	}
	if s.stored == nil && bytes.Equal(enc, s.initial) {
		return nil // a new session nobody changed: store nothing
	}
	if s.stored != nil && bytes.Equal(enc, s.stored) {
		return m.refresh(ctx, s)
	}
	if m.swapper != nil {
		ok, err := m.swapper.CompareAndSwap(ctx, s.storeKey, s.stored, enc, m.cfg.TTL)
		if err != nil {
			return err
		}
		if !ok {
			return ErrConflict
		}
	} else if err := m.cfg.Store.Set(ctx, s.storeKey, enc, m.cfg.TTL); err != nil {
		return err
	}
	s.stored, s.initial, s.isNew, s.fresh, s.version = enc, nil, false, true, m.writeVersion
	return nil
}

// remove deletes storeKey if it still holds stored: with compare-and-delete
// on a store.Deleter (ErrConflict when it changed), unconditionally on other
// stores. A nil stored (nothing was loaded) deletes nothing.
func (m *Manager[T]) remove(ctx context.Context, storeKey string, stored []byte) error {
	if stored == nil {
		return nil
	}
	if m.deleter == nil {
		return m.cfg.Store.Delete(ctx, storeKey)
	}
	ok, err := m.deleter.CompareAndDelete(ctx, storeKey, stored)
	if err != nil {
		return err
	}
	if !ok {
		return ErrConflict
	}
	return nil
}

// move stores enc under s.moveTo (only if nothing is there) and removes the
// old key against what was loaded, undoing the new write on a conflict.
func (m *Manager[T]) move(ctx context.Context, s *Session[T], enc []byte) error {
	newKey := m.storeKey(s.moveTo)
	if s.stored != nil || !bytes.Equal(enc, s.initial) {
		if m.swapper != nil {
			ok, err := m.swapper.CompareAndSwap(ctx, newKey, nil, enc, m.cfg.TTL)
			if err != nil {
				return err
			}
			if !ok {
				return fmt.Errorf("%w: key %q is taken", ErrConflict, s.moveTo)
			}
		} else if err := m.cfg.Store.Set(ctx, newKey, enc, m.cfg.TTL); err != nil {
			return err
		}
		if err := m.remove(ctx, s.storeKey, s.stored); err != nil {
			if uerr := m.remove(ctx, newKey, enc); uerr != nil {
				return errors.Join(err, fmt.Errorf("undo the write under %q: %w", s.moveTo, uerr))
			}
			return err
		}
		s.stored, s.initial, s.isNew, s.fresh, s.version = enc, nil, false, true, m.writeVersion
	}
	s.key, s.storeKey, s.moveTo = s.moveTo, newKey, ""
	return nil
}

// refresh extends the TTL of an unchanged session unless Load already did.
func (m *Manager[T]) refresh(ctx context.Context, s *Session[T]) error {
	if m.cfg.TTL <= 0 || s.fresh {
		return nil
	}
	switch {
	case m.toucher != nil:
		if err := m.toucher.Touch(ctx, s.storeKey, m.cfg.TTL); err != nil {
			if errors.Is(err, store.ErrNotFound) {
				// Deleted or expired since Load: writing it back
				// could undo another writer's Delete.
				return ErrConflict
			}
			return err
		}
	case m.swapper != nil:
		ok, err := m.swapper.CompareAndSwap(ctx, s.storeKey, s.stored, s.stored, m.cfg.TTL)
		if err != nil {
			return err
		}
		if !ok {
			return ErrConflict
		}
	default:
		if err := m.cfg.Store.Set(ctx, s.storeKey, s.stored, m.cfg.TTL); err != nil {
			return err
		}
	}
	s.fresh = true
	return nil
}

// Delete removes the session stored under key. An absent key is not an
// error.
func (m *Manager[T]) Delete(ctx context.Context, key string) error {
	if key == "" {
		return &Error{Op: "delete", Key: key, Err: errors.New("empty key")}
	}
	if err := m.cfg.Store.Delete(ctx, m.storeKey(key)); err != nil {
		return &Error{Op: "delete", Key: key, Err: err}
	}
	return nil
}

// Update loads the session under key, applies fn to its data and saves it.
// When another writer saved in between (ErrConflict), it loads again and
// applies fn again, after a jittered exponential backoff, until the save
// succeeds, ctx ends or Config.MaxAttempts is used up; so no update is ever
// lost. fn may therefore run more than once and must only change the data
// it is given. An error from fn aborts the update without writing and is
// returned wrapped in an *Error. Update returns the data as saved.
func (m *Manager[T]) Update(ctx context.Context, key string, fn func(*T) error) (T, error) {
	var zero T
	backoff := 500 * time.Microsecond
	for attempt := 1; ; attempt++ {
		s, err := m.load(ctx, key)
		if err != nil {
			return zero, &Error{Op: "update", Key: key, Err: err}
		}
		if err := fn(&s.Data); err != nil {
			return zero, &Error{Op: "update", Key: key, Err: err}
		}
		err = m.save(ctx, s)
		if err == nil {
			return s.Data, nil
		}
		if !errors.Is(err, ErrConflict) {
			return zero, &Error{Op: "update", Key: key, Err: err}
		}
		if attempt >= m.maxAttempts {
			return zero, &Error{Op: "update", Key: key, Err: fmt.Errorf("%w (gave up after %d attempts)", err, attempt)}
		}
		if err := sleep(ctx, rand.N(backoff)+backoff/2); err != nil {
			return zero, &Error{Op: "update", Key: key, Err: err}
		}
		backoff = min(backoff*2, 50*time.Millisecond)
	}
}

// appenderOf returns c as a codec.Appender when its AppendMarshal is its
// own. A codec that embeds codec.JSON to override Marshal would otherwise
// inherit JSON's AppendMarshal and have its Marshal silently bypassed, so
// such a codec gets no fast path.
func appenderOf(c codec.Codec) codec.Appender {
	switch c.(type) {
	case codec.JSON, *codec.JSON:
		return codec.JSON{}
	}
	a, ok := c.(codec.Appender)
	if !ok || embedsJSON(reflect.TypeOf(c), 0) {
		return nil
	}
	return a
}

// embedsJSON reports whether t is a struct (or a pointer to one) that
// embeds codec.JSON, directly or through other embedded structs.
func embedsJSON(t reflect.Type, depth int) bool {
	if t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t.Kind() != reflect.Struct || depth > 8 {
		return false
	}
	jsonType := reflect.TypeFor[codec.JSON]()
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.Anonymous {
			continue
		}
		ft := f.Type
		if ft.Kind() == reflect.Pointer {
			ft = ft.Elem()
		}
		if ft == jsonType || embedsJSON(ft, depth+1) {
			return true
		}
	}
	return false
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
