package session

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/typedsession/session/internal/envelope"
	"github.com/typedsession/session/store"
)

// MigrateOptions configures Manager.MigrateAll. The zero value migrates
// every key without reporting progress.
type MigrateOptions struct {
	// Progress, when set, is called after each key with the counts so far.
	// It runs on MigrateAll's goroutine; the report's Failed slice must
	// not be kept or modified.
	Progress func(MigrateReport)
}

// MigrateReport counts what MigrateAll did.
type MigrateReport struct {
	Scanned  int // keys of the namespace that were looked at
	Migrated int // keys written back at the write version
	Current  int // keys already at (or above) the write version, left alone
	Gone     int // keys deleted or expired between the scan and the read
	Failed   []MigrateFailure
}

// MigrateFailure is one key MigrateAll could not migrate, with the reason
// (matching ErrCorrupt, ErrMigration, ErrInvalid, ErrFutureVersion, ...).
// Its stored value was left as it was.
type MigrateFailure struct {
	Key string
	Err error
}

// MigrateAll walks every key of the manager's namespace through the store's
// store.Scanner and rewrites each one stored below Config.WriteVersion (by
// default the latest version), with compare-and-swap against the bytes it
// read so that it never overwrites a concurrent update. Keys that cannot be
// migrated are reported in Failed and left untouched; MigrateAll goes on
// with the next key.
//
// It stops when ctx ends, returning the report so far and ctx's error; run
// it again to finish: keys already migrated count as Current. Migrated keys
// are written with a fresh Config.TTL. With an empty Namespace every key in
// the store is visited, so give sessions a namespace before using it.
//
// MigrateAll returns an error for a store that is not a store.Scanner and
// for a scan that fails; per-key failures are only reported.
func (m *Manager[T]) MigrateAll(ctx context.Context, opts MigrateOptions) (MigrateReport, error) {
	var r MigrateReport
	sc, ok := m.cfg.Store.(store.Scanner)
	if !ok {
		return r, &Error{Op: "migrate", Key: "", Err: fmt.Errorf("store %T cannot list its keys (no Scan method)", m.cfg.Store)}
	}
	prefix := ""
	if m.cfg.Namespace != "" {
		prefix = m.cfg.Namespace + ":"
	}
	// Collect the keys first: some stores (SQL, files) hold a cursor open
	// while Scan runs, and writing under it would be unsafe or slow.
	var keys []string
	err := sc.Scan(ctx, prefix, func(k string) error {
		keys = append(keys, strings.TrimPrefix(k, prefix))
		return nil
	})
	if err != nil {
		return r, &Error{Op: "migrate", Key: prefix + "*", Err: err}
	}
	for _, key := range keys {
		if err := ctx.Err(); err != nil {
			return r, &Error{Op: "migrate", Key: key, Err: err}
		}
		r.Scanned++
		switch outcome, err := m.migrateOne(ctx, key); {
		case err != nil && ctx.Err() != nil:
			return r, &Error{Op: "migrate", Key: key, Err: ctx.Err()}
		case err != nil:
			r.Failed = append(r.Failed, MigrateFailure{Key: key, Err: &Error{Op: "migrate", Key: key, Err: err}})
		case outcome == migrated:
			r.Migrated++
		case outcome == current:
			r.Current++
		case outcome == gone:
			r.Gone++
		}
		if opts.Progress != nil {
			opts.Progress(r)
		}
	}
	return r, nil
}

type outcome int

const (
	migrated outcome = iota + 1
	current
	gone
)

// migrateOne brings one key to the write version, reading again and
// retrying when a concurrent writer got there first.
func (m *Manager[T]) migrateOne(ctx context.Context, key string) (outcome, error) {
	const attempts = 5
	for range attempts {
		s := &Session[T]{m: m, key: key, storeKey: m.storeKey(key)}
		raw, err := m.cfg.Store.Get(ctx, s.storeKey)
		if errors.Is(err, store.ErrNotFound) {
			return gone, nil
		}
		if err != nil {
			return 0, err
		}
		version, _, err := envelope.Decode(raw, m.jsonForm)
		if err == nil && version >= m.writeVersion && version <= m.latest {
			return current, nil
		}
		if err := m.fill(s, raw); err != nil {
			return 0, err
		}
		err = m.save(ctx, s)
		if err == nil {
			return migrated, nil
		}
		if !errors.Is(err, ErrConflict) {
			return 0, err
		}
	}
	return 0, fmt.Errorf("%w (still changing after %d attempts)", ErrConflict, attempts)
}
