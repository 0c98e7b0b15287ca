package sqlstore

import (
	"github.com/typedsession/session/internal/testenv"

	"bytes"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/typedsession/session/store"
)

// TestSQLiteHelperProcess is not a test: it is the child process of
// TestSQLiteTwoProcessesNew, started by re-executing the test binary.
func TestSQLiteHelperProcess(t *testing.T) {
	path := os.Getenv("SQLSTORE_HELPER_DB")
	if path == "" {
		t.Skip("helper process of TestSQLiteTwoProcessesNew")
	}
	start, _ := strconv.ParseInt(os.Getenv("SQLSTORE_HELPER_START"), 10, 64)
	time.Sleep(time.Until(time.Unix(0, start)))
	err := func() error {
		db, err := sql.Open("sqlite", sqliteDSN(path))
		if err != nil {
			return err
		}
		defer db.Close()
		s, err := New(db, Options{CleanupInterval: -1})
		if err != nil {
			return err
		}
		defer s.Close()
		return s.Set(t.Context(), "pid:"+strconv.Itoa(os.Getpid()), []byte("v"), 0)
	}()
	if err != nil {
		fmt.Fprintf(os.Stderr, "HELPER ERROR: %v\n", err)
		os.Exit(3)
	}
}

// TestSQLiteTwoProcessesNew is issue 11 item 6: two processes open one new
// SQLite file at the same moment (WAL and busy_timeout in the DSN, as the
// package documentation recommends) and each calls New. Both must start:
// New waits for the other process's locks, including the WAL switch that
// busy_timeout does not cover.
func TestSQLiteTwoProcessesNew(t *testing.T) {
	testenv.Slow(t)
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	const rounds, procs = 50, 4
	failed := 0
	for round := range rounds {
		path := filepath.Join(t.TempDir(), "sessions.db")
		start := time.Now().Add(200 * time.Millisecond).UnixNano()
		cmds := make([]*exec.Cmd, procs)
		outs := make([]*bytes.Buffer, procs)
		for i := range cmds {
			cmd := exec.Command(exe, "-test.run=^TestSQLiteHelperProcess$", "-test.count=1")
			cmd.Env = append(os.Environ(), "SQLSTORE_HELPER_DB="+path, "SQLSTORE_HELPER_START="+strconv.FormatInt(start, 10))
			outs[i] = new(bytes.Buffer)
			cmd.Stdout, cmd.Stderr = outs[i], outs[i]
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			cmds[i] = cmd
		}
		for i, cmd := range cmds {
			if err := cmd.Wait(); err != nil {
				failed++
				if failed <= 3 {
					t.Errorf("round %d, process %d: %v\n%s", round, i, err, outs[i])
				}
			}
		}
		// Both processes wrote their key.
		db, err := sql.Open("sqlite", sqliteDSN(path))
		if err != nil {
			t.Fatal(err)
		}
		var n int
		if err := db.QueryRow(`SELECT count(*) FROM "sessions"`).Scan(&n); err != nil && failed == 0 {
			t.Fatalf("round %d: %v", round, err)
		}
		db.Close()
		if failed == 0 && n != procs {
			t.Fatalf("round %d: %d keys, want %d", round, n, procs)
		}
	}
	if failed > 0 {
		t.Fatalf("%d of %d processes failed to start a store", failed, rounds*procs)
	}
}

