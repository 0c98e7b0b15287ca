// Package sqlstore is a [store.Store] kept in one table of a PostgreSQL,
// SQLite, MySQL or MariaDB database, reached through database/sql.
//
// The package imports no driver: open the *sql.DB yourself with the driver
// you use, and hand it to [New]. The store implements every optional
// capability: [store.Swapper], [store.Deleter], [store.Toucher],
// [store.Refresher], [store.TTLGetter] and [store.Scanner], and passes the
// conformance suite on all three (and its persistence part on SQLite and
// MariaDB; the MariaDB tests live in the module
// github.com/typedsession/session/store/sqlstore/mysqltest, so that the
// MySQL driver is no dependency of this one).
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
// PostgreSQL 12 or later is needed (New reads collisdeterministic and
// attgenerated from the catalog).
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
// connections opened at that same moment, in this process or another, fail
// with SQLITE_BUSY (busy_timeout does not cover the switch). [New] waits
// that out (until its context ends) and opens a connection before it
// returns, so a store that New returned has settled the journal mode; if
// the application uses db before New, call db.Ping once first. New names the
// cause when it cannot open the database: a read-only file or folder (WAL
// needs to create the -wal and -shm files next to the database), a file it
// cannot open. A database opened read-only (mode=ro) serves reads.
// SQLite 3.35 or later is needed for RETURNING; modernc.org/sqlite bundles a
// newer one.
//
// # Opening MySQL or MariaDB
//
// With github.com/go-sql-driver/mysql (driver name "mysql"), set
// clientFoundRows=true in the DSN:
//
//	import _ "github.com/go-sql-driver/mysql"
//
//	db, err := sql.Open("mysql", "app:secret@tcp(db.internal:3306)/app?clientFoundRows=true&interpolateParams=true")
//	st, err := sqlstore.New(db, sqlstore.Options{})
//
// clientFoundRows=true is required: without it MySQL reports the rows an
// UPDATE changed rather than the rows it matched, so a CompareAndSwap or a
// Touch that writes the bytes already stored (the resend rule of
// [store.Swapper], a session saved twice within a millisecond) would read
// as "not swapped" or "no such key". [New] checks it (an UPDATE that
// changes nothing, on a probe row it never commits) and refuses a
// connection without it. interpolateParams=true is recommended: the driver
// then sends each statement with its arguments in one round trip instead of
// preparing, executing and closing a server-side statement (three).
//
// Tested on MariaDB 10.11, the version Debian 12 ships. The statements are
// meant to be valid MySQL 8 too, but MySQL itself is not tested here.
// Differences from the other dialects:
//
//   - there is no UPDATE ... RETURNING, so [Store.GetAndTouch] is an UPDATE
//     and a SELECT in one transaction, four round trips; [Store.GetWithTTL]
//     is one SELECT;
//   - CompareAndSwap with a nil old is an INSERT, and only when the key
//     exists an UPDATE that replaces an expired row or one that already
//     holds the new value (and, when that finds nothing, a SELECT): see
//     "Compare-and-swap" below;
//   - the key column is VARBINARY(1024): a utf8mb4 VARCHAR of 1,024
//     characters would need up to 4,096 bytes, past InnoDB's index key
//     limit of 3,072 bytes, and a character collation may fold case or
//     ignore trailing spaces, so that distinct keys would be equal. The
//     store writes the key's UTF-8 bytes and reads them back unchanged;
//     they sort byte for byte, which Scan's key range needs;
//   - expiry is read from UTC_TIMESTAMP(3) by date arithmetic, so the
//     session's time_zone plays no part.
//
// # Keys
//
// Keys are the key alphabet of package store ([store.CheckKey]): UTF-8 text
// without NUL, 1 to [store.MaxKeyLen] (1,024) bytes, which every method
// checks before it sends anything, refusing other keys with an error
// matching [store.ErrInvalidKey]. The limit keeps a key well inside
// PostgreSQL's B-tree entry limit of 2,704 bytes, and InnoDB's index key
// limit of 3,072 bytes for MySQL's VARBINARY(1024). Errors quote a long key
// shortened to its first 64 bytes and its length.
//
// # Close
//
// [Store.Close] stops the background sweep (a sweep statement already sent
// runs to its end, at most 30 s, and Close waits for it: a DELETE abandoned
// by the client could still run on the server and remove a row that
// expired after Close), waits for the calls already running, and never
// closes the *sql.DB, which belongs to the caller. Every
// later call, and a second Close, returns an error matching
// [store.ErrClosed]. A write that returned nil was committed by the
// database; how durable a commit is depends on the database's settings
// (PostgreSQL's synchronous_commit, SQLite's synchronous pragma,
// InnoDB's innodb_flush_log_at_trx_commit).
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
// MySQL and MariaDB (the index is part of CREATE TABLE, since MySQL has no
// CREATE INDEX IF NOT EXISTS):
//
//	CREATE TABLE IF NOT EXISTS `sessions` (
//		`key`      VARBINARY(1024) NOT NULL PRIMARY KEY,
//		value      LONGBLOB NOT NULL,
//		expires_at BIGINT,
//		INDEX `sessions_expires_at_idx` (expires_at)
//	) ENGINE=InnoDB ROW_FORMAT=DYNAMIC;
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
// Whether it created the table or not, New reads the table's definition from
// the catalog (pg_catalog on PostgreSQL, PRAGMA table_xinfo, index_list and
// index_xinfo on SQLite, information_schema on MySQL) and refuses, naming the column and what it must
// be, a table that the store could not serve byte for byte:
//
//   - a missing key, value or expires_at column;
//   - key that is not TEXT (SQLite: of TEXT affinity), or whose collation
//     makes distinct keys equal (a nondeterministic ICU collation on
//     PostgreSQL, anything but BINARY on SQLite);
//   - key that is neither the primary key nor has a unique index on it
//     alone that is not partial and not deferrable (ON CONFLICT (key) needs
//     one);
//   - value that is not BYTEA (SQLite: BLOB affinity): JSON and JSONB
//     rewrite the bytes, TEXT refuses NUL bytes and invalid UTF-8;
//   - expires_at that is not BIGINT (SQLite: INTEGER affinity), or that is
//     NOT NULL (NULL is "no expiry");
//   - an extra column that is NOT NULL without a default, which the store's
//     INSERT cannot fill;
//   - a view instead of a table;
//   - on MySQL: key that is not VARBINARY of at least 1,024 bytes, value
//     that is not LONGBLOB, expires_at that is not a signed BIGINT, a
//     unique index on a prefix of key, any other unique index (INSERT ...
//     ON DUPLICATE KEY UPDATE would fire on it and overwrite another row)
//     but one on an AUTO_INCREMENT column alone, an engine other than
//     InnoDB.
//
// It accepts what cannot change what the store reads back: the documented
// DDL, extra columns that may be left out of an INSERT, value without NOT
// NULL, another deterministic collation on key, a missing expires_at index
// (only the sweep is slower), a WITHOUT ROWID or STRICT SQLite table.
//
// # Expiry and clocks
//
// Expiry is decided by the database's clock, never the application
// server's: every statement reads the time in the database (PostgreSQL's
// now(), the start of the statement's transaction; SQLite's 'now', fixed for
// the statement, read from the clock of the machine that runs the SQLite
// library; MySQL's UTC_TIMESTAMP(3), fixed for the statement), computes expires_at as that time plus the ttl, rounded up to
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
//	UPDATE t SET value = $new, expires_at = <expiry>
//	WHERE key = $key AND (value = $old OR value = $new) AND <live>
//
// and it swapped when one row was affected. The "OR value = $new" is the
// resend rule of [store.Swapper]: a swap resent after a lost reply finds its
// own value and reports true (and sets the ttl again). With a nil old ("only
// if absent"):
//
//	INSERT INTO t AS cur (key, value, expires_at) VALUES ($key, $new, <expiry>)
//	ON CONFLICT (key) DO UPDATE SET value = excluded.value, expires_at = excluded.expires_at
//	WHERE (cur.expires_at IS NOT NULL AND cur.expires_at <= <now>) OR cur.value = excluded.value
//
// which inserts an absent key, replaces an expired one (an expired key counts
// as absent) or one that already holds the new value, and leaves any other
// live one alone; both databases report one affected row in the first cases
// and none in the last.
//
// MySQL has no ON CONFLICT, and its ON DUPLICATE KEY UPDATE reports an
// affected row for a row it left alone when the connection reports found
// rows, so "only if absent" cannot be told from "kept" by one statement
// there. It is an INSERT; a duplicate-key error (1062) is followed by
//
//	UPDATE t SET value = ?new, expires_at = <expiry>
//	WHERE key = ?key AND ((expires_at IS NOT NULL AND expires_at <= <now>) OR value = ?new)
//
// which swapped when it matched a row; when it matched none, a SELECT
// tells a live key holding another value (false) from one deleted in the
// meantime (the INSERT is tried again). Each outcome is decided by one
// statement: the INSERT that landed, the UPDATE that matched, the SELECT
// that saw a live row. Values are compared byte for byte, and an empty
// value is an empty BYTEA or BLOB, never NULL, so it is told apart from an
// absent key. Set is the same INSERT without the WHERE. Here <now> is the
// database's time in milliseconds, <live> is "expires_at IS NULL OR
// expires_at > <now>", and <expiry> is NULL for a ttl <= 0 and otherwise
// <now> + ttl, clamped to [store.MaxExpiry].
//
// CompareAndDelete is one statement on PostgreSQL: a WITH clause locks the
// row (SELECT ... FOR UPDATE), deletes it if it holds old or has expired,
// and answers whether it held old: whether this call deleted the key. On
// SQLite, which has no DELETE in WITH, and on MySQL, it is one DELETE ...
// WHERE value = old of the live row, whose row count is the answer (an
// absent or expired key reports false).
//
// GetWithTTL is one SELECT of the value and expires_at - <now>: a read,
// which never writes and so works on a read-only database.
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
// or the new one, never torn. The same holds for a connection lost
// mid-statement (a server restart, a network cut): the store does not resend
// a statement, so an error from a write means "outcome unknown", and a
// CompareAndSwap whose write landed before the error is safe to resend
// (the resend rule above). Errors name the operation and the key (shortened
// when long) and wrap the driver's error.
package sqlstore
