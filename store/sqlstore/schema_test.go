package sqlstore

import (
	"database/sql"
	"strings"
	"testing"
)

// badTable is a table made by hand that New must refuse, with the words
// its error must contain.
type badTable struct {
	name string
	ddl  []string // %s is the quoted table name
	want []string
}

// TestNewRefusesBadTable is issue 12 item 3: with SkipCreate and a table
// made by hand that the store cannot serve byte for byte, New used to
// succeed and every operation failed later. New must refuse it, naming the
// column and what it must be.
func TestNewRefusesBadTable(t *testing.T) {
	postgres := []badTable{
		{"expires_at TIMESTAMPTZ", []string{`CREATE TABLE %s (key TEXT PRIMARY KEY, value BYTEA NOT NULL, expires_at TIMESTAMPTZ)`},
			[]string{"expires_at", "TIMESTAMP WITH TIME ZONE", "must be BIGINT"}},
		{"expires_at INTEGER", []string{`CREATE TABLE %s (key TEXT PRIMARY KEY, value BYTEA NOT NULL, expires_at INTEGER)`},
			[]string{"expires_at", "INTEGER", "must be BIGINT"}},
		{"expires_at NOT NULL", []string{`CREATE TABLE %s (key TEXT PRIMARY KEY, value BYTEA NOT NULL, expires_at BIGINT NOT NULL)`},
			[]string{"expires_at", "NOT NULL", "must allow NULL"}},
		{"no primary key", []string{`CREATE TABLE %s (key TEXT, value BYTEA NOT NULL, expires_at BIGINT)`},
			[]string{"key", "PRIMARY KEY"}},
		{"unique index on more than key", []string{`CREATE TABLE %s (key TEXT, value BYTEA NOT NULL, expires_at BIGINT, UNIQUE (key, expires_at))`},
			[]string{"key", "PRIMARY KEY"}},
		{"partial unique index", []string{`CREATE TABLE %s (key TEXT, value BYTEA NOT NULL, expires_at BIGINT)`,
			`CREATE UNIQUE INDEX ON %s (key) WHERE expires_at IS NULL`},
			[]string{"key", "PRIMARY KEY"}},
		{"deferrable primary key", []string{`CREATE TABLE %s (key TEXT PRIMARY KEY DEFERRABLE, value BYTEA NOT NULL, expires_at BIGINT)`},
			[]string{"key", "non-deferrable"}},
		{"extra NOT NULL column", []string{`CREATE TABLE %s (key TEXT PRIMARY KEY, value BYTEA NOT NULL, expires_at BIGINT, owner TEXT NOT NULL)`},
			[]string{"owner", "NOT NULL without a default"}},
		{"value JSON", []string{`CREATE TABLE %s (key TEXT PRIMARY KEY, value JSON NOT NULL, expires_at BIGINT)`},
			[]string{"value", "JSON", "must be BYTEA"}},
		{"value JSONB", []string{`CREATE TABLE %s (key TEXT PRIMARY KEY, value JSONB NOT NULL, expires_at BIGINT)`},
			[]string{"value", "JSONB", "must be BYTEA"}},
		{"value TEXT", []string{`CREATE TABLE %s (key TEXT PRIMARY KEY, value TEXT NOT NULL, expires_at BIGINT)`},
			[]string{"value", "TEXT", "must be BYTEA"}},
		{"key VARCHAR(100)", []string{`CREATE TABLE %s (key VARCHAR(100) PRIMARY KEY, value BYTEA NOT NULL, expires_at BIGINT)`},
			[]string{"key", "CHARACTER VARYING(100)", "must be TEXT"}},
		{"key BYTEA", []string{`CREATE TABLE %s (key BYTEA PRIMARY KEY, value BYTEA NOT NULL, expires_at BIGINT)`},
			[]string{"key", "BYTEA", "must be TEXT"}},
		{"no value column", []string{`CREATE TABLE %s (key TEXT PRIMARY KEY, data BYTEA NOT NULL, expires_at BIGINT)`},
			[]string{"no column value", "must be BYTEA"}},
		{"a view", []string{`CREATE VIEW %s AS SELECT 'k'::text AS key, ''::bytea AS value, NULL::bigint AS expires_at`},
			[]string{"not a table"}},
	}
	sqlite := []badTable{
		{"expires_at DATETIME", []string{`CREATE TABLE %s (key TEXT PRIMARY KEY, value BLOB NOT NULL, expires_at DATETIME)`},
			[]string{"expires_at", "DATETIME", "must be INTEGER"}},
		{"expires_at TEXT", []string{`CREATE TABLE %s (key TEXT PRIMARY KEY, value BLOB NOT NULL, expires_at TEXT)`},
			[]string{"expires_at", "TEXT", "must be INTEGER"}},
		{"expires_at NOT NULL", []string{`CREATE TABLE %s (key TEXT PRIMARY KEY, value BLOB NOT NULL, expires_at INTEGER NOT NULL)`},
			[]string{"expires_at", "NOT NULL", "must allow NULL"}},
		{"no primary key", []string{`CREATE TABLE %s (key TEXT, value BLOB NOT NULL, expires_at INTEGER)`},
			[]string{"key", "PRIMARY KEY"}},
		{"partial unique index", []string{`CREATE TABLE %s (key TEXT, value BLOB NOT NULL, expires_at INTEGER)`,
			`CREATE UNIQUE INDEX %s_k ON %s (key) WHERE expires_at IS NULL`},
			[]string{"key", "PRIMARY KEY"}},
		{"key COLLATE NOCASE", []string{`CREATE TABLE %s (key TEXT COLLATE NOCASE PRIMARY KEY, value BLOB NOT NULL, expires_at INTEGER)`},
			[]string{"key", "NOCASE", "BINARY"}},
		{"extra NOT NULL column", []string{`CREATE TABLE %s (key TEXT PRIMARY KEY, value BLOB NOT NULL, expires_at INTEGER, owner TEXT NOT NULL)`},
			[]string{"owner", "NOT NULL without a default"}},
		{"value TEXT", []string{`CREATE TABLE %s (key TEXT PRIMARY KEY, value TEXT NOT NULL, expires_at INTEGER)`},
			[]string{"value", "TEXT", "must be BLOB"}},
		{"value JSON", []string{`CREATE TABLE %s (key TEXT PRIMARY KEY, value JSON NOT NULL, expires_at INTEGER)`},
			[]string{"value", "JSON", "must be BLOB"}},
		{"key BLOB", []string{`CREATE TABLE %s (key BLOB PRIMARY KEY, value BLOB NOT NULL, expires_at INTEGER)`},
			[]string{"key", "BLOB", "must be TEXT"}},
	}
	check := func(t *testing.T, db *sql.DB, cases []badTable) {
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				table := randomTable()
				quoted := `"` + table + `"`
				t.Cleanup(func() {
					db.Exec("DROP VIEW IF EXISTS " + quoted)
					db.Exec("DROP TABLE IF EXISTS " + quoted)
				})
				for _, stmt := range tc.ddl {
					stmt = strings.ReplaceAll(stmt, "%s_k", `"`+table+`_k"`)
					if _, err := db.Exec(strings.ReplaceAll(stmt, "%s", quoted)); err != nil {
						t.Fatalf("%s: %v", stmt, err)
					}
				}
				for _, skip := range []bool{true, false} {
					s, err := New(db, Options{Table: table, SkipCreate: skip, CleanupInterval: -1})
					if err == nil {
						s.Close()
						t.Fatalf("New(SkipCreate: %v) on a table with %s succeeded, want an error", skip, tc.name)
					}
					for _, w := range tc.want {
						if !strings.Contains(err.Error(), w) {
							t.Errorf("New(SkipCreate: %v) on a table with %s = %v\nwant an error containing %q", skip, tc.name, err, w)
						}
					}
				}
			})
		}
	}
	t.Run("Postgres", func(t *testing.T) { check(t, postgresDB(t), postgres) })
	t.Run("SQLite", func(t *testing.T) { check(t, sqliteDB(t), sqlite) })
}

