package main

import (
	"bytes"
	"context"
	"database/sql"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	session "github.com/typedsession/session"
	"github.com/typedsession/session/internal/format"
	"github.com/typedsession/session/internal/testenv"
	"github.com/typedsession/session/migrate"
	"github.com/typedsession/session/seal"
	"github.com/typedsession/session/store"
	"github.com/typedsession/session/store/filestore"
	"github.com/typedsession/session/store/memstore"
	"github.com/typedsession/session/store/redisstore"
	"github.com/typedsession/session/store/sqlstore"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/")

// writeIDs numbers the write identities; seed restarts it.
var writeIDs atomic.Int64

func TestMain(m *testing.M) {
	// Pin the write identities, so that golden files do not change.
	format.NewWriteID = func() string { return fmt.Sprintf("w%011d", writeIDs.Add(1)) }
	code := m.Run()
	stopCluster()
	os.Exit(code)
}

// cli runs tsinspect with args and stdin, and returns stdout, stderr and
// the error.
func cli(t *testing.T, stdin string, args ...string) (string, string, error) {
	t.Helper()
	var out, errOut bytes.Buffer
	root := newRoot(strings.NewReader(stdin), &out, &errOut)
	root.SetArgs(args)
	err := root.ExecuteContext(context.Background())
	return out.String(), errOut.String(), err
}

// mustCLI is cli that fails the test on an error.
func mustCLI(t *testing.T, stdin string, args ...string) string {
	t.Helper()
	out, errOut, err := cli(t, stdin, args...)
	if err != nil {
		t.Fatalf("tsinspect %s: %v\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), err, out, errOut)
	}
	return out
}

// The seeded sessions: two schema versions of the quiz, a preference, a
// value without an envelope, a corrupt one, a binary one, a sealed one, a
// quarantined one and an expired one.
type quizV1 struct {
	Score int `json:"score"`
}

type quizV2 struct {
	Score   int      `json:"score"`
	Answers []string `json:"answers"`
}

type prefs struct {
	Lang string `json:"lang"`
}

func seed(t *testing.T, st store.Store) {
	t.Helper()
	writeIDs.Store(0)
	ctx := context.Background()
	m1, err := session.New(session.Config[quizV1]{Store: st, Namespace: "quiz", TTL: 48 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	plan, err := migrate.New(migrate.Raw(1, func(doc map[string]any) error { doc["answers"] = []any{}; return nil }))
	if err != nil {
		t.Fatal(err)
	}
	m2, err := session.New(session.Config[quizV2]{Store: st, Namespace: "quiz", Migrations: plan})
	if err != nil {
		t.Fatal(err)
	}
	mp, err := session.New(session.Config[prefs]{Store: st, Namespace: "prefs"})
	if err != nil {
		t.Fatal(err)
	}
	ring, err := seal.New(seal.Key{ID: "k1", Secret: bytes.Repeat([]byte{7}, seal.KeySize)})
	if err != nil {
		t.Fatal(err)
	}
	ms, err := session.New(session.Config[prefs]{Store: st, Namespace: "vault", Keyring: ring})
	if err != nil {
		t.Fatal(err)
	}
	must := func(_ any, err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(m1.Update(ctx, "1", func(q *quizV1) error { q.Score = 1; return nil }))
	must(m1.Update(ctx, "1", func(q *quizV1) error { q.Score = 2; return nil }))
	must(m2.Update(ctx, "2", func(q *quizV2) error { q.Score = 5; q.Answers = []string{"a", "b"}; return nil }))
	must(m2.Update(ctx, "3", func(q *quizV2) error {
		q.Score = 9
		for i := range 40 {
			q.Answers = append(q.Answers, fmt.Sprintf("answer %d", i))
		}
		return nil
	}))
	must(mp.Update(ctx, "1", func(p *prefs) error { p.Lang = "de"; return nil }))
	must(ms.Update(ctx, "1", func(p *prefs) error { p.Lang = "fr"; return nil }))
	raw := map[string]string{
		"quiz:old": `{"score":7}`,
		"quiz:bad": `{"typedsession":"two","data":{}}`,
		"quiz:bin": "\x01\x02hello\xff",
		session.QuarantinePrefix + "1700000000000000000:quiz:9": `{"typedsession":1,"data":{"score":`,
	}
	for k, v := range raw {
		if err := st.Set(ctx, k, []byte(v), 0); err != nil {
			t.Fatal(err)
		}
	}
	if err := st.Set(ctx, "quiz:gone", []byte(`{"typedsession":1,"data":{}}`), 20*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	time.Sleep(40 * time.Millisecond)
}

// A store under test: the arguments that open it, a fresh empty store of
// the same kind to import into, and a function that makes it ready to be
// opened by the inspector.
type backend struct {
	name  string
	args  []string // --store ... and its options
	ready func()   // close the seeding handle, where the inspector needs the file
}

func seeded(t *testing.T, kind string) backend {
	t.Helper()
	dir := t.TempDir()
	switch kind {
	case "memstore":
		path := filepath.Join(dir, "sessions.snap")
		st, err := memstore.New(memstore.Options{BackupPath: path, BackupInterval: -1})
		if err != nil {
			t.Fatal(err)
		}
		seed(t, st)
		if err := st.Close(); err != nil {
			t.Fatal(err)
		}
		return backend{name: kind, args: []string{"--store", path}}
	case "filestore":
		st, err := filestore.New(filepath.Join(dir, "fs"), filestore.Options{})
		if err != nil {
			t.Fatal(err)
		}
		seed(t, st)
		st.Close()
		return backend{name: kind, args: []string{"--store", "file://" + filepath.Join(dir, "fs")}}
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
		seed(t, st)
		st.Close()
		db.Close()
		return backend{name: kind, args: []string{"--store", "sqlite://" + path}}
	case "postgres":
		db, err := sql.Open("pgx", testenv.DatabaseURL())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		// A deadline of its own: a PostgreSQL shared with other suites
		// on a loaded machine has taken over 5 s to answer a connection.
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := db.PingContext(ctx); err != nil {
			testenv.SkipOrFail(t, "no PostgreSQL answers at %s (set DATABASE_URL): %v", testenv.DatabaseURL(), err)
		}
		table := fmt.Sprintf("tsinspect_%d", time.Now().UnixNano())
		t.Cleanup(func() { db.Exec(`DROP TABLE IF EXISTS "` + table + `"`) })
		st, err := sqlstore.New(db, sqlstore.Options{Table: table})
		if err != nil {
			t.Fatal(err)
		}
		seed(t, st)
		st.Close()
		return backend{name: kind, args: []string{"--store", testenv.DatabaseURL(), "--table", table, "--wait", "30s"}}
	case "redis":
		c := testenv.Redis(t)
		prefix := testenv.Prefix(t, "tsinspect")
		testenv.CleanupPrefix(t, c, prefix)
		seed(t, redisstore.New(c, redisstore.Options{Prefix: prefix}))
		return backend{name: kind, args: []string{"--store", testenv.RedisURL(), "--prefix", prefix}}
	case "redis-cluster":
		c := cluster(t)
		prefix := testenv.Prefix(t, "tsinspect")
		seed(t, redisstore.New(c, redisstore.Options{Prefix: prefix}))
		return backend{name: kind, args: []string{"--store", "redis-cluster://" + strings.Join(theCluster.Addrs(), ","), "--prefix", prefix}}
	}
	t.Fatalf("unknown store kind %q", kind)
	return backend{}
}

var kinds = []string{"memstore", "filestore", "sqlite", "postgres", "redis", "redis-cluster"}

// normalize makes an output independent of the store it came from.
func normalize(s string) string {
	s = regexp.MustCompile(`(?m)^store: .*$`).ReplaceAllString(s, "store:        STORE")
	return s
}

// sortedBody sorts the lines after the first (ls prints keys in the
// store's order).
func sortedBody(s string) string {
	lines := strings.Split(strings.TrimSuffix(s, "\n"), "\n")
	if len(lines) > 1 {
		slices.Sort(lines[1:])
	}
	return strings.Join(lines, "\n") + "\n"
}

// sortedLines sorts every line.
func sortedLines(s string) string { return strings.TrimPrefix(sortedBody("\n"+s), "\n") }

func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to write it)", err)
	}
	if diff := cmp.Diff(string(want), got); diff != "" {
		t.Errorf("%s mismatch (-want +got):\n%s", name, diff)
	}
}

// TestStores runs ls, get, stats, export, import, rm and purge on every
// kind of store, seeded alike, and checks each output against one golden
// file: the inspector shows every store the same way.
func TestStores(t *testing.T) {
	for _, kind := range kinds {
		t.Run(kind, func(t *testing.T) {
			b := seeded(t, kind)
			a := b.args
			run := func(args ...string) string { return mustCLI(t, "", append(slices.Clone(a), args...)...) }

			golden(t, "ls.txt", sortedBody(run("ls")))
			golden(t, "ls_quiz.txt", sortedBody(run("ls", "-n", "quiz")))
			golden(t, "ls_prefix.txt", sortedBody(run("ls", "quiz:")))
			golden(t, "get_v1.txt", run("get", "-n", "quiz", "1"))
			golden(t, "get_v2.txt", run("get", "quiz:2"))
			golden(t, "get_v0.txt", run("get", "quiz:old"))
			golden(t, "stats.txt", normalize(run("stats")))
			golden(t, "stats_quiz.txt", normalize(run("stats", "-n", "quiz", "--top", "3")))
			golden(t, "stats.json", run("stats", "--json", "--top", "3"))
			golden(t, "ls.jsonl", ttlMsText(sortedLines(run("ls", "--json"))))
			golden(t, "export.jsonl", expiresAtRE.ReplaceAllString(sortedLines(run("export", "quiz:")), `"expires_at":"T"`))

			sealed := run("get", "vault:1")
			for _, want := range []string{"layers:   " + seal.Name, "key id:   k1", "version:  1"} {
				if !strings.Contains(sealed, want) {
					t.Errorf("get vault:1: no %q in\n%s", want, sealed)
				}
			}

			out, _, err := cli(t, "", append(slices.Clone(a), "get", "quiz:bad")...)
			if err == nil || !strings.Contains(err.Error(), "corrupt") {
				t.Errorf("get quiz:bad: error %v, want one saying the value is corrupt", err)
			}
			golden(t, "get_bad.txt", out+"error: "+err.Error()+"\n")
			out, _, err = cli(t, "", append(slices.Clone(a), "get", "quiz:bin")...)
			if err == nil || !strings.Contains(err.Error(), "not a typedsession value") {
				t.Errorf("get quiz:bin: error %v, want one saying the value is not a typedsession value", err)
			}
			golden(t, "get_bin.txt", out+"error: "+err.Error()+"\n")
			if _, _, err := cli(t, "", append(slices.Clone(a), "get", "quiz:gone")...); err == nil || !strings.Contains(err.Error(), "not found") {
				t.Errorf("get quiz:gone (expired): error %v, want not found", err)
			}

			// export, then import into a fresh SQLite file: the same listing.
			dir := t.TempDir()
			exp := filepath.Join(dir, "export.jsonl")
			run("export", "-o", exp)
			if _, err := os.Stat(exp + ".partial"); !os.IsNotExist(err) {
				t.Errorf("export left %s.partial: %v", exp, err)
			}
			dst := []string{"--store", "sqlite://" + filepath.Join(dir, "copy.db")}
			// A whole copy includes the quarantine copy: asked for.
			if out := mustCLI(t, "", append(slices.Clone(dst), "import", "--create", "--quarantine", exp)...); !strings.HasPrefix(out, "imported: 9 written, 0 replaced, 0 unchanged, 0 present and kept, 0 expired and skipped, 0 conflicts, 0 refused") {
				t.Errorf("import: %s", out)
			}
			if diff := cmp.Diff(sortedLines(run("ls", "--json")), sortedLines(mustCLI(t, "", append(slices.Clone(dst), "ls", "--json")...)), ttlMs); diff != "" {
				t.Errorf("ls of the imported copy (-source +copy):\n%s", diff)
			}
			if out := mustCLI(t, "", append(slices.Clone(dst), "import", "--quarantine", exp)...); !strings.HasPrefix(out, "imported: 0 written, 0 replaced, 9 unchanged") {
				t.Errorf("import again: %s", out)
			}

			// rm and purge.
			if b.name == "memstore" {
				_, _, err := cli(t, "", append(slices.Clone(a), "rm", "quiz:1")...)
				if err == nil || !strings.Contains(err.Error(), "read-only") {
					t.Errorf("rm on a memstore snapshot: error %v, want read-only", err)
				}
				return
			}
			if out := run("rm", "-n", "quiz", "1", "nope"); out != "deleted quiz:1\nabsent  quiz:nope\n" {
				t.Errorf("rm: %q", out)
			}
			if _, _, err := cli(t, "", append(slices.Clone(a), "get", "quiz:1")...); err == nil {
				t.Error("get quiz:1 after rm: no error")
			}
			if out := mustCLI(t, "n\n", append(slices.Clone(a), "purge", "quiz:")...); out != `delete 5 keys under "quiz:" from `+b.storeText(t)+`? [y/N] nothing deleted`+"\n" {
				t.Errorf("purge answered n: %q", out)
			}
			if out := mustCLI(t, "y\n", append(slices.Clone(a), "purge", "quiz:")...); !strings.HasSuffix(out, "deleted 5 keys under \"quiz:\"\n") {
				t.Errorf("purge answered y: %q", out)
			}
			if out := run("purge", "--yes", "-n", "prefs"); out != "deleted 1 keys under \"prefs:\"\n" {
				t.Errorf("purge --yes: %q", out)
			}
			if out := sortedBody(run("ls")); strings.Count(out, "\n") != 3 {
				t.Errorf("ls after purge, want the vault and the quarantined value:\n%s", out)
			}
		})
	}
}

// storeText is what the inspector says of the store: kind and where.
func (b backend) storeText(t *testing.T) string {
	out := mustCLI(t, "", append(slices.Clone(b.args), "stats", "--top", "0")...)
	line, _, _ := strings.Cut(out, "\n")
	return strings.TrimSpace(strings.TrimPrefix(line, "store:"))
}

var expiresAtRE = regexp.MustCompile(`"expires_at":"[^"]*"`)

// ttlMs compares ls --json outputs up to the milliseconds of a TTL (the
// copy is read later).
var ttlMs = cmp.Transformer("ttl", ttlMsText)

var ttlMsRE = regexp.MustCompile(`"ttl_ms":[1-9][0-9]*`)

func ttlMsText(s string) string { return ttlMsRE.ReplaceAllString(s, `"ttl_ms":N`) }

// TestGetConversation: get names the flows and the step of a session's
// running conversation (package conversation's State), its deadline and
// its last update.
func TestGetConversation(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sessions.snap")
	st, err := memstore.New(memstore.Options{BackupPath: path, BackupInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	v := `{"typedsession":1,"data":{"conv":{"frames":[` +
		`{"flow":"signup","step":"AskAge","data":{"Name":"Ann"},"started":"2026-12-07T09:00:00Z"},` +
		`{"flow":"address","step":"AskCity","step_deadline":"2026-12-07T09:05:00Z"}],` +
		`"deadline":"2026-12-07T09:05:00Z","last_update":913447},"score":3}}`
	if err := st.Set(context.Background(), "bot:42", []byte(v), 0); err != nil {
		t.Fatal(err)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	out := mustCLI(t, "", "--store", path, "get", "bot:42")
	want := `conversation "conv": signup.AskAge > address.AskCity, deadline 2026-12-07T09:05:00Z, last update 913447`
	if !strings.Contains(out, want+"\n") {
		t.Errorf("get: no line %q in\n%s", want, out)
	}
}
