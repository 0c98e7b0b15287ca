package mysqltest

import (
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/typedsession/session/store/sqlstore"
)

// TestFoundRowsRequired: a connection that reports changed rows instead of
// found rows is refused by New with an error naming clientFoundRows. On
// such a connection a swap that writes the bytes already stored would read
// as "not swapped".
func TestFoundRowsRequired(t *testing.T) {
	db := openDB(t, map[string]string{"clientFoundRows": "false"})
	table := randomTable()
	t.Cleanup(func() { dropTable(t, db, table) })
	s, err := sqlstore.New(db, sqlstore.Options{Table: table, CleanupInterval: -1})
	if err == nil {
		s.Close()
		t.Fatal("New on a connection without clientFoundRows succeeded, want an error")
	}
	if !strings.Contains(err.Error(), "clientFoundRows=true") {
		t.Fatalf("New = %v, want an error that names clientFoundRows=true", err)
	}
	// The probe row was never committed.
	var n int
	if err := db.QueryRow("SELECT COUNT(*) FROM `" + table + "`").Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Fatalf("New left %d rows in the table, want 0", n)
	}
}

// TestResendSameExpiry: a swap resent within the same millisecond writes
// exactly the bytes and expiry already stored, which MySQL counts as no
// change; with found rows it still reports true (the resend rule).
func TestResendSameExpiry(t *testing.T) {
	db := openDB(t, nil)
	s := newTestStore(t, db, sqlstore.Options{CleanupInterval: -1})
	ctx := t.Context()
	for _, old := range [][]byte{nil, []byte("v0")} {
		if err := s.Delete(ctx, "k"); err != nil {
			t.Fatal(err)
		}
		if old != nil {
			if err := s.Set(ctx, "k", old, 0); err != nil {
				t.Fatal(err)
			}
		}
		for i := range 3 {
			// ttl 0: the expiry is NULL every time, so the row is
			// unchanged from the second call on.
			ok, err := s.CompareAndSwap(ctx, "k", old, []byte("v1"), 0)
			if err != nil || !ok {
				t.Fatalf("old %q, call %d: CompareAndSwap = %v, %v; want true, nil", old, i, ok, err)
			}
		}
		if err := s.Touch(ctx, "k", 0); err != nil {
			t.Fatalf("Touch(0) of a key without expiry = %v, want nil", err)
		}
	}
}

