package session

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/typedsession/session/internal/format"
	"github.com/typedsession/session/internal/keylock"
	"github.com/typedsession/session/internal/protocol"
	"github.com/typedsession/session/store"
)

// Session is one user's session: the Data of type T plus what the manager
// needs to save it safely. A Session is not safe for concurrent use; it
// belongs to the handler that loaded it.
//
// # States
//
// What a session knows of the store is one [format.Stored] value, stored,
// and whether it is in step with the store, synced. Its states are:
//
//	new       stored.Raw == nil, synced: nothing was under the key at the
//	          last store access (Load found nothing; a Destroy, or a
//	          quarantine, removed it). IsNew is true.
//	stored    stored.Raw != nil, synced: the key held stored.Raw at the
//	          last store access (Load found it, or Save wrote it).
//	unsynced  synced is false: the last save failed, or its outcome is
//	          open. stored is still what the key held before it, so the
//	          next save is a compare-and-swap against that (a conflict if
//	          the failed write landed after all); the session is never
//	          handed on.
//
// A save moves a session between them: a write or a move that succeeds
// leaves it stored (under the new key, for a move), a destroy that
// succeeds leaves it new, a save that writes nothing (the data is the same)
// leaves it where it was, and any error leaves it unsynced. The pending
// intents (Destroy, MoveTo, a reseal) say what the next save does instead
// of an ordinary write. Whether the data changed is decided in one place:
// format.Pipeline.Encode, which compares the new encoding with
// stored.Payload.
type Session[T any] struct {
	// Data is the user's value. Read and write its fields directly.
	Data T

	m        *Manager[T]
	key      string
	storeKey string

	// stored is what the key held at the last store access.
	stored format.Stored
	// synced reports that the last store access succeeded.
	synced bool
	// seq is the write counter of the key's stripe as of that access:
	// handoff compares it with the counter now.
	seq uint64
	// freshUntil is when the store's expiry, as last learned, falls below
	// TTL − slack, so that an unchanged save must extend it (the zero
	// time: it already has, or is unknown). Unused without a TTL.
	freshUntil time.Time
	pending    pending
	report     report
}

// pending is what the next save does instead of an ordinary write.
type pending struct {
	destroy bool   // Destroy: delete the key
	moveTo  string // MoveTo: store under this key instead ("": none)
	reseal  bool   // MigrateOptions.Reseal: rewrite a stale value though the data is the same
}

// report is what the last load or save did, for Config.Hook.
type report struct {
	outcome Outcome
	extra   []string // stored members T lacks, met by the save
	// quarantined is the key a damaged value was moved to by the load,
	// and cause why.
	quarantined string
	cause       error
}

// Key returns the key as the caller gave it, without the namespace.
func (s *Session[T]) Key() string { return s.key }

// IsNew reports whether nothing was stored for the key when the session was
// loaded (or since it was destroyed): Data holds the initial value.
func (s *Session[T]) IsNew() bool { return !s.stored.Present() }

// Version returns the schema version the session was stored with: 0 for
// data without an envelope, and Latest for a new session.
func (s *Session[T]) Version() int { return s.stored.Version }

// Reset sets Data back to the initial value. The next Save stores it (a new
// session that is reset and saved stores nothing). Reset does nothing to
// Data if Config.Initial panics.
func (s *Session[T]) Reset() {
	if v, err := s.m.initialValue(); err == nil {
		s.Data = v
	}
	s.pending.destroy = false
}

// Destroy marks the session for deletion: the next Save deletes it from the
// store and turns the session into a new one holding the initial value.
// On a [store.Deleter] the delete is a compare-and-delete against the value
// loaded, so it never erases another writer's newer save: Save returns
// ErrConflict instead; on other stores it deletes whatever is stored (the
// last writer wins). A new session that is destroyed deletes nothing.
func (s *Session[T]) Destroy() { s.pending.destroy = true }

// MoveTo marks the session to be stored under key from the next Save on (a
// new cookie token, for instance). That Save writes the data under key only
// if nothing is stored there, then removes the old key with a
// compare-and-delete against the value loaded; if the old key changed in
// between, it removes what it wrote under key again and returns
// ErrConflict, so another writer's save is never lost. The session is never
// left under neither key: when the outcome of the removal cannot be
// learned, Save returns ErrOutcomeUnknown and leaves the new key in place.
// After a successful Save, Key returns key. A session destroyed after
// MoveTo is deleted under its old key and nothing is written under the new
// one. This needs a store that is a store.Swapper and a store.Deleter: on
// a store.Swapper without compare-and-delete the new key is still written
// only if nothing is there, but the old one is deleted unconditionally, as
// Destroy deletes there, so a save another writer made under the old key
// since the load is lost (the last writer wins); on a store without
// compare-and-swap the new key is set and the old one deleted,
// unconditionally.
func (s *Session[T]) MoveTo(key string) { s.pending.moveTo = key }

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

// renew turns s into a new session holding the initial value, in step with
// a store that holds nothing under its key.
func (m *Manager[T]) renew(s *Session[T]) error {
	v, err := m.initialValue()
	if err != nil {
		return err
	}
	var payload []byte
	if m.initialFn == nil {
		payload, err = m.zeroPayload()
	} else {
		payload, err = m.pipe.InitialPayload(&v)
	}
	if err != nil {
		return err
	}
	s.Data = v
	s.stored = format.Stored{Version: m.latest, Payload: payload}
	s.freshUntil = time.Time{}
	s.pending.destroy = false
	s.synced = true
	return nil
}

// fresh reports whether the store's expiry of s is far enough that an
// unchanged save need not extend it.
func (m *Manager[T]) fresh(s *Session[T]) bool {
	return m.ttl <= 0 || time.Now().Before(s.freshUntil)
}

// Manager loads and saves sessions of type T. It is safe for concurrent use;
// create one per session type with New and share it.
type Manager[T any] struct {
	// Config, resolved once by New; nothing changes after.
	store        store.Store
	proto        *protocol.Store  // every mutation of the store goes through it
	pipe         *format.Pipeline // every value, both ways, goes through it
	ttlGetter    store.TTLGetter  // nil if the store has none
	refresher    store.Refresher  // nil if the store has none
	namespace    string
	ttl, slack   time.Duration
	initialFn    func() T // nil: the zero T
	latest       int
	writeVersion int
	validateFn   func(*T) error
	maxAttempts  int
	unknown      ExtraMembers
	quarantineOn bool
	hook         func(context.Context, Event)
	logger       *slog.Logger // nil: nothing logged
	logKeys      bool
	warnBytes    int
	seq          *writeSeq // write counters per key stripe, for handoff

	// updates serializes the Updates of one key and hands each the
	// session the one before saved; handoffOffTill (Unix nanoseconds)
	// pauses the handing on after a conflict.
	updates        *keylock.Table[*Session[T]]
	handoffOffTill atomic.Int64

	// zeroPayload caches the encoding of the zero T, the initial value of
	// every new session when Config.Initial is nil. It is only compared.
	zeroPayload func() ([]byte, error)
	// reported holds the sets of unknown members already logged, and
	// reportedN their number.
	reported  sync.Map
	reportedN atomic.Int64
}
