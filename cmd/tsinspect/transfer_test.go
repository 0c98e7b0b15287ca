package main

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/typedsession/session/store/filestore"
)

// fsStore returns a filestore in a temporary folder and the arguments
// that open it.
func fsStore(t *testing.T) (*filestore.Store, []string) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "fs")
	st, err := filestore.New(dir, filestore.Options{CleanupInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st, []string{"--store", dir}
}

func TestImportModes(t *testing.T) {
	ctx := context.Background()
	st, args := fsStore(t)
	exp := filepath.Join(t.TempDir(), "in.jsonl")
	past := time.Now().Add(-time.Minute).UTC().Format(time.RFC3339Nano)
	future := time.Now().Add(time.Hour).UTC().Format(time.RFC3339Nano)
	// "new" is absent, "same" holds the exported value, "other" another
	// one, "old" expired before the import.
	lines := `{"key":"new","value":"YQ=="}
{"key":"same","value":"Yg==","expires_at":"` + future + `"}
{"key":"other","value":"Yw=="}
{"key":"old","value":"ZA==","expires_at":"` + past + `"}
`
	if err := os.WriteFile(exp, []byte(lines), 0o600); err != nil {
		t.Fatal(err)
	}
	st.Set(ctx, "same", []byte("b"), 0)
	st.Set(ctx, "other", []byte("OTHER"), 0)

	check := func(key, want string) {
		t.Helper()
		got, err := st.Get(ctx, key)
		if want == "" {
			if err == nil {
				t.Errorf("%s = %q, want absent", key, got)
			}
			return
		}
		if err != nil || string(got) != want {
			t.Errorf("%s = %q, %v; want %q", key, got, err, want)
		}
	}
	for _, tc := range []struct {
		name  string
		flags []string
		out   string
		state map[string]string
	}{
		{"dry run", []string{"--dry-run"}, "dry run, nothing written; would have imported: 1 written, 0 replaced, 1 unchanged, 1 present and kept, 1 expired and skipped, 0 conflicts, 0 refused\n",
			map[string]string{"new": "", "same": "b", "other": "OTHER", "old": ""}},
		{"dry run overwrite", []string{"--dry-run", "--overwrite"}, "dry run, nothing written; would have imported: 1 written, 1 replaced, 1 unchanged, 0 present and kept, 1 expired and skipped, 0 conflicts, 0 refused\n",
			map[string]string{"new": "", "same": "b", "other": "OTHER", "old": ""}},
		{"absent only", nil, "imported: 1 written, 0 replaced, 1 unchanged, 1 present and kept, 1 expired and skipped, 0 conflicts, 0 refused\n",
			map[string]string{"new": "a", "same": "b", "other": "OTHER", "old": ""}},
		{"overwrite", []string{"--overwrite"}, "imported: 0 written, 1 replaced, 2 unchanged, 0 present and kept, 1 expired and skipped, 0 conflicts, 0 refused\n",
			map[string]string{"new": "a", "same": "b", "other": "c", "old": ""}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out := mustCLI(t, "", append(append(append([]string(nil), args...), "import", exp), tc.flags...)...)
			if out != tc.out {
				t.Errorf("output %q, want %q", out, tc.out)
			}
			for k, v := range tc.state {
				check(k, v)
			}
		})
	}
	// The TTL travels: "same" was unchanged, so write it again elsewhere.
	_, args2 := fsStore(t)
	mustCLI(t, "", append(append([]string(nil), args2...), "import", exp)...)
	out := mustCLI(t, "", append(append([]string(nil), args2...), "ls")...)
	if !strings.Contains(out, "59m") || !strings.Contains(out, "  same\n") {
		t.Errorf("ls of the imported store, want same with about an hour left:\n%s", out)
	}
}

// TestOverwriteConflict: a value written between the import's read and
// its compare-and-swap is kept and reported.
func TestOverwriteConflict(t *testing.T) {
	ctx := context.Background()
	st, _ := fsStore(t)
	st.Set(ctx, "k", []byte("old"), 0)
	tg := &target{Store: &racing{Store: st, before: func() { st.Set(ctx, "k", []byte("theirs"), 0) }}, Kind: "filestore"}
	var c importCounts
	if err := importOne(ctx, tg, tg.Store.(*racing), record{Key: "k", Value: []byte("mine")}, 0, true, false, &c); err != nil {
		t.Fatal(err)
	}
	if c.Conflicts != 1 {
		t.Errorf("counts %+v, want one conflict", c)
	}
	if got, _ := st.Get(ctx, "k"); string(got) != "theirs" {
		t.Errorf("k = %q, want theirs (the other writer's value kept)", got)
	}
}

// racing runs before ahead of its first CompareAndSwap.
type racing struct {
	*filestore.Store
	before func()
}

