package memstore

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/typedsession/session/internal/testenv"
	"github.com/typedsession/session/store"
	"github.com/typedsession/session/store/storetest"
)

// closeOK closes s at the end of a test: the suite's Close case has
// closed it already, so ErrClosed is expected there.
func closeOK(t *testing.T, s *Store) {
	t.Cleanup(func() {
		if err := s.Close(); err != nil && !errors.Is(err, store.ErrClosed) {
			t.Error(err)
		}
	})
}

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store {
		s, err := New(Options{CleanupInterval: 50 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		closeOK(t, s)
		return s
	})
}

func TestConformanceWithBackup(t *testing.T) {
	dir := t.TempDir()
	var n atomic.Int64
	storetest.Run(t, func(t *testing.T) store.Store {
		path := filepath.Join(dir, fmt.Sprintf("snapshot-%d", n.Add(1)))
		s, err := New(Options{BackupPath: path, BackupInterval: 20 * time.Millisecond, CleanupInterval: 30 * time.Millisecond,
			OnError: func(err error) { t.Errorf("background snapshot: %v", err) }})
		if err != nil {
			t.Fatal(err)
		}
		closeOK(t, s)
		return s
	})
}

func TestPersistent(t *testing.T) {
	for name, interval := range map[string]time.Duration{"snapshot on Close only": -1, "periodic snapshots": 5 * time.Millisecond} {
		t.Run(name, func(t *testing.T) {
			storetest.RunPersistent(t, func(t *testing.T, dir string) (store.Store, func() error) {
				s, err := New(Options{BackupPath: filepath.Join(dir, "sessions.snap"), BackupInterval: interval, CleanupInterval: 10 * time.Millisecond,
					OnError: func(err error) { t.Errorf("background snapshot: %v", err) }})
				if err != nil {
					t.Fatal(err)
				}
				return s, s.Close
			})
		})
	}
}

// Issue 11 item 2: 8 goroutines Set in a loop while another calls Close;
// New restores the snapshot. Every Set that returned nil must be there with
// its value, and a Set after the one that returned ErrClosed never ran.
// 20 rounds, 200 in the slow suite.
func TestCloseRacingSetLosesNothing(t *testing.T) {
	rounds := 20
	if testenv.SlowBuild() {
		rounds = 200
	}
	path := filepath.Join(t.TempDir(), "sessions.snap")
	ctx := context.Background()
	var missing, stale, acked int
	for round := range rounds {
		s, err := New(Options{BackupPath: path, BackupInterval: -1, CleanupInterval: -1})
		if err != nil {
			t.Fatal(err)
		}
		last := make([]int, 8) // last acknowledged value of writer w's key; -1: none
		var wg sync.WaitGroup
		for w := range last {
			last[w] = -1
			wg.Go(func() {
				key := fmt.Sprintf("r%d:w%d", round, w)
				for i := 0; ; i++ {
					err := s.Set(ctx, key, []byte(strconv.Itoa(i)), 0)
					if err != nil {
						if !errors.Is(err, store.ErrClosed) {
							t.Errorf("Set racing with Close = %v, want nil or ErrClosed", err)
						}
						return
					}
					last[w] = i
				}
			})
		}
		time.Sleep(time.Duration(round%5) * 100 * time.Microsecond)
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		wg.Wait()
		s2, err := New(Options{BackupPath: path, BackupInterval: -1, CleanupInterval: -1})
		if err != nil {
			t.Fatal(err)
		}
		for w, want := range last {
			if want < 0 {
				continue
			}
			acked++
			got, err := s2.Get(ctx, fmt.Sprintf("r%d:w%d", round, w))
			switch {
			case err != nil:
				missing++
			case string(got) != strconv.Itoa(want):
				stale++
				t.Logf("round %d writer %d: acknowledged %d, restored %s", round, w, want, got)
			}
		}
		if err := s2.Close(); err != nil {
			t.Fatal(err)
		}
	}
	if missing != 0 || stale != 0 {
		t.Fatalf("over %d rounds, %d of %d acknowledged keys were missing and %d stale after Close and New", rounds, missing, acked, stale)
	}
}

