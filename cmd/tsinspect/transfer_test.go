package main

import (
	"context"
	"errors"
	"os"
	"path/filepath"
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
		{"dry run", []string{"--dry-run"}, "dry run, nothing written; would have imported: 1 written, 0 replaced, 1 unchanged, 1 present and kept, 1 expired and skipped, 0 conflicts\n",
			map[string]string{"new": "", "same": "b", "other": "OTHER", "old": ""}},
		{"dry run overwrite", []string{"--dry-run", "--overwrite"}, "dry run, nothing written; would have imported: 1 written, 1 replaced, 1 unchanged, 0 present and kept, 1 expired and skipped, 0 conflicts\n",
			map[string]string{"new": "", "same": "b", "other": "OTHER", "old": ""}},
		{"absent only", nil, "imported: 1 written, 0 replaced, 1 unchanged, 1 present and kept, 1 expired and skipped, 0 conflicts\n",
			map[string]string{"new": "a", "same": "b", "other": "OTHER", "old": ""}},
		{"overwrite", []string{"--overwrite"}, "imported: 0 written, 1 replaced, 2 unchanged, 0 present and kept, 1 expired and skipped, 0 conflicts\n",
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
