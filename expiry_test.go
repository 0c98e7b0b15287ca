package session_test

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/typedsession/session"
	"github.com/typedsession/session/internal/sessiontest"
	"github.com/typedsession/session/internal/testenv"
	"github.com/typedsession/session/migrate"
	"github.com/typedsession/session/store"
	"github.com/typedsession/session/store/filestore"
	"github.com/typedsession/session/store/redisstore"
)

// TestSteadyReadsOnlyRead is the idle-timeout rule on every kind of store:
// a Load of a session that is not near expiry only reads, and one that is
// near expiry extends it once. The SQL stores run the same body in the
// sqlstore module (TestSteadyReadsOnlyRead there), so that the core's tests
// import no SQL driver.
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
		"redis": func(t *testing.T) store.Store {
			c := testenv.Redis(t)
			prefix := testenv.Prefix(t, "expiry")
			testenv.CleanupPrefix(t, c, prefix)
			return redisstore.New(c, redisstore.Options{Prefix: prefix})
		},
	}
	for name, open := range stores {
		t.Run(name, func(t *testing.T) { sessiontest.SteadyReadsOnlyRead(t, open(t)) })
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
