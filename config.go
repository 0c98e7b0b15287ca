package session

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"runtime/debug"
	"strings"
	"sync"
	"time"

	"github.com/go-playground/validator/v10"

	"github.com/typedsession/session/codec"
	"github.com/typedsession/session/internal/format"
	"github.com/typedsession/session/internal/keylock"
	"github.com/typedsession/session/internal/managercaps"
	"github.com/typedsession/session/internal/protocol"
	"github.com/typedsession/session/internal/storeutil"
	"github.com/typedsession/session/migrate"
	"github.com/typedsession/session/seal"
	"github.com/typedsession/session/store"
)

// Config configures a Manager. Only Store is required; every other field's
// zero value means its documented default.
type Config[T any] struct {
	// Store keeps the encoded sessions. Required.
	Store store.Store

	// Codec encodes T. Nil means codec.JSON{}.
	Codec codec.Codec

	// ReadCodecs lists other codecs whose values this manager reads (by
	// their codec.Named name): the codec a value was written with is
	// recorded in the binary envelope, and a JSON envelope is the codec
	// named "json". A value written with one of them loads, and its next
	// Save writes it with Codec: so changing Codec is a deploy, not a
	// flush (list the old codec until every session was rewritten, or run
	// MigrateAll). Nil means only Codec's values are read.
	ReadCodecs []codec.Codec

	// Namespace prefixes every key: the store key is Namespace + ":" + key.
	// It may not contain ':', so that two (namespace, key) pairs never
	// share a store key, and it must be the start of a valid store key
	// (store.CheckKey: valid UTF-8, no NUL byte, room for a key within
	// store.MaxKeyLen): New refuses another. Give each session type its own namespace. An
	// empty Namespace stores keys as they are given: the mode for adopting
	// another framework's keys. Never give a namespaced manager and one
	// without a namespace the same store (or redisstore prefix): their keys
	// could meet. Whole-namespace operations on an empty Namespace
	// (MigrateAll) need an explicit opt-in.
	Namespace string

	// TTL is an idle timeout: every write sets the session to expire TTL
	// from now, and a Load that finds it extends it to now + TTL when less
	// than TTL − Slack() remains (see [Manager.Slack]: the timeout's
	// precision). Zero means sessions never expire. Values too long for a
	// store are clamped by the store to the latest expiry it can keep.
	// The extension needs a store that can extend an expiry without
	// writing the value (store.Toucher, store.Refresher), or, at a Save of
	// an unchanged session, compare-and-swap: on a store with none of them
	// (only Get, Set and Delete) an unchanged session is never written
	// back, so it expires TTL after its last change, however often it is
	// loaded.
	TTL time.Duration

	// Initial returns the value of a new or expired session. Nil means the
	// zero T. New calls it once and refuses a value that fails validation.
	Initial func() T

	// Migrations is the plan of schema versions of T. Nil means version 1
	// with no steps.
	Migrations *migrate.Plan

	// WriteVersion is the schema version that Save writes. Zero means
	// Migrations.Latest(). Set it to the previous version during a rolling
	// deploy, while binaries that only know that version still run; every
	// step above it needs a down function, and a Load checks that the
	// steps it crosses give back what they were given (down(up(v)) == v),
	// returning ErrMigration naming the step otherwise.
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

	// MaxAttempts caps the loads and saves of one Update (and of one key
	// in MigrateAll) under contention. Zero means 100.
	MaxAttempts int

	// ExtraMembers says what happens to stored members that T does not
	// have (a field added by a newer binary, a field renamed without a
	// migration step). Zero means KeepExtra. It applies to codecs whose
	// payload is JSON.
	ExtraMembers ExtraMembers

	// Keyring, when set, seals every value the manager writes
	// (AES-256-GCM, package seal) bound to its namespace and key, with the
	// keyring's first key, and opens values sealed with any of its keys.
	// Values stored unsealed still load, so turning encryption on is a
	// deploy, not a flush; MigrateOptions.Reseal seals them all. Nil
	// (the default) writes values unsealed.
	Keyring *seal.Keyring

	// Compressor, when set, compresses every payload longer than
	// CompressAbove bytes before sealing (codec.Deflate, or zstd from its
	// own module). Nil (the default) compresses nothing.
	Compressor codec.Compressor

	// CompressAbove is the payload size in bytes above which Compressor
	// applies. Zero means 1024.
	CompressAbove int

	// Quarantine, when true, moves a stored value that is damaged by its
	// content (it does not parse, open or decompress) aside to a key under
	// QuarantinePrefix, outside every namespace, and gives the user a new
	// session instead of an error; Config.Hook sees it (OutcomeQuarantined,
	// with the error: a load event, also within Update, and the key's
	// event within MigrateAll, which counts it in
	// MigrateReport.Quarantined). It never moves a newer schema, a value
	// sealed with a key this binary lacks, a value that a migration step
	// or validation refuses, a value over MaxBytes or anything after a
	// store error; nor a value whose store key is too long for a
	// quarantine key (within about 32 bytes of store.MaxKeyLen): Load then
	// returns the damage, as without Quarantine. False (the default)
	// leaves such values in place and returns the error on every Load.
	//
	// The move needs a store that is a store.Swapper and a store.Deleter
	// (the copy is written only where nothing is, the original removed
	// only if it still holds the damaged bytes). On a store without both,
	// Quarantine has no effect: the damaged value stays in place as
	// evidence and Load returns its error, as without Quarantine, since
	// a blind Delete could erase a value another writer put there since
	// the read.
	Quarantine bool

	// Hook, when set, is called after every operation (Load, Save,
	// Delete, Update, and each key of MigrateAll) with what it did: the
	// one point where metrics, traces and logs plug in. It runs on the
	// caller's goroutine, so it must be fast and must not call the
	// Manager. Nil (the default) costs nothing.
	Hook func(context.Context, Event)

	// Logger, when set, logs every operation at debug level, failed ones
	// at warn level, and warns of a stored value over WarnBytes and of
	// stored members that T does not have (once per set of members). Nil
	// (the default) logs nothing. What it logs follows the package's one
	// redaction rule, as Event does: no key without LogKeys, and no value
	// of the session's data ever (a validation error names the field and
	// the rule, not the value; member paths leave out map keys).
	Logger *slog.Logger

	// LogKeys puts session keys (user identifiers) into Logger's records,
	// into the texts of the errors they log, and into Event.Key and
	// Event.Err for Hook. False (the default) leaves them out.
	LogKeys bool

	// WarnBytes, when positive, makes Logger warn of every write of a
	// stored value larger than this many bytes: a session that keeps
	// growing. Zero means no warning.
	WarnBytes int
}

