package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"regexp"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/typedsession/session/store"
)

// Dialect names the SQL database behind a *sql.DB.
type Dialect string

// The dialects the store speaks. The zero value of Dialect ("") asks New to
// tell the dialect from the driver of the *sql.DB it is given.
const (
	// Postgres is PostgreSQL (11 or later), typically through
	// github.com/jackc/pgx/v5/stdlib (driver name "pgx").
	Postgres Dialect = "postgres"
	// SQLite is SQLite (3.35 or later), typically through modernc.org/sqlite
	// (driver name "sqlite").
	SQLite Dialect = "sqlite"
)

// DefaultTable is the table name used when Options.Table is empty.
const DefaultTable = "sessions"

// DefaultCleanupInterval is the sweep interval used when
// Options.CleanupInterval is zero.
const DefaultCleanupInterval = 5 * time.Minute

// Options configures a Store. The zero value is ready to use.
type Options struct {
	// Dialect is the database behind db. Zero: detected from the package
	// of db's driver (github.com/jackc/pgx and github.com/lib/pq are
	// Postgres; a package path containing "sqlite" is SQLite); New returns
	// an error when it cannot tell. Any value other than "", Postgres and
	// SQLite is an error.
	Dialect Dialect

	// Table is the table that holds the sessions, optionally qualified by a
	// schema ("app.sessions"; for SQLite the schema is an attached database
	// name such as "main"). Each part must be an identifier: an ASCII letter
	// or underscore, then letters, digits or underscores, at most 63 bytes.
	// The name is quoted in every statement, so on PostgreSQL it is
	// case-sensitive: "Sessions" and "sessions" are different tables.
	// Zero: DefaultTable ("sessions").
	Table string

	// CleanupInterval is how often a background sweep deletes expired
	// rows. Reads never return expired rows whether or not they have been
	// swept; the sweep only reclaims space. Zero: DefaultCleanupInterval
	// (5 minutes). Negative: no sweep (call DeleteExpired yourself, for
	// example from a cron job, or leave it to another process).
	CleanupInterval time.Duration

	// SkipCreate, when true, makes New not create the table and its index.
	// Use it when a DBA creates them by hand (the DDL is in the package
	// documentation) and the application's role may not run DDL. New still
	// checks that the table exists with the expected columns.
	SkipCreate bool

	// Logger receives the errors of the background sweep, which has no
	// caller to return them to. Zero: slog.Default().
	Logger *slog.Logger
}

// Store is a store.Store backed by one table of a PostgreSQL or SQLite
// database. It implements store.Swapper, store.Toucher, store.Refresher and
// store.Scanner. All methods are safe for concurrent use.
type Store struct {
	db      *sql.DB
	dialect Dialect
	table   string // quoted, safe to put in SQL
	logger  *slog.Logger
	now     func() time.Time

	// scanBatch is how many keys Scan reads per query; tests lower it.
	scanBatch int

	q queries

	closeOnce sync.Once
	stop      chan struct{} // closed by Close
	done      chan struct{} // closed when the sweep goroutine has returned
}

// queries holds every statement, built once by New from the checked table
// name. Arguments are always passed as parameters, never spliced in.
type queries struct {
	get, set, del, touch, getAndTouch string
	casOld, casAbsent                 string
	scanFirst, scanFirstBounded       string
	scanNext, scanNextBounded         string
	sweep, check                      string
}

var identRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]{0,62}$`)

// New returns a store that keeps its sessions in a table of db, creating the
// table and its index if they are missing (unless opts.SkipCreate), and starts
// the background sweep of expired rows (unless opts.CleanupInterval < 0).
//
// The caller keeps ownership of db: Store.Close stops the sweep but does not
// close db.
//
// For SQLite, New checks that db's connections wait for locks: when db may
// open more than one connection (db.SetMaxOpenConns is not 1), PRAGMA
// busy_timeout must be above zero, or concurrent writers would fail with
// "database is locked"; New returns an error that says how to set it. New
// does not change the journal mode; WAL is recommended (see the package
// documentation).
func New(db *sql.DB, opts Options) (*Store, error) {
	if db == nil {
		return nil, errors.New("sqlstore: New: db is nil")
	}
	dialect, err := resolveDialect(db, opts.Dialect)
	if err != nil {
		return nil, err
	}
	table, err := quoteTable(opts.Table)
	if err != nil {
		return nil, err
	}
	s := &Store{
		db:        db,
		dialect:   dialect,
		table:     table,
		logger:    opts.Logger,
		now:       time.Now,
		scanBatch: 1000,
		stop:      make(chan struct{}),
		done:      make(chan struct{}),
	}
	if s.logger == nil {
		s.logger = slog.Default()
	}
	s.q = buildQueries(dialect, table)

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if dialect == SQLite {
		if err := checkSQLite(ctx, db); err != nil {
			return nil, err
		}
	}
	var createErr error
	if !opts.SkipCreate {
		// Two processes that run CREATE ... IF NOT EXISTS at the same
		// moment on PostgreSQL can both pass the existence check, and the
		// loser fails on a catalog unique index; once the winner has
		// committed, IF NOT EXISTS succeeds, so try again.
		for attempt := 0; attempt < 3; attempt++ {
			if createErr = createTable(ctx, db, dialect, opts.Table); createErr == nil {
				break
			}
			createErr = fmt.Errorf("sqlstore: New: creating table %s: %w", table, createErr)
		}
	}
	if _, err := db.ExecContext(ctx, s.q.check); err != nil {
		if createErr != nil {
			return nil, createErr
		}
		return nil, fmt.Errorf("sqlstore: New: table %s is missing or lacks the columns key, value, expires_at: %w", table, err)
	}
	if createErr != nil {
		// The table is usable although the DDL failed: this role may
		// not run DDL on a table that a DBA created, say.
		s.logger.Warn("sqlstore: the table exists but its DDL failed; check that the expires_at index exists", "table", table, "err", createErr)
	}

	interval := opts.CleanupInterval
	if interval == 0 {
		interval = DefaultCleanupInterval
	}
	if interval > 0 {
		go s.sweepLoop(interval)
	} else {
		close(s.done)
	}
	return s, nil
}

func createTable(ctx context.Context, db *sql.DB, d Dialect, name string) error {
	for _, stmt := range ddl(d, name) {
		if _, err := db.ExecContext(ctx, stmt); err != nil {
			return err
		}
	}
	return nil
}

// resolveDialect checks d, or when it is empty tells the dialect from the
// package path of db's driver.
func resolveDialect(db *sql.DB, d Dialect) (Dialect, error) {
	switch d {
	case Postgres, SQLite:
		return d, nil
	case "":
	default:
		return "", fmt.Errorf("sqlstore: New: unknown Options.Dialect %q: use sqlstore.Postgres or sqlstore.SQLite", string(d))
	}
	t := reflect.TypeOf(db.Driver())
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	pkg := strings.ToLower(t.PkgPath())
	switch {
	case strings.Contains(pkg, "jackc/pgx"), strings.Contains(pkg, "lib/pq"):
		return Postgres, nil
	case strings.Contains(pkg, "sqlite"):
		return SQLite, nil
	}
	return "", fmt.Errorf("sqlstore: New: cannot tell the dialect of driver %T (package %q): set Options.Dialect to sqlstore.Postgres or sqlstore.SQLite", db.Driver(), t.PkgPath())
}

// quoteTable checks name and returns it double-quoted, part by part.
func quoteTable(name string) (string, error) {
	if name == "" {
		name = DefaultTable
	}
	parts := strings.Split(name, ".")
	if len(parts) > 2 {
		return "", fmt.Errorf("sqlstore: New: bad Options.Table %q: want a name or schema.name", name)
	}
	for i, p := range parts {
		if !identRE.MatchString(p) {
			return "", fmt.Errorf("sqlstore: New: bad Options.Table %q: %q is not an identifier (ASCII letters, digits and '_', not starting with a digit, at most 63 bytes)", name, p)
		}
		parts[i] = `"` + p + `"`
	}
	return strings.Join(parts, "."), nil
}

// ddl returns the statements that create the table and its index. name has
// been checked by quoteTable.
func ddl(d Dialect, name string) []string {
	if name == "" {
		name = DefaultTable
	}
	schema, table := "", name
	if i := strings.IndexByte(name, '.'); i >= 0 {
		schema, table = `"`+name[:i]+`".`, name[i+1:]
	}
	index := `"` + table + `_expires_at_idx"`
	table = `"` + table + `"`
	if d == Postgres {
		return []string{
			"CREATE TABLE IF NOT EXISTS " + schema + table + " (\n" +
				"\tkey        TEXT COLLATE \"C\" PRIMARY KEY,\n" +
				"\tvalue      BYTEA NOT NULL,\n" +
				"\texpires_at BIGINT\n)",
			// A Postgres index lives in its table's schema; its name
			// takes no schema.
			"CREATE INDEX IF NOT EXISTS " + index + " ON " + schema + table + " (expires_at)",
		}
	}
	return []string{
		"CREATE TABLE IF NOT EXISTS " + schema + table + " (\n" +
			"\tkey        TEXT NOT NULL PRIMARY KEY,\n" +
			"\tvalue      BLOB NOT NULL,\n" +
			"\texpires_at INTEGER\n)",
		// A SQLite index names its schema; its table takes none.
		"CREATE INDEX IF NOT EXISTS " + schema + index + " ON " + table + " (expires_at)",
	}
}

func buildQueries(d Dialect, t string) queries {
	// Keys are compared in byte order for Scan: "C" is PostgreSQL's
	// byte-order collation (the column's own when the table was made by New),
	// BINARY is SQLite's default.
	collate := `COLLATE "C"`
	if d == SQLite {
		collate = "COLLATE BINARY"
	}
	const live = "(expires_at IS NULL OR expires_at > $%d)"
	scan := func(lower string, bounded bool) string {
		q := "SELECT key FROM " + t + " WHERE key " + collate + " " + lower + " $1"
		if bounded {
			q += " AND key " + collate + " < $4"
		}
		return q + " AND " + fmt.Sprintf(live, 2) + " ORDER BY key " + collate + " LIMIT $3"
	}
	return queries{
		get: "SELECT value FROM " + t + " WHERE key = $1 AND " + fmt.Sprintf(live, 2),
		set: "INSERT INTO " + t + " (key, value, expires_at) VALUES ($1, $2, $3)" +
			" ON CONFLICT (key) DO UPDATE SET value = excluded.value, expires_at = excluded.expires_at",
		del:         "DELETE FROM " + t + " WHERE key = $1",
		touch:       "UPDATE " + t + " SET expires_at = $2 WHERE key = $1 AND " + fmt.Sprintf(live, 3),
		getAndTouch: "UPDATE " + t + " SET expires_at = $2 WHERE key = $1 AND " + fmt.Sprintf(live, 3) + " RETURNING value",
		casOld: "UPDATE " + t + " SET value = $2, expires_at = $3" +
			" WHERE key = $1 AND value = $4 AND " + fmt.Sprintf(live, 5),
		// The insert conflicts with a row that exists; the row is replaced
		// only when it has expired, so an expired row counts as absent.
		// RowsAffected is 1 for an insert or a replacement and 0 when the
		// WHERE keeps the live row (checked on both dialects by the tests).
		casAbsent: "INSERT INTO " + t + " AS cur (key, value, expires_at) VALUES ($1, $2, $3)" +
			" ON CONFLICT (key) DO UPDATE SET value = excluded.value, expires_at = excluded.expires_at" +
			" WHERE cur.expires_at IS NOT NULL AND cur.expires_at <= $4",
		scanFirst:        scan(">=", false),
		scanFirstBounded: scan(">=", true),
		scanNext:         scan(">", false),
		scanNextBounded:  scan(">", true),
		// Deletes in batches so that SQLite's write lock is held briefly.
		sweep: "DELETE FROM " + t + " WHERE key IN (SELECT key FROM " + t +
			" WHERE expires_at <= $1 LIMIT $2)",
		check: "SELECT key, value, expires_at FROM " + t + " WHERE 1 = 0",
	}
}

// checkSQLite returns an error when concurrent writers on db would fail with
// "database is locked" instead of waiting.
func checkSQLite(ctx context.Context, db *sql.DB) error {
	if db.Stats().MaxOpenConnections == 1 {
		return nil
	}
	var ms int64
	if err := db.QueryRowContext(ctx, "PRAGMA busy_timeout").Scan(&ms); err != nil {
		return fmt.Errorf("sqlstore: New: reading PRAGMA busy_timeout: %w", err)
	}
	if ms <= 0 {
		return errors.New("sqlstore: New: SQLite busy_timeout is 0, so concurrent writes would fail with \"database is locked\": " +
			"open the database with a busy timeout on every connection, e.g. " +
			`sql.Open("sqlite", "file:sessions.db?_pragma=busy_timeout(5000)&_pragma=journal_mode(WAL)"), ` +
			"or call db.SetMaxOpenConns(1)")
	}
	return nil
}

// ---- errors ----

// fail wraps err with the operation and key. When ctx has ended, the error
// also matches ctx.Err(), whatever the driver made of the cancellation.
func fail(ctx context.Context, op, key string, err error) error {
	if cerr := ctx.Err(); cerr != nil && !errors.Is(err, cerr) {
		return fmt.Errorf("sqlstore: %s %q: %w (%w)", op, key, cerr, err)
	}
	return fmt.Errorf("sqlstore: %s %q: %w", op, key, err)
}

func notFound(op, key string) error {
	return fmt.Errorf("sqlstore: %s %q: %w", op, key, store.ErrNotFound)
}

// checkKey rejects, on PostgreSQL, text that a TEXT column cannot hold, with
// a clearer error than the server's.
func (s *Store) checkKey(op, key string) error {
	if s.dialect != Postgres {
		return nil
	}
	if strings.IndexByte(key, 0) >= 0 {
		return fmt.Errorf("sqlstore: %s %q: PostgreSQL text cannot hold a NUL byte", op, key)
	}
	if !utf8.ValidString(key) {
		return fmt.Errorf("sqlstore: %s %q: PostgreSQL text must be valid UTF-8", op, key)
	}
	return nil
}

// ---- time ----

// nowMS is the current time in Unix milliseconds, the unit of expires_at.
func (s *Store) nowMS() int64 { return s.now().UnixMilli() }

// expiry returns the expires_at for a ttl: nil (never) for ttl <= 0,
// otherwise now + ttl rounded up to the next millisecond so that a key lives
// at least ttl.
func (s *Store) expiry(ttl time.Duration) any {
	if ttl <= 0 {
		return nil
	}
	ms := int64((ttl + time.Millisecond - 1) / time.Millisecond)
	return s.nowMS() + ms
}

// nonNil returns b, or an empty non-nil slice when b is nil: the drivers
// send a nil slice as NULL, and value is NOT NULL.
func nonNil(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}

// ---- store.Store ----

// Get returns the value stored under key, or an error matching
// store.ErrNotFound when the key is absent or expired.
func (s *Store) Get(ctx context.Context, key string) ([]byte, error) {
	if err := s.checkKey("Get", key); err != nil {
		return nil, err
	}
	var v []byte
	err := s.db.QueryRowContext(ctx, s.q.get, key, s.nowMS()).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, notFound("Get", key)
	}
	if err != nil {
		return nil, fail(ctx, "Get", key, err)
	}
	// Scan into *[]byte copies, so v is the caller's.
	return nonNil(v), nil
}

// Set stores value under key, replacing any previous value and its expiry.
// A ttl <= 0 stores it without expiry.
func (s *Store) Set(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	if err := s.checkKey("Set", key); err != nil {
		return err
	}
	if _, err := s.db.ExecContext(ctx, s.q.set, key, nonNil(value), s.expiry(ttl)); err != nil {
		return fail(ctx, "Set", key, err)
	}
	return nil
}

// Delete removes key. Deleting an absent or expired key is not an error.
func (s *Store) Delete(ctx context.Context, key string) error {
	if err := s.checkKey("Delete", key); err != nil {
		return err
	}
	if _, err := s.db.ExecContext(ctx, s.q.del, key); err != nil {
		return fail(ctx, "Delete", key, err)
	}
	return nil
}

// ---- optional capabilities ----

// CompareAndSwap stores value under key with ttl if the stored value equals
// old, or, when old is nil, if the key is absent or expired. It reports
// whether it did. Each call is one statement (see the package
// documentation), so it is atomic without a transaction.
func (s *Store) CompareAndSwap(ctx context.Context, key string, old, value []byte, ttl time.Duration) (bool, error) {
	if err := s.checkKey("CompareAndSwap", key); err != nil {
		return false, err
	}
	now := s.nowMS()
	exp := s.expiry(ttl)
	var (
		res sql.Result
		err error
	)
	if old == nil {
		res, err = s.db.ExecContext(ctx, s.q.casAbsent, key, nonNil(value), exp, now)
	} else {
		res, err = s.db.ExecContext(ctx, s.q.casOld, key, nonNil(value), exp, old, now)
	}
	if err != nil {
		return false, fail(ctx, "CompareAndSwap", key, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fail(ctx, "CompareAndSwap", key, err)
	}
	return n == 1, nil
}

// Touch sets key to expire after ttl from now (ttl <= 0: never). It returns
// an error matching store.ErrNotFound when the key is absent or expired.
func (s *Store) Touch(ctx context.Context, key string, ttl time.Duration) error {
	if err := s.checkKey("Touch", key); err != nil {
		return err
	}
	res, err := s.db.ExecContext(ctx, s.q.touch, key, s.expiry(ttl), s.nowMS())
	if err != nil {
		return fail(ctx, "Touch", key, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return fail(ctx, "Touch", key, err)
	}
	if n == 0 {
		return notFound("Touch", key)
	}
	return nil
}

// GetAndTouch returns the value under key and sets it to expire after ttl
// from now (ttl <= 0: never), in one UPDATE ... RETURNING statement. It
// returns an error matching store.ErrNotFound when the key is absent or
// expired.
func (s *Store) GetAndTouch(ctx context.Context, key string, ttl time.Duration) ([]byte, error) {
	if err := s.checkKey("GetAndTouch", key); err != nil {
		return nil, err
	}
	var v []byte
	err := s.db.QueryRowContext(ctx, s.q.getAndTouch, key, s.expiry(ttl), s.nowMS()).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, notFound("GetAndTouch", key)
	}
	if err != nil {
		return nil, fail(ctx, "GetAndTouch", key, err)
	}
	return nonNil(v), nil
}

// Scan calls fn for every live key that begins with prefix, matched
// byte for byte (no character is special). Keys are read in key order, in
// batches of 1000 per query: no connection is held while fn runs, so fn may
// use the store, even on a *sql.DB limited to one connection. A key that
// exists for the whole scan is reported exactly once.
func (s *Store) Scan(ctx context.Context, prefix string, fn func(key string) error) error {
	if err := s.checkKey("Scan", prefix); err != nil {
		return err
	}
	upper, bounded := successor(prefix)
	after, first := prefix, true
	keys := make([]string, 0, s.scanBatch)
	for {
		if err := ctx.Err(); err != nil {
			return fail(ctx, "Scan", prefix, err)
		}
		q := s.q.scanNext
		switch {
		case first && bounded:
			q = s.q.scanFirstBounded
		case first:
			q = s.q.scanFirst
		case bounded:
			q = s.q.scanNextBounded
		}
		args := []any{after, s.nowMS(), s.scanBatch}
		if bounded {
			args = append(args, upper)
		}
		var err error
		keys, err = s.scanPage(ctx, q, args, keys[:0])
		if err != nil {
			return fail(ctx, "Scan", prefix, err)
		}
		for _, k := range keys {
			if err := ctx.Err(); err != nil {
				return fail(ctx, "Scan", prefix, err)
			}
			if err := fn(k); err != nil {
				return err
			}
		}
		if len(keys) < s.scanBatch {
			return nil
		}
		after, first = keys[len(keys)-1], false
	}
}

func (s *Store) scanPage(ctx context.Context, q string, args []any, keys []string) ([]string, error) {
	rows, err := s.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	for rows.Next() {
		var k string
		if err := rows.Scan(&k); err != nil {
			return nil, err
		}
		keys = append(keys, k)
	}
	return keys, rows.Err()
}

// successor returns the least string greater than every string that begins
// with prefix, in byte order, and false when there is none (an empty prefix,
// or one made only of the highest code point or 0xFF bytes). For valid UTF-8
// the result is valid UTF-8 too (PostgreSQL rejects anything else): byte
// order and code point order agree in UTF-8, so bumping the last code point
// that can be bumped gives the bound.
func successor(prefix string) (string, bool) {
	if utf8.ValidString(prefix) {
		p := prefix
		for p != "" {
			r, size := utf8.DecodeLastRuneInString(p)
			p = p[:len(p)-size]
			switch {
			case r == utf8.MaxRune:
				continue
			case r == 0xD7FF: // skip the surrogates, which UTF-8 cannot encode
				return p + string(rune(0xE000)), true
			default:
				return p + string(r+1), true
			}
		}
		return "", false
	}
	b := []byte(prefix)
	for i := len(b) - 1; i >= 0; i-- {
		if b[i] < 0xFF {
			b[i]++
			return string(b[:i+1]), true
		}
	}
	return "", false
}

// ---- expiry sweep ----

// sweepBatch is how many rows one statement of DeleteExpired deletes.
const sweepBatch = 1000

// DeleteExpired deletes the rows whose expiry has passed and returns how
// many it deleted. The background sweep calls it every
// Options.CleanupInterval; call it yourself when the sweep is disabled. It
// deletes in batches of 1000 rows, one statement each, so that it never holds
// a lock for long.
func (s *Store) DeleteExpired(ctx context.Context) (int64, error) {
	var total int64
	for {
		res, err := s.db.ExecContext(ctx, s.q.sweep, s.nowMS(), sweepBatch)
		if err != nil {
			return total, fail(ctx, "DeleteExpired", "", err)
		}
		n, err := res.RowsAffected()
		if err != nil {
			return total, fail(ctx, "DeleteExpired", "", err)
		}
		total += n
		if n < sweepBatch {
			return total, nil
		}
	}
}

func (s *Store) sweepLoop(interval time.Duration) {
	defer close(s.done)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		select {
		case <-s.stop:
			cancel()
		case <-ctx.Done():
		}
	}()
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-tick.C:
			if _, err := s.DeleteExpired(ctx); err != nil && ctx.Err() == nil {
				s.logger.Error("sqlstore: sweep of expired sessions failed", "table", s.table, "err", err)
			}
		}
	}
}

// Close stops the background sweep, cancelling a sweep in progress, and
// waits for it to return. It does not close the *sql.DB, which belongs to
// the caller; the store's other methods keep working while the db is open.
// Close is idempotent and always returns nil.
func (s *Store) Close() error {
	s.closeOnce.Do(func() { close(s.stop) })
	<-s.done
	return nil
}
