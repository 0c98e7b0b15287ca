package main

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/base64"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	session "github.com/typedsession/session"
	"github.com/typedsession/session/internal/testenv"
	"github.com/typedsession/session/store"
	"github.com/typedsession/session/store/filestore"
	"github.com/typedsession/session/store/memstore"
	"github.com/typedsession/session/store/redisstore"
	"github.com/typedsession/session/store/sqlstore"
)

// seededQKey is the quarantined value the seed writes.
const seededQKey = session.QuarantinePrefix + "1700000000000000000:quiz:9"

// TestQuarantineRestore lists the seeded quarantined value and restores
// it on every kind of store: refused on a memstore snapshot, refused over
// an occupied key, a dry run and a "no" answer that change nothing, then
// the value back byte for byte under its original key.
//
// Not on the Redis Cluster: every command opens a go-redis ClusterClient,
// and each one opened and closed keeps about 170 KiB of the heap (its
// COMMAND info cache, seen in a heap profile), enough over this test's 20
// commands to push TestStreaming's flat-heap check over its limit. Restore
// on a cluster runs the same per-key compare-and-swap as on one node.
func TestQuarantineRestore(t *testing.T) {
	for _, kind := range kinds {
		if kind == "redis-cluster" {
			continue
		}
		t.Run(kind, func(t *testing.T) {
			b := seeded(t, kind)
			a := b.args
			run := func(stdin string, args ...string) string {
				return mustCLI(t, stdin, append(slices.Clone(a), args...)...)
			}
			fail := func(want string, args ...string) {
				t.Helper()
				out, _, err := cli(t, "y\n", append(slices.Clone(a), args...)...)
				if err == nil || !strings.Contains(err.Error(), want) {
					t.Errorf("%s: error %v, want one saying %q\nstdout: %s", strings.Join(args, " "), err, want, out)
				}
			}
			// everything is the whole store, keys and values.
			everything := func() string {
				return expiresAtRE.ReplaceAllString(sortedLines(run("", "export")), `"expires_at":"T"`)
			}

			golden(t, "quarantine.txt", run("", "quarantine"))
			golden(t, "quarantine.jsonl", run("", "quarantine", "--json"))
			if out := run("", "quarantine", "-n", "quiz", "9"); out != run("", "quarantine") {
				t.Errorf("quarantine -n quiz 9: %q, want the seeded value", out)
			}
			if out := run("", "quarantine", "-n", "prefs"); out != "no quarantined values\n" {
				t.Errorf("quarantine -n prefs: %q", out)
			}
			raw := run("", "get", "--raw", seededQKey)

			if b.name == "memstore" {
				fail("read-only", "restore", "--yes", seededQKey)
				fail("read-only", "restore", "--dry-run", seededQKey)
				return
			}
			before := everything()
			fail("quiz:1 holds a value now", "restore", "--yes", "--to", "quiz:1", seededQKey)
			fail("quiz:bad holds a value now", "restore", "--yes", "--to", "quiz:bad", seededQKey) // corrupt: occupied too
			fail("not a quarantine key", "restore", "--yes", "quiz:1")
			fail("not found", "restore", "--yes", session.QuarantinePrefix+"1:quiz:nope")
			fail("is itself a quarantine key", "restore", "--yes", "--to", session.QuarantinePrefix+"2:quiz:9", seededQKey)
			dry := run("", "restore", "--dry-run", seededQKey)
			no := run("n\n", "restore", seededQKey)
			if after := everything(); after != before {
				t.Errorf("refused restores, a dry run and a no changed the store:\nbefore:\n%s\nafter:\n%s", before, after)
			}
			yes := run("y\n", "restore", seededQKey)
			golden(t, "restore.txt", strings.ReplaceAll(dry+no+yes, b.storeText(t), "STORE"))

			if got := run("", "get", "--raw", "quiz:9"); got != raw {
				t.Errorf("quiz:9 after restore = %q, want the quarantined bytes %q", got, raw)
			}
			if _, _, err := cli(t, "", append(slices.Clone(a), "get", seededQKey)...); err == nil || !strings.Contains(err.Error(), "not found") {
				t.Errorf("get %s after restore: %v, want not found", seededQKey, err)
			}
			if out := run("", "quarantine"); out != "no quarantined values\n" {
				t.Errorf("quarantine after restore: %q", out)
			}
			// Now the original key is taken: a second restore of the
			// same value (put back by hand) is refused, --to works.
			run("", "import", "--quarantine", writeExport(t, seededQKey, raw))
			fail("quiz:9 holds a value now (a new session since the move?); nothing restored: restore with --to ANOTHER-KEY, or remove it with tsinspect rm quiz:9 first", "restore", "--yes", seededQKey)
			if out := run("", "-n", "quiz", "restore", "--yes", "--to", "9-old", seededQKey); !strings.Contains(out, "to quiz:9-old; quarantine copy removed") {
				t.Errorf("restore --to: %q", out)
			}
			if got := run("", "get", "--raw", "quiz:9-old"); got != raw {
				t.Errorf("quiz:9-old after restore = %q, want %q", got, raw)
			}
		})
	}
}

