package sqlstore

import (
	"bytes"
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib"
	_ "modernc.org/sqlite"

	"github.com/typedsession/session/internal/testenv"
	"github.com/typedsession/session/store"
	"github.com/typedsession/session/store/storetest"
)

// postgresDB opens the server at DATABASE_URL, skipping the test when none
// answers (failing it when CI=true).
func postgresDB(t testing.TB) *sql.DB {
	t.Helper()
	dsn := testenv.DatabaseURL()
	shown := dsn
	if u, err := url.Parse(dsn); err == nil {
		shown = u.Redacted()
	}
	db, err := sql.Open("pgx", dsn)
	if err == nil {
		// A deadline of its own: a PostgreSQL shared with other suites
		// on a loaded machine has taken over 5 s to answer a connection.
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		err = db.PingContext(ctx)
		cancel()
		if err != nil {
			db.Close()
		}
	}
	if err != nil {
		testenv.SkipOrFail(t, "no PostgreSQL answers at %s (set DATABASE_URL): %v", shown, err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// sqliteDSN is how the tests open SQLite: the settings the package
// documentation recommends.
//
// The busy timeout is a minute, not the 5 s the package documentation
// suggests: SQLite's busy handler is not fair (a waiter sleeps and retries
// while the others keep taking the write lock), and with eight writers on
// a loaded 2-core CI machine one of them waited out 10 s
// (CloseRacingWrites, "database is locked").
func sqliteDSN(path string) string {
	return path + "?_pragma=busy_timeout(60000)&_pragma=journal_mode(WAL)"
}

// sqliteDB opens a new SQLite database in a fresh temporary directory.
func sqliteDB(t testing.TB) *sql.DB {
	t.Helper()
	db, err := sql.Open("sqlite", sqliteDSN(filepath.Join(t.TempDir(), "sessions.db")))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	// The first connection to a fresh file switches it to WAL; connections
	// opened at that moment fail with SQLITE_BUSY whatever their
	// busy_timeout ("Opening SQLite" in the package doc). Settle the
	// journal mode before tests use db from several goroutines, as an
	// application does.
	if err := db.Ping(); err != nil {
		t.Fatal(err)
	}
	return db
}

// randomTable returns a table name no other test uses.
func randomTable() string {
	b := make([]byte, 8)
	rand.Read(b)
	return "sqlstore_test_" + hex.EncodeToString(b)
}

// newTestStore returns a store on a fresh table of db, dropped at cleanup.
func newTestStore(t testing.TB, db *sql.DB, opts Options) *Store {
	t.Helper()
	if opts.Table == "" {
		opts.Table = randomTable()
	}
	s, err := New(db, opts)
	if err != nil {
		t.Fatalf("New(%+v): %v", opts, err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil && !errors.Is(err, store.ErrClosed) {
			t.Errorf("Close: %v", err)
		}
		if _, err := db.Exec("DROP TABLE IF EXISTS " + s.table); err != nil {
			t.Errorf("DROP TABLE %s: %v", s.table, err)
		}
	})
	return s
}

func TestPostgresConformance(t *testing.T) {
	db := postgresDB(t)
	storetest.Run(t, func(t *testing.T) store.Store {
		return newTestStore(t, db, Options{})
	})
}

func TestSQLiteConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store {
		return newTestStore(t, sqliteDB(t), Options{})
	})
}

// TestPostgresLinguisticCollationConformance runs the suite on tables whose
// key column has a linguistic (ICU) collation instead of "C", as a DBA might
// create it: Scan must stay exact because it compares in byte order itself.
func TestPostgresLinguisticCollationConformance(t *testing.T) {
	db := postgresDB(t)
	var n int
	if err := db.QueryRow(`SELECT count(*) FROM pg_collation WHERE collname = 'en-US-x-icu'`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n == 0 {
		t.Skip("skipping: this PostgreSQL has no ICU collation en-US-x-icu")
	}
	storetest.Run(t, func(t *testing.T) store.Store {
		table := randomTable()
		if _, err := db.Exec(`CREATE TABLE "` + table + `" (key TEXT COLLATE "en-US-x-icu" PRIMARY KEY, value BYTEA NOT NULL, expires_at BIGINT)`); err != nil {
			t.Fatal(err)
		}
		return newTestStore(t, db, Options{Table: table, SkipCreate: true})
	})
}

// TestConcurrentNew starts several stores on one new table at once, as
// several app servers do at deploy time: all must start.
func TestConcurrentNew(t *testing.T) {
	dialects(t, func(t *testing.T, db *sql.DB) {
		table := randomTable()
		t.Cleanup(func() { db.Exec(`DROP TABLE IF EXISTS "` + table + `"`) })
		errs := make(chan error, 4)
		for range 4 {
			go func() {
				s, err := New(db, Options{Table: table, CleanupInterval: -1})
				if err == nil {
					s.Close()
				}
				errs <- err
			}()
		}
		for range 4 {
			if err := <-errs; err != nil {
				t.Errorf("concurrent New: %v", err)
			}
		}
	})
}

// TestSQLiteSharedFileConformance runs the suite with every case's table in
// one database file, so that the cases' writers contend for SQLite's single
// write lock, which busy_timeout must absorb.
func TestSQLiteSharedFileConformance(t *testing.T) {
	db := sqliteDB(t)
	storetest.Run(t, func(t *testing.T) store.Store {
		return newTestStore(t, db, Options{})
	})
}

// dialects runs fn once per database, each with its own db.
func dialects(t *testing.T, fn func(t *testing.T, db *sql.DB)) {
	t.Run("Postgres", func(t *testing.T) { fn(t, postgresDB(t)) })
	t.Run("SQLite", func(t *testing.T) { fn(t, sqliteDB(t)) })
}

func TestBadTableName(t *testing.T) {
	bad := []struct{ name, why string }{
		{"sessions; DROP TABLE users", "SQL after the name"},
		{`ses"sions`, "a quote would end the quoted identifier"},
		{"a.b.c", "more than schema.name"},
		{".sessions", "empty schema"},
		{"sessions.", "empty name"},
		{"1sessions", "starts with a digit"},
		{"ses sions", "space"},
		{"séssions", "non-ASCII letter"},
		{"ses-sions", "hyphen"},
		{strings.Repeat("x", 64), "longer than 63 bytes"},
	}
	dialects(t, func(t *testing.T, db *sql.DB) {
		for _, tc := range bad {
			s, err := New(db, Options{Table: tc.name, CleanupInterval: -1})
			if err == nil {
				s.Close()
				t.Errorf("New(Table: %q) succeeded, want an error (%s)", tc.name, tc.why)
				continue
			}
			if !strings.Contains(err.Error(), "Options.Table") {
				t.Errorf("New(Table: %q) = %v, want an error that names Options.Table", tc.name, err)
			}
		}
	})
}

func TestSchemaQualifiedTable(t *testing.T) {
	dialects(t, func(t *testing.T, db *sql.DB) {
		schema := "public"
		if d, _ := resolveDialect(db, ""); d == SQLite {
			schema = "main"
		}
		table := schema + "." + randomTable()
		s := newTestStore(t, db, Options{Table: table, CleanupInterval: -1})
		ctx := t.Context()
		// The nil-old CompareAndSwap uses the table alias; exercise both
		// of its outcomes through a qualified name.
		if ok, err := s.CompareAndSwap(ctx, "k", nil, []byte("v1"), time.Hour); err != nil || !ok {
			t.Fatalf("CompareAndSwap(nil old) on an absent key = %v, %v; want true, nil", ok, err)
		}
		if ok, err := s.CompareAndSwap(ctx, "k", nil, []byte("v2"), time.Hour); err != nil || ok {
			t.Fatalf("CompareAndSwap(nil old) on a live key = %v, %v; want false, nil", ok, err)
		}
		if n, err := s.DeleteExpired(ctx); err != nil || n != 0 {
			t.Fatalf("DeleteExpired = %d, %v; want 0, nil", n, err)
		}
		got, err := s.Get(ctx, "k")
		if err != nil || string(got) != "v1" {
			t.Fatalf("Get = %q, %v; want v1", got, err)
		}
		// New on an existing table keeps its rows (IF NOT EXISTS).
		s2, err := New(db, Options{Table: table, CleanupInterval: -1})
		if err != nil {
			t.Fatalf("New on an existing table: %v", err)
		}
		defer s2.Close()
		if got, err := s2.Get(ctx, "k"); err != nil || string(got) != "v1" {
			t.Fatalf("Get through a second store = %q, %v; want v1", got, err)
		}
	})
}

func TestDialect(t *testing.T) {
	check := func(t *testing.T, db *sql.DB, want Dialect) {
		for _, d := range []Dialect{"", want} {
			s := newTestStore(t, db, Options{Dialect: d, CleanupInterval: -1})
			if s.dialect != want {
				t.Errorf("New(Dialect: %q): dialect = %q, want %q", d, s.dialect, want)
			}
		}
	}
	t.Run("Postgres", func(t *testing.T) { check(t, postgresDB(t), Postgres) })
	t.Run("SQLite", func(t *testing.T) { check(t, sqliteDB(t), SQLite) })
	t.Run("Unknown", func(t *testing.T) {
		db := sqliteDB(t)
		for _, d := range []Dialect{"mssql", "MySQL", "Postgres", "postgresql"} {
			_, err := New(db, Options{Dialect: d, Table: randomTable()})
			if err == nil || !strings.Contains(err.Error(), "unknown Options.Dialect") {
				t.Errorf("New(Dialect: %q) = %v, want an unknown-dialect error", d, err)
			}
		}
	})
}

func TestNilDB(t *testing.T) {
	if _, err := New(nil, Options{}); err == nil {
		t.Fatal("New(nil) succeeded, want an error")
	}
}

func TestSkipCreate(t *testing.T) {
	dialects(t, func(t *testing.T, db *sql.DB) {
		table := randomTable()
		_, err := New(db, Options{Table: table, SkipCreate: true})
		if err == nil || !strings.Contains(err.Error(), "missing") {
			t.Fatalf("New(SkipCreate) without the table = %v, want an error saying it is missing", err)
		}
		// Create it by hand with the documented DDL, then SkipCreate works.
		d, err := resolveDialect(db, "")
		if err != nil {
			t.Fatal(err)
		}
		for _, stmt := range ddl(d, table) {
			if _, err := db.Exec(stmt); err != nil {
				t.Fatalf("%s: %v", stmt, err)
			}
		}
		s := newTestStore(t, db, Options{Table: table, SkipCreate: true, CleanupInterval: -1})
		if err := s.Set(t.Context(), "k", []byte("v"), 0); err != nil {
			t.Fatal(err)
		}
	})
}

// TestDocumentedDDL checks that the DDL in the package documentation is the
// DDL New runs, so that a DBA who copies it gets the same table.
func TestDocumentedDDL(t *testing.T) {
	doc, err := os.ReadFile("doc.go")
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range []Dialect{Postgres, SQLite, MySQL} {
		for _, stmt := range ddl(d, "sessions") {
			// The doc shows the statement indented by "//\t", one line
			// per line, ending in ';'.
			want := "//\t" + strings.ReplaceAll(stmt, "\n", "\n//\t") + ";"
			if !strings.Contains(string(doc), want) {
				t.Errorf("doc.go does not show the %s DDL New runs:\n%s", d, want)
			}
		}
	}
}

func TestSQLiteBusyTimeoutRequired(t *testing.T) {
	db, err := sql.Open("sqlite", filepath.Join(t.TempDir(), "nobusy.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	_, err = New(db, Options{Table: randomTable()})
	if err == nil || !strings.Contains(err.Error(), "busy_timeout") {
		t.Fatalf("New on a pool without busy_timeout = %v, want an error about busy_timeout", err)
	}
	db.SetMaxOpenConns(1)
	s, err := New(db, Options{Table: randomTable()})
	if err != nil {
		t.Fatalf("New on a single-connection pool without busy_timeout: %v", err)
	}
	s.Close()
}

// TestBadKeys checks the key alphabet of package store on both databases:
// keys PostgreSQL text cannot hold and keys over store.MaxKeyLen are
// refused before any I/O with store.ErrInvalidKey, and the longest key
// works (PostgreSQL's B-tree entry limit is 2,704 bytes).
func TestBadKeys(t *testing.T) {
	dialects(t, func(t *testing.T, db *sql.DB) {
		s := newTestStore(t, db, Options{CleanupInterval: -1})
		ctx := t.Context()
		for _, key := range []string{"", "nul\x00byte", "bad\xffutf8", strings.Repeat("k", store.MaxKeyLen+1), strings.Repeat("k", 10_000)} {
			err := s.Set(ctx, key, []byte("v"), 0)
			if !errors.Is(err, store.ErrInvalidKey) {
				t.Errorf("Set(%.20q) = %v, want ErrInvalidKey", key, err)
			}
			if err != nil && len(err.Error()) > 300 {
				t.Errorf("Set of a %d-byte key: error of %d bytes, want the key shortened: %.200s", len(key), len(err.Error()), err)
			}
			if _, err := s.Get(ctx, key); !errors.Is(err, store.ErrInvalidKey) {
				t.Errorf("Get(%.20q) = %v, want ErrInvalidKey", key, err)
			}
		}
		for _, key := range []string{strings.Repeat("k", store.MaxKeyLen), strings.Repeat("日", store.MaxKeyLen/3) + "x"} {
			if err := s.Set(ctx, key, []byte("v"), time.Hour); err != nil {
				t.Fatalf("Set of a %d-byte key: %v", len(key), err)
			}
			if got, err := s.Get(ctx, key); err != nil || string(got) != "v" {
				t.Fatalf("Get of a %d-byte key = %q, %v", len(key), got, err)
			}
		}
		// A driver error quotes a long key shortened too.
		if _, err := db.Exec("DROP TABLE " + s.table); err != nil {
			t.Fatal(err)
		}
		err := s.Set(ctx, strings.Repeat("k", store.MaxKeyLen), []byte("v"), 0)
		if err == nil || len(err.Error()) > 400 || !strings.Contains(err.Error(), "1024 bytes") {
			t.Errorf("Set of a 1024-byte key on a dropped table = %.500v (%d bytes); want an error quoting the key shortened", err, len(fmt.Sprint(err)))
		}
	})
}

// TestScanPrefixEdges checks Scan where the key-range bound is delicate:
// multi-byte and maximal code points, the highest ASCII byte, and batches
// smaller than the result.
func TestScanPrefixEdges(t *testing.T) {
	keys := []string{
		"日本:1", "日本語", "日本", "日本\x7f", "日本\u0080", "日本\U0010FFFF", "日本\U0010FFFFx", "日杢", "日札",
		"\U0010FFFF", "\U0010FFFF\U0010FFFF", "\uD7FF:a", "\uE000:b",
		"z\x7f", "z\x7fz", "z\u0080",
		"Z", "a", "é", "e",
	}
	cases := []struct {
		prefix string
		want   []string
	}{
		{"日本", []string{"日本:1", "日本語", "日本", "日本\x7f", "日本\u0080", "日本\U0010FFFF", "日本\U0010FFFFx"}},
		{"日本\U0010FFFF", []string{"日本\U0010FFFF", "日本\U0010FFFFx"}},
		{"\U0010FFFF", []string{"\U0010FFFF", "\U0010FFFF\U0010FFFF"}},
		{"\uD7FF", []string{"\uD7FF:a"}},
		{"z\x7f", []string{"z\x7f", "z\x7fz"}},
		{"e", []string{"e"}},
		{"Z", []string{"Z"}},
		{"", keys},
	}
	dialects(t, func(t *testing.T, db *sql.DB) {
		s := newTestStore(t, db, Options{CleanupInterval: -1})
		s.scanBatch = 2
		ctx := t.Context()
		for _, k := range keys {
			if err := s.Set(ctx, k, []byte("v"), time.Hour); err != nil {
				t.Fatal(err)
			}
		}
		for _, tc := range cases {
			var got []string
			if err := s.Scan(ctx, tc.prefix, func(k string) error {
				got = append(got, k)
				return nil
			}); err != nil {
				t.Fatalf("Scan(%q): %v", tc.prefix, err)
			}
			want := slices.Clone(tc.want)
			slices.Sort(want)
			// Scan reports in byte order and, with small batches, each
			// key once.
			if !slices.Equal(got, want) {
				t.Errorf("Scan(%q) = %q, want %q", tc.prefix, got, want)
			}
		}
	})
}

func TestSuccessor(t *testing.T) {
	for _, tc := range []struct {
		in, want string
		ok       bool
	}{
		{"", "", false},
		{"a", "b", true},
		{"quiz:", "quiz;", true},
		{"a\x7f", "a\u0080", true},
		{"日本", "日札", true}, // U+672C + 1
		{"a\U0010FFFF", "b", true},
		{"\U0010FFFF", "", false},
		{"\uD7FF", "\uE000", true},
		{"a\xff", "b", true}, // invalid UTF-8: byte successor
		{"\xff\xff", "", false},
	} {
		got, ok := successor(tc.in)
		if got != tc.want || ok != tc.ok {
			t.Errorf("successor(%q) = %q, %v; want %q, %v", tc.in, got, ok, tc.want, tc.ok)
		}
	}
}

// countRows counts every row of s's table, expired or not.
func countRows(t *testing.T, s *Store) int {
	t.Helper()
	var n int
	if err := s.db.QueryRow("SELECT count(*) FROM " + s.table).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// insertRaw writes a row behind the store's back, with expires_at in Unix
// milliseconds (nil: no expiry).
func insertRaw(t *testing.T, db execer, s *Store, key string, expiresAt any) {
	t.Helper()
	if _, err := db.ExecContext(t.Context(), "INSERT INTO "+s.table+" (key, value, expires_at) VALUES ($1, $2, $3)",
		key, []byte("v"), expiresAt); err != nil {
		t.Fatal(err)
	}
}

type execer interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

func TestDeleteExpired(t *testing.T) {
	dialects(t, func(t *testing.T, db *sql.DB) {
		s := newTestStore(t, db, Options{CleanupInterval: -1})
		ctx := t.Context()
		now := dbNowMS(t, s)
		tx, err := db.BeginTx(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		for i := range 2*sweepBatch + 5 { // more than one batch
			insertRaw(t, tx, s, fmt.Sprintf("expired:%d", i), now-1000)
		}
		insertRaw(t, tx, s, "long", now+3600_000)
		insertRaw(t, tx, s, "forever", nil)
		if err := tx.Commit(); err != nil {
			t.Fatal(err)
		}
		n, err := s.DeleteExpired(ctx)
		if err != nil || n != 2*sweepBatch+5 {
			t.Fatalf("DeleteExpired = %d, %v; want %d, nil", n, err, 2*sweepBatch+5)
		}
		if got := countRows(t, s); got != 2 {
			t.Fatalf("%d rows left after DeleteExpired, want 2 (long, forever)", got)
		}
		for _, k := range []string{"long", "forever"} {
			if _, err := s.Get(ctx, k); err != nil {
				t.Errorf("Get(%q) after DeleteExpired: %v", k, err)
			}
		}
		if n, err := s.DeleteExpired(ctx); err != nil || n != 0 {
			t.Fatalf("second DeleteExpired = %d, %v; want 0, nil", n, err)
		}
	})
}

// TestSweepAndClose checks that the background sweep runs, that Close
// stops it and then refuses every call, and that it leaves the caller's db
// open. It waits for the sweep by polling, with no deadline of its own.
func TestSweepAndClose(t *testing.T) {
	dialects(t, func(t *testing.T, db *sql.DB) {
		s := newTestStore(t, db, Options{CleanupInterval: time.Millisecond})
		insertRaw(t, db, s, "expired", int64(1))
		for countRows(t, s) != 0 {
			time.Sleep(5 * time.Millisecond)
		}
		if err := s.Close(); err != nil {
			t.Fatalf("Close: %v", err)
		}
		if err := s.Close(); !errors.Is(err, store.ErrClosed) {
			t.Fatalf("second Close = %v, want ErrClosed", err)
		}
		if err := s.Set(t.Context(), "k", []byte("v"), 0); !errors.Is(err, store.ErrClosed) {
			t.Fatalf("Set after Close = %v, want ErrClosed", err)
		}
		if _, err := s.DeleteExpired(t.Context()); !errors.Is(err, store.ErrClosed) {
			t.Fatalf("DeleteExpired after Close = %v, want ErrClosed", err)
		}
		if err := db.Ping(); err != nil {
			t.Fatalf("Close closed the caller's db: %v", err)
		}
		// The sweep has stopped: an expired row stays (this check can
		// only miss a running sweep, never blame a stopped one).
		insertRaw(t, db, s, "expired-after-close", int64(1))
		time.Sleep(50 * time.Millisecond)
		if got := countRows(t, s); got != 1 {
			t.Fatalf("%d rows after Close, want the 1 expired row left alone: the sweep still runs", got)
		}
	})
}

func TestErrorsNameOpAndKey(t *testing.T) {
	dialects(t, func(t *testing.T, db *sql.DB) {
		s := newTestStore(t, db, Options{CleanupInterval: -1})
		_, err := s.Get(t.Context(), "the-key")
		if !errors.Is(err, store.ErrNotFound) || !strings.Contains(err.Error(), "Get") || !strings.Contains(err.Error(), "the-key") {
			t.Errorf("Get of an absent key = %v, want ErrNotFound naming Get and the key", err)
		}
		err = s.Touch(t.Context(), "the-key", time.Hour)
		if !errors.Is(err, store.ErrNotFound) || !strings.Contains(err.Error(), "Touch") {
			t.Errorf("Touch of an absent key = %v, want ErrNotFound naming Touch", err)
		}
		// A driver error is wrapped with the op and key: drop the table
		// under the store.
		if _, err := db.Exec("DROP TABLE " + s.table); err != nil {
			t.Fatal(err)
		}
		err = s.Set(t.Context(), "the-key", []byte("v"), 0)
		if err == nil || !strings.Contains(err.Error(), `Set "the-key"`) || errors.Unwrap(err) == nil {
			t.Errorf("Set on a dropped table = %v, want a wrapped error naming Set and the key", err)
		}
	})
}

// ---- benchmarks ----

func BenchmarkPostgres(b *testing.B) { benchStore(b, postgresDB(b)) }

func BenchmarkSQLite(b *testing.B) { benchStore(b, sqliteDB(b)) }

func benchStore(b *testing.B, db *sql.DB) {
	value := bytes.Repeat([]byte("x"), 500)
	other := bytes.Repeat([]byte("y"), 500)
	b.Run("Get", func(b *testing.B) {
		s := newTestStore(b, db, Options{CleanupInterval: -1})
		ctx := b.Context()
		if err := s.Set(ctx, "quiz:123456789", value, time.Hour); err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		for b.Loop() {
			if _, err := s.Get(ctx, "quiz:123456789"); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("Set", func(b *testing.B) {
		s := newTestStore(b, db, Options{CleanupInterval: -1})
		ctx := b.Context()
		b.ReportAllocs()
		for b.Loop() {
			if err := s.Set(ctx, "quiz:123456789", value, time.Hour); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("CompareAndSwap", func(b *testing.B) {
		s := newTestStore(b, db, Options{CleanupInterval: -1})
		ctx := b.Context()
		if err := s.Set(ctx, "quiz:123456789", value, time.Hour); err != nil {
			b.Fatal(err)
		}
		old, next := value, other
		b.ReportAllocs()
		for b.Loop() {
			ok, err := s.CompareAndSwap(ctx, "quiz:123456789", old, next, time.Hour)
			if err != nil || !ok {
				b.Fatalf("CompareAndSwap = %v, %v", ok, err)
			}
			old, next = next, old
		}
	})
}

// TestCancelWhileBlocked cancels a write that waits for a lock another
// connection holds, so the cancellation reaches the driver mid-statement
// (the conformance suite cancels before the call). The error must still
// match context.Canceled.
func TestCancelWhileBlocked(t *testing.T) {
	dialects(t, func(t *testing.T, db *sql.DB) {
		s := newTestStore(t, db, Options{CleanupInterval: -1})
		if err := s.Set(t.Context(), "k", []byte("v"), 0); err != nil {
			t.Fatal(err)
		}
		tx, err := db.BeginTx(t.Context(), nil)
		if err != nil {
			t.Fatal(err)
		}
		defer tx.Rollback()
		// Take the row lock (Postgres) or the write lock (SQLite).
		if _, err := tx.Exec("UPDATE "+s.table+" SET expires_at = NULL WHERE key = $1", "k"); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(t.Context())
		go func() {
			time.Sleep(50 * time.Millisecond) // usually after Set is blocked; correct either way
			cancel()
		}()
		err = s.Set(ctx, "k", []byte("changed"), 0)
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("Set blocked on a lock, then cancelled = %v, want an error matching context.Canceled", err)
		}
		t.Logf("driver error: %v", err)
		tx.Rollback()
		// The contract allows either outcome: a statement the server
		// already holds may still run once the lock is released (pgx
		// gives up on the connection, the server does not know), but the
		// value is never anything else.
		got, err := s.Get(t.Context(), "k")
		if err != nil || (string(got) != "v" && string(got) != "changed") {
			t.Fatalf("Get after the cancelled Set = %q, %v; want v or changed", got, err)
		}
	})
}

// TestSQLitePersistent runs the persistence part of the suite: a SQLite
// file closed (the store, then the *sql.DB) and opened again keeps every
// acknowledged write.
func TestSQLitePersistent(t *testing.T) {
	storetest.RunPersistent(t, func(t *testing.T, dir string) (store.Store, func() error) {
		db, err := sql.Open("sqlite", sqliteDSN(filepath.Join(dir, "sessions.db")))
		if err != nil {
			t.Fatal(err)
		}
		s, err := New(db, Options{})
		if err != nil {
			db.Close()
			t.Fatal(err)
		}
		return s, func() error {
			err := s.Close()
			if cerr := db.Close(); cerr != nil && err == nil {
				err = cerr
			}
			return err
		}
	})
}

// TestSweepErrorReported: a background sweep that fails (here the table is
// dropped under it) reports through Options.OnError instead of being
// swallowed.
func TestSweepErrorReported(t *testing.T) {
	dialects(t, func(t *testing.T, db *sql.DB) {
		reported := make(chan error, 100)
		s := newTestStore(t, db, Options{CleanupInterval: time.Millisecond, OnError: func(err error) {
			select {
			case reported <- err:
			default:
			}
		}})
		if _, err := db.Exec("DROP TABLE " + s.table); err != nil {
			t.Fatal(err)
		}
		err := <-reported
		if !strings.Contains(err.Error(), "DeleteExpired") {
			t.Fatalf("OnError got %v, want the sweep's error naming DeleteExpired", err)
		}
		if err := s.Close(); err != nil {
			t.Fatalf("Close: %v", err)
		}
	})
}

// TestCASNilOldResend: the resend rule holds for the "only if absent" form
// too: a second identical create reports true, a different one false.
func TestCASNilOldResend(t *testing.T) {
	dialects(t, func(t *testing.T, db *sql.DB) {
		s := newTestStore(t, db, Options{CleanupInterval: -1})
		ctx := t.Context()
		for i, want := range []bool{true, true} {
			if ok, err := s.CompareAndSwap(ctx, "k", nil, []byte("v1"), time.Hour); err != nil || ok != want {
				t.Fatalf("CompareAndSwap(nil, v1) #%d = %v, %v; want %v", i+1, ok, err, want)
			}
		}
		if ok, err := s.CompareAndSwap(ctx, "k", nil, []byte("v2"), time.Hour); err != nil || ok {
			t.Fatalf("CompareAndSwap(nil, v2) on a live key = %v, %v; want false", ok, err)
		}
		// The resend sets the ttl: 0 removes the expiry.
		if ok, err := s.CompareAndSwap(ctx, "k", nil, []byte("v1"), 0); err != nil || !ok {
			t.Fatalf("CompareAndSwap(nil, v1, ttl 0) = %v, %v; want true", ok, err)
		}
		if _, left, err := s.GetWithTTL(ctx, "k"); err != nil || left != store.NoExpiry {
			t.Fatalf("GetWithTTL after a resend with ttl 0 = %v, %v; want NoExpiry", left, err)
		}
	})
}

// TestCloseWaitsForRunningCalls: Close returns only after a call that was
// running has returned, and a Scan whose callback uses the store during
// Close does not deadlock (the callback's call gets ErrClosed).
func TestCloseWaitsForRunningCalls(t *testing.T) {
	dialects(t, func(t *testing.T, db *sql.DB) {
		s := newTestStore(t, db, Options{CleanupInterval: -1})
		ctx := t.Context()
		for _, k := range []string{"a", "b"} {
			if err := s.Set(ctx, k, []byte("v"), 0); err != nil {
				t.Fatal(err)
			}
		}
		inScan := make(chan struct{})
		release := make(chan struct{})
		var afterClose error
		scanDone := make(chan error, 1)
		go func() {
			first := true
			scanDone <- s.Scan(ctx, "", func(key string) error {
				if first {
					first = false
					close(inScan)
					<-release
					_, afterClose = s.Get(ctx, key)
				}
				return nil
			})
		}()
		<-inScan
		closed := make(chan error, 1)
		go func() { closed <- s.Close() }()
		// Close must wait for the Scan; let the Scan go on once Close
		// has marked the store closed.
		for {
			s.mu.Lock()
			c := s.closed
			s.mu.Unlock()
			if c {
				break
			}
			time.Sleep(time.Millisecond)
		}
		select {
		case err := <-closed:
			t.Fatalf("Close returned (%v) while a Scan was running", err)
		default:
		}
		close(release)
		if err := <-scanDone; err != nil {
			t.Fatalf("Scan: %v", err)
		}
		if err := <-closed; err != nil {
			t.Fatalf("Close: %v", err)
		}
		if !errors.Is(afterClose, store.ErrClosed) {
			t.Fatalf("Get from Scan's callback during Close = %v, want ErrClosed", afterClose)
		}
	})
}

// TestLongTTLClamped: a ttl of 250 years or the largest time.Duration is
// stored as store.MaxExpiry (issue 11 item 5), in every write method.
func TestLongTTLClamped(t *testing.T) {
	dialects(t, func(t *testing.T, db *sql.DB) {
		s := newTestStore(t, db, Options{CleanupInterval: -1})
		ctx := t.Context()
		expiresAt := func() int64 {
			var ms int64
			if err := db.QueryRow("SELECT expires_at FROM "+s.table+" WHERE key = $1", "k").Scan(&ms); err != nil {
				t.Fatal(err)
			}
			return ms
		}
		for _, ttl := range []time.Duration{250 * 365 * 24 * time.Hour, time.Duration(math.MaxInt64)} {
			writes := map[string]func() error{
				"Set":            func() error { return s.Set(ctx, "k", []byte("v"), ttl) },
				"CompareAndSwap": func() error { _, err := s.CompareAndSwap(ctx, "k", []byte("v"), []byte("v"), ttl); return err },
				"Touch":          func() error { return s.Touch(ctx, "k", ttl) },
				"GetAndTouch":    func() error { _, err := s.GetAndTouch(ctx, "k", ttl); return err },
			}
			for _, op := range []string{"Set", "CompareAndSwap", "Touch", "GetAndTouch"} {
				if err := s.Set(ctx, "k", []byte("v"), time.Minute); err != nil {
					t.Fatal(err)
				}
				if err := writes[op](); err != nil {
					t.Fatalf("%s with ttl %v: %v", op, ttl, err)
				}
				if got := expiresAt(); got != store.MaxExpiry.UnixMilli() {
					t.Errorf("%s with ttl %v: expires_at = %d, want store.MaxExpiry (%d)", op, ttl, got, store.MaxExpiry.UnixMilli())
				}
				if _, left, err := s.GetWithTTL(ctx, "k"); err != nil || left < 100*365*24*time.Hour {
					t.Errorf("%s with ttl %v: GetWithTTL = %v, %v; want about %v left", op, ttl, left, err, time.Until(store.MaxExpiry))
				}
			}
		}
	})
}