func (r *racing) CompareAndSwap(ctx context.Context, key string, old, value []byte, ttl time.Duration) (bool, error) {
	if r.before != nil {
		r.before()
		r.before = nil
	}
	return r.Store.CompareAndSwap(ctx, key, old, value, ttl)
}

func TestErrors(t *testing.T) {
	dir := t.TempDir()
	notes := filepath.Join(dir, "notes.txt")
	os.WriteFile(notes, []byte("hello"), 0o600)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"ls"}, "no store given"},
		{[]string{"-s", "mongodb://x", "ls"}, `unknown scheme "mongodb"`},
		{[]string{"-s", "redis://127.0.0.1:1/0", "--wait", "300ms", "ls"}, "Redis at 127.0.0.1:1 does not answer"},
		{[]string{"-s", "redis://:secret@127.0.0.1:1/0", "--wait", "300ms", "ls"}, "does not answer"},
		{[]string{"-s", "postgres://postgres@127.0.0.1:1/test?sslmode=disable", "--wait", "300ms", "ls"}, "cannot connect to postgres at postgres://postgres@127.0.0.1:1/test?sslmode=disable"},
		{[]string{"-s", "redis-cluster://", "ls"}, "give the cluster's seed nodes"},
		{[]string{"-s", filepath.Join(dir, "missing"), "ls"}, "no such file or directory"},
		{[]string{"-s", "sqlite://" + filepath.Join(dir, "missing.db"), "ls"}, "SQLite file"},
		{[]string{"-s", notes, "ls"}, "not a SQLite database, not a memstore snapshot and not a directory"},
		{[]string{"-s", dir, "--prefix", "x:", "ls"}, "--prefix is the Redis key prefix"},
		{[]string{"-s", dir, "--table", "t", "ls"}, "--table applies to postgres:// and sqlite://"},
		{[]string{"-s", dir, "-n", "a:b", "ls"}, "a namespace has no ':'"},
		{[]string{"-s", dir, "purge"}, "purge needs a KEYPREFIX or --namespace"},
		{[]string{"-s", dir, "get", "nope"}, `get "nope": not found`},
		{[]string{"-s", dir, "--bogus", "ls"}, "unknown flag: --bogus"},
	} {
		_, _, err := cli(t, "", tc.args...)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("tsinspect %s: error %v, want one containing %q", strings.Join(tc.args, " "), err, tc.want)
		}
		if err != nil && strings.Contains(err.Error(), "secret") {
			t.Errorf("tsinspect %s: the error shows the password: %v", strings.Join(tc.args, " "), err)
		}
	}
	if _, _, err := cli(t, "", "--bogus"); !errors.Is(err, errUsage) {
		t.Errorf("a bad flag: error %v, want errUsage (exit status 2)", err)
	}
}

// TestInterrupt: a cancelled context stops a walk with context.Canceled
// (exit status 130), whatever the store.
func TestInterrupt(t *testing.T) {
	ctx := context.Background()
	st, args := fsStore(t)
	for i := range 2000 {
		st.Set(ctx, "k"+strings.Repeat("x", i%7)+string(rune('a'+i%26))+time.Duration(i).String(), []byte("{}"), 0)
	}
	ctx, cancel := context.WithCancel(ctx)
	n := 0
	out := &lineCounter{}
	root := newRoot(strings.NewReader(""), writerFunc(func(p []byte) (int, error) {
		n++
		if n == 2 {
			cancel()
		}
		return out.Write(p)
	}), out)
	root.SetArgs(append(args, "ls"))
	err := root.ExecuteContext(ctx)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("ls cancelled: error %v, want context.Canceled", err)
	}
	if code := run(ctx, []string{"-s", args[1], "ls"}); code != 130 {
		t.Errorf("run with a cancelled context: exit status %d, want 130", code)
	}
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