// ExtraMembers is the policy for stored members that T does not have.
// Members that encoding/json matches case-insensitively count as known.
type ExtraMembers int

const (
	// KeepExtra (the default) keeps such members in the stored value:
	// Load ignores them, and a Save of a changed session writes them back
	// where they were, so that an old and a new binary can run side by
	// side while a field is added, and a step added later can still
	// recover a renamed field. The first Save that meets a given set of
	// such members reports them (Config.Hook, Config.Logger); MigrateAll
	// counts the keys
	// that have them. In a slice, they stay with their element (matched by
	// its known data, else by its position); an element the handler
	// removed takes them with it.
	KeepExtra ExtraMembers = iota
	// RejectExtra makes Load return ErrCorrupt naming such members.
	RejectExtra
	// DropExtra drops such members at the next Save of a changed
	// session, and reports them: the explicit opt-out.
	DropExtra
)

// New returns a Manager for cfg, or an error naming what is wrong with it:
// no store (or a nil store pointer), a negative TTL or MaxAttempts, a
// Namespace with ':' or one that no store key can begin with, a
// WriteVersion the plan cannot write, or an Initial value that panics or
// fails validation.
func New[T any](cfg Config[T]) (*Manager[T], error) {
	if cfg.Store == nil {
		return nil, errors.New("session: Config.Store is nil; give it a store such as memstore.New")
	}
	if storeutil.NilInside(cfg.Store) {
		// A store constructor that failed returns a nil pointer, which
		// is not a nil interface: it would panic at the first Load.
		return nil, fmt.Errorf("session: Config.Store is a nil %T; check the error of the store's constructor", cfg.Store)
	}
	if cfg.TTL < 0 {
		return nil, fmt.Errorf("session: Config.TTL is negative (%v); use 0 for sessions that never expire", cfg.TTL)
	}
	if cfg.MaxAttempts < 0 {
		return nil, fmt.Errorf("session: Config.MaxAttempts is negative (%d)", cfg.MaxAttempts)
	}
	if strings.Contains(cfg.Namespace, ":") {
		return nil, fmt.Errorf("session: Config.Namespace %q contains ':', so its keys could meet another namespace's; use a name without ':'", cfg.Namespace)
	}
	if cfg.Namespace != "" {
		// Every store key begins with Namespace + ":": a namespace that
		// no such key can hold would fail every call.
		if err := store.CheckKey(cfg.Namespace + ":k"); err != nil {
			return nil, fmt.Errorf("session: Config.Namespace %s cannot begin a store key: %w", quoteKey(cfg.Namespace), err)
		}
	}
	if cfg.ExtraMembers < KeepExtra || cfg.ExtraMembers > DropExtra {
		return nil, fmt.Errorf("session: Config.ExtraMembers %d is not KeepExtra, RejectExtra or DropExtra", cfg.ExtraMembers)
	}
	m := &Manager[T]{
		store:        cfg.Store,
		proto:        protocol.New(cfg.Store),
		namespace:    cfg.Namespace,
		ttl:          cfg.TTL,
		slack:        slackOf(cfg.TTL),
		seq:          newWriteSeq(),
		updates:      keylock.New[*Session[T]](),
		initialFn:    cfg.Initial,
		latest:       cfg.Migrations.Latest(),
		writeVersion: cfg.WriteVersion,
		validateFn:   guarded(newValidateFunc[T](cfg.Validator, cfg.SkipTagValidation)),
		maxAttempts:  cfg.MaxAttempts,
		unknown:      cfg.ExtraMembers,
		hook:         cfg.Hook,
		logger:       cfg.Logger,
		logKeys:      cfg.LogKeys,
		warnBytes:    cfg.WarnBytes,
	}
	// Without an exact move, quarantine would have to delete blindly:
	// the damaged value stays where it is (see Config.Quarantine).
	m.quarantineOn = cfg.Quarantine && m.proto.Moves()
	if m.writeVersion == 0 {
		m.writeVersion = m.latest
	}
	if err := cfg.Migrations.CanWrite(m.writeVersion); err != nil {
		return nil, fmt.Errorf("session: Config.WriteVersion: %w", err)
	}
	if cfg.CompressAbove < 0 {
		return nil, fmt.Errorf("session: Config.CompressAbove is negative (%d)", cfg.CompressAbove)
	}
	maxBytes := cfg.MaxBytes
	if maxBytes == 0 {
		maxBytes = 1 << 20
	}
	if m.maxAttempts == 0 {
		m.maxAttempts = 100
	}
	compressAbove := cfg.CompressAbove
	if compressAbove == 0 {
		compressAbove = defaultCompressAbove
	}
	pipe, err := format.NewPipeline(format.PipelineConfig{
		Codec:        cfg.Codec,
		ReadCodecs:   cfg.ReadCodecs,
		Type:         reflect.TypeFor[T](),
		New:          func() any { return new(T) },
		Validate:     func(v any) error { return m.validate(v.(*T)) },
		Plan:         cfg.Migrations,
		Latest:       m.latest,
		WriteVersion: m.writeVersion,
		Layers:       format.Layers{Compressor: cfg.Compressor, CompressAbove: compressAbove, Keyring: cfg.Keyring, Namespace: cfg.Namespace},
		MaxBytes:     maxBytes,
		Unknown:      format.ExtraPolicy(cfg.ExtraMembers),
	})
	if err != nil {
		return nil, fmt.Errorf("session: Config.ReadCodecs: %w", err)
	}
	m.pipe = pipe
	if err := pipe.Format().CheckType(reflect.TypeFor[T]()); err != nil {
		return nil, fmt.Errorf("session: the session type cannot be stored: %w", err)
	}
	m.ttlGetter, _ = cfg.Store.(store.TTLGetter)
	m.refresher, _ = cfg.Store.(store.Refresher)
	m.zeroPayload = sync.OnceValues(func() ([]byte, error) {
		var zero T
		return m.pipe.InitialPayload(&zero)
	})
	// Initial is user code: call it once now, so that a panic or a value
	// that fails validation is a configuration error, not a failed Load.
	// (The zero T of a nil Initial may fail validation: a handler fills
	// it in before the first Save.)
	if m.initialFn != nil {
		v, err := m.initialValue()
		if err == nil {
			err = m.validate(&v)
		}
		if err == nil {
			_, err = m.pipe.InitialPayload(&v)
		}
		if err != nil {
			return nil, fmt.Errorf("session: Config.Initial: %w", err)
		}
	}
	return m, nil
}

