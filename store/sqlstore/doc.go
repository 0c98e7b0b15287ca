// Package sqlstore is a [store.Store] kept in one table of a PostgreSQL or
// SQLite database, reached through database/sql.
//
// The package imports no driver: open the *sql.DB yourself with the driver
// you use, and hand it to [New]. The store implements every optional
// capability: [store.Swapper], [store.Toucher], [store.Refresher] and
// [store.Scanner], and passes the conformance suite on both databases.
//
// # Opening PostgreSQL
//
// With pgx (github.com/jackc/pgx/v5/stdlib, driver name "pgx"):
//
//	import _ "github.com/jackc/pgx/v5/stdlib"
//
//	db, err := sql.Open("pgx", "postgres://app@db.internal:5432/app?sslmode=verify-full")
//	st, err := sqlstore.New(db, sqlstore.Options{}) // dialect detected from the driver
//	defer st.Close()                                // stops the sweep; db stays open
//
// Keys are PostgreSQL text: a key with a NUL byte or invalid UTF-8 is rejected
// with an error, and a key longer than about 2,700 bytes exceeds what a
// B-tree index entry can hold, so the server rejects it.
//
// # Opening SQLite
//
// With modernc.org/sqlite (pure Go, no cgo, driver name "sqlite"), set a busy
// timeout and WAL mode in the DSN so that they apply to every connection of
// the pool:
//
//	import _ "modernc.org/sqlite"
//
//	db, err := sql.Open("sqlite", "file:sessions.db?_pragma=busy_timeout(5000)&_pragma=journal_mode(WAL)")
//	st, err := sqlstore.New(db, sqlstore.Options{})
//
// busy_timeout makes a connection that finds the database locked by another
// writer wait (here up to 5 s) instead of failing with "database is locked";
// [New] refuses a pool whose connections have none, unless
// db.SetMaxOpenConns(1) limits it to one connection. WAL lets readers run
// while one connection writes; New does not change the journal mode itself
// because it is a persistent property of the database file. SQLite allows one
// writer at a time whatever the pool size, so a pool of a few connections
// (db.SetMaxOpenConns(4), say) is plenty. An in-memory database (":memory:")
// is private to each connection: use a file, or db.SetMaxOpenConns(1).
// The first connection to a new database file switches it to WAL, and
// connections opened at that same moment fail with SQLITE_BUSY (busy_timeout
// does not cover the switch): call db.Ping once after sql.Open, before the
// database is used from several goroutines.
// SQLite 3.35 or later is needed for RETURNING; modernc.org/sqlite bundles a
// newer one.
//
// # The table
//
// [New] creates the table and its index when they are missing. To create them
// by hand and run New with Options.SkipCreate, use, for the default table name
// "sessions":
//
// PostgreSQL:
//
//	CREATE TABLE IF NOT EXISTS "sessions" (
//		key        TEXT COLLATE "C" PRIMARY KEY,
//		value      BYTEA NOT NULL,
//		expires_at BIGINT
//	);
//	CREATE INDEX IF NOT EXISTS "sessions_expires_at_idx" ON "sessions" (expires_at);
//
// SQLite:
//
//	CREATE TABLE IF NOT EXISTS "sessions" (
//		key        TEXT NOT NULL PRIMARY KEY,
//		value      BLOB NOT NULL,
//		expires_at INTEGER
//	);
//	CREATE INDEX IF NOT EXISTS "sessions_expires_at_idx" ON "sessions" (expires_at);
//
// For a schema-qualified Options.Table such as "app.sessions", PostgreSQL
// takes "app"."sessions" after CREATE TABLE and ON, and SQLite takes
// "app"."sessions_expires_at_idx" as the index name and "sessions" after ON.
//
// expires_at is the expiry instant in Unix milliseconds (UTC, independent of
// any time zone); NULL means the row never expires. COLLATE "C" makes the
// primary key index byte-ordered so that Scan's key-range query can use it;
// Scan compares with COLLATE "C" itself, so it stays correct, only slower, on
// a table created without it.
//
// # Expiry and clocks
//
// Expiry is decided by the database's clock, never the application
// server's: every statement reads the time in the database (PostgreSQL's
// now(), the start of the statement's transaction; SQLite's 'now', fixed for
// the statement, read from the clock of the machine that runs the SQLite
// library), computes expires_at as that time plus the ttl, rounded up to
// the millisecond, and compares expires_at with it in Get, GetWithTTL,
// GetAndTouch, Touch, CompareAndSwap, CompareAndDelete, Scan and the sweep.
// Application servers whose clocks disagree therefore agree about what has
// expired. A ttl that reaches past [store.MaxExpiry] (the year 2200) is
// clamped to it, so that a key written with any ttl, up to the largest
// time.Duration, is live right after the write; a ttl of zero or less
// stores NULL, no expiry, and so removes an earlier one.
//
// Every read ignores rows whose expiry has passed, so an expired key
// behaves as absent at once. A background sweep ([Store.DeleteExpired])
// deletes those rows every Options.CleanupInterval (5 minutes by default) to
// reclaim their space. Its DELETE re-checks the expiry on the very row it
// removes, so a row that a GetAndTouch, Touch, Set or CompareAndSwap made
// live again is spared, even one that committed while the DELETE waited
// for its lock. An error of the background sweep goes to Options.OnError.
//
// # Compare-and-swap
//
// CompareAndSwap is one statement, atomic on its own. With a non-nil old:
//
//	UPDATE t SET value = $new, expires_at = $exp
//	WHERE key = $key AND value = $old AND (expires_at IS NULL OR expires_at > $now)
//
// and it swapped when one row was affected. With a nil old ("only if absent"):
//
//	INSERT INTO t AS cur (key, value, expires_at) VALUES ($key, $new, $exp)
//	ON CONFLICT (key) DO UPDATE SET value = excluded.value, expires_at = excluded.expires_at
//	WHERE cur.expires_at IS NOT NULL AND cur.expires_at <= $now
//
// which inserts an absent key, replaces an expired one (an expired key counts
// as absent) and leaves a live one alone; both databases report one affected
// row in the first two cases and none in the third. Values are compared byte
// for byte, and an empty value is an empty BYTEA or BLOB, never NULL, so it is
// told apart from an absent key. Set is the same INSERT without the WHERE.
//
// # Scan
//
// Scan finds the keys with a prefix by the key range prefix <= key <
// successor(prefix) in byte order, so no character of the prefix is special
// ('%', '_', '\', '*' included) and the primary key index serves the query.
// It reads keys in batches and holds no connection while its callback runs.
//
// # Cancellation and errors
//
// Every statement runs with the caller's ctx. When ctx is done, the returned
// error matches ctx.Err() with errors.Is, whatever the driver reports. A
// write cancelled before it reaches the database does nothing; a write
// cancelled while the server runs it may still complete there (pgx abandons
// the connection, the server finishes the statement), so after a
// cancellation error its outcome is unknown: the value is either the old one
// or the new one, never torn. Errors name the operation and the key and wrap
// the driver's error.
package sqlstore