// TestImportScope (issue 23): an export file is input like any other.
// `tsinspect -n app import file.jsonl` used to write every key of the file,
// admin:root and a forged quarantine copy included. Now only the keys of
// the namespace are written, a quarantine copy only with --quarantine, and
// every other line is refused with a message naming its line and key,
// counted in the summary and in the exit status; the import goes on.
func TestImportScope(t *testing.T) {
	ctx := context.Background()
	v := "eyJ0eXBlZHNlc3Npb24iOjEsImRhdGEiOnt9fQ==" // {"typedsession":1,"data":{}}
	lines := `{"key":"app:1","value":"` + v + `"}
{"key":"admin:root","value":"` + v + `"}
{"key":":quarantine:1700000000000000000:app:2","value":"` + v + `"}
not an export line
{"key":"app:3","valeu":"` + v + `"}
{"key":"app:4","value":"` + v + `","expires_att":"2000-01-01T00:00:00Z"}

{"key":"app:5","value":"` + v + `"}
{"key":":quarantine:1700000000000000000:admin:root","value":"` + v + `"}
`
	exp := filepath.Join(t.TempDir(), "in.jsonl")
	if err := os.WriteFile(exp, []byte(lines), 0o600); err != nil {
		t.Fatal(err)
	}
	keys := func(st *filestore.Store) string {
		t.Helper()
		var got []string
		if err := st.Scan(ctx, "", func(k string) error { got = append(got, k); return nil }); err != nil {
			t.Fatal(err)
		}
		slices.Sort(got)
		return strings.Join(got, " ")
	}
	for _, tc := range []struct {
		name    string
		flags   []string
		summary string
		refused []string // "line N, key K" of each refusal, in stderr
		stored  string
	}{
		{"namespace", []string{"-n", "app", "import"},
			"imported: 2 written, 0 replaced, 0 unchanged, 0 present and kept, 0 expired and skipped, 0 conflicts, 6 refused\n",
			[]string{"line 2, key admin:root: refused: outside namespace \"app\"", "line 3, key :quarantine:1700000000000000000:app:2: refused: a quarantine copy",
				"line 4: refused: not an export line", "line 5, key app:3: refused: not an export line: json: unknown field \"valeu\"",
				"line 6, key app:4: refused: not an export line: json: unknown field \"expires_att\"", "line 9, key :quarantine:1700000000000000000:admin:root: refused: a quarantine copy"},
			"app:1 app:5"},
		{"namespace and quarantine", []string{"-n", "app", "import", "--quarantine"},
			"imported: 3 written, 0 replaced, 0 unchanged, 0 present and kept, 0 expired and skipped, 0 conflicts, 5 refused\n",
			[]string{"line 2, key admin:root: refused: outside namespace", "line 9, key :quarantine:1700000000000000000:admin:root: refused: a quarantine copy whose original key is outside namespace \"app\""},
			":quarantine:1700000000000000000:app:2 app:1 app:5"},
		{"whole store", []string{"import"},
			"imported: 3 written, 0 replaced, 0 unchanged, 0 present and kept, 0 expired and skipped, 0 conflicts, 5 refused\n",
			[]string{"line 3, key :quarantine:1700000000000000000:app:2: refused: a quarantine copy (:quarantine:...); import it only with --quarantine"},
			"admin:root app:1 app:5"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st, args := fsStore(t)
			out, errOut, err := cli(t, "", append(append(args, tc.flags...), exp)...)
			if out != tc.summary {
				t.Errorf("summary %q, want %q", out, tc.summary)
			}
			if err == nil || !strings.Contains(err.Error(), "refused") {
				t.Errorf("error %v, want one saying entries were refused (exit status 1)", err)
			}
			for _, r := range tc.refused {
				if !strings.Contains(errOut, "tsinspect: import: "+r) {
					t.Errorf("stderr lacks %q:\n%s", r, errOut)
				}
			}
			if got := keys(st); got != tc.stored {
				t.Errorf("stored keys %q, want %q", got, tc.stored)
			}
		})
	}
}

// TestImportCreatePath (issue 26): `import --create` with a plain path that
// does not exist creates a filestore folder (a SQLite file when the name
// ends in .db, .sqlite or .sqlite3); before, a plain path was refused as
// "no such file or directory" and only file:// worked. Without --create a
// missing path is still refused, with a hint.
func TestImportCreatePath(t *testing.T) {
	exp := filepath.Join(t.TempDir(), "in.jsonl")
	if err := os.WriteFile(exp, []byte(`{"key":"k","value":"YQ=="}`+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	folder := filepath.Join(dir, "sessions")
	if _, _, err := cli(t, "", "--store", folder, "ls"); err == nil || !strings.Contains(err.Error(), "--create") {
		t.Errorf("ls of a missing folder: %v, want an error that mentions import --create", err)
	}
	mustCLI(t, "", "--store", folder, "import", "--create", exp)
	if fi, err := os.Stat(folder); err != nil || !fi.IsDir() {
		t.Fatalf("import --create %s made no folder: %v", folder, err)
	}
	if out := mustCLI(t, "", "--store", folder, "get", "--raw", "k"); out != "a" {
		t.Errorf("k in the new folder = %q, want \"a\"", out)
	}
	db := filepath.Join(dir, "copy.sqlite")
	mustCLI(t, "", "--store", db, "import", "--create", exp)
	if out := mustCLI(t, "", "--store", "sqlite://"+db, "get", "--raw", "k"); out != "a" {
		t.Errorf("k in the new SQLite file = %q, want \"a\"", out)
	}
}
