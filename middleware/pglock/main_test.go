package pglock_test

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	_ "github.com/jackc/pgx/v5/stdlib"

	session "github.com/typedsession/session"
	"github.com/typedsession/session/internal/testenv"
	"github.com/typedsession/session/middleware"
	"github.com/typedsession/session/middleware/internal/replicatest"
	"github.com/typedsession/session/middleware/pglock"
	"github.com/typedsession/session/store/sqlstore"
)

// TestMain runs the test binary as a replica when the two-process tests
// started it as one.
func TestMain(m *testing.M) {
	if replicatest.IsReplica() {
		replicatest.RunReplica(buildReplica) // exits
	}
	os.Exit(m.Run())
}

// buildReplica is one replica of the two-process tests: its own database
// handle, store, manager, pool, Locker and middleware, from the settings
// the parent passed ("url", "table" of the store, "class" of the lock).
func buildReplica(r *replicatest.Replica) (middleware.Handler[*replicatest.Update], error) {
	db, err := sql.Open("pgx", r.Env("url"))
	if err != nil {
		return nil, err
	}
	db.SetMaxOpenConns(16)
	st, err := sqlstore.New(db, sqlstore.Options{Table: r.Env("table"), CleanupInterval: -1, SkipCreate: true})
	if err != nil {
		return nil, err
	}
	m, err := session.New(session.Config[replicatest.Counter]{Store: st, Namespace: "c"})
	if err != nil {
		return nil, err
	}
	pool, err := newPool(context.Background(), r.Env("url"))
	if err != nil {
		return nil, err
	}
	class, err := strconv.ParseInt(r.Env("class"), 10, 32)
	if err != nil {
		return nil, err
	}
	lk := pglock.New(pool, pglock.Options{Class: int32(class)})
	mw := middleware.New(m, replicatest.Key, middleware.Options{Locker: lk, OnError: r.OnError})
	return mw.Wrap(r.Handler), nil
}

// newPool returns a pool of 10 connections at most.
func newPool(ctx context.Context, url string) (*pgxpool.Pool, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, err
	}
	cfg.MaxConns = 10
	return pgxpool.NewWithConfig(ctx, cfg)
}

// testPool returns a pool of the test database, closed when t ends, or
// skips (fails under CI=true) when no PostgreSQL answers.
func testPool(t testing.TB) *pgxpool.Pool {
	t.Helper()
	pool, err := newPool(t.Context(), testenv.DatabaseURL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	// A deadline of its own: a PostgreSQL shared with other suites on a
	// loaded machine has taken over 5 s to answer a connection.
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	if err := pool.Ping(ctx); err != nil {
		testenv.SkipOrFail(t, "no PostgreSQL answers at %s (set DATABASE_URL): %v", testenv.DatabaseURL(), err)
	}
	return pool
}

// testClass returns a random advisory lock class, so that concurrent test
// runs do not share locks.
func testClass() int32 {
	var b [4]byte
	rand.Read(b[:])
	c := int32(uint32(b[0])<<24|uint32(b[1])<<16|uint32(b[2])<<8|uint32(b[3])) & 0x7fffffff
	if c == 0 {
		c = 1
	}
	return c
}

// testStore returns a sqlstore on a fresh table of the test database,
// dropped when t ends, and the table's name.
func testStore(t testing.TB) (*sqlstore.Store, string) {
	t.Helper()
	db, err := sql.Open("pgx", testenv.DatabaseURL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	b := make([]byte, 6)
	rand.Read(b)
	table := "pglock_" + hex.EncodeToString(b)
	st, err := sqlstore.New(db, sqlstore.Options{Table: table, CleanupInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		st.Close()
		db.Exec(`DROP TABLE IF EXISTS "` + table + `"`)
	})
	return st, table
}