// TestNewRefusesBadTable: New reads the table from information_schema and
// refuses, naming the column or index, a table the store could not serve
// byte for byte.
func TestNewRefusesBadTable(t *testing.T) {
	db := openDB(t, nil)
	cases := []struct {
		name, ddl, want string
	}{
		{"key VARCHAR", "CREATE TABLE %s (`key` VARCHAR(255) NOT NULL PRIMARY KEY, value LONGBLOB NOT NULL, expires_at BIGINT)", "column key is VARCHAR(255)"},
		{"key too short", "CREATE TABLE %s (`key` VARBINARY(255) NOT NULL PRIMARY KEY, value LONGBLOB NOT NULL, expires_at BIGINT)", "column key is VARBINARY(255)"},
		{"key BINARY", "CREATE TABLE %s (`key` BINARY(255) NOT NULL PRIMARY KEY, value LONGBLOB NOT NULL, expires_at BIGINT)", "column key is BINARY(255)"},
		{"value BLOB", "CREATE TABLE %s (`key` VARBINARY(1024) NOT NULL PRIMARY KEY, value BLOB NOT NULL, expires_at BIGINT)", "column value is BLOB"},
		{"value TEXT", "CREATE TABLE %s (`key` VARBINARY(1024) NOT NULL PRIMARY KEY, value LONGTEXT NOT NULL, expires_at BIGINT)", "column value is LONGTEXT"},
		{"expires_at unsigned", "CREATE TABLE %s (`key` VARBINARY(1024) NOT NULL PRIMARY KEY, value LONGBLOB NOT NULL, expires_at BIGINT UNSIGNED)", "column expires_at is BIGINT"},
		{"expires_at NOT NULL", "CREATE TABLE %s (`key` VARBINARY(1024) NOT NULL PRIMARY KEY, value LONGBLOB NOT NULL, expires_at BIGINT NOT NULL)", "expires_at is NOT NULL"},
		{"no value", "CREATE TABLE %s (`key` VARBINARY(1024) NOT NULL PRIMARY KEY, expires_at BIGINT)", "no column value"},
		{"key not unique", "CREATE TABLE %s (id INT AUTO_INCREMENT PRIMARY KEY, `key` VARBINARY(1024) NOT NULL, value LONGBLOB NOT NULL, expires_at BIGINT)", "neither the primary key"},
		{"prefix index", "CREATE TABLE %s (`key` VARBINARY(1024) NOT NULL, value LONGBLOB NOT NULL, expires_at BIGINT, UNIQUE KEY k (`key`(100)))", "only a prefix of key"},
		{"second unique index", "CREATE TABLE %s (`key` VARBINARY(1024) NOT NULL PRIMARY KEY, value LONGBLOB NOT NULL, expires_at BIGINT, tag INT DEFAULT 0, UNIQUE KEY t (tag))", "unique index t"},
		{"MyISAM", "CREATE TABLE %s (`key` VARBINARY(1024) NOT NULL, value LONGBLOB NOT NULL, expires_at BIGINT) ENGINE=MyISAM", "InnoDB"},
		{"extra NOT NULL", "CREATE TABLE %s (`key` VARBINARY(1024) NOT NULL PRIMARY KEY, value LONGBLOB NOT NULL, expires_at BIGINT, owner INT NOT NULL)", "extra column owner"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			table := randomTable()
			t.Cleanup(func() { dropTable(t, db, table) })
			if _, err := db.Exec(strings.Replace(tc.ddl, "%s", "`"+table+"`", 1)); err != nil {
				t.Fatal(err)
			}
			for _, skip := range []bool{true, false} {
				s, err := sqlstore.New(db, sqlstore.Options{Table: table, SkipCreate: skip, CleanupInterval: -1})
				if err == nil {
					s.Close()
					t.Fatalf("New(SkipCreate: %v) accepted the table, want an error containing %q", skip, tc.want)
				}
				if !strings.Contains(err.Error(), tc.want) {
					t.Fatalf("New(SkipCreate: %v) = %v\nwant an error containing %q", skip, err, tc.want)
				}
			}
		})
	}
	t.Run("view", func(t *testing.T) {
		base, view := randomTable(), randomTable()
		t.Cleanup(func() {
			db.Exec("DROP VIEW IF EXISTS `" + view + "`")
			dropTable(t, db, base)
		})
		newTestStore(t, db, sqlstore.Options{Table: base, CleanupInterval: -1})
		if _, err := db.Exec("CREATE VIEW `" + view + "` AS SELECT * FROM `" + base + "`"); err != nil {
			t.Fatal(err)
		}
		_, err := sqlstore.New(db, sqlstore.Options{Table: view, SkipCreate: true, CleanupInterval: -1})
		if err == nil || !strings.Contains(err.Error(), "not a table") {
			t.Fatalf("New on a view = %v, want an error saying it is not a table", err)
		}
	})
}

// TestNewAcceptsHarmlessDifferences: tables that differ from the documented
// DDL only in what cannot change what the store reads back work.
func TestNewAcceptsHarmlessDifferences(t *testing.T) {
	db := openDB(t, nil)
	for name, ddl := range map[string]string{
		"longer key":          "CREATE TABLE %s (`key` VARBINARY(2048) NOT NULL PRIMARY KEY, value LONGBLOB NOT NULL, expires_at BIGINT)",
		"no expires_at index": "CREATE TABLE %s (`key` VARBINARY(1024) NOT NULL PRIMARY KEY, value LONGBLOB NOT NULL, expires_at BIGINT)",
		"extra columns":       "CREATE TABLE %s (`key` VARBINARY(1024) NOT NULL PRIMARY KEY, value LONGBLOB NOT NULL, expires_at BIGINT, note TEXT, created TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP, n INT NOT NULL DEFAULT 0)",
		"unique, not primary": "CREATE TABLE %s (id BIGINT NOT NULL AUTO_INCREMENT, `key` VARBINARY(1024) NOT NULL, value LONGBLOB NOT NULL, expires_at BIGINT, KEY (id), UNIQUE KEY k (`key`))",
		"auto-increment id":   "CREATE TABLE %s (id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY, `key` VARBINARY(1024) NOT NULL UNIQUE, value LONGBLOB NOT NULL, expires_at BIGINT)",
		"upper-case columns":  "CREATE TABLE %s (`KEY` VARBINARY(1024) NOT NULL PRIMARY KEY, VALUE LONGBLOB NOT NULL, EXPIRES_AT BIGINT)",
	} {
		t.Run(name, func(t *testing.T) {
			table := randomTable()
			if _, err := db.Exec(strings.Replace(ddl, "%s", "`"+table+"`", 1)); err != nil {
				t.Fatal(err)
			}
			s := newTestStore(t, db, sqlstore.Options{Table: table, SkipCreate: true, CleanupInterval: -1})
			ctx := t.Context()
			if ok, err := s.CompareAndSwap(ctx, "k", nil, []byte("v"), time.Hour); err != nil || !ok {
				t.Fatalf("CompareAndSwap = %v, %v", ok, err)
			}
			if got, err := s.Get(ctx, "k"); err != nil || string(got) != "v" {
				t.Fatalf("Get = %q, %v; want v", got, err)
			}
		})
	}
}