// writeExport writes a one-line export file holding value under key.
func writeExport(t *testing.T, key, value string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "one.jsonl")
	line := `{"key":"` + key + `","value":"` + base64.StdEncoding.EncodeToString([]byte(value)) + `"}` + "\n"
	if err := os.WriteFile(path, []byte(line), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// liveStore opens a store of kind for the test to use while the inspector
// opens it too, and returns the arguments that open it.
func liveStore(t *testing.T, kind string) (store.Store, []string) {
	t.Helper()
	dir := t.TempDir()
	switch kind {
	case "filestore":
		st, err := filestore.New(filepath.Join(dir, "fs"), filestore.Options{CleanupInterval: -1})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		return st, []string{"--store", filepath.Join(dir, "fs")}
	case "sqlite":
		path := filepath.Join(dir, "s.db")
		db, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)")
		if err != nil {
			t.Fatal(err)
		}
		st, err := sqlstore.New(db, sqlstore.Options{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close(); db.Close() })
		return st, []string{"--store", "sqlite://" + path}
	case "redis":
		c := testenv.Redis(t)
		prefix := testenv.Prefix(t, "tsinspect")
		testenv.CleanupPrefix(t, c, prefix)
		return redisstore.New(c, redisstore.Options{Prefix: prefix}), []string{"--store", testenv.RedisURL(), "--prefix", prefix}
	}
	t.Fatalf("unknown store kind %q", kind)
	return nil, nil
}

