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
	"sync/atomic"
	"time"

	"github.com/go-playground/validator/v10"

	"github.com/typedsession/session/codec"
	"github.com/typedsession/session/internal/format"
	"github.com/typedsession/session/internal/keylock"
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
	// share a store key. Give each session type its own namespace. An
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

	// UnknownMembers says what happens to stored members that T does not
	// have (a field added by a newer binary, a field renamed without a
	// migration step). Zero means KeepUnknown. It applies to codecs whose
	// payload is JSON.
	UnknownMembers UnknownMembers

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
	// content (it does not parse, open or migrate) aside to a key under
	// QuarantinePrefix, outside every namespace, and gives the user a new
	// session instead of an error; Config.Hook sees it (OutcomeQuarantined,
	// with the error). It never moves a newer schema, a value sealed with
	// a key this binary lacks, a value that fails validation, a value over
	// MaxBytes or anything after a store error. False (the default) leaves
	// such values in place and returns the error on every Load.
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
	// (the default) logs nothing. Session data is never logged.
	Logger *slog.Logger

	// LogKeys puts session keys (user identifiers) into Logger's records.
	// False (the default) leaves them out.
	LogKeys bool

	// WarnBytes, when positive, makes Logger warn of every write of a
	// stored value larger than this many bytes: a session that keeps
	// growing. Zero means no warning.
	WarnBytes int
}

// UnknownMembers is the policy for stored members that T does not have.
// Members that encoding/json matches case-insensitively count as known.
type UnknownMembers int

const (
	// KeepUnknown (the default) keeps such members in the stored value:
	// Load ignores them, and a Save of a changed session writes them back
	// where they were, so that an old and a new binary can run side by
	// side while a field is added, and a step added later can still
	// recover a renamed field. The first Save that meets a given set of
	// such members reports them (Config.Hook, Config.Logger); MigrateAll
	// counts the keys
	// that have them. In a slice, they stay with their element (matched by
	// its known data, else by its position); an element the handler
	// removed takes them with it.
	KeepUnknown UnknownMembers = iota
	// RejectUnknown makes Load return ErrCorrupt naming such members.
	RejectUnknown
	// DropUnknown drops such members at the next Save of a changed
	// session, and reports them: the explicit opt-out.
	DropUnknown
)

// Manager loads and saves sessions of type T. It is safe for concurrent use;
// create one per session type with New and share it.
type Manager[T any] struct {
	// Config, resolved once by New; nothing changes after.
	store         store.Store
	swapper       store.Swapper   // nil if the store has none
	deleter       store.Deleter   // nil if the store has none
	toucher       store.Toucher   // nil if the store has none
	refresher     store.Refresher // nil if the store has none
	ttlGetter     store.TTLGetter // nil if the store has none
	format        *format.Format
	readFormats   map[string]*format.Format // Config.ReadCodecs by name
	namespace     string
	ttl, slack    time.Duration
	initialFn     func() T // nil: the zero T
	plan          *migrate.Plan
	latest        int
	writeVersion  int
	validateFn    func(*T) error
	maxBytes      int
	maxAttempts   int
	unknown       UnknownMembers
	keyring       *seal.Keyring
	compressor    codec.Compressor
	compressAbove int
	quarantineOn  bool
	hook          func(context.Context, Event)
	logger        *slog.Logger // nil: nothing logged
	logKeys       bool
	warnBytes     int
	seq           *writeSeq // write counters per key stripe, for Session.Handoff

	// updates serializes the Updates of one key and hands each the
	// session the one before saved; handoffOffTill (Unix nanoseconds)
	// pauses the handing on after a conflict.
	updates        *keylock.Table[*Session[T]]
	handoffOffTill atomic.Int64

	// sizeHint is the length of the last encoding, used to size the next
	// buffer when there is no stored value to go by.
	sizeHint atomic.Int64
	// zeroPayload caches the encoding of the zero T, the initial value of
	// every new session when Config.Initial is nil. It is only compared.
	zeroPayload func() ([]byte, error)
	// reported holds the sets of unknown members already logged, and
	// reportedN their number.
	reported  sync.Map
	reportedN atomic.Int64
}

