package pglock_test

import (
	"context"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	session "github.com/typedsession/session"
	"github.com/typedsession/session/internal/testenv"
	"github.com/typedsession/session/middleware"
	"github.com/typedsession/session/middleware/pglock"
	"github.com/typedsession/session/store/memstore"
)

// poolOf returns a pool of the test database with at most n connections,
// closed when t ends.
func poolOf(t *testing.T, n int32) *pgxpool.Pool {
	t.Helper()
	testPool(t) // skips without PostgreSQL
	cfg, err := pgxpool.ParseConfig(testenv.DatabaseURL())
	if err != nil {
		t.Fatal(err)
	}
	cfg.MaxConns = n
	pool, err := pgxpool.NewWithConfig(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	return pool
}

// TestDefaultsOnDefaultPool (issue 23): pglock.New(pool, Options{}) on a
// pool of pgxpool's default size (4 connections: the greater of 4 and the
// number of CPUs, so 4 on the machines this runs on; set here so that the
// test is the same everywhere), six users whose handlers each run one
// query on that pool. Each held lock keeps a connection; with more locks
// allowed than the pool has connections, the handlers find none and
// nobody ever unlocks: 0 of 6 updates were stored before the fix. Every
// update must be stored. The deadline only bounds a hang.
func TestDefaultsOnDefaultPool(t *testing.T) {
	pool := poolOf(t, 4)
	lk := pglock.New(pool, pglock.Options{Class: testClass()})
	t.Cleanup(func() { lk.Close() })
	st, err := memstore.New(memstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	type counter struct{ N int }
	m, err := session.New(session.Config[counter]{Store: st, Namespace: "c"})
	if err != nil {
		t.Fatal(err)
	}
	const users = 6
	h := middleware.Handle(m, func(_ context.Context, u int) (string, error) { return strconv.Itoa(u), nil },
		func(ctx context.Context, _ int) error {
			s, err := session.From[counter](ctx)
			if err != nil {
				return err
			}
			var one int
			if err := pool.QueryRow(ctx, "SELECT 1").Scan(&one); err != nil {
				return err
			}
			s.Data.N += one
			return nil
		}, middleware.Options{Locker: lk})
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	errs := make([]error, users)
	for u := range users {
		wg.Go(func() { errs[u] = h(ctx, u) })
	}
	wg.Wait()
	stored := 0
	var failed []string
	for u := range users {
		s, err := m.Load(t.Context(), strconv.Itoa(u))
		if err != nil {
			t.Fatal(err)
		}
		stored += s.Data.N
		if errs[u] != nil {
			failed = append(failed, errs[u].Error())
		}
	}
	if stored != users {
		t.Errorf("%d of %d updates stored; errors: %s", stored, users, strings.Join(failed, "; "))
	}
}

// TestMaxConnsBelowPool: the locks never hold every connection of the
// pool. On a pool of 4, the default lets 2 locks hold connections at once
// (a third key waits for a slot); MaxConns equal to the pool's size, or a
// pool of one connection, makes New panic with a message that says why.
func TestMaxConnsBelowPool(t *testing.T) {
	pool := poolOf(t, 4)
	l := pglock.New(pool, pglock.Options{Class: testClass()})
	t.Cleanup(func() { l.Close() })
	u1, err := l.Lock(t.Context(), "one")
	if err != nil {
		t.Fatal(err)
	}
	u2, err := l.Lock(t.Context(), "two")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
	defer cancel()
	if _, err := l.Lock(ctx, "three"); err == nil {
		t.Fatal("a third lock on a pool of 4 was granted with the default MaxConns; want 2 at most")
	}
	u1()
	u2()

	for _, tc := range []struct {
		name string
		pool int32
		max  int
	}{
		{"MaxConns equal to the pool", 4, 4},
		{"MaxConns above the pool", 4, 8},
		{"default on a pool of one", 1, 0},
	} {
		p := poolOf(t, tc.pool)
		func() {
			defer func() {
				r := recover()
				if s, _ := r.(string); !strings.Contains(s, "MaxConns") {
					t.Errorf("%s: New did not panic with a message about MaxConns (recovered %v)", tc.name, r)
				}
			}()
			pglock.New(p, pglock.Options{MaxConns: tc.max})
		}()
	}
}