// TestRestoreThenLoad is the whole story: a manager with Config.Quarantine
// moves aside a session whose bytes were damaged and gives the user a new
// one; the inspector lists it and refuses to restore it over the new
// session; after the new session is deleted, restore puts it back byte
// for byte.
func TestRestoreThenLoad(t *testing.T) {
	type strict struct {
		Score int `json:"score"`
	}
	type fixed struct {
		Score string `json:"score"`
	}
	for _, kind := range []string{"filestore", "sqlite", "redis"} {
		t.Run(kind, func(t *testing.T) {
			ctx := context.Background()
			st, args := liveStore(t, kind)
			run := func(args2 ...string) string { return mustCLI(t, "", append(slices.Clone(args), args2...)...) }
			old, err := session.New(session.Config[fixed]{Store: st, Namespace: "quiz"})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := old.Update(ctx, "7", func(q *fixed) error { q.Score = "seven"; return nil }); err != nil {
				t.Fatal(err)
			}
			// Damage its bytes: only damaged bytes are quarantined (a
			// value that no longer fits T is left in place).
			if raw, err := st.Get(ctx, "quiz:7"); err == nil {
				st.Set(ctx, "quiz:7", raw[:len(raw)-3], 0)
			}
			stored, err := st.Get(ctx, "quiz:7")
			if err != nil {
				t.Fatal(err)
			}
			m, err := session.New(session.Config[strict]{Store: st, Namespace: "quiz", Quarantine: true})
			if err != nil {
				t.Fatal(err)
			}
			s, err := m.Load(ctx, "7")
			if err != nil {
				t.Fatalf("Load of the damaged value with Quarantine: %v", err)
			}
			if s.Data.Score != 0 {
				t.Fatalf("Load gave %+v, want a new session", s.Data)
			}
			s.Data.Score = 3
			if err := m.Save(ctx, s); err != nil { // the user's new session
				t.Fatal(err)
			}

			var qkey string
			for _, line := range strings.Split(run("quarantine"), "\n")[1:] {
				if f := strings.Fields(line); len(f) == 6 && f[4] == "quiz:7" {
					if f[3] != "occupied" {
						t.Errorf("quarantine: KEY NOW %q, want occupied: %s", f[3], line)
					}
					qkey = f[5]
				}
			}
			if qkey == "" {
				t.Fatalf("quarantine lists no value moved from quiz:7:\n%s", run("quarantine"))
			}
			newSession, _ := st.Get(ctx, "quiz:7")
			if _, _, err := cli(t, "", append(slices.Clone(args), "restore", "--yes", qkey)...); err == nil || !strings.Contains(err.Error(), "holds a value now") {
				t.Errorf("restore over the new session: %v, want a refusal", err)
			}
			if got, _ := st.Get(ctx, "quiz:7"); !bytes.Equal(got, newSession) {
				t.Errorf("the refused restore changed quiz:7: %q, want %q", got, newSession)
			}
			if got, _ := st.Get(ctx, qkey); !bytes.Equal(got, stored) {
				t.Errorf("the refused restore changed %s: %q, want %q", qkey, got, stored)
			}

			run("rm", "-n", "quiz", "7")
			run("restore", "--yes", qkey)
			if got, err := st.Get(ctx, "quiz:7"); err != nil || !bytes.Equal(got, stored) {
				t.Errorf("quiz:7 after restore = %q, %v; want the original bytes %q", got, err, stored)
			}
			if _, err := st.Get(ctx, qkey); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("%s after restore: %v, want ErrNotFound", qkey, err)
			}
			// The bytes are back as they were: still damaged, for a
			// person to repair (a manager with Quarantine would move
			// them aside again).
			reader, err := session.New(session.Config[fixed]{Store: st, Namespace: "quiz"})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := reader.Load(ctx, "7"); !errors.Is(err, session.ErrCorrupt) {
				t.Errorf("Load after restore = %v; want ErrCorrupt (the damaged bytes, back in place)", err)
			}
		})
	}
}

// casless hides a store's compare-and-swap and compare-and-delete: a store
// with only the Store methods.
type casless struct{ store.Store }

// TestRestoreWithoutSwap: on a store without compare-and-swap restore
// refuses, and writes with --force.
func TestRestoreWithoutSwap(t *testing.T) {
	ctx := context.Background()
	ms, err := memstore.New(memstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer ms.Close()
	qkey := session.QuarantinePrefix + "5:quiz:1"
	if err := ms.Set(ctx, qkey, []byte(`{"score":1}`), 0); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	g := &globals{stdin: strings.NewReader(""), stdout: &out, stderr: &out}
	tg := &target{Store: casless{ms}, Kind: "test", Where: "here"}
	err = restore(ctx, g, tg, qkey, restoreOptions{Yes: true})
	if err == nil || !strings.Contains(err.Error(), "no compare-and-swap") {
		t.Fatalf("restore without swap: %v, want a refusal", err)
	}
	if _, err := ms.Get(ctx, "quiz:1"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("refused restore wrote quiz:1: %v", err)
	}
	if err := restore(ctx, g, tg, qkey, restoreOptions{Yes: true, Force: true}); err != nil {
		t.Fatal(err)
	}
	if got, err := ms.Get(ctx, "quiz:1"); err != nil || string(got) != `{"score":1}` {
		t.Errorf("quiz:1 after restore --force = %q, %v", got, err)
	}
	if _, err := ms.Get(ctx, qkey); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("quarantine copy after restore --force: %v, want gone", err)
	}
	// Still refused over a value, --force or not.
	ms.Set(ctx, qkey, []byte("x"), 0)
	if err := restore(ctx, g, tg, qkey, restoreOptions{Yes: true, Force: true}); err == nil || !strings.Contains(err.Error(), "holds a value now") {
		t.Errorf("restore --force over a value: %v, want a refusal", err)
	}
}

