package session_test

import (
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib"
	_ "modernc.org/sqlite"

	"github.com/typedsession/session"
	"github.com/typedsession/session/internal/testenv"
	"github.com/typedsession/session/migrate"
	"github.com/typedsession/session/store"
	"github.com/typedsession/session/store/filestore"
	"github.com/typedsession/session/store/redisstore"
	"github.com/typedsession/session/store/sqlstore"
)

// TestSteadyReadsOnlyRead is the idle-timeout rule on every kind of store:
// a Load of a session that is not near expiry only reads, and one that is
// near expiry extends it once.
func TestSteadyReadsOnlyRead(t *testing.T) {
	stores := map[string]func(t *testing.T) store.Store{
		"memstore": func(t *testing.T) store.Store { return newMem(t) },
		"filestore": func(t *testing.T) store.Store {
			st, err := filestore.New(t.TempDir(), filestore.Options{})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { st.Close() })
			return st
		},
		"sqlite": func(t *testing.T) store.Store {
			db, err := sql.Open("sqlite", filepath.Join(t.TempDir(), "s.db")+"?_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)")
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { db.Close() })
			st, err := sqlstore.New(db, sqlstore.Options{})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { st.Close() })
			return st
		},
		"postgres": func(t *testing.T) store.Store {
			db, err := sql.Open("pgx", testenv.DatabaseURL())
			if err == nil {
				err = db.PingContext(t.Context())
			}
			if err != nil {
				testenv.SkipOrFail(t, "no PostgreSQL answers (set DATABASE_URL): %v", err)
			}
			t.Cleanup(func() { db.Close() })
			table := "expiry_" + strings.ReplaceAll(strings.TrimSuffix(testenv.Prefix(t, "t"), ":"), ":", "_")
			st, err := sqlstore.New(db, sqlstore.Options{Table: table})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() {
				st.Close()
				db.Exec("DROP TABLE " + table)
			})
			return st
		},
		"redis": func(t *testing.T) store.Store {
			c := testenv.Redis(t)
			prefix := testenv.Prefix(t, "expiry")
			testenv.CleanupPrefix(t, c, prefix)
			return redisstore.New(c, redisstore.Options{Prefix: prefix})
		},
	}
	for name, open := range stores {
		t.Run(name, func(t *testing.T) {
			ctx := t.Context()
			st := open(t)
			c := newCounting(st)
			const ttl = time.Hour
			m := newManager(t, session.Config[Quiz]{Store: c, Namespace: "q", TTL: ttl})
			if _, err := m.Update(ctx, "u", func(q *Quiz) error { q.Score = 1; return nil }); err != nil {
				t.Fatal(err)
			}
			writes := func() int {
				return c.Calls("Set") + c.Calls("CompareAndSwap") + c.Calls("Touch") + c.Calls("GetAndTouch") + c.Calls("Delete")
			}
			c.Reset()
			const loads = 100
			for range loads {
				s, err := m.Load(ctx, "u")
				if err != nil {
					t.Fatal(err)
				}
				if err := m.Save(ctx, s); err != nil {
					t.Fatal(err)
				}
			}
			if n := writes(); n != 0 {
				t.Fatalf("%d steady Load+Save of an unchanged session made %d store writes (%v), want 0", loads, n, c.Snapshot())
			}
			t.Logf("%s: %d store writes per %d steady loads", name, writes(), loads)
			// Near expiry: the next Load extends it, once.
			raw, err := st.Get(ctx, "q:u")
			if err != nil {
				t.Fatal(err)
			}
			if err := st.Set(ctx, "q:u", raw, ttl-m.Slack()-time.Minute); err != nil {
				t.Fatal(err)
			}
			c.Reset()
			for range 3 {
				if _, err := m.Load(ctx, "u"); err != nil {
					t.Fatal(err)
				}
			}
			if n := c.Calls("Touch"); n != 1 {
				t.Fatalf("3 Loads near expiry made %d Touch calls (%v), want 1", n, c.Snapshot())
			}
			if g, ok := st.(store.TTLGetter); ok {
				_, left, err := g.GetWithTTL(ctx, "q:u")
				if err != nil || left < ttl-m.Slack() {
					t.Fatalf("after the extension: %v left, %v; want at least %v", left, err, ttl-m.Slack())
				}
			}
		})
	}
}

// TestMigrateAllSurvivesADamagedFile: one damaged file is one failed key,
// not a failed scan, and the error matches session.ErrCorrupt.
func TestMigrateAllSurvivesADamagedFile(t *testing.T) {
	ctx := t.Context()
	dir := t.TempDir()
	st, err := filestore.New(dir, filestore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	for i := range 5 {
		st.Set(ctx, fmt.Sprintf("n:%d", i), []byte(`{"score":1}`), 0)
		st.Set(ctx, fmt.Sprintf("other:%d", i), []byte(`{"score":1}`), 0)
	}
	damage := func(key string) {
		// A file's name depends only on its key: learn it from a scratch
		// store holding that key alone, then truncate the file to 30 bytes.
		scratchDir := t.TempDir()
		scratch, err := filestore.New(scratchDir, filestore.Options{})
		if err != nil {
			t.Fatal(err)
		}
		scratch.Set(ctx, key, []byte("x"), 0)
		scratch.Close()
		entries, _ := os.ReadDir(scratchDir)
		for _, e := range entries {
			if e.Type().IsRegular() && !strings.HasPrefix(e.Name(), ".") {
				if err := os.Truncate(filepath.Join(dir, e.Name()), 30); err != nil {
					t.Fatal(err)
				}
				return
			}
		}
		t.Fatalf("no file for %q", key)
	}
	damage("n:3")
	damage("other:1")
	plan := migrate.MustNew(migrate.Raw(0, func(map[string]any) error { return nil }))
	m := newManager(t, session.Config[Quiz]{Store: st, Namespace: "n", Migrations: plan})
	if _, err := m.Load(ctx, "3"); !errors.Is(err, session.ErrCorrupt) {
		t.Fatalf("Load of the damaged key = %v, want ErrCorrupt", err)
	}
	r, err := m.MigrateAll(ctx, session.MigrateOptions{})
	if err != nil {
		t.Fatalf("MigrateAll = %v", err)
	}
	if r.Scanned != 5 || r.Migrated != 4 || len(r.Failed) != 1 || r.Failed[0].Key != "3" || !errors.Is(r.Failed[0].Err, session.ErrCorrupt) {
		t.Fatalf("MigrateAll = %+v, want 5 scanned, 4 migrated, key 3 failed with ErrCorrupt", r)
	}
}