// TestDocumentedDDL runs the MySQL DDL shown in the package documentation,
// then New with SkipCreate: a DBA who copies it gets a table New accepts.
// (The root module's TestDocumentedDDL checks that it is the DDL New runs.)
func TestDocumentedDDL(t *testing.T) {
	doc, err := os.ReadFile("../doc.go")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile("(?s)//\tCREATE TABLE IF NOT EXISTS `sessions` \\(.*?;\n").Find(doc)
	if m == nil {
		t.Fatal("doc.go shows no MySQL CREATE TABLE for `sessions`")
	}
	table := randomTable()
	stmt := strings.TrimSuffix(strings.ReplaceAll(string(m), "//\t", ""), ";\n")
	stmt = strings.ReplaceAll(stmt, "sessions", table)
	db := openDB(t, nil)
	if _, err := db.Exec(stmt); err != nil {
		t.Fatalf("%s: %v", stmt, err)
	}
	s := newTestStore(t, db, sqlstore.Options{Table: table, SkipCreate: true, CleanupInterval: -1})
	if err := s.Set(t.Context(), strings.Repeat("é", 512), []byte("v"), 0); err != nil {
		t.Fatalf("Set with a 1,024-byte key: %v", err)
	}
}

// TestSchemaQualifiedTable: Options.Table "database.table" works, the nil-old
// swap's INSERT and UPDATE included.
func TestSchemaQualifiedTable(t *testing.T) {
	db := openDB(t, nil)
	var schema string
	if err := db.QueryRow("SELECT DATABASE()").Scan(&schema); err != nil {
		t.Fatal(err)
	}
	table := randomTable()
	s, err := sqlstore.New(db, sqlstore.Options{Table: schema + "." + table, CleanupInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		s.Close()
		dropTable(t, db, table)
	})
	ctx := t.Context()
	if ok, err := s.CompareAndSwap(ctx, "k", nil, []byte("v1"), time.Hour); err != nil || !ok {
		t.Fatalf("CompareAndSwap(nil old) on an absent key = %v, %v; want true, nil", ok, err)
	}
	if ok, err := s.CompareAndSwap(ctx, "k", nil, []byte("v2"), time.Hour); err != nil || ok {
		t.Fatalf("CompareAndSwap(nil old) on a live key = %v, %v; want false, nil", ok, err)
	}
	if n, err := s.DeleteExpired(ctx); err != nil || n != 0 {
		t.Fatalf("DeleteExpired = %d, %v; want 0, nil", n, err)
	}
}

// TestDeleteExpired: the sweep deletes expired rows (in batches of 1,000)
// and no live one.
func TestDeleteExpired(t *testing.T) {
	db := openDB(t, nil)
	table := randomTable()
	s := newTestStore(t, db, sqlstore.Options{Table: table, CleanupInterval: -1})
	ctx := t.Context()
	// 1,500 rows that expired a minute ago by the database's clock, and
	// two live ones.
	if _, err := db.Exec("INSERT INTO `" + table + "` (`key`, value, expires_at) " +
		"SELECT CONCAT('old:', seq), 'x', (TIMESTAMPDIFF(MICROSECOND, '1970-01-01', UTC_TIMESTAMP(3)) DIV 1000) - 60000 FROM seq_1_to_1500"); err != nil {
		t.Skipf("MariaDB's sequence engine is missing: %v", err)
	}
	if err := s.Set(ctx, "live", []byte("v"), time.Hour); err != nil {
		t.Fatal(err)
	}
	if err := s.Set(ctx, "forever", []byte("v"), 0); err != nil {
		t.Fatal(err)
	}
	n, err := s.DeleteExpired(ctx)
	if err != nil || n != 1500 {
		t.Fatalf("DeleteExpired = %d, %v; want 1500, nil", n, err)
	}
	var left int
	if err := db.QueryRow("SELECT COUNT(*) FROM `" + table + "`").Scan(&left); err != nil {
		t.Fatal(err)
	}
	if left != 2 {
		t.Fatalf("%d rows left, want the 2 live ones", left)
	}
}
