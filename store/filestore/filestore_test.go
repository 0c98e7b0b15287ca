package filestore

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/typedsession/session/internal/storeutil"
	"github.com/typedsession/session/store"
	"github.com/typedsession/session/store/storetest"
)

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store {
		// A short interval makes the sweep run alongside the cases, so
		// that -race sees it against every operation.
		s, err := New(t.TempDir(), Options{CleanupInterval: 50 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	})
}

func TestPersistence(t *testing.T) {
	storetest.RunPersistent(t, func(t *testing.T, dir string) (store.Store, func() error) {
		s, err := New(dir, Options{CleanupInterval: 50 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		return s, s.Close
	})
}

// clock is a settable time source for newStore.
type clock struct{ offset atomic.Int64 }

func (c *clock) now() time.Time          { return time.Now().Add(time.Duration(c.offset.Load())) }
func (c *clock) advance(d time.Duration) { c.offset.Add(int64(d)) }
func newClockStore(t *testing.T, dir string, opts Options) (*Store, *clock) {
	t.Helper()
	c := &clock{}
	s, err := newStore(dir, opts, c.now)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s, c
}

var quoteKey = storeutil.QuoteKey

func openStore(t *testing.T, dir string) *Store {
	t.Helper()
	s, err := New(dir, Options{CleanupInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// valueFiles lists the names of dir's value files.
func valueFiles(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		if k, _ := classify(e.Name()); k == directName || k == hashedName {
			names = append(names, e.Name())
		}
	}
	return names
}

func exists(t *testing.T, path string) bool {
	t.Helper()
	_, err := os.Lstat(path)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		t.Fatal(err)
	}
	return err == nil
}

// hostileKeys are valid keys (store.CheckKey accepts them) that try to
// escape dir, collide, or break file names.
var hostileKeys = []string{
	"../../etc/passwd",
	"../escape",
	"..",
	".",
	"/",
	"/etc/passwd",
	"a/b/../../../c",
	"CON", "con", "NUL", "COM1", "LPT1.txt", "aux",
	".locks",
	".locks/00",
	".tmp-123",
	".k1.tmp-123",
	"k",
	"h" + strings.Repeat("0", 64),
	"trailing dot.",
	"trailing space ",
	`back\..\..\slash`,
	`C:\Windows\win.ini`,
	strings.Repeat("é", 62),                   // 124 bytes: the longest keys keep a direct name
	strings.Repeat("é", 63),                   // 126 bytes: hashed
	strings.Repeat("a", maxDirectKey),         // 124 bytes: longest direct name
	strings.Repeat("a", maxDirectKey+1),       // 125 bytes: shortest hashed name
	strings.Repeat("../", 341),                // 1023 bytes
	strings.Repeat("x", store.MaxKeyLen),      // the longest key
	strings.Repeat("é", store.MaxKeyLen/2),    // the longest key, two bytes a rune
	"\u2028 line separator, \U0001F600 emoji", // multi-byte runes
}

// refusedKeys are what store.CheckKey refuses: every method returns
// store.ErrInvalidKey for them, before any I/O.
var refusedKeys = []string{
	"",
	"nul\x00byte",
	"\x00",
	"\xff\xfe not UTF-8",
	strings.Repeat("x", store.MaxKeyLen+1),
	strings.Repeat("../", 2000),
	strings.Repeat("é", store.MaxKeyLen/2) + "x",
}

func TestRefusedKeys(t *testing.T) {
	dir := t.TempDir()
	s := openStore(t, dir)
	ctx := t.Context()
	for _, k := range refusedKeys {
		_, getErr := s.Get(ctx, k)
		_, _, gwtErr := s.GetWithTTL(ctx, k)
		_, casErr := s.CompareAndSwap(ctx, k, nil, []byte("v"), 0)
		_, cadErr := s.CompareAndDelete(ctx, k, []byte("v"))
		_, gatErr := s.GetAndTouch(ctx, k, time.Hour)
		for op, err := range map[string]error{
			"Get":              getErr,
			"GetWithTTL":       gwtErr,
			"Set":              s.Set(ctx, k, []byte("v"), time.Hour),
			"Delete":           s.Delete(ctx, k),
			"CompareAndSwap":   casErr,
			"CompareAndDelete": cadErr,
			"Touch":            s.Touch(ctx, k, time.Hour),
			"GetAndTouch":      gatErr,
		} {
			if !errors.Is(err, store.ErrInvalidKey) {
				t.Errorf("%s(%s) = %v, want store.ErrInvalidKey", op, quoteKey(k), err)
			}
			if err != nil && len(err.Error()) > 300 {
				t.Errorf("%s(%s): error of %d bytes; keys must be quoted shortened", op, quoteKey(k), len(err.Error()))
			}
		}
	}
	if names := valueFiles(t, dir); len(names) != 0 {
		t.Errorf("refused keys left value files: %q", names)
	}
	// Before any I/O: no lock file was opened either.
	if entries, err := os.ReadDir(filepath.Join(dir, lockDir)); err != nil || len(entries) != 0 {
		t.Errorf("refused keys took locks: %d lock files, %v", len(entries), err)
	}
}

func TestHostileKeys(t *testing.T) {
	parent := t.TempDir()
	dir := filepath.Join(parent, "store")
	s := openStore(t, dir)
	ctx := t.Context()
	val := func(i int) []byte { return []byte{byte(i), 0, byte(i >> 8)} }

	for i, k := range hostileKeys {
		if err := s.Set(ctx, k, val(i), time.Hour); err != nil {
			t.Fatalf("Set(%s): %v", quoteKey(k), err)
		}
	}
	for i, k := range hostileKeys {
		got, err := s.Get(ctx, k)
		if err != nil || !bytes.Equal(got, val(i)) {
			t.Fatalf("Get(%s) = %q, %v; want %q", quoteKey(k), got, err, val(i))
		}
		if ok, err := s.CompareAndSwap(ctx, k, val(i), val(i+1000), 0); err != nil || !ok {
			t.Fatalf("CompareAndSwap(%s) = %v, %v; want true", quoteKey(k), ok, err)
		}
		if err := s.Touch(ctx, k, time.Hour); err != nil {
			t.Fatalf("Touch(%s): %v", quoteKey(k), err)
		}
		if got, err := s.GetAndTouch(ctx, k, 0); err != nil || !bytes.Equal(got, val(i+1000)) {
			t.Fatalf("GetAndTouch(%s) = %q, %v; want %q", quoteKey(k), got, err, val(i+1000))
		}
		if got, ttl, err := s.GetWithTTL(ctx, k); err != nil || !bytes.Equal(got, val(i+1000)) || ttl != store.NoExpiry {
			t.Fatalf("GetWithTTL(%s) = %q, %v, %v; want %q, NoExpiry", quoteKey(k), got, ttl, err, val(i+1000))
		}
	}

	var scanned []string
	if err := s.Scan(ctx, "", func(k string) error { scanned = append(scanned, k); return nil }); err != nil {
		t.Fatal(err)
	}
	slices.Sort(scanned)
	want := slices.Clone(hostileKeys)
	slices.Sort(want)
	if diff := cmp.Diff(want, scanned); diff != "" {
		t.Fatalf("Scan(\"\") mismatch (-want +got):\n%s", diff)
	}
	if n := len(valueFiles(t, dir)); n != len(hostileKeys) {
		t.Errorf("dir holds %d value files, want one per key: %d", n, len(hostileKeys))
	}

	// Nothing outside dir, nothing below it but the lock folder, and no
	// name longer than a file system allows.
	checkConfined := func() {
		t.Helper()
		err := filepath.WalkDir(parent, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			rel, _ := filepath.Rel(dir, path)
			switch {
			case path == parent:
			case path == dir:
			case strings.HasPrefix(rel, ".."):
				t.Errorf("%s was created outside the store's dir", path)
			case len(d.Name()) > 255:
				t.Errorf("%s: name of %d bytes", path, len(d.Name()))
			case filepath.Dir(rel) == lockDir:
			case rel == lockDir:
			case filepath.Dir(rel) != ".":
				t.Errorf("%s is below dir, not in it", path)
			case d.IsDir():
				t.Errorf("%s: unexpected directory", path)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	checkConfined()

	for i, k := range hostileKeys {
		if i%2 == 0 {
			if err := s.Delete(ctx, k); err != nil {
				t.Fatalf("Delete(%s): %v", quoteKey(k), err)
			}
		} else if ok, err := s.CompareAndDelete(ctx, k, val(i+1000)); err != nil || !ok {
			t.Fatalf("CompareAndDelete(%s) = %v, %v; want true", quoteKey(k), ok, err)
		}
		if _, err := s.Get(ctx, k); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("Get(%s) after Delete = %v, want ErrNotFound", quoteKey(k), err)
		}
	}
	if names := valueFiles(t, dir); len(names) != 0 {
		t.Errorf("value files left after deleting every key: %q", names)
	}
	checkConfined()
}

func TestFileNames(t *testing.T) {
	for _, k := range hostileKeys {
		name := fileName(k)
		kind, key := classify(name)
		switch {
		case len(name) > maxDirectName:
			t.Errorf("fileName(%s) has %d bytes", quoteKey(k), len(name))
		case strings.ContainsAny(name, "/\\.\x00 ") || strings.ToLower(name) != name:
			t.Errorf("fileName(%s) = %q: not a plain lower-case name", quoteKey(k), name)
		case kind == directName && key != k:
			t.Errorf("fileName(%s) = %q decodes to %s", quoteKey(k), name, quoteKey(key))
		case kind != directName && kind != hashedName:
			t.Errorf("fileName(%s) = %q is not classified as a value file", quoteKey(k), name)
		}
	}
	for _, name := range []string{".tmp-1", ".locks", "README", "kZZ", "k!", "h123", "H" + strings.Repeat("0", 64), "h" + strings.Repeat("g", 64), "k0", "k" + strings.Repeat("0", maxDirectName)} {
		if kind, _ := classify(name); kind == directName || kind == hashedName {
			t.Errorf("classify(%q) took a foreign name for a value file", name)
		}
	}
	for _, c := range []struct {
		name string
		want nameKind
	}{
		{".tmp-1", tempName},                         // before storeutil.WriteFileAtomic
		{"." + fileName("k") + ".tmp-123", tempName}, // storeutil.WriteFileAtomic's
		{"." + fileName(strings.Repeat("k", 500)) + ".tmp-9", tempName},
		{".kzz.tmp-1", foreignName},                    // not a value file's name
		{"." + fileName("k") + ".tmp-", foreignName},   // no digits
		{"." + fileName("k") + ".tmp-1a", foreignName}, // not digits
		{".hidden", foreignName},
	} {
		if got, _ := classify(c.name); got != c.want {
			t.Errorf("classify(%q) = %v, want %v", c.name, got, c.want)
		}
	}
}

// The doc promises readable, decodable file names for keys of up to 124
// bytes (not 125: the name would be 201 bytes) and a digest name beyond.
func TestDirectNameBoundary(t *testing.T) {
	for _, c := range []struct {
		key     string
		want    nameKind
		nameLen int
	}{
		{strings.Repeat("a", 124), directName, maxDirectName},
		{strings.Repeat("é", 62), directName, maxDirectName},
		{strings.Repeat("a", 125), hashedName, 65},
		{strings.Repeat("a", 123), directName, 1 + 197},
		{strings.Repeat("a", store.MaxKeyLen), hashedName, 65},
	} {
		name := fileName(c.key)
		kind, key := classify(name)
		if kind != c.want || len(name) != c.nameLen {
			t.Errorf("key of %d bytes: name of %d bytes classified %v, want %d bytes, %v", len(c.key), len(name), kind, c.nameLen, c.want)
		}
		if kind == directName && key != c.key {
			t.Errorf("key of %d bytes: its name decodes to %s", len(c.key), quoteKey(key))
		}
	}
	// What doc.go says, checked against the constant the code uses.
	doc, err := os.ReadFile("doc.go")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(doc, []byte("key of up to 124 bytes")) || bytes.Contains(doc, []byte("125 bytes")) {
		t.Error("doc.go does not say that keys of up to 124 bytes get a direct name")
	}
}

func TestCorruptFiles(t *testing.T) {
	good := encode("k", []byte("value"), 0)
	flipped := slices.Clone(good)
	flipped[len(flipped)-1] ^= 1
	hugeKeyLen := slices.Clone(good)
	binary.BigEndian.PutUint32(hugeKeyLen[12:], store.MaxKeyLen+1)
	cases := []struct {
		name, reason string
		data         []byte
		wantInErr    string
	}{
		{"Garbage", "a file that is not ours at all", []byte("hello, world, not a value file"), "bad magic"},
		{"Empty", "an empty file, as a broken tool might leave", []byte{}, "shorter than"},
		{"ShortHeader", "a file cut inside the header", good[:10], "shorter than"},
		{"Truncated", "a file cut inside the value", good[:len(good)-1], "header says"},
		{"Appended", "a file with bytes after the value", append(slices.Clone(good), 'x'), "header says"},
		{"BitFlip", "a value byte changed on disk", flipped, "checksum"},
		{"WrongKey", "a file holding another key's value", encode("other", []byte("value"), 0), "other"},
		{"HugeKeyLength", "a header announcing a key longer than any the store takes", hugeKeyLen, "key length"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Logf("%s", tc.reason)
			dir := t.TempDir()
			s, clk := newClockStore(t, dir, Options{CleanupInterval: -1, MaxValueBytes: 1 << 20})
			ctx := t.Context()
			path := filepath.Join(dir, fileName("k"))
			if err := os.WriteFile(path, tc.data, 0o600); err != nil {
				t.Fatal(err)
			}
			wantCorrupt := func(op string, err error) {
				t.Helper()
				if !errors.Is(err, store.ErrCorrupt) || !errors.Is(err, ErrCorrupt) || errors.Is(err, store.ErrNotFound) {
					t.Fatalf("%s = %v, want an error matching store.ErrCorrupt", op, err)
				}
				if msg := err.Error(); !strings.Contains(msg, tc.wantInErr) || !strings.Contains(msg, path) {
					t.Fatalf("%s error %q does not say %q and name the file %s", op, msg, tc.wantInErr, path)
				}
			}
			unchanged := func() {
				t.Helper()
				got, err := os.ReadFile(path)
				if err != nil || !bytes.Equal(got, tc.data) {
					t.Fatalf("corrupt file changed: %q, %v", got, err)
				}
			}

			_, err := s.Get(ctx, "k")
			wantCorrupt("Get", err)
			if !strings.Contains(err.Error(), `get "k"`) {
				t.Errorf("Get error %q does not name the operation and key", err)
			}
			_, _, err = s.GetWithTTL(ctx, "k")
			wantCorrupt("GetWithTTL", err)
			_, err = s.CompareAndSwap(ctx, "k", nil, []byte("new"), 0)
			wantCorrupt("CompareAndSwap(nil old)", err)
			_, err = s.CompareAndSwap(ctx, "k", []byte("value"), []byte("new"), 0)
			wantCorrupt("CompareAndSwap", err)
			_, err = s.CompareAndDelete(ctx, "k", []byte("value"))
			wantCorrupt("CompareAndDelete", err)
			wantCorrupt("Touch", s.Touch(ctx, "k", time.Hour))
			_, err = s.GetAndTouch(ctx, "k", time.Hour)
			wantCorrupt("GetAndTouch", err)
			// The name says the key: Scan reports it, and the caller's Get
			// meets the damage for this key alone.
			var scanned []string
			if err := s.Scan(ctx, "", func(k string) error { scanned = append(scanned, k); return nil }); err != nil {
				t.Fatalf("Scan = %v; one damaged file must not stop it", err)
			}
			if diff := cmp.Diff([]string{"k"}, scanned); diff != "" {
				t.Errorf("Scan mismatch (-want +got):\n%s", diff)
			}
			clk.advance(1000 * time.Hour)
			if err := s.sweep(ctx, true); err != nil {
				t.Fatal(err)
			}
			unchanged()

			// Set replaces it, Delete removes it.
			if err := s.Set(ctx, "k", []byte("fresh"), 0); err != nil {
				t.Fatal(err)
			}
			if got, err := s.Get(ctx, "k"); err != nil || string(got) != "fresh" {
				t.Fatalf("Get after Set over a corrupt file = %q, %v", got, err)
			}
			if err := os.WriteFile(path, tc.data, 0o600); err != nil {
				t.Fatal(err)
			}
			if err := s.Delete(ctx, "k"); err != nil {
				t.Fatal(err)
			}
			if exists(t, path) {
				t.Fatal("Delete left the corrupt file")
			}
		})
	}
}

func TestForeignFilesIgnored(t *testing.T) {
	dir := t.TempDir()
	s, clk := newClockStore(t, dir, Options{CleanupInterval: -1})
	ctx := t.Context()
	foreign := []string{"README", ".tmp-12345", "." + fileName("mine") + ".tmp-12345", "kZZ", "h123", ".hidden", "k!bad"}
	for _, name := range foreign {
		if err := os.WriteFile(filepath.Join(dir, name), []byte("not ours"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Mkdir(filepath.Join(dir, "k0o"), 0o700); err != nil { // a directory under a value name
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(dir, "k0o")); err != nil {
		t.Fatal(err)
	}
	if err := s.Set(ctx, "mine", []byte("v"), 0); err != nil {
		t.Fatal(err)
	}
	var keys []string
	if err := s.Scan(ctx, "", func(k string) error { keys = append(keys, k); return nil }); err != nil {
		t.Fatalf("Scan with foreign files in dir: %v", err)
	}
	if diff := cmp.Diff([]string{"mine"}, keys); diff != "" {
		t.Fatalf("Scan mismatch (-want +got):\n%s", diff)
	}
	clk.advance(time.Minute) // younger than staleTempAge: the temp file stays
	if err := s.sweep(ctx, true); err != nil {
		t.Fatal(err)
	}
	for _, name := range foreign {
		if !exists(t, filepath.Join(dir, name)) {
			t.Errorf("sweep removed %s", name)
		}
	}
}

func TestGetHidesExpiredAtOnce(t *testing.T) {
	dir := t.TempDir()
	s, clk := newClockStore(t, dir, Options{CleanupInterval: -1})
	ctx := t.Context()
	if err := s.Set(ctx, "k", []byte("v"), time.Hour); err != nil {
		t.Fatal(err)
	}
	clk.advance(time.Hour)
	if _, err := s.Get(ctx, "k"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Get of a key at its expiry = %v, want ErrNotFound", err)
	}
	if !exists(t, filepath.Join(dir, fileName("k"))) {
		t.Fatal("the file is gone with the sweep disabled; this test would prove nothing")
	}
}

func TestSweepRemovesExpired(t *testing.T) {
	dir := t.TempDir()
	s, clk := newClockStore(t, dir, Options{CleanupInterval: -1})
	ctx := t.Context()
	long := strings.Repeat("long key ", 100)
	for _, kv := range []struct {
		key string
		ttl time.Duration
	}{{"short", time.Hour}, {long, time.Hour}, {"later", 3 * time.Hour}, {"forever", 0}} {
		if err := s.Set(ctx, kv.key, []byte("v"), kv.ttl); err != nil {
			t.Fatal(err)
		}
	}
	oldTemp := filepath.Join(dir, ".tmp-old")
	newTemp := filepath.Join(dir, ".tmp-new")
	for _, p := range []string{oldTemp, newTemp} {
		if err := os.WriteFile(p, []byte("half a write"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	clk.advance(2 * time.Hour)
	mustChtime(t, oldTemp, clk.now().Add(-staleTempAge-time.Minute))
	mustChtime(t, newTemp, clk.now().Add(-time.Minute))

	if err := s.sweep(ctx, true); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		path string
		want bool
	}{
		{filepath.Join(dir, fileName("short")), false},
		{filepath.Join(dir, fileName(long)), false},
		{filepath.Join(dir, fileName("later")), true},
		{filepath.Join(dir, fileName("forever")), true},
		{oldTemp, false},
		{newTemp, true},
	} {
		if got := exists(t, c.path); got != c.want {
			t.Errorf("after the sweep, %s exists = %v, want %v", filepath.Base(c.path), got, c.want)
		}
	}
	for _, k := range []string{"later", "forever"} {
		if _, err := s.Get(ctx, k); err != nil {
			t.Errorf("Get(%q) after the sweep: %v", k, err)
		}
	}
}

func mustChtime(t *testing.T, path string, when time.Time) {
	t.Helper()
	if err := os.Chtimes(path, when, when); err != nil {
		t.Fatal(err)
	}
}

func TestSweepRunsInBackground(t *testing.T) {
	dir := t.TempDir()
	s, clk := newClockStore(t, dir, Options{CleanupInterval: 5 * time.Millisecond})
	if err := s.Set(t.Context(), "k", []byte("v"), time.Hour); err != nil {
		t.Fatal(err)
	}
	clk.advance(2 * time.Hour)
	path := filepath.Join(dir, fileName("k"))
	// Not a timing check: the generous bound only keeps a broken sweep
	// from hanging the test.
	for deadline := time.Now().Add(30 * time.Second); exists(t, path); {
		if time.Now().After(deadline) {
			t.Fatal("the background sweep did not remove an expired file in 30s")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestNewRemovesStaleTemps(t *testing.T) {
	dir := t.TempDir()
	stale := filepath.Join(dir, ".tmp-crashed")
	fresh := filepath.Join(dir, ".tmp-in-progress")
	for _, p := range []string{stale, fresh} {
		if err := os.WriteFile(p, []byte("half a write"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	mustChtime(t, stale, time.Now().Add(-time.Hour))
	openStore(t, dir)
	if exists(t, stale) {
		t.Error("New left a temp file an hour old")
	}
	if !exists(t, fresh) {
		t.Error("New removed a fresh temp file, which may be another process's write in progress")
	}
}

func TestClose(t *testing.T) {
	s, err := New(t.TempDir(), Options{CleanupInterval: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	if err := s.Set(ctx, "k", []byte("v"), 0); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := s.Close(); !errors.Is(err, store.ErrClosed) {
		t.Fatalf("second Close = %v, want store.ErrClosed", err)
	}
	_, getErr := s.Get(ctx, "k")
	_, _, gwtErr := s.GetWithTTL(ctx, "k")
	_, casErr := s.CompareAndSwap(ctx, "k", []byte("v"), []byte("w"), 0)
	_, cadErr := s.CompareAndDelete(ctx, "k", []byte("v"))
	_, gatErr := s.GetAndTouch(ctx, "k", 0)
	for op, err := range map[string]error{
		"Get":              getErr,
		"GetWithTTL":       gwtErr,
		"Set":              s.Set(ctx, "k", []byte("w"), 0),
		"Delete":           s.Delete(ctx, "k"),
		"CompareAndSwap":   casErr,
		"CompareAndDelete": cadErr,
		"Touch":            s.Touch(ctx, "k", 0),
		"GetAndTouch":      gatErr,
		"Scan":             s.Scan(ctx, "", func(string) error { return nil }),
		"sweep":            s.sweep(ctx, true),
	} {
		if !errors.Is(err, store.ErrClosed) || !errors.Is(err, ErrClosed) {
			t.Errorf("%s after Close = %v, want store.ErrClosed", op, err)
		}
	}
	// The data stays for the next opener.
	got, err := openStore(t, s.Dir()).Get(ctx, "k")
	if err != nil || string(got) != "v" {
		t.Fatalf("Get from a new Store after Close = %q, %v; want \"v\"", got, err)
	}
}

// Close waits for a write in progress: here a Set waiting for a lock that
// another Store (as another process would) holds. When Close returns, the
// Set's value is on disk, and the Set returns nil.
func TestCloseWaitsForWrites(t *testing.T) {
	dir := t.TempDir()
	holder := openStore(t, dir)
	s, err := New(dir, Options{CleanupInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	st, err := holder.lock(t.Context(), "k")
	if err != nil {
		t.Fatal(err)
	}
	waiting := make(chan struct{})
	setErr := make(chan error, 1)
	go func() {
		setErr <- s.Set(&signalOnWait{Context: t.Context(), waiting: waiting}, "k", []byte("v"), 0)
	}()
	<-waiting // the Set has begun and waits for the lock
	closed := make(chan error, 1)
	go func() { closed <- s.Close() }()
	time.Sleep(10 * time.Millisecond) // lets Close reach its wait; not an assertion
	st.unlock()
	if err := <-closed; err != nil {
		t.Fatalf("Close: %v", err)
	}
	// Close has returned, so the Set it waited for has written its file
	// (the Set's own return may still be on its way).
	if got, err := holder.Get(t.Context(), "k"); err != nil || string(got) != "v" {
		t.Fatalf("Get right after Close = %q, %v; Close did not wait for the Set in progress", got, err)
	}
	if err := <-setErr; err != nil {
		t.Fatalf("Set in progress when Close began = %v, want nil", err)
	}
}

// signalOnWait closes waiting when a method first asks for Done, which the
// store does only when it waits for a lock.
type signalOnWait struct {
	context.Context
	once    sync.Once
	waiting chan struct{}
}

func (c *signalOnWait) Done() <-chan struct{} {
	c.once.Do(func() { close(c.waiting) })
	return c.Context.Done()
}

func TestNewRejects(t *testing.T) {
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	for name, c := range map[string]struct {
		dir  string
		opts Options
	}{
		"EmptyDir":   {"", Options{}},
		"DirIsAFile": {file, Options{}},
		"BadMode":    {t.TempDir(), Options{FileMode: fs.ModeDir | 0o600}},
	} {
		if s, err := New(c.dir, c.opts); err == nil {
			s.Close()
			t.Errorf("New %s: no error", name)
		}
	}
}

func TestFileMode(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "a", "b")
	s, err := New(dir, Options{CleanupInterval: -1, FileMode: 0o640, DirMode: 0o750})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	if err := s.Set(t.Context(), "k", []byte("v"), 0); err != nil {
		t.Fatal(err)
	}
	for path, want := range map[string]fs.FileMode{
		filepath.Join(dir, fileName("k")): 0o640,
		filepath.Join(dir, lockDir):       fs.ModeDir | 0o750&^umask(t),
		dir:                               fs.ModeDir | 0o750&^umask(t),
	} {
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode() != want {
			t.Errorf("%s has mode %v, want %v", path, fi.Mode(), want)
		}
	}
}

// umask finds the process umask by creating a directory.
func umask(t *testing.T) fs.FileMode {
	p := filepath.Join(t.TempDir(), "probe")
	if err := os.Mkdir(p, 0o777); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	return 0o777 &^ fi.Mode().Perm()
}

// Every write method takes the key's lock (in-process semaphore, then
// flock among processes): each one waits for a holder, and gives up when
// its ctx ends, leaving the value as it was.
func TestCancelWhileWaitingForLock(t *testing.T) {
	dir := t.TempDir()
	holder := openStore(t, dir)
	ops := map[string]func(s *Store, ctx context.Context) error{
		"Set":    func(s *Store, ctx context.Context) error { return s.Set(ctx, "k", []byte("after"), 0) },
		"Delete": func(s *Store, ctx context.Context) error { return s.Delete(ctx, "k") },
		"CompareAndSwap": func(s *Store, ctx context.Context) error {
			_, err := s.CompareAndSwap(ctx, "k", []byte("before"), []byte("after"), 0)
			return err
		},
		"CompareAndDelete": func(s *Store, ctx context.Context) error {
			_, err := s.CompareAndDelete(ctx, "k", []byte("before"))
			return err
		},
		"Touch": func(s *Store, ctx context.Context) error { return s.Touch(ctx, "k", time.Hour) },
		"GetAndTouch": func(s *Store, ctx context.Context) error {
			_, err := s.GetAndTouch(ctx, "k", time.Hour)
			return err
		},
	}
	for name, waiter := range map[string]*Store{
		"SameStore":  holder,            // waits on the in-process semaphore
		"OtherStore": openStore(t, dir), // waits on the flock, as another process would
	} {
		for opName, op := range ops {
			t.Run(name+"/"+opName, func(t *testing.T) {
				if err := holder.Set(t.Context(), "k", []byte("before"), 0); err != nil {
					t.Fatal(err)
				}
				st, err := holder.lock(t.Context(), "k")
				if err != nil {
					t.Fatal(err)
				}
				ctx, cancel := context.WithCancel(t.Context())
				err = op(waiter, &cancelOnWait{Context: ctx, cancel: cancel})
				st.unlock()
				if !errors.Is(err, context.Canceled) {
					t.Fatalf("%s waiting for a held lock, then cancelled = %v, want context.Canceled", opName, err)
				}
				if got, left, err := holder.GetWithTTL(t.Context(), "k"); err != nil || string(got) != "before" || left != store.NoExpiry {
					t.Fatalf("GetWithTTL = %q, %v, %v; want the value from before the cancelled %s", got, left, err, opName)
				}
			})
		}
	}
}

// cancelOnWait is a context that is cancelled once a method first asks
// for its Done channel, which the store does only when it waits for a
// lock, after its entry checks have passed.
type cancelOnWait struct {
	context.Context
	once   sync.Once
	cancel context.CancelFunc
}

func (c *cancelOnWait) Done() <-chan struct{} {
	c.once.Do(func() { go c.cancel() })
	return c.Context.Done()
}

func TestLockFilesBounded(t *testing.T) {
	dir := t.TempDir()
	s := openStore(t, dir)
	for i := range 500 {
		if err := s.Set(t.Context(), strings.Repeat("k", i+1), nil, 0); err != nil {
			t.Fatal(err)
		}
	}
	entries, err := os.ReadDir(filepath.Join(dir, lockDir))
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) > numStripes {
		t.Fatalf("%d lock files for 500 keys, want at most %d", len(entries), numStripes)
	}
}

// TestDamage runs storetest.RunDamage on files damaged as a disk, a crash
// or a broken tool would leave them: every read reports store.ErrCorrupt,
// Scan lists the key (a short key's file name says it), Delete removes it.
// (A damaged file of a long key, whose name is a digest, cannot be listed:
// TestScanSurvivesDamagedFiles.)
func TestDamage(t *testing.T) {
	newStore := func(t *testing.T) store.Store {
		s, err := New(t.TempDir(), Options{CleanupInterval: -1})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	}
	rewrite := func(change func(good []byte) []byte) storetest.Damage {
		return func(t *testing.T, st store.Store, key string) {
			path := filepath.Join(st.(*Store).dir, fileName(key))
			good, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(path, change(good), 0o600); err != nil {
				t.Fatal(err)
			}
		}
	}
	storetest.RunDamage(t, newStore, map[string]storetest.Damage{
		"Truncated":   rewrite(func(b []byte) []byte { return b[:len(b)-1] }),
		"ShortHeader": rewrite(func(b []byte) []byte { return b[:10] }),
		"BitFlip":     rewrite(func(b []byte) []byte { b[len(b)-1] ^= 1; return b }),
		"Garbage":     rewrite(func([]byte) []byte { return []byte("not a value file") }),
	})
}