// TestPostgresNondeterministicCollation refuses a key column under which
// "a" and "A" are one key.
func TestPostgresNondeterministicCollation(t *testing.T) {
	db := postgresDB(t)
	coll := "sqlstore_test_ci_" + randomTable()[len("sqlstore_test_"):]
	if _, err := db.Exec(`CREATE COLLATION "` + coll + `" (provider = icu, locale = 'und-u-ks-level2', deterministic = false)`); err != nil {
		t.Skipf("skipping: this PostgreSQL cannot create a nondeterministic ICU collation: %v", err)
	}
	t.Cleanup(func() { db.Exec(`DROP COLLATION IF EXISTS "` + coll + `"`) })
	table := randomTable()
	t.Cleanup(func() { db.Exec(`DROP TABLE IF EXISTS "` + table + `"`) })
	if _, err := db.Exec(`CREATE TABLE "` + table + `" (key TEXT COLLATE "` + coll + `" PRIMARY KEY, value BYTEA NOT NULL, expires_at BIGINT)`); err != nil {
		t.Fatal(err)
	}
	s, err := New(db, Options{Table: table, SkipCreate: true, CleanupInterval: -1})
	if err == nil {
		s.Close()
		t.Fatal("New on a key column with a nondeterministic collation succeeded, want an error")
	}
	if !strings.Contains(err.Error(), "nondeterministic") || !strings.Contains(err.Error(), "key") {
		t.Fatalf("New = %v, want an error naming key and its nondeterministic collation", err)
	}
}