// New returns a Manager for cfg, or an error naming what is wrong with it:
// no store, a negative TTL or MaxAttempts, a Namespace with ':', a
// WriteVersion the plan cannot write, or an Initial value that panics or
// fails validation.
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
	if strings.Contains(cfg.Namespace, ":") {
		return nil, fmt.Errorf("session: Config.Namespace %q contains ':', so its keys could meet another namespace's; use a name without ':'", cfg.Namespace)
	}
	if cfg.UnknownMembers < KeepUnknown || cfg.UnknownMembers > DropUnknown {
		return nil, fmt.Errorf("session: Config.UnknownMembers %d is not KeepUnknown, RejectUnknown or DropUnknown", cfg.UnknownMembers)
	}
	m := &Manager[T]{
		store:         cfg.Store,
		format:        format.New(cfg.Codec, reflect.TypeFor[T]()),
		namespace:     cfg.Namespace,
		ttl:           cfg.TTL,
		slack:         slackOf(cfg.TTL),
		seq:           newWriteSeq(),
		updates:       keylock.New[*Session[T]](),
		initialFn:     cfg.Initial,
		plan:          cfg.Migrations,
		latest:        cfg.Migrations.Latest(),
		writeVersion:  cfg.WriteVersion,
		validateFn:    newValidateFunc[T](cfg.Validator, cfg.SkipTagValidation),
		maxBytes:      cfg.MaxBytes,
		maxAttempts:   cfg.MaxAttempts,
		unknown:       cfg.UnknownMembers,
		keyring:       cfg.Keyring,
		compressor:    cfg.Compressor,
		compressAbove: cfg.CompressAbove,
		quarantineOn:  cfg.Quarantine,
		hook:          cfg.Hook,
		logger:        cfg.Logger,
		logKeys:       cfg.LogKeys,
		warnBytes:     cfg.WarnBytes,
	}
	if m.writeVersion == 0 {
		m.writeVersion = m.latest
	}
	if err := m.format.CheckType(reflect.TypeFor[T]()); err != nil {
		return nil, fmt.Errorf("session: the session type cannot be stored: %w", err)
	}
	for _, c := range cfg.ReadCodecs {
		n, ok := c.(codec.Named)
		if !ok || n.Name() == "" {
			return nil, fmt.Errorf("session: Config.ReadCodecs: codec %T has no name (codec.Named)", c)
		}
		if n.Name() == m.format.Name() {
			continue
		}
		if m.readFormats == nil {
			m.readFormats = map[string]*format.Format{}
		}
		if _, dup := m.readFormats[n.Name()]; dup {
			return nil, fmt.Errorf("session: Config.ReadCodecs: two codecs named %q", n.Name())
		}
		m.readFormats[n.Name()] = format.New(c, reflect.TypeFor[T]())
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
	if m.compressAbove == 0 {
		m.compressAbove = defaultCompressAbove
	}
	if cfg.CompressAbove < 0 {
		return nil, fmt.Errorf("session: Config.CompressAbove is negative (%d)", cfg.CompressAbove)
	}
	m.swapper, _ = cfg.Store.(store.Swapper)
	m.deleter, _ = cfg.Store.(store.Deleter)
	m.toucher, _ = cfg.Store.(store.Toucher)
	m.refresher, _ = cfg.Store.(store.Refresher)
	m.ttlGetter, _ = cfg.Store.(store.TTLGetter)
	m.zeroPayload = sync.OnceValues(func() ([]byte, error) {
		var zero T
		return m.format.AppendPayload(nil, &zero)
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
			_, err = m.format.AppendPayload(nil, &v)
		}
		if err != nil {
			return nil, fmt.Errorf("session: Config.Initial: %w", err)
		}
	}
	return m, nil
}

// slackOf is the idle timeout's precision for a TTL: a tenth of it, at most
// an hour.
func slackOf(ttl time.Duration) time.Duration { return min(ttl/10, time.Hour) }

// Slack returns the precision of the idle timeout: a Load extends a
// session only when less than TTL − Slack remains, so a session expires
// between TTL − Slack and TTL after its last Load or write. It is TTL/10,
// at most one hour, and 0 without a TTL.
func (m *Manager[T]) Slack() time.Duration { return m.slack }

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
func (m *Manager[T]) validate(data *T) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = &kindError{kind: ErrInvalid, msg: fmt.Sprintf("Validate panicked: %v", p), cause: &format.PanicError{Value: p, Stack: debug.Stack()}}
		}
	}()
	return m.validateFn(data)
}

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