// interleaved is a memstore on which another writer acts at a chosen
// moment: after the first Get of getKey (which it still reports absent),
// and after the first successful CompareAndSwap.
type interleaved struct {
	*memstore.Store
	getKey          string
	afterGet        func()
	afterSwap       func()
	gotten, swapped bool
}

func (s *interleaved) Get(ctx context.Context, key string) ([]byte, error) {
	v, err := s.Store.Get(ctx, key)
	if key == s.getKey && !s.gotten && s.afterGet != nil {
		s.gotten = true
		s.afterGet()
	}
	return v, err
}

func (s *interleaved) CompareAndSwap(ctx context.Context, key string, old, value []byte, ttl time.Duration) (bool, error) {
	ok, err := s.Store.CompareAndSwap(ctx, key, old, value, ttl)
	if ok && !s.swapped && s.afterSwap != nil {
		s.swapped = true
		s.afterSwap()
	}
	return ok, err
}

// TestRestoreRaces: a session the application writes at the original key
// between restore's check and its write is kept (restore fails and
// changes nothing), and a quarantine copy that changes between the read
// and the removal is kept.
func TestRestoreRaces(t *testing.T) {
	ctx := context.Background()
	qkey := session.QuarantinePrefix + "5:quiz:1"
	for _, tc := range []struct {
		name             string
		race             func(s *interleaved)
		wantErr, wantOut string
		want1, wantQ     string // quiz:1 and qkey afterwards; "" absent
	}{
		{
			name:    "original written after the check",
			race:    func(s *interleaved) { s.afterGet = func() { s.Store.Set(ctx, "quiz:1", []byte("new session"), 0) } },
			wantErr: "quiz:1 was written meanwhile",
			want1:   "new session", wantQ: "damaged",
		},
		{
			name:    "quarantine copy changed after the read",
			race:    func(s *interleaved) { s.afterSwap = func() { s.Store.Set(ctx, qkey, []byte("changed"), 0) } },
			wantErr: "changed since it was read; nothing restored",
			want1:   "", wantQ: "changed",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ms, err := memstore.New(memstore.Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer ms.Close()
			ms.Set(ctx, qkey, []byte("damaged"), 0)
			s := &interleaved{Store: ms, getKey: "quiz:1"}
			tc.race(s)
			var out bytes.Buffer
			g := &globals{stdin: strings.NewReader(""), stdout: &out, stderr: &out}
			err = restore(ctx, g, &target{Store: s, Kind: "test", Where: "here"}, qkey, restoreOptions{Yes: true})
			if tc.wantErr == "" && err != nil || tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)) {
				t.Errorf("restore: %v, want error %q", err, tc.wantErr)
			}
			if !strings.Contains(out.String(), tc.wantOut) {
				t.Errorf("restore said %q, want %q", out.String(), tc.wantOut)
			}
			for key, want := range map[string]string{"quiz:1": tc.want1, qkey: tc.wantQ} {
				if got, _ := ms.Get(ctx, key); string(got) != want {
					t.Errorf("%s = %q, want %q", key, got, want)
				}
			}
		})
	}
}

// TestRestoreStaysInNamespace (issue 23): with --namespace, restore writes
// only inside it: a quarantine copy whose original key lies elsewhere is
// refused unless --to names a key of the namespace.
func TestRestoreStaysInNamespace(t *testing.T) {
	st, args := fsStore(t)
	ctx := t.Context()
	q := session.QuarantinePrefix + "1700000000000000000:admin:root"
	if err := st.Set(ctx, q, []byte(`{"typedsession":1,"data":{}}`), 0); err != nil {
		t.Fatal(err)
	}
	_, _, err := cli(t, "", append(slices.Clone(args), "-n", "app", "restore", "--yes", q)...)
	if err == nil || !strings.Contains(err.Error(), `outside namespace "app"`) {
		t.Errorf("restore -n app of a copy of admin:root: %v, want a refusal naming the namespace", err)
	}
	if _, err := st.Get(ctx, "admin:root"); err == nil {
		t.Error("admin:root was written")
	}
	mustCLI(t, "", append(slices.Clone(args), "-n", "app", "restore", "--yes", "--to", "root-copy", q)...)
	if _, err := st.Get(ctx, "app:root-copy"); err != nil {
		t.Errorf("restore --to root-copy: app:root-copy: %v", err)
	}
}
