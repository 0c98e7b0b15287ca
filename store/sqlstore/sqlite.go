package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"
)

// SQLite result codes that New tells apart (https://www.sqlite.org/rescode.html).
const (
	sqliteBusy     = 5
	sqliteLocked   = 6
	sqliteReadOnly = 8
	sqliteCantOpen = 14
)

// sqliteCode returns the primary SQLite result code of err, or 0. It knows
// modernc.org/sqlite's errors (a Code() int method) and, since the package
// imports no driver, falls back on the messages SQLite gives every driver.
func sqliteCode(err error) int {
	var coder interface{ Code() int }
	if errors.As(err, &coder) {
		return coder.Code() & 0xff
	}
	msg := strings.ToLower(err.Error())
	switch {
	case strings.Contains(msg, "database is locked"), strings.Contains(msg, "sqlite_busy"):
		return sqliteBusy
	case strings.Contains(msg, "database table is locked"), strings.Contains(msg, "sqlite_locked"):
		return sqliteLocked
	case strings.Contains(msg, "readonly database"), strings.Contains(msg, "sqlite_readonly"):
		return sqliteReadOnly
	case strings.Contains(msg, "unable to open database file"), strings.Contains(msg, "sqlite_cantopen"):
		return sqliteCantOpen
	}
	return 0
}

// sqliteRetry runs op until it returns something other than SQLITE_BUSY or
// SQLITE_LOCKED, or ctx ends. New needs it because some of the locks it
// meets are not covered by busy_timeout: a connection that opens while
// another process switches a new database file to WAL fails at once with
// SQLITE_BUSY, whatever its busy_timeout.
func sqliteRetry(ctx context.Context, op func() error) error {
	wait := time.Millisecond
	for {
		err := op()
		if err == nil {
			return nil
		}
		if code := sqliteCode(err); code != sqliteBusy && code != sqliteLocked {
			return err
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("still locked by another connection or process when New's context ended (%w): %w", ctx.Err(), err)
		case <-t.C:
		}
		if wait < 100*time.Millisecond {
			wait *= 2
		}
	}
}

// explainSQLite names the cause of an error that New met on SQLite: a
// read-only database or folder, a file that cannot be opened.
func explainSQLite(err error) error {
	switch sqliteCode(err) {
	case sqliteReadOnly:
		return fmt.Errorf("the SQLite database is read-only: the store needs to write the database file and, in WAL mode, to create the -wal and -shm files next to it, so the file and its folder must be writable: %w", err)
	case sqliteCantOpen:
		// SQLite does not say which file it could not open, and db does
		// not tell us the path: name the causes in the order of likelihood.
		return fmt.Errorf("cannot open the SQLite database: the file or its folder is read-only (a database in WAL mode needs to create its -wal and -shm files next to it, so the folder must be writable), missing, or not accessible to this process: %w", err)
	}
	return err
}

// prepareSQLite opens a first connection, waiting for locks, and returns an
// error when concurrent writers on db would fail with "database is locked"
// instead of waiting.
func prepareSQLite(ctx context.Context, db *sql.DB) error {
	if err := sqliteRetry(ctx, func() error { return db.PingContext(ctx) }); err != nil {
		return fmt.Errorf("sqlstore: New: opening the database: %w", explainSQLite(err))
	}
	if db.Stats().MaxOpenConnections == 1 {
		return nil
	}
	var ms int64
	err := sqliteRetry(ctx, func() error {
		return db.QueryRowContext(ctx, "PRAGMA busy_timeout").Scan(&ms)
	})
	if err != nil {
		return fmt.Errorf("sqlstore: New: reading PRAGMA busy_timeout: %w", explainSQLite(err))
	}
	if ms <= 0 {
		return errors.New("sqlstore: New: SQLite busy_timeout is 0, so concurrent writes would fail with \"database is locked\": " +
			"open the database with a busy timeout on every connection, e.g. " +
			`sql.Open("sqlite", "file:sessions.db?_pragma=busy_timeout(5000)&_pragma=journal_mode(WAL)"), ` +
			"or call db.SetMaxOpenConns(1)")
	}
	return nil
}
