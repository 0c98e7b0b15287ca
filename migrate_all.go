package session

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/typedsession/session/store"
)

// MigrateOptions configures Manager.MigrateAll. The zero value migrates
// every key of the manager's namespace without reporting progress.
type MigrateOptions struct {
	// Progress, when set, is called after each key with the counts so far.
	// It runs on MigrateAll's goroutine; the report's Failed slice must
	// not be kept or modified.
	Progress func(MigrateReport)

	// AllKeys must be set to run MigrateAll on a manager with an empty
	// Namespace, which visits every key in the store, sessions of other
	// types and other data included (but not quarantined values). Without
	// it MigrateAll refuses.
	AllKeys bool

	// Overwrite lets MigrateAll run on a store without compare-and-swap
	// (no store.Swapper), where each migrated value is written with Set: a
	// session changed between MigrateAll's read of it and its write is
	// then overwritten by its migrated older value. Set it only while
	// nothing else writes the namespace. Without it MigrateAll refuses
	// such a store (Load migrates each session anyway when it reads it).
	Overwrite bool

	// Reseal also rewrites values whose layers differ from what the
	// manager writes now: sealed with another key than the keyring's
	// first, not sealed though Config.Keyring is set, compressed
	// otherwise. It is step 3 of a key rotation (see package seal); such
	// keys count as Migrated.
	Reseal bool
}

// MigrateReport counts what MigrateAll did.
type MigrateReport struct {
	Scanned  int // keys of the namespace that were looked at
	Migrated int // keys written back at the write version
	Current  int // keys already at (or above) the write version that load cleanly, left alone
	Gone     int // keys deleted or expired between the scan and the read
	// Quarantined counts the damaged values that Config.Quarantine moved
	// aside as MigrateAll loaded them, as Load moves them (each key's
	// Config.Hook event says OutcomeQuarantined, with the damage).
	Quarantined int
	// Extra counts the keys (among Migrated and Current) whose stored
	// value has members the session type does not have.
	Extra  int
	Failed []MigrateFailure
}

// MigrateFailure is one key MigrateAll could not migrate, with the reason
// (matching ErrCorrupt, ErrMigration, ErrInvalid, ErrFutureVersion, ...).
// Its stored value was left as it was.
type MigrateFailure struct {
	Key string
	Err error
}

// MigrateAll walks every key of the manager's namespace through the store's
// store.Scanner, loads each one as Load does and rewrites each one stored
// below Config.WriteVersion (by default the latest version), with
// compare-and-swap against the bytes it read so that it never overwrites a
// concurrent update, retrying conflicts as Update does. A key that does not
// load (corrupt, failing a step or validation, of a future version) is
// reported in Failed and left untouched; MigrateAll goes on with the next
// key. With Config.Quarantine, a damaged value is moved aside as Load
// moves it, and counted in Quarantined.
//
// It stops when ctx ends, returning the report so far and ctx's error; run
// it again to finish: keys already migrated count as Current. Migrated keys
// are written with a fresh Config.TTL. With an empty Namespace it needs
// MigrateOptions.AllKeys.
//
// On a store with batch reads (store.BatchGetter, or store.BatchTTLGetter
// when the manager has a TTL and the store a store.TTLGetter) MigrateAll
// reads 256 keys per round trip and decodes them in process; on a
// store.BatchSwapper it also writes each chunk's migrations in one round
// trip, each a compare-and-swap as above, with the same exactly-once
// guarantees as Save. The report, the Progress calls and the hook events
// are the same as key by key, with one difference on a store.BatchSwapper:
// ctx is then noticed between chunks, so a ctx that ends (or a Progress
// callback that cancels it) mid-chunk lets the chunk's writes finish, and
// they are counted. Only the keys are held in memory, never more than a
// chunk of values.
//
// MigrateAll returns an error for a store that is not a store.Scanner, for
// a store without compare-and-swap unless MigrateOptions.Overwrite is set,
// and for a scan that fails; per-key failures are only reported.
func (m *Manager[T]) MigrateAll(ctx context.Context, opts MigrateOptions) (MigrateReport, error) {
	var r MigrateReport
	sc, ok := m.store.(store.Scanner)
	if !ok {
		return r, &Error{Op: "migrate", Key: "", Err: fmt.Errorf("store %T cannot list its keys (no Scan method)", m.store)}
	}
	if !m.proto.Swaps() && !opts.Overwrite {
		return r, &Error{Op: "migrate", Key: "", Err: fmt.Errorf("store %T has no compare-and-swap, so MigrateAll could overwrite a session changed while it runs; set MigrateOptions.Overwrite to migrate while nothing else writes, or let Load migrate each session when it reads it", m.store)}
	}
	if m.namespace == "" && !opts.AllKeys {
		return r, &Error{Op: "migrate", Key: "", Err: errors.New("the manager has no Namespace, so MigrateAll would visit every key in the store; set MigrateOptions.AllKeys to do that")}
	}
	prefix := ""
	if m.namespace != "" {
		prefix = m.namespace + ":"
	}
	// Collect the keys first: some stores (SQL, files) hold a cursor open
	// while Scan runs, and writing under it would be unsafe or slow. They
	// are kept end to end in one buffer (a keyList), not as a million
	// strings that each pin the scan's reply they were cut from.
	var keys keyList
	err := sc.Scan(ctx, prefix, func(k string) error {
		if prefix == "" && strings.HasPrefix(k, QuarantinePrefix) {
			return nil
		}
		keys.add(strings.TrimPrefix(k, prefix))
		return nil
	})
	if err != nil {
		return r, &Error{Op: "migrate", Key: prefix + "*", Err: err}
	}
	if read := m.batchReader(); read != nil {
		return m.migrateBatches(ctx, read, &keys, opts)
	}
	for i := range keys.len() {
		key := keys.at(i)
		if err := ctx.Err(); err != nil {
			return r, &Error{Op: "migrate", Key: key, Err: err}
		}
		r.Scanned++
		var start time.Time
		if m.observing() {
			start = time.Now()
		}
		outcome, unknown, err := m.migrateOne(ctx, key, opts.Reseal, start, nil)
		if err := m.tally(ctx, &r, opts, key, outcome, unknown, err); err != nil {
			return r, err
		}
	}
	return r, nil
}