// makeSQLiteFile makes a SQLite database in WAL mode with the store's
// table and one key, closed cleanly (no -wal or -shm file left).
func makeSQLiteFile(t *testing.T, dir string) string {
	t.Helper()
	path := filepath.Join(dir, "sessions.db")
	db, err := sql.Open("sqlite", sqliteDSN(path))
	if err != nil {
		t.Fatal(err)
	}
	s, err := New(db, Options{CleanupInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Set(t.Context(), "k", []byte("v"), 0); err != nil {
		t.Fatal(err)
	}
	s.Close()
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestSQLiteReadOnlyNew is the second half of issue 11 item 6: New on a
// database it cannot write says that the database is read-only, not that
// reading PRAGMA busy_timeout failed.
func TestSQLiteReadOnlyNew(t *testing.T) {
	check := func(t *testing.T, dsn string) {
		t.Helper()
		db, err := sql.Open("sqlite", dsn)
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		s, err := New(db, Options{CleanupInterval: -1})
		if err == nil {
			s.Close()
			t.Fatalf("New on a read-only database succeeded, want an error")
		}
		if !strings.Contains(err.Error(), "read-only") || strings.Contains(err.Error(), "busy_timeout:") {
			t.Fatalf("New on a read-only database = %v\nwant an error that says the database is read-only", err)
		}
		t.Logf("New: %v", err)
	}
	// A database opened read-only in a writable folder serves reads: New
	// starts (reporting the CREATE it could not run through OnError) and
	// a write names the cause.
	t.Run("mode=ro", func(t *testing.T) {
		path := makeSQLiteFile(t, t.TempDir())
		db, err := sql.Open("sqlite", "file:"+path+"?mode=ro&_pragma=busy_timeout(10000)")
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		var reported []error
		s, err := New(db, Options{CleanupInterval: -1, OnError: func(err error) { reported = append(reported, err) }})
		if err != nil {
			t.Fatalf("New on a database opened with mode=ro: %v", err)
		}
		defer s.Close()
		t.Logf("reported through OnError: %v", reported)
		if got, err := s.Get(t.Context(), "k"); err != nil || string(got) != "v" {
			t.Fatalf("Get = %q, %v; want v", got, err)
		}
		if _, _, err := s.GetWithTTL(t.Context(), "k"); err != nil {
			t.Fatalf("GetWithTTL: %v", err)
		}
		if err := s.Set(t.Context(), "k", []byte("w"), 0); err == nil || !strings.Contains(err.Error(), "readonly") {
			t.Fatalf("Set on a read-only database = %v, want an error saying it is read-only", err)
		}
	})
	t.Run("read-only folder", func(t *testing.T) {
		dir := t.TempDir()
		path := makeSQLiteFile(t, dir)
		if os.Geteuid() != 0 {
			if err := os.Chmod(dir, 0o555); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { os.Chmod(dir, 0o755) })
			check(t, sqliteDSN(path))
			return
		}
		// root ignores permissions: mount the folder read-only.
		ro := filepath.Join(t.TempDir(), "ro")
		if err := os.Mkdir(ro, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := syscall.Mount(dir, ro, "", syscall.MS_BIND, ""); err != nil {
			t.Skipf("skipping: cannot bind-mount as root here: %v", err)
		}
		t.Cleanup(func() { syscall.Unmount(ro, 0) })
		if err := syscall.Mount("", ro, "", syscall.MS_BIND|syscall.MS_REMOUNT|syscall.MS_RDONLY, ""); err != nil {
			t.Skipf("skipping: cannot remount read-only here: %v", err)
		}
		check(t, sqliteDSN(filepath.Join(ro, "sessions.db")))
	})
}

// TestSQLiteNewWaitsForLock: New on a database whose write lock another
// connection holds waits for it (busy_timeout and then its own retries)
// rather than failing, and returns once the lock is released.
func TestSQLiteNewWaitsForLock(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sessions.db")
	holder, err := sql.Open("sqlite", sqliteDSN(path))
	if err != nil {
		t.Fatal(err)
	}
	defer holder.Close()
	tx, err := holder.Begin()
	if err != nil {
		t.Fatal(err)
	}
	// Take the write lock.
	if _, err := tx.Exec("CREATE TABLE other (x)"); err != nil {
		t.Fatal(err)
	}
	db, err := sql.Open("sqlite", path+"?_pragma=busy_timeout(20)&_pragma=journal_mode(WAL)")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	done := make(chan error, 1)
	go func() {
		s, err := New(db, Options{CleanupInterval: -1})
		if err == nil {
			err = s.Set(t.Context(), "k", []byte("v"), 0)
			s.Close()
		}
		done <- err
	}()
	time.Sleep(200 * time.Millisecond) // ten busy timeouts; correct whenever the lock goes
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatalf("New while another connection held the write lock: %v", err)
	}
}

// TestScanSkipsRefusedKeyRows: a row written by other means under a key
// that store.CheckKey refuses (no method can reach it) is not listed, and
// is reported to OnError; before, Scan listed it, and the inspector's ls
// stopped at its first Get ("invalid key"). The store's own rows are
// listed.
func TestScanSkipsRefusedKeyRows(t *testing.T) {
	db := sqliteDB(t)
	var reported []error
	s, err := New(db, Options{CleanupInterval: -1, OnError: func(err error) { reported = append(reported, err) }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	ctx := t.Context()
	if err := s.Set(ctx, "good", []byte("v"), 0); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"bad\xff", strings.Repeat("k", store.MaxKeyLen+1)} {
		if _, err := db.ExecContext(ctx, `INSERT INTO sessions (key, value) VALUES (?, ?)`, k, []byte("v")); err != nil {
			t.Fatal(err)
		}
	}
	var keys []string
	if err := s.Scan(ctx, "", func(k string) error { keys = append(keys, k); return nil }); err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(keys) != "[good]" {
		t.Errorf("Scan listed %q, want only the store's own key \"good\"", keys)
	}
	if len(reported) != 2 {
		t.Fatalf("OnError got %d errors, want one per skipped row: %v", len(reported), reported)
	}
	for _, err := range reported {
		if !errors.Is(err, store.ErrInvalidKey) {
			t.Errorf("OnError got %v, want an error matching store.ErrInvalidKey", err)
		}
	}
}
