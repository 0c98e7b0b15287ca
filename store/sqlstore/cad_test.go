package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/typedsession/session/store"
)

// TestPostgresCompareAndDeleteWhileLocked forces CompareAndDelete to wait
// for a row that a third transaction changes and commits: the statement
// must decide on the row as committed, not as it was when it started.
func TestPostgresCompareAndDeleteWhileLocked(t *testing.T) {
	db := postgresDB(t)
	for _, tc := range []struct {
		name, change string
		want         bool   // CompareAndDelete's answer
		left         string // the value left, "" for none
	}{
		{"changed to another value", "UPDATE %s SET value = 'other' WHERE key = $1", false, "other"},
		{"deleted", "DELETE FROM %s WHERE key = $1", false, ""},
		{"expired", "UPDATE %s SET value = 'other', expires_at = 1 WHERE key = $1", false, ""},
		{"ttl changed only", "UPDATE %s SET expires_at = NULL WHERE key = $1", true, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newTestStore(t, db, Options{CleanupInterval: -1})
			ctx := t.Context()
			if err := s.Set(ctx, "k", []byte("old"), time.Hour); err != nil {
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
				ok  bool
				err error
			}
			res := make(chan result, 1)
			done := make(chan struct{})
			go func() {
				defer close(done)
				ok, err := s.CompareAndDelete(context.Background(), "k", []byte("old"))
				res <- result{ok, err}
			}()
			if !waitForLockWait(t, db, "DELETE FROM "+s.table, done) {
				r := <-res
				t.Fatalf("CompareAndDelete returned (%v, %v) without waiting for the row lock", r.ok, r.err)
			}
			if _, err := tx.ExecContext(ctx, strings.ReplaceAll(tc.change, "%s", s.table), "k"); err != nil {
				t.Fatal(err)
			}
			if err := tx.Commit(); err != nil {
				t.Fatal(err)
			}
			r := <-res
			if r.err != nil || r.ok != tc.want {
				t.Fatalf("CompareAndDelete = %v, %v; want %v, nil", r.ok, r.err, tc.want)
			}
			got, err := s.Get(ctx, "k")
			switch {
			case tc.left == "" && !errors.Is(err, store.ErrNotFound):
				t.Fatalf("Get after CompareAndDelete = %q, %v; want ErrNotFound", got, err)
			case tc.left != "" && (err != nil || string(got) != tc.left):
				t.Fatalf("Get after CompareAndDelete = %q, %v; want %q", got, err, tc.left)
			}
		})
	}
}

// TestCompareAndDeleteRace: writers replace a key's value by
// CompareAndSwap while deleters remove it by CompareAndDelete with the
// value they read. A delete that reports true must have removed the value
// it was given, never erased a newer value: each
// value is written once, so every value a writer acknowledged is either
// still there at the end, or was replaced by a later swap, or was the old
// of a successful CompareAndDelete.
func TestCompareAndDeleteRace(t *testing.T) {
	dialects(t, func(t *testing.T, db *sql.DB) {
		s := newTestStore(t, db, Options{CleanupInterval: -1})
		ctx := t.Context()
		var (
			mu       sync.Mutex
			replaced = map[string]bool{} // values a swap or delete consumed
			written  []string
			wg       sync.WaitGroup
		)
		for w := range 4 {
			wg.Go(func() {
				for i := range 50 {
					old, err := s.Get(ctx, "k")
					if errors.Is(err, store.ErrNotFound) {
						old, err = nil, nil
					}
					if err != nil {
						t.Error(err)
						return
					}
					v := []byte(strings.Repeat("w", w+1) + ":" + string(rune('a'+i%26)) + ":" + time.Now().Format(time.RFC3339Nano))
					ok, err := s.CompareAndSwap(ctx, "k", old, v, time.Hour)
					if err != nil {
						t.Error(err)
						return
					}
					if ok {
						mu.Lock()
						written = append(written, string(v))
						if old != nil {
							replaced[string(old)] = true
						}
						mu.Unlock()
					}
				}
			})
		}
		for range 2 {
			wg.Go(func() {
				for range 50 {
					old, err := s.Get(ctx, "k")
					if errors.Is(err, store.ErrNotFound) {
						continue
					}
					if err != nil {
						t.Error(err)
						return
					}
					ok, err := s.CompareAndDelete(ctx, "k", old)
					if err != nil {
						t.Error(err)
						return
					}
					if ok {
						mu.Lock()
						replaced[string(old)] = true
						mu.Unlock()
					}
				}
			})
		}
		wg.Wait()
		final, err := s.Get(ctx, "k")
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			t.Fatal(err)
		}
		lost := 0
		for _, v := range written {
			if !replaced[v] && v != string(final) {
				lost++
				if lost < 5 {
					t.Errorf("value %q was acknowledged, never replaced by a swap or a matching delete, and is gone", v)
				}
			}
		}
		if lost > 0 {
			t.Errorf("%d of %d acknowledged values lost", lost, len(written))
		}
	})
}