// defaultCompressAbove is Config.CompressAbove's default.
const defaultCompressAbove = 1024

// slackOf is the idle timeout's precision for a TTL: a tenth of it, at most
// an hour.
func slackOf(ttl time.Duration) time.Duration { return min(ttl/10, time.Hour) }

// Slack returns the precision of the idle timeout: a Load extends a
// session only when less than TTL − Slack remains, so a session expires
// between TTL − Slack and TTL after its last Load or write. It is TTL/10,
// at most one hour, and 0 without a TTL.
func (m *Manager[T]) Slack() time.Duration { return m.slack }

// Namespace returns Config.Namespace, the prefix of the manager's store
// keys ("": keys as given). Code that keeps records of its own in the
// same store (the web middleware's index of devices, a conversation's
// due-index) refuses a namespace equal to it.
func (m *Manager[T]) Namespace() string { return m.namespace }

// TTL returns Config.TTL, the idle timeout (0: sessions never expire).
// Code that keeps records about sessions elsewhere in the store (the web
// middleware's per-user index of sessions) sizes their lifetime by it.
func (m *Manager[T]) TTL() time.Duration { return m.ttl }

// initialValue returns the value of a new session; a panic in
// Config.Initial becomes an error.
func (m *Manager[T]) initialValue() (v T, err error) {
	if m.initialFn == nil {
		return v, nil
	}
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("Initial panicked: %w", &format.PanicError{Value: p, Stack: debug.Stack()})
		}
	}()
	return m.initialFn(), nil
}

// validate runs the validation of T; a panic in a Validate method becomes
// ErrInvalid.
func (m *Manager[T]) validate(data *T) error { return m.validateFn(data) }

// storeKey returns the store key of key, or an error matching
// store.ErrInvalidKey.
func (m *Manager[T]) storeKey(key string) (string, error) {
	if key == "" {
		return "", fmt.Errorf("%w: empty key", store.ErrInvalidKey)
	}
	sk := key
	if m.namespace != "" {
		sk = m.namespace + ":" + key
	}
	return sk, store.CheckKey(sk)
}

func init() {
	managercaps.Swaps = func(m any) bool {
		s, ok := m.(interface{ swaps() bool })
		return ok && s.swaps()
	}
}

// swaps reports whether m writes with compare-and-swap (for
// internal/managercaps).
func (m *Manager[T]) swaps() bool { return m.proto.Swaps() }
