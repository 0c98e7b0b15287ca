package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"reflect"
	"regexp"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/typedsession/session/internal/storeutil"
	"github.com/typedsession/session/store"
)

// Dialect names the SQL database behind a *sql.DB.
type Dialect string

// The dialects the store speaks. The zero value of Dialect ("") asks New to
// tell the dialect from the driver of the *sql.DB it is given.
const (
	// Postgres is PostgreSQL (12 or later), typically through
	// github.com/jackc/pgx/v5/stdlib (driver name "pgx").
	Postgres Dialect = "postgres"
	// SQLite is SQLite (3.35 or later), typically through modernc.org/sqlite
	// (driver name "sqlite").
	SQLite Dialect = "sqlite"
	// MySQL is MySQL or MariaDB (tested on MariaDB 10.11), through
	// github.com/go-sql-driver/mysql (driver name "mysql"), whose DSN
	// must set clientFoundRows=true (New checks it). See "Opening MySQL
	// or MariaDB" in the package documentation.
	MySQL Dialect = "mysql"
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
	// Postgres; a package path containing "sqlite" is SQLite, one
	// containing "mysql" is MySQL); New returns an error when it cannot
	// tell. Any value other than "", Postgres, SQLite and MySQL is an
	// error.
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
	// documentation) and the application's role may not run DDL. Either
	// way New checks the table in the database catalog and refuses one
	// the store cannot serve byte for byte (see "The table" in the
	// package documentation).
	SkipCreate bool

	// OnError receives the errors that no caller is waiting for: a
	// background sweep that failed (it is tried again at the next tick),
	// a row that Scan skipped because store.CheckKey refuses its key
	// (written by other means: no method can reach it), and, from New, a
	// CREATE that failed on a table that exists and
	// passes the check (a role without DDL rights, say; check that the
	// expires_at index exists). It is called from the sweep's goroutine or
	// New's, and must not block for long. Nil: such errors are logged with
	// slog.Default() at level Error.
	OnError func(error)
}

// Store is a store.Store backed by one table of a PostgreSQL, SQLite, MySQL
// or MariaDB database. It implements store.Swapper, store.Deleter, store.Toucher,
// store.Refresher, store.TTLGetter and store.Scanner. All methods are safe
// for concurrent use.
type Store struct {
	db      *sql.DB
	dialect Dialect
	table   string // quoted, safe to put in SQL
	onError func(error)
	q       queries

	// scanBatch is how many keys Scan reads per query; tests lower it.
	scanBatch int

	sweep *storeutil.Loop

	// mu guards closed and running: every method counts itself in
	// running for its duration, and Close waits for running to reach
	// zero. A Scan whose callback calls the store is two calls, which
	// this allows (a sync.RWMutex would deadlock once Close waits).
	mu      sync.Mutex
	idle    *sync.Cond // signalled when running drops to zero
	closed  bool
	running int
}

var identRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]{0,62}$`)

// newTimeout bounds New, which takes no context.
const newTimeout = time.Minute

// New is NewContext with a context that ends after one minute.
func New(db *sql.DB, opts Options) (*Store, error) {
	ctx, cancel := context.WithTimeout(context.Background(), newTimeout)
	defer cancel()
	return NewContext(ctx, db, opts)
}

// NewContext returns a store that keeps its sessions in a table of db. It
// creates the table and its index if they are missing (unless
// opts.SkipCreate), checks the table in the database catalog, and starts
// the background sweep of expired rows (unless opts.CleanupInterval < 0).
// ctx bounds this setup only.
//
// The caller keeps ownership of db: Store.Close stops the sweep but does not
// close db.
//
// The table check refuses, naming the column and what it must be, a table
// the store could not serve byte for byte: a missing column, key that is
// not text or not unique, value that is not BYTEA (PostgreSQL), BLOB
// (SQLite) or LONGBLOB (MySQL), expires_at that is not a nullable BIGINT or
// INTEGER, an extra NOT NULL column without a default.
//
// For MySQL and MariaDB, NewContext also refuses a connection that does
// not report found rows (clientFoundRows=true in the DSN of
// github.com/go-sql-driver/mysql), with an error that says so.
//
// For SQLite, NewContext waits for locks held by other connections and
// processes until ctx ends, including the ones busy_timeout does not cover
// (another process switching a new file to WAL), and names the cause of a
// failure: a read-only database or folder, a file it cannot open. When db
// may open more than one connection (db.SetMaxOpenConns is not 1), PRAGMA
// busy_timeout must be above zero, or concurrent writers would fail with
// "database is locked"; NewContext returns an error that says how to set
// it. It does not change the journal mode; WAL is recommended (see the
// package documentation).
func NewContext(ctx context.Context, db *sql.DB, opts Options) (*Store, error) {
	if db == nil {
		return nil, errors.New("sqlstore: New: db is nil")
	}
	dialect, err := resolveDialect(db, opts.Dialect)
	if err != nil {
		return nil, err
	}
	table, err := quoteTable(dialect, opts.Table)
	if err != nil {
		return nil, err
	}
	s := &Store{
		db:        db,
		dialect:   dialect,
		table:     table,
		onError:   opts.OnError,
		q:         buildQueries(dialect, table),
		scanBatch: 1000,
	}
	s.idle = sync.NewCond(&s.mu)
	if s.onError == nil {
		s.onError = func(err error) { slog.Error("sqlstore: background error", "table", table, "err", err) }
	}

	retry := func(op func() error) error { return op() }
	if dialect == SQLite {
		if err := prepareSQLite(ctx, db); err != nil {
			return nil, err
		}
		retry = func(op func() error) error { return sqliteRetry(ctx, op) }
	}
	var createErr error
	if !opts.SkipCreate {
		// Two processes that run CREATE ... IF NOT EXISTS at the same
		// moment on PostgreSQL can both pass the existence check, and the
		// loser fails on a catalog unique index; once the winner has
		// committed, IF NOT EXISTS succeeds, so try again.
		for attempt := 0; attempt < 3; attempt++ {
			if createErr = retry(func() error { return createTable(ctx, db, dialect, opts.Table) }); createErr == nil {
				break
			}
			if dialect == SQLite {
				createErr = explainSQLite(createErr)
			}
			createErr = fmt.Errorf("sqlstore: New: creating table %s: %w", table, createErr)
		}
	}
	if err := retry(func() error { return checkTable(ctx, db, dialect, opts.Table) }); err != nil {
		var bad *tableError
		switch {
		case errors.As(err, &bad):
			// Also when CREATE failed: the table's shape is the cause.
			return nil, fmt.Errorf("sqlstore: New: table %s cannot hold sessions byte for byte: %w (see \"The table\" in the package documentation)", table, err)
		case createErr != nil:
			return nil, createErr
		case errors.Is(err, errTableMissing):
			return nil, fmt.Errorf("sqlstore: New: table %s is missing: create it with the DDL in the package documentation, or leave Options.SkipCreate false", table)
		}
		return nil, fmt.Errorf("sqlstore: New: checking table %s: %w", table, explainSQLite(err))
	}
	if dialect == MySQL {
		if err := checkFoundRows(ctx, db, table); err != nil {
			return nil, fmt.Errorf("sqlstore: New: %w", err)
		}
	}
	if createErr != nil {
		// The table is usable although the DDL failed: this role may
		// not run DDL on a table that a DBA created, say.
		s.onError(fmt.Errorf("%w (the table exists and is usable; check that its expires_at index exists)", createErr))
	}

	interval := opts.CleanupInterval
	if interval == 0 {
		interval = DefaultCleanupInterval
	}
	s.sweep = storeutil.StartLoop(interval, func(ctx context.Context) error {
		// A statement abandoned by the loop's cancellation could still run
		// on the server after Close returned (the driver returns at once;
		// PostgreSQL ends the statement when it sees the cancel request,
		// if before its end) and delete a row expired after Close. So each
		// statement runs to its end, at most sweepStatementTimeout, and
		// Close (the loop's Stop) waits for it; ctx ends the sweep between
		// statements.
		run, cancel := context.WithTimeout(context.WithoutCancel(ctx), sweepStatementTimeout)
		defer cancel()
		_, err := s.deleteExpired(run, ctx.Done())
		return err
	}, s.onError)
	return s, nil
}

// resolveDialect checks d, or when it is empty tells the dialect from the
// package path of db's driver.
func resolveDialect(db *sql.DB, d Dialect) (Dialect, error) {
	switch d {
	case Postgres, SQLite, MySQL:
		return d, nil
	case "":
	default:
		return "", fmt.Errorf("sqlstore: New: unknown Options.Dialect %q: use sqlstore.Postgres, sqlstore.SQLite or sqlstore.MySQL", string(d))
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
	case strings.Contains(pkg, "mysql"):
		return MySQL, nil
	}
	return "", fmt.Errorf("sqlstore: New: cannot tell the dialect of driver %T (package %q): set Options.Dialect to sqlstore.Postgres, sqlstore.SQLite or sqlstore.MySQL", db.Driver(), t.PkgPath())
}

// ---- calls and Close ----

// begin counts a call in, after checking key (skipped when checkKey is
// false); it returns an error matching store.ErrClosed after Close. Every
// successful begin is paired with s.end().
func (s *Store) begin(op, key string, checkKey bool) error {
	if checkKey {
		if err := store.CheckKey(key); err != nil {
			return storeutil.Wrap("sqlstore", op, key, err)
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return storeutil.Wrap("sqlstore", op, key, store.ErrClosed)
	}
	s.running++
	return nil
}

func (s *Store) end() {
	s.mu.Lock()
	s.running--
	if s.running == 0 {
		s.idle.Broadcast()
	}
	s.mu.Unlock()
}

// Close stops the background sweep (cancelling a sweep in progress) and
// waits for it and for the calls already running to return. It does not
// close the *sql.DB, which belongs to the caller. Every write that returned
// nil before Close was committed by the database; what that means for
// durability is the database's setting (PostgreSQL's synchronous_commit,
// SQLite's synchronous pragma, InnoDB's innodb_flush_log_at_trx_commit).
// After Close every method, and a second Close, returns an error matching
// store.ErrClosed.
func (s *Store) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return storeutil.Wrap("sqlstore", "Close", "", store.ErrClosed)
	}
	s.closed = true
	s.mu.Unlock()
	s.sweep.Stop()
	s.mu.Lock()
	for s.running > 0 {
		s.idle.Wait()
	}
	s.mu.Unlock()
	return nil
}

// ---- errors ----

// fail wraps err with the operation and key. When ctx has ended, the error
// also matches ctx.Err(), whatever the driver made of the cancellation.
func fail(ctx context.Context, op, key string, err error) error {
	if cerr := ctx.Err(); cerr != nil && !errors.Is(err, cerr) {
		err = fmt.Errorf("%w (%w)", cerr, err)
	}
	return storeutil.Wrap("sqlstore", op, key, err)
}

func notFound(op, key string) error {
	return storeutil.Wrap("sqlstore", op, key, store.ErrNotFound)
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
// store.ErrNotFound when the key is absent or expired (by the database's
// clock). A key that store.CheckKey refuses gets store.ErrInvalidKey.
func (s *Store) Get(ctx context.Context, key string) ([]byte, error) {
	if err := s.begin("Get", key, true); err != nil {
		return nil, err
	}
	defer s.end()
	var v []byte
	err := s.queryRow(ctx, s.q.get, key).Scan(&v)
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
// A ttl <= 0 stores it without expiry; a ttl that reaches past
// store.MaxExpiry is clamped to it.
func (s *Store) Set(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	if err := s.begin("Set", key, true); err != nil {
		return err
	}
	defer s.end()
	if _, err := s.exec(ctx, s.q.set, key, nonNil(value), ttlMS(int64(ttl))); err != nil {
		return fail(ctx, "Set", key, err)
	}
	return nil
}

// Delete removes key. Deleting an absent or expired key is not an error.
func (s *Store) Delete(ctx context.Context, key string) error {
	if err := s.begin("Delete", key, true); err != nil {
		return err
	}
	defer s.end()
	if _, err := s.exec(ctx, s.q.del, key); err != nil {
		return fail(ctx, "Delete", key, err)
	}
	return nil
}

// ---- optional capabilities ----

// CompareAndSwap stores value under key with ttl if the stored value equals
// old, or, when old is nil, if the key is absent or expired. It also
// reports true, and sets the ttl, when the stored value already equals value
// (a resent swap finds its own write; see store.Swapper). Each call is one
// statement (see the package documentation), so it is atomic without a
// transaction; on MySQL a swap with a nil old is an INSERT, followed, when
// the key exists, by an UPDATE (and, when that finds nothing to replace, a
// SELECT), each outcome decided by one of them.
func (s *Store) CompareAndSwap(ctx context.Context, key string, old, value []byte, ttl time.Duration) (bool, error) {
	if err := s.begin("CompareAndSwap", key, true); err != nil {
		return false, err
	}
	defer s.end()
	var (
		res sql.Result
		err error
	)
	if old == nil && s.dialect == MySQL {
		ok, err := s.mysqlCASAbsent(ctx, key, nonNil(value), ttlMS(int64(ttl)))
		if err != nil {
			return false, fail(ctx, "CompareAndSwap", key, err)
		}
		return ok, nil
	}
	if old == nil {
		res, err = s.exec(ctx, s.q.casAbsent, key, nonNil(value), ttlMS(int64(ttl)))
	} else {
		res, err = s.exec(ctx, s.q.casOld, key, nonNil(value), ttlMS(int64(ttl)), old)
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

// CompareAndDelete deletes key if its value equals old (a nil old matches
// an empty value) and reports whether this call deleted it: false when the
// key holds another value, which it leaves alone, or is absent or expired.
// It is one statement: on PostgreSQL a statement that locks the row and
// answers; on SQLite and MySQL a DELETE whose row count is the answer.
func (s *Store) CompareAndDelete(ctx context.Context, key string, old []byte) (bool, error) {
	if err := s.begin("CompareAndDelete", key, true); err != nil {
		return false, err
	}
	defer s.end()
	old = nonNil(old)
	if s.dialect == Postgres {
		var deleted bool
		if err := s.queryRow(ctx, s.q.cad, key, old).Scan(&deleted); err != nil {
			return false, fail(ctx, "CompareAndDelete", key, err)
		}
		return deleted, nil
	}
	res, err := s.exec(ctx, s.q.cad, key, old)
	if err != nil {
		return false, fail(ctx, "CompareAndDelete", key, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fail(ctx, "CompareAndDelete", key, err)
	}
	return n == 1, nil
}

// Touch sets key to expire after ttl from now (ttl <= 0: never; clamped to
// store.MaxExpiry). It returns an error matching store.ErrNotFound when the
// key is absent or expired.
func (s *Store) Touch(ctx context.Context, key string, ttl time.Duration) error {
	if err := s.begin("Touch", key, true); err != nil {
		return err
	}
	defer s.end()
	res, err := s.exec(ctx, s.q.touch, key, ttlMS(int64(ttl)))
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
// from now (ttl <= 0: never; clamped to store.MaxExpiry), in one UPDATE ...
// RETURNING statement: a write. MySQL and MariaDB have no UPDATE ...
// RETURNING: there it is an UPDATE and a SELECT in one transaction (four
// round trips). It returns an error matching
// store.ErrNotFound when the key is absent or expired. GetWithTTL is the
// read that lets a caller extend the expiry only when it must.
func (s *Store) GetAndTouch(ctx context.Context, key string, ttl time.Duration) ([]byte, error) {
	if err := s.begin("GetAndTouch", key, true); err != nil {
		return nil, err
	}
	defer s.end()
	var (
		v   []byte
		err error
	)
	if s.dialect == MySQL {
		v, err = s.mysqlGetAndTouch(ctx, key, ttlMS(int64(ttl)))
	} else {
		err = s.queryRow(ctx, s.q.getAndTouch, key, ttlMS(int64(ttl))).Scan(&v)
	}
	if errors.Is(err, sql.ErrNoRows) {
		return nil, notFound("GetAndTouch", key)
	}
	if err != nil {
		return nil, fail(ctx, "GetAndTouch", key, err)
	}
	return nonNil(v), nil
}

// GetWithTTL returns the value under key and the time it has left by the
// database's clock, in whole milliseconds, or store.NoExpiry when it has no
// expiry. It is one SELECT: a read, which works on a read-only database
// too. It returns an error matching store.ErrNotFound when the key is
// absent or expired.
func (s *Store) GetWithTTL(ctx context.Context, key string) ([]byte, time.Duration, error) {
	if err := s.begin("GetWithTTL", key, true); err != nil {
		return nil, 0, err
	}
	defer s.end()
	var (
		v    []byte
		left sql.NullInt64
	)
	err := s.queryRow(ctx, s.q.getWithTTL, key).Scan(&v, &left)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, 0, notFound("GetWithTTL", key)
	}
	if err != nil {
		return nil, 0, fail(ctx, "GetWithTTL", key, err)
	}
	if !left.Valid {
		return nonNil(v), store.NoExpiry, nil
	}
	// A row written by hand may lie further ahead than a Duration
	// reaches.
	if left.Int64 > math.MaxInt64/int64(time.Millisecond) {
		return nonNil(v), time.Duration(math.MaxInt64), nil
	}
	return nonNil(v), time.Duration(left.Int64) * time.Millisecond, nil
}

// Scan calls fn for every live key that begins with prefix, matched
// byte for byte (no character is special). A row whose key store.CheckKey
// refuses (written by other means) is skipped and reported to
// Options.OnError: no method can reach it. Keys are read in key order, in
// batches of 1000 per query: no connection is held while fn runs, so fn may
// use the store, even on a *sql.DB limited to one connection. A key that
// exists for the whole scan is reported exactly once. A prefix with a NUL
// byte or invalid UTF-8 gets store.ErrInvalidKey; a prefix longer than
// store.MaxKeyLen matches no key.
func (s *Store) Scan(ctx context.Context, prefix string, fn func(key string) error) error {
	if err := s.begin("Scan", prefix, false); err != nil {
		return err
	}
	defer s.end()
	if prefix != "" {
		if err := store.CheckKey(prefix); err != nil {
			if len(prefix) > store.MaxKeyLen && utf8.ValidString(prefix) && strings.IndexByte(prefix, 0) < 0 {
				return nil
			}
			return storeutil.Wrap("sqlstore", "Scan", prefix, err)
		}
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
		args := []any{after, s.scanBatch}
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
			if err := store.CheckKey(k); err != nil {
				// A row written by other means under a key no method
				// can reach (too long, not UTF-8, a NUL byte).
				s.onError(storeutil.Wrap("sqlstore", "Scan", k, fmt.Errorf("skipped a row: %w", err)))
				continue
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
	rows, err := s.query(ctx, q, args...)
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
