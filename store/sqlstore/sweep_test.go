package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"github.com/typedsession/session/store"
	"strings"
	"sync"
	"testing"
	"time"
)

// waitForLockWait returns once a backend of db waits on a lock while running
// a statement that contains fragment, or when done is closed (the statement
// finished without waiting, which the caller reports).
func waitForLockWait(t *testing.T, db *sql.DB, fragment string, done <-chan struct{}) bool {
	t.Helper()
	for {
		var n int
		err := db.QueryRow(`SELECT count(*) FROM pg_stat_activity
			WHERE wait_event_type = 'Lock' AND position($1 in query) > 0`, fragment).Scan(&n)
		if err != nil {
			t.Fatal(err)
		}
		if n > 0 {
			return true
		}
		select {
		case <-done:
			return false
		case <-time.After(2 * time.Millisecond):
		}
	}
}

// TestPostgresSweepSparesRowRefreshedWhileWaiting forces the interleaving
// of issue 11 item 4: the sweep's DELETE has picked an expired row and waits
// for its lock, held by a third transaction that refreshes the row (the way
// GetAndTouch extends it or Set re-creates it) and commits. The DELETE must
// re-check the expiry on the row version it deletes, and spare the row.
func TestPostgresSweepSparesRowRefreshedWhileWaiting(t *testing.T) {
	db := postgresDB(t)
	for _, tc := range []struct {
		name, refresh string
		want          string
	}{
		{"extended", "UPDATE %s SET expires_at = 9000000000000 WHERE key = $1", "old"},
		{"re-created without expiry", "UPDATE %s SET value = 'new', expires_at = NULL WHERE key = $1", "new"},
		{"re-created with expiry", "INSERT INTO %s (key, value, expires_at) VALUES ($1, 'new', 9000000000000) ON CONFLICT (key) DO UPDATE SET value = excluded.value, expires_at = excluded.expires_at", "new"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newTestStore(t, db, Options{CleanupInterval: -1})
			ctx := t.Context()
			// Expired at 1 ms after the epoch by any clock.
			if _, err := db.ExecContext(ctx, "INSERT INTO "+s.table+" (key, value, expires_at) VALUES ($1, 'old', 1)", "k"); err != nil {
				t.Fatal(err)
			}
			tx, err := db.BeginTx(ctx, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer tx.Rollback()
			if _, err := tx.ExecContext(ctx, "SELECT 1 FROM "+s.table+" WHERE key = $1 FOR UPDATE", "k"); err != nil {
				t.Fatal(err)
			}
			type result struct {
				n   int64
				err error
			}
			res := make(chan result, 1)
			done := make(chan struct{})
			go func() {
				defer close(done)
				n, err := s.DeleteExpired(context.Background())
				res <- result{n, err}
			}()
			if !waitForLockWait(t, db, "DELETE FROM "+s.table, done) {
				r := <-res
				t.Fatalf("DeleteExpired returned (%d, %v) without waiting for the row lock", r.n, r.err)
			}
			if _, err := tx.ExecContext(ctx, strings.ReplaceAll(tc.refresh, "%s", s.table), "k"); err != nil {
				t.Fatal(err)
			}
			if err := tx.Commit(); err != nil {
				t.Fatal(err)
			}
			r := <-res
			if r.err != nil {
				t.Fatalf("DeleteExpired: %v", r.err)
			}
			got, err := s.Get(ctx, "k")
			if err != nil || string(got) != tc.want {
				t.Fatalf("after a sweep that waited for a row refreshed meanwhile (deleted %d): Get = %q, %v; want %q (the sweep deleted a live row)", r.n, got, err, tc.want)
			}
			if r.n != 0 {
				t.Errorf("DeleteExpired = %d, want 0: the only row was live when the sweep reached it", r.n)
			}
		})
	}
}

// dbNowMS reads the database clock in Unix milliseconds.
func dbNowMS(t *testing.T, s *Store) int64 {
	t.Helper()
	var ms int64
	if err := s.db.QueryRow("SELECT " + nowMS(s.dialect)).Scan(&ms); err != nil {
		t.Fatal(err)
	}
	return ms
}

// TestSweepSparesRefreshedSessions is the statistical form of issue 11
// item 4: 2,000 keys expire at one instant while 16 goroutines refresh them
// around it (GetAndTouch, or Set when the key has already expired) and
// sweeps run back to back. Every refresh that returned nil must survive.
func TestSweepSparesRefreshedSessions(t *testing.T) {
	const (
		keys       = 2000
		refreshers = 16
		sweepers   = 4
	)
	dialects(t, func(t *testing.T, db *sql.DB) {
		var refreshed, lost int
		for round := 0; round < 3; round++ {
			s := newTestStore(t, db, Options{CleanupInterval: -1})
			ctx := t.Context()
			// Every key expires at the same database instant, 400 ms
			// from now.
			expiry := dbNowMS(t, s) + 400
			tx, err := db.BeginTx(ctx, nil)
			if err != nil {
				t.Fatal(err)
			}
			for i := range keys {
				if _, err := tx.ExecContext(ctx, "INSERT INTO "+s.table+" (key, value, expires_at) VALUES ($1, $2, $3)",
					fmt.Sprintf("k%04d", i), []byte("v"), expiry); err != nil {
					t.Fatal(err)
				}
			}
			if err := tx.Commit(); err != nil {
				t.Fatal(err)
			}
			// Start 40 ms before the instant (same machine: the clocks
			// agree to well within that), go on until 150 ms after it.
			start := time.UnixMilli(expiry - 40)
			end := time.UnixMilli(expiry + 150)
			time.Sleep(time.Until(start))
			var (
				mu   sync.Mutex
				kept = map[string]string{} // key -> value a refresh left
				wg   sync.WaitGroup
				errs = make(chan error, refreshers+sweepers)
			)
			for g := range refreshers {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for time.Now().Before(end) {
						for i := g; i < keys && time.Now().Before(end); i += refreshers {
							k := fmt.Sprintf("k%04d", i)
							mu.Lock()
							_, done := kept[k]
							mu.Unlock()
							if done {
								continue
							}
							v, err := s.GetAndTouch(ctx, k, time.Hour)
							if errors.Is(err, store.ErrNotFound) {
								v = []byte("re-created")
								err = s.Set(ctx, k, v, time.Hour)
							}
							if err != nil {
								errs <- err
								return
							}
							mu.Lock()
							kept[k] = string(v)
							mu.Unlock()
						}
					}
				}()
			}
			for range sweepers {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for time.Now().Before(end) {
						if _, err := s.DeleteExpired(ctx); err != nil {
							errs <- err
							return
						}
					}
				}()
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Fatal(err)
			}
			for k, v := range kept {
				got, err := s.Get(ctx, k)
				if err != nil || string(got) != v {
					lost++
					if lost <= 5 {
						t.Errorf("refreshed key %s (to %q) after the sweeps: Get = %q, %v", k, v, got, err)
					}
				}
			}
			refreshed += len(kept)
		}
		t.Logf("%d refreshed sessions over 3 rounds, %d lost", refreshed, lost)
		if lost != 0 {
			t.Errorf("%d of %d refreshed sessions were deleted by a sweep, want 0", lost, refreshed)
		}
	})
}
