package mysqltest

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/typedsession/session/internal/testenv"
	"github.com/typedsession/session/store"
	"github.com/typedsession/session/store/sqlstore"
	"github.com/typedsession/session/store/storetest"
)

// baseDSN is the server the tests use, without the options they add.
func baseDSN() string {
	if dsn := os.Getenv("MYSQL_DSN"); dsn != "" {
		return dsn
	}
	return "root@tcp(127.0.0.1:3306)/test"
}

// dsn returns baseDSN with the given options set (clientFoundRows=true
// unless the options say otherwise).
func dsn(t testing.TB, opts map[string]string) string {
	t.Helper()
	cfg, err := mysql.ParseDSN(baseDSN())
	if err != nil {
		t.Fatalf("MYSQL_DSN: %v", err)
	}
	cfg.ClientFoundRows = true
	for k, v := range opts {
		switch k {
		case "clientFoundRows":
			cfg.ClientFoundRows = v == "true"
		case "interpolateParams":
			cfg.InterpolateParams = v == "true"
		default:
			t.Fatalf("dsn: unknown option %s", k)
		}
	}
	return cfg.FormatDSN()
}

// openDB opens the server, skipping the test when none answers (failing it
// when CI=true).
func openDB(t testing.TB, opts map[string]string) *sql.DB {
	t.Helper()
	db, err := sql.Open("mysql", dsn(t, opts))
	if err == nil {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		err = db.PingContext(ctx)
		cancel()
		if err != nil {
			db.Close()
		}
	}
	if err != nil {
		testenv.SkipOrFail(t, "no MySQL or MariaDB answers at %s (set MYSQL_DSN): %v", baseDSN(), err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// randomTable returns a table name no other test uses.
func randomTable() string {
	b := make([]byte, 8)
	rand.Read(b)
	return "sqlstore_test_" + hex.EncodeToString(b)
}

func dropTable(t testing.TB, db *sql.DB, table string) {
	t.Helper()
	if _, err := db.Exec("DROP TABLE IF EXISTS `" + table + "`"); err != nil {
		t.Errorf("DROP TABLE %s: %v", table, err)
	}
}

// newTestStore returns a store on a fresh table of db, dropped at cleanup.
func newTestStore(t testing.TB, db *sql.DB, opts sqlstore.Options) *sqlstore.Store {
	t.Helper()
	if opts.Table == "" {
		opts.Table = randomTable()
	}
	s, err := sqlstore.New(db, opts)
	if err != nil {
		t.Fatalf("New(%+v): %v", opts, err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil && !errors.Is(err, store.ErrClosed) {
			t.Errorf("Close: %v", err)
		}
		dropTable(t, db, opts.Table)
	})
	return s
}

func TestConformance(t *testing.T) {
	db := openDB(t, nil)
	storetest.Run(t, func(t *testing.T) store.Store {
		return newTestStore(t, db, sqlstore.Options{})
	})
}

// TestConformanceInterpolated runs the suite with interpolateParams=true,
// which the package documentation recommends (one round trip per
// statement instead of a prepare, an execute and a close): the driver then
// escapes the values into the SQL text, binary ones included.
func TestConformanceInterpolated(t *testing.T) {
	db := openDB(t, map[string]string{"interpolateParams": "true"})
	storetest.Run(t, func(t *testing.T) store.Store {
		return newTestStore(t, db, sqlstore.Options{})
	})
}

// TestPersistent runs the persistence cases: a store closed, its *sql.DB
// closed, and both opened again on the same table find what was written.
// Each case's dir names its table.
func TestPersistent(t *testing.T) {
	check := openDB(t, nil)
	var (
		mu     sync.Mutex
		tables = map[string]bool{}
	)
	t.Cleanup(func() {
		for table := range tables {
			dropTable(t, check, table)
		}
	})
	storetest.RunPersistent(t, func(t *testing.T, dir string) (store.Store, func() error) {
		sum := sha256.Sum256([]byte(dir))
		table := "sqlstore_persist_" + hex.EncodeToString(sum[:8])
		mu.Lock()
		tables[table] = true
		mu.Unlock()
		db, err := sql.Open("mysql", dsn(t, nil))
		if err != nil {
			t.Fatal(err)
		}
		s, err := sqlstore.New(db, sqlstore.Options{Table: table, CleanupInterval: -1})
		if err != nil {
			db.Close()
			t.Fatal(err)
		}
		return s, func() error {
			err := s.Close()
			db.Close()
			return err
		}
	})
}

const (
	helperTableEnv = "SQLSTORE_MYSQL_HELPER_TABLE"
	helperNEnv     = "SQLSTORE_MYSQL_HELPER_N"
)

// TestHelperProcess is the child of TestCrossProcessCounter: it increments
// the shared counter N times through its own *sql.DB and store.
func TestHelperProcess(t *testing.T) {
	table := os.Getenv(helperTableEnv)
	if table == "" {
		t.Skip("child process of TestCrossProcessCounter; runs only when it starts it")
	}
	err := func() error {
		n, err := strconv.Atoi(os.Getenv(helperNEnv))
		if err != nil {
			return err
		}
		db, err := sql.Open("mysql", dsn(t, nil))
		if err != nil {
			return err
		}
		defer db.Close()
		s, err := sqlstore.New(db, sqlstore.Options{Table: table, CleanupInterval: -1})
		if err != nil {
			return err
		}
		defer s.Close()
		for range n {
			if err := storetest.Increment(context.Background(), s, "counter"); err != nil {
				return err
			}
		}
		return s.Close()
	}()
	if err != nil {
		fmt.Fprintln(os.Stderr, "helper:", err)
		os.Exit(1)
	}
	os.Exit(0)
}

// TestCrossProcessCounter: four processes, each with its own connection
// pool, increment one key by compare-and-swap (the first write of each
// process racing on an absent key); none of the increments is lost.
func TestCrossProcessCounter(t *testing.T) {
	db := openDB(t, nil)
	table := randomTable()
	s := newTestStore(t, db, sqlstore.Options{Table: table, CleanupInterval: -1})
	const procs, each = 4, 100
	var wg sync.WaitGroup
	errs := make(chan error, procs)
	for range procs {
		wg.Go(func() {
			cmd := exec.CommandContext(t.Context(), os.Args[0], "-test.run=^TestHelperProcess$", "-test.count=1")
			cmd.Env = append(os.Environ(), helperTableEnv+"="+table, helperNEnv+"="+strconv.Itoa(each))
			if out, err := cmd.CombinedOutput(); err != nil {
				errs <- fmt.Errorf("child: %v\n%s", err, out)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	v, err := s.Get(t.Context(), "counter")
	if err != nil {
		t.Fatal(err)
	}
	if n, err := storetest.Count(v); err != nil || n != procs*each {
		t.Fatalf("after %d increments in %d processes the counter is %d (%v): updates were lost", procs*each, procs, n, err)
	}
}

// TestLostReplies: a write whose reply is lost after the server ran it is
// not sent again by the store, go-sql-driver/mysql or database/sql (which
// resends only on driver.ErrBadConn, which the driver returns only before
// anything was written), and a conditional write then returns an error.
func TestLostReplies(t *testing.T) {
	direct := openDB(t, nil)
	table := randomTable()
	other := newTestStore(t, direct, sqlstore.Options{Table: table, CleanupInterval: -1})
	cfg, err := mysql.ParseDSN(dsn(t, nil))
	if err != nil {
		t.Fatal(err)
	}
	testenv.LostReplies(t, cfg.Addr, func(t *testing.T, proxyAddr string) (store.Store, store.Store) {
		pc := cfg.Clone()
		pc.Addr = proxyAddr
		viaProxy, err := sql.Open("mysql", pc.FormatDSN())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { viaProxy.Close() })
		s, err := sqlstore.New(viaProxy, sqlstore.Options{Table: table, CleanupInterval: -1})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s, other
	}, nil)
}