// Issue 11 item 3: keys that are not UTF-8 are refused, not lost at the
// next restart; every accepted key survives byte for byte.
func TestKeysRefusedOrKeptExactly(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sessions.snap")
	ctx := context.Background()
	s, err := New(Options{BackupPath: path, BackupInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"\xff", "\xfe", "\xff\xfe", "a\x00b", ""} {
		if err := s.Set(ctx, k, []byte("v"), 0); !errors.Is(err, store.ErrInvalidKey) {
			t.Errorf("Set(%q) = %v, want ErrInvalidKey", k, err)
		}
	}
	keys := []string{"\ufffd", "\ufffd\ufffd", "html <&>", "\u2028", "e\u0301", "é", "\x7f"}
	for i, k := range keys {
		if err := s.Set(ctx, k, []byte{byte(i), 0xff}, 0); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s, err = New(Options{BackupPath: path, BackupInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if s.Len() != len(keys) {
		t.Errorf("after restart %d keys, want %d", s.Len(), len(keys))
	}
	for i, k := range keys {
		if got, err := s.Get(ctx, k); err != nil || !bytes.Equal(got, []byte{byte(i), 0xff}) {
			t.Errorf("after restart Get(%q) = %q, %v; want %q", k, got, err, []byte{byte(i), 0xff})
		}
	}
}

// Issue 11 item 5: a TTL of 250 years or the largest Duration is clamped,
// not wrapped into the past.
func TestLongTTLClamped(t *testing.T) {
	s, err := New(Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	for _, ttl := range []time.Duration{250 * 365 * 24 * time.Hour, math.MaxInt64} {
		if err := s.Set(ctx, "k", []byte("v"), ttl); err != nil {
			t.Fatal(err)
		}
		want := time.Until(store.MaxExpiry)
		_, left, err := s.GetWithTTL(ctx, "k")
		if err != nil {
			t.Fatalf("Get right after Set with ttl %v: %v", ttl, err)
		}
		if left > want || left < want-time.Minute {
			t.Errorf("ttl %v: %v left, want about %v (clamped to store.MaxExpiry)", ttl, left, want)
		}
	}
}

// Issue 11, the store interface: DefaultTTL expired the sessions of a
// manager configured never to expire them. It is refused now.
func TestDefaultTTLRefused(t *testing.T) {
	s, err := New(Options{DefaultTTL: time.Hour})
	if err == nil {
		s.Close()
		t.Fatal("New with a DefaultTTL succeeded; it must fail")
	}
	if !strings.Contains(err.Error(), "session.Config.TTL") {
		t.Errorf("New's error %q does not say what to use instead", err)
	}
	if _, err := New(Options{MaxValueBytes: -1}); err == nil {
		t.Error("New with a negative MaxValueBytes succeeded")
	}
}

func rawCount(s *Store) int {
	n := 0
	for i := range s.shards {
		s.shards[i].mu.RLock()
		n += len(s.shards[i].m)
		s.shards[i].mu.RUnlock()
	}
	return n
}

func TestSweepRemovesExpired(t *testing.T) {
	s, err := New(Options{CleanupInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := t.Context()
	for _, k := range []string{"a", "b", "c"} {
		if err := s.Set(ctx, k, []byte("v"), time.Millisecond); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Set(ctx, "keep", []byte("v"), 0); err != nil {
		t.Fatal(err)
	}
	time.Sleep(20 * time.Millisecond)
	if got := rawCount(s); got != 4 {
		t.Fatalf("before the sweep the map holds %d entries, want 4 (sweep is off)", got)
	}
	s.sweep(ctx)
	if got := rawCount(s); got != 1 {
		t.Fatalf("after the sweep the map holds %d entries, want 1", got)
	}
	if s.Len() != 1 {
		t.Fatalf("Len = %d, want 1", s.Len())
	}
}

// Issue 11 item 4, memstore's member: a key written again or extended
// between the sweep's search and its removal is kept.
func TestSweepKeepsWhatWasRefreshed(t *testing.T) {
	s, err := New(Options{CleanupInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := t.Context()
	for _, k := range []string{"rewritten", "extended", "dead"} {
		if err := s.Set(ctx, k, []byte("old"), time.Millisecond); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(5 * time.Millisecond)
	var once sync.Once
	s.sweepHook = func() {
		once.Do(func() {
			// The expired keys have been found; now a user saves one
			// session again, and another key's deadline moves on (set
			// directly: no method extends an expired key).
			if err := s.Set(ctx, "rewritten", []byte("new"), time.Hour); err != nil {
				t.Error(err)
			}
			s.shard("extended").mu.Lock()
			e := s.shard("extended").m["extended"]
			e.expires = time.Now().Add(time.Hour).UnixNano()
			s.shard("extended").m["extended"] = e
			s.shard("extended").mu.Unlock()
		})
	}
	s.sweep(ctx)
	if got, err := s.Get(ctx, "rewritten"); err != nil || string(got) != "new" {
		t.Errorf("Get(rewritten) after the sweep = %q, %v; want %q", got, err, "new")
	}
	if got, err := s.Get(ctx, "extended"); err != nil || string(got) != "old" {
		t.Errorf("Get(extended) after the sweep = %q, %v; want %q", got, err, "old")
	}
	if got := rawCount(s); got != 2 {
		t.Errorf("after the sweep the map holds %d entries, want 2 (dead removed)", got)
	}
}

func TestSnapshotSurvivesRestart(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sessions.snap")
	ctx := context.Background()
	s, err := New(Options{BackupPath: path, BackupInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	s.Set(ctx, "forever", []byte("kept\x00bytes"), 0)
	s.Set(ctx, "hour", []byte("kept for an hour"), time.Hour)
	s.Set(ctx, "short", []byte("gone soon"), 300*time.Millisecond)
	s.Set(ctx, "dead", []byte("expired before Close"), time.Millisecond)
	time.Sleep(10 * time.Millisecond)
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if _, err := s.Get(ctx, "forever"); !errors.Is(err, store.ErrClosed) || !errors.Is(err, ErrClosed) {
		t.Fatalf("Get after Close = %v, want store.ErrClosed (and the deprecated memstore.ErrClosed)", err)
	}

	s2, err := New(Options{BackupPath: path, BackupInterval: -1})
	if err != nil {
		t.Fatalf("New with the snapshot: %v", err)
	}
	defer s2.Close()
	for k, want := range map[string]string{"forever": "kept\x00bytes", "hour": "kept for an hour", "short": "gone soon"} {
		got, err := s2.Get(ctx, k)
		if err != nil || string(got) != want {
			t.Errorf("after restore Get(%q) = %q, %v; want %q", k, got, err, want)
		}
	}
	if _, err := s2.Get(ctx, "dead"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("a key expired before Close was restored: %v", err)
	}
	// Expiry is absolute: "short" keeps its original deadline, not a new one.
	time.Sleep(500 * time.Millisecond)
	if _, err := s2.Get(ctx, "short"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("restored key outlived its original TTL: %v", err)
	}
	if _, err := s2.Get(ctx, "hour"); err != nil {
		t.Errorf("restored key with an hour left: %v", err)
	}
}

// The version 1 (JSON) snapshot in testdata was written by the memstore
// of before the streaming snapshot; existing backups must load.
func TestRestoresVersion1Snapshot(t *testing.T) {
	data, err := os.ReadFile("testdata/v1-snapshot.json")
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "sessions.json")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	var skipped []string
	opts := Options{BackupPath: path, BackupInterval: -1, OnError: func(err error) { skipped = append(skipped, err.Error()) }}
	s, err := New(opts)
	if err != nil {
		t.Fatalf("New with a version 1 snapshot: %v", err)
	}
	want := map[string]string{
		"quiz:1":              `{"typedsession":1,"data":{"score":3}}`,
		"binary":              "\x00\x01\xff\xfe\"\\",
		"empty":               "",
		"html <&> and \u2028": "v",
		"ünïcödé:🙂":           "v",
		"\ufffd":              "replacement",
		"until 2200":          "long",
	}
	check := func(s *Store, when string) {
		t.Helper()
		ctx := context.Background()
		if s.Len() != len(want) {
			t.Errorf("%s: %d keys, want %d", when, s.Len(), len(want))
		}
		for k, v := range want {
			if got, err := s.Get(ctx, k); err != nil || string(got) != v {
				t.Errorf("%s: Get(%q) = %q, %v; want %q", when, k, got, err, v)
			}
		}
		if _, left, err := s.GetWithTTL(ctx, "until 2200"); err != nil || left < 100*365*24*time.Hour {
			t.Errorf("%s: the key expiring in 2200 has %v left, %v", when, left, err)
		}
		if _, left, _ := s.GetWithTTL(ctx, "quiz:1"); left != store.NoExpiry {
			t.Errorf("%s: a key without expiry has %v left", when, left)
		}
	}
	check(s, "after restoring version 1")
	if len(skipped) != 2 {
		t.Errorf("OnError got %d reports, want 2 (the empty key and the key with NUL): %q", len(skipped), skipped)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if head, _ := os.ReadFile(path); !bytes.HasPrefix(head, []byte(snapMagic)) {
		t.Fatalf("Close wrote %q..., want a version 2 snapshot", head[:min(len(head), 30)])
	}
	s, err = New(opts)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	check(s, "after writing and restoring version 2")
}

func TestPeriodicSnapshot(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sessions.snap")
	s, err := New(Options{BackupPath: path, BackupInterval: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	s.Set(t.Context(), "k", []byte("v"), 0)
	deadline := time.Now().Add(10 * time.Second)
	for {
		// Restore what the periodic snapshot wrote into a second store.
		copyPath := path + ".copy"
		data, err := os.ReadFile(path)
		if err == nil {
			os.WriteFile(copyPath, data, 0o600)
			if s2, err := New(Options{BackupPath: copyPath, BackupInterval: -1}); err == nil {
				_, gerr := s2.Get(t.Context(), "k")
				s2.Close()
				if gerr == nil {
					return
				}
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no periodic snapshot with the key after 10s (last read: %v)", err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// A failed periodic snapshot is reported through OnError, not swallowed.
func TestFailedSnapshotReported(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "gone")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	reported := make(chan error, 100)
	s, err := New(Options{BackupPath: filepath.Join(dir, "sessions.snap"), BackupInterval: 5 * time.Millisecond,
		OnError: func(err error) {
			select {
			case reported <- err:
			default:
			}
		}})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-reported:
		t.Logf("reported: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("a periodic snapshot into a removed folder was not reported in 10s")
	}
	if err := s.Close(); err == nil {
		t.Fatal("Close returned nil though its snapshot cannot be written")
	}
}

// Issue 12 item 6: a crash mid-snapshot leaves a temp file; New removes it.
func TestNewRemovesLeftoverTemps(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "sessions.snap")
	leftovers := []string{".sessions.snap.tmp-123", ".sessions.snap.tmp-4567"}
	keep := []string{"sessions.snap.tmp-1", ".other.snap.tmp-1", "unrelated"}
	for _, n := range slices.Concat(leftovers, keep) {
		if err := os.WriteFile(filepath.Join(dir, n), []byte("partial"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	s, err := New(Options{BackupPath: path, BackupInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for _, n := range leftovers {
		if _, err := os.Stat(filepath.Join(dir, n)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("leftover %s still there: %v", n, err)
		}
	}
	for _, n := range keep {
		if _, err := os.Stat(filepath.Join(dir, n)); err != nil {
			t.Errorf("%s, not a leftover of this snapshot, was removed: %v", n, err)
		}
	}
}

// Issue 12 item 6: MaxValueBytes refuses a value before it is copied, and
// a snapshot entry before it is allocated.
func TestMaxValueBytes(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "sessions.snap")
	s, err := New(Options{BackupPath: path, BackupInterval: -1, MaxValueBytes: 1000})
	if err != nil {
		t.Fatal(err)
	}
	big := make([]byte, 1001)
	if err := s.Set(ctx, "k", big, 0); !errors.Is(err, store.ErrTooLarge) {
		t.Errorf("Set of %d bytes with a cap of 1000 = %v, want ErrTooLarge", len(big), err)
	}
	if _, err := s.CompareAndSwap(ctx, "k", nil, big, 0); !errors.Is(err, store.ErrTooLarge) {
		t.Errorf("CompareAndSwap of %d bytes with a cap of 1000 = %v, want ErrTooLarge", len(big), err)
	}
	if err := s.Set(ctx, "k", big[:1000], 0); err != nil {
		t.Errorf("Set of 1000 bytes with a cap of 1000 = %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := New(Options{BackupPath: path, MaxValueBytes: 999}); !errors.Is(err, store.ErrTooLarge) {
		t.Errorf("New with a snapshot holding 1000 bytes and a cap of 999 = %v, want ErrTooLarge", err)
	}
	s, err = New(Options{BackupPath: path, MaxValueBytes: 1000})
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
}

// v2 builds a version 2 snapshot from raw records, with a correct trailer
// unless the caller damages it.
func v2(records ...[]byte) []byte { return v2Hint(uint64(len(records)), records...) }

func v2Hint(hint uint64, records ...[]byte) []byte {
	b := binary.AppendUvarint([]byte(snapMagic), hint)
	for _, r := range records {
		b = append(b, r...)
	}
	b = append(b, recTrailer)
	b = binary.AppendUvarint(b, uint64(len(records)))
	return binary.LittleEndian.AppendUint32(b, crc32.Checksum(b, castagnoli))
}

func rec(key string, valueLen uint64, value string, expires int64) []byte {
	b := []byte{recEntry}
	b = binary.AppendUvarint(b, uint64(len(key)))
	b = append(b, key...)
	b = binary.AppendUvarint(b, valueLen)
	b = append(b, value...)
	return binary.AppendVarint(b, expires)
}

func TestUnreadableSnapshotFailsNew(t *testing.T) {
	good := v2(rec("a", 1, "v", 0), rec("b", 2, "vv", 0))
	flip := bytes.Clone(good)
	flip[len(snapMagic)+5] ^= 1 // the value of "a"
	cases := map[string]struct {
		content string
		corrupt bool
	}{
		"v1 truncated":       {`{"format":"typedsession-memstore","version":1,"entries":[{"key":"a"`, true},
		"not json":           {"\x01\x02garbage", true},
		"v1 other format":    {`{"format":"something-else","version":1,"entries":[]}`, false},
		"v1 newer":           {`{"format":"typedsession-memstore","version":3,"entries":[]}`, false},
		"v1 trailing data":   {`{"format":"typedsession-memstore","version":1,"entries":[]} {}`, true},
		"v2 truncated":       {string(good[:len(good)-7]), true},
		"v2 trailer missing": {string(good[:len(good)-6]), true},
		"v2 bit flipped":     {string(flip), true},
		"v2 trailing data":   {string(good) + "x", true},
		"v2 huge length":     {string(v2(rec("a", 1<<62, "v", 0))), true},
		"v2 bad key":         {string(v2(rec("\xff", 1, "v", 0))), true},
		"v2 empty key":       {string(v2(rec("", 1, "v", 0))), true},
		"v2 unknown record":  {string(v2([]byte{'Q'})), true},
		"v2 magic only":      {snapMagic, true},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "sessions.snap")
			if err := os.WriteFile(path, []byte(c.content), 0o600); err != nil {
				t.Fatal(err)
			}
			s, err := New(Options{BackupPath: path})
			if err == nil {
				s.Close()
				t.Fatal("New with an unreadable snapshot succeeded; it must fail")
			}
			t.Logf("New: %v", err)
			if c.corrupt && !errors.Is(err, store.ErrCorrupt) {
				t.Errorf("New = %v, want an error matching store.ErrCorrupt", err)
			}
			got, _ := os.ReadFile(path)
			if string(got) != c.content {
				t.Fatalf("the unreadable snapshot was changed to %q", got)
			}
		})
	}
	// The good one restores, and so does one whose size hint is absurd
	// (the maps are sized by what the file can hold, not by the hint).
	for _, content := range [][]byte{good, v2Hint(1<<62, rec("a", 1, "v", 0), rec("b", 2, "vv", 0))} {
		path := filepath.Join(t.TempDir(), "sessions.snap")
		os.WriteFile(path, content, 0o600)
		s, err := New(Options{BackupPath: path})
		if err != nil {
			t.Fatal(err)
		}
		if got, err := s.Get(context.Background(), "b"); err != nil || string(got) != "vv" {
			t.Fatalf("Get(b) from a hand-made snapshot = %q, %v", got, err)
		}
		s.Close()
	}
}

func TestSnapshotUnreadableFile(t *testing.T) {
	if os.Geteuid() == 0 {
		// root reads files whatever their mode; use a directory instead.
		path := t.TempDir()
		if _, err := New(Options{BackupPath: path}); err == nil {
			t.Fatal("New with a directory as BackupPath succeeded")
		}
		return
	}
	path := filepath.Join(t.TempDir(), "sessions.json")
	os.WriteFile(path, []byte("{}"), 0)
	if _, err := New(Options{BackupPath: path}); err == nil {
		t.Fatal("New with an unreadable snapshot succeeded")
	}
}