// TestNewAcceptsHarmlessDifferences: tables that differ from the
// documented DDL only in ways that cannot change what the store reads back
// are accepted, and work.
func TestNewAcceptsHarmlessDifferences(t *testing.T) {
	cases := map[Dialect][]string{
		Postgres: {
			`CREATE TABLE %s (key TEXT PRIMARY KEY, value BYTEA, expires_at BIGINT)`,
			`CREATE TABLE %s (key TEXT NOT NULL UNIQUE, value BYTEA NOT NULL, expires_at BIGINT, created_at TIMESTAMPTZ NOT NULL DEFAULT now(), note TEXT, id BIGINT GENERATED ALWAYS AS IDENTITY)`,
		},
		SQLite: {
			`CREATE TABLE %s (key TEXT PRIMARY KEY, value BLOB, expires_at INTEGER)`,
			`CREATE TABLE %s (key VARCHAR(2000) NOT NULL UNIQUE, value, expires_at BIGINT, created_at TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP, note TEXT)`,
			`CREATE TABLE %s (key TEXT PRIMARY KEY, value BLOB NOT NULL, expires_at INTEGER) WITHOUT ROWID`,
			`CREATE TABLE %s (key TEXT PRIMARY KEY, value BLOB NOT NULL, expires_at INTEGER) STRICT`,
		},
	}
	dialects(t, func(t *testing.T, db *sql.DB) {
		d, _ := resolveDialect(db, "")
		for _, stmt := range cases[d] {
			table := randomTable()
			if _, err := db.Exec(strings.ReplaceAll(stmt, "%s", `"`+table+`"`)); err != nil {
				t.Fatalf("%s: %v", stmt, err)
			}
			s := newTestStore(t, db, Options{Table: table, SkipCreate: true, CleanupInterval: -1})
			ctx := t.Context()
			if err := s.Set(ctx, "k", []byte("\x00\xff"), 0); err != nil {
				t.Fatalf("%s: Set: %v", stmt, err)
			}
			if ok, err := s.CompareAndSwap(ctx, "k", []byte("\x00\xff"), []byte("v2"), 0); err != nil || !ok {
				t.Fatalf("%s: CompareAndSwap = %v, %v", stmt, ok, err)
			}
			if got, err := s.Get(ctx, "k"); err != nil || string(got) != "v2" {
				t.Fatalf("%s: Get = %q, %v", stmt, got, err)
			}
		}
	})
}