// tally counts the outcome of one key in r and reports progress. It
// returns the error MigrateAll stops with when the key failed because ctx
// ended.
func (m *Manager[T]) tally(ctx context.Context, r *MigrateReport, opts MigrateOptions, key string, out outcome, unknown bool, err error) error {
	switch {
	case err != nil && ctx.Err() != nil:
		return &Error{Op: "migrate", Key: key, Err: ctx.Err()}
	case err != nil:
		r.Failed = append(r.Failed, MigrateFailure{Key: key, Err: &Error{Op: "migrate", Key: key, Err: err}})
	case out == migrated:
		r.Migrated++
	case out == current:
		r.Current++
	case out == gone:
		r.Gone++
	case out == quarantined:
		r.Quarantined++
	}
	if unknown && err == nil && out != gone && out != quarantined {
		r.Extra++
	}
	if opts.Progress != nil {
		opts.Progress(*r)
	}
	return nil
}

type outcome int

const (
	migrated outcome = iota + 1
	current
	gone
	quarantined // a damaged value moved aside by the load (Config.Quarantine)
)

// migrateOne brings one key to the write version with the load and save of
// Update and its retry policy. first, when not nil, is what MigrateAll
// already did for the key in a batch: its value read, or its whole first
// attempt (see firstTry); later attempts load the key again.
func (m *Manager[T]) migrateOne(ctx context.Context, key string, reseal bool, start time.Time, first *firstTry[T]) (outcome, bool, error) {
	var out outcome
	var unk []string
	var last *Session[T]
	storedVersion := 0
	attempts, err := m.retry(ctx, func() error {
		f := first
		first = nil
		if f != nil && f.ran {
			out, unk, last, storedVersion = f.out, f.unk, f.s, f.storedVersion
			return f.err
		}
		var s *Session[T]
		var err error
		if f != nil {
			s, err = m.openRead(ctx, key, f.raw, f.freshUntil)
		} else {
			s, err = m.load(ctx, key)
		}
		if err != nil {
			return err
		}
		last, storedVersion, unk = s, s.stored.Version, m.unknownOf(s)
		if out = m.classify(s, reseal); out != migrated {
			return nil
		}
		return m.save(ctx, s)
	})
	if m.observing() {
		e := Event{Op: "migrate", Key: key, Err: err, Duration: time.Since(start)}
		if last != nil {
			e = m.saveEvent("migrate", key, last, storedVersion, err, start)
			if err == nil && last.report.quarantined != "" {
				e.Err = last.report.cause // as Load's event says it
			}
		}
		e.Attempts, e.Conflicts, e.Extra = attempts, attempts-1, unk
		m.emit(ctx, e)
	}
	return out, len(unk) > 0, err
}

// classify decides what MigrateAll does with s, just loaded: quarantined
// (the load moved a damaged value aside: nothing more to do), gone
// (nothing stored), current (stored at or above the write version, with
// the write codec, and not to be resealed), or migrated (to be saved; a
// reseal is marked pending). It also sets the outcome a save would report
// for a session it leaves alone.
func (m *Manager[T]) classify(s *Session[T], reseal bool) outcome {
	s.report.outcome = OutcomeUnchanged
	switch {
	case s.report.quarantined != "":
		s.report.outcome = OutcomeQuarantined
		return quarantined
	case s.IsNew():
		return gone
	case reseal && s.stored.Stale:
		s.pending.reseal = true
		return migrated
	case s.stored.Version >= m.writeVersion && !s.stored.Foreign:
		return current
	}
	return migrated
}

// unknownOf returns the stored members of s that T does not have.
func (m *Manager[T]) unknownOf(s *Session[T]) []string {
	if f := m.pipe.Format(); f.JSONForm() {
		return f.Unknown(s.stored.Payload)
	}
	return nil
}

// openRead is Load for a value already read under key: raw (nil: absent)
// with its expiry fresh until freshUntil.
func (m *Manager[T]) openRead(ctx context.Context, key string, raw []byte, freshUntil time.Time) (*Session[T], error) {
	s, err := m.newSession(key)
	if err != nil {
		return nil, err
	}
	s.seq = m.seq.of(s.storeKey).Load()
	if err := m.open(ctx, s, raw, freshUntil); err != nil {
		return nil, err
	}
	return s, nil
}
