package filestore

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/typedsession/session/store"
)

// writeOps are the methods that take a ttl, each applied to key "k",
// which holds "v" when it is called.
var writeOps = []struct {
	name string
	do   func(s *Store, t *testing.T, ttl time.Duration) error
}{
	{"Set", func(s *Store, t *testing.T, ttl time.Duration) error {
		return s.Set(t.Context(), "k", []byte("v"), ttl)
	}},
	{"CompareAndSwap", func(s *Store, t *testing.T, ttl time.Duration) error {
		ok, err := s.CompareAndSwap(t.Context(), "k", []byte("v"), []byte("v2"), ttl)
		if err == nil && !ok {
			t.Fatal("CompareAndSwap of the current value = false")
		}
		return err
	}},
	{"Touch", func(s *Store, t *testing.T, ttl time.Duration) error {
		return s.Touch(t.Context(), "k", ttl)
	}},
	{"GetAndTouch", func(s *Store, t *testing.T, ttl time.Duration) error {
		_, err := s.GetAndTouch(t.Context(), "k", ttl)
		return err
	}},
}

// Issue 11, item 5: a ttl of 250 years or the largest time.Duration once
// computed an expiry in the past, and the key was gone the moment it was
// written. Now it is clamped to store.MaxExpiry in every write method.
func TestLongTTLClamped(t *testing.T) {
	for _, ttl := range []time.Duration{250 * 365 * 24 * time.Hour, math.MaxInt64, math.MaxInt64 - 1, 200 * 365 * 24 * time.Hour} {
		for _, op := range []string{"Set", "CompareAndSwap", "Touch", "GetAndTouch"} {
			s, _ := newClockStore(t, t.TempDir(), Options{CleanupInterval: -1})
			ctx := t.Context()
			if err := s.Set(ctx, "k", []byte("v"), time.Hour); err != nil {
				t.Fatal(err)
			}
			want := time.Until(store.MaxExpiry) // measured before the write: left can only be less
			if ttl < want {
				want = ttl
			}
			var err error
			switch op {
			case "Set":
				err = s.Set(ctx, "k", []byte("v"), ttl)
			case "CompareAndSwap":
				var ok bool
				ok, err = s.CompareAndSwap(ctx, "k", []byte("v"), []byte("v"+"2"), ttl)
				if err == nil && !ok {
					t.Fatalf("CompareAndSwap = false")
				}
			case "Touch":
				err = s.Touch(ctx, "k", ttl)
			case "GetAndTouch":
				_, err = s.GetAndTouch(ctx, "k", ttl)
			}
			if err != nil {
				t.Fatalf("%s(ttl %v): %v", op, ttl, err)
			}
			_, left, err := s.GetWithTTL(ctx, "k")
			if err != nil {
				t.Fatalf("GetWithTTL right after %s with ttl %v = %v; the key must be live", op, ttl, err)
			}
			if left <= 0 || left > want || want-left > time.Minute {
				t.Errorf("%s(ttl %v): %v left, want about %v", op, ttl, left, want)
			}
			s.Close()
		}
	}
}

// A ttl <= 0 means "no expiry" in every method and removes the expiry the
// key had.
func TestNonPositiveTTLRemovesExpiry(t *testing.T) {
	for _, op := range writeOps {
		for _, ttl := range []time.Duration{0, -1, -time.Hour, math.MinInt64} {
			s, clk := newClockStore(t, t.TempDir(), Options{CleanupInterval: -1})
			ctx := t.Context()
			if err := s.Set(ctx, "k", []byte("v"), time.Hour); err != nil {
				t.Fatal(err)
			}
			if err := op.do(s, t, ttl); err != nil {
				t.Fatalf("%s(ttl %v): %v", op.name, ttl, err)
			}
			if _, left, err := s.GetWithTTL(ctx, "k"); err != nil || left != store.NoExpiry {
				t.Errorf("%s(ttl %v): GetWithTTL = %v, %v; want NoExpiry", op.name, ttl, left, err)
			}
			clk.advance(2 * time.Hour)
			if _, err := s.Get(ctx, "k"); err != nil {
				t.Errorf("%s(ttl %v), then the old expiry passed: Get = %v; want the key", op.name, ttl, err)
			}
			s.Close()
		}
	}
}

func TestGetWithTTL(t *testing.T) {
	s, clk := newClockStore(t, t.TempDir(), Options{CleanupInterval: -1})
	ctx := t.Context()
	if _, _, err := s.GetWithTTL(ctx, "absent"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("GetWithTTL of an absent key = %v, want ErrNotFound", err)
	}
	if err := s.Set(ctx, "k", []byte("v"), time.Hour); err != nil {
		t.Fatal(err)
	}
	clk.advance(10 * time.Minute)
	v, left, err := s.GetWithTTL(ctx, "k")
	if err != nil || string(v) != "v" || left > 50*time.Minute || left < 49*time.Minute {
		t.Fatalf("GetWithTTL = %q, %v, %v; want \"v\" and just under 50m", v, left, err)
	}
	clk.advance(time.Hour)
	if _, _, err := s.GetWithTTL(ctx, "k"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("GetWithTTL of an expired key = %v, want ErrNotFound", err)
	}
}

// The resend rule: a swap that finds the value it would write reports true
// and sets the ttl, whatever old it gives.
func TestCompareAndSwapResend(t *testing.T) {
	s, _ := newClockStore(t, t.TempDir(), Options{CleanupInterval: -1})
	ctx := t.Context()
	if ok, err := s.CompareAndSwap(ctx, "k", nil, []byte("v1"), 0); err != nil || !ok {
		t.Fatalf("first CompareAndSwap = %v, %v", ok, err)
	}
	// The same swap again, as a client resends it after a lost reply.
	if ok, err := s.CompareAndSwap(ctx, "k", nil, []byte("v1"), time.Hour); err != nil || !ok {
		t.Fatalf("resent CompareAndSwap(nil -> v1) = %v, %v; want true", ok, err)
	}
	if _, left, err := s.GetWithTTL(ctx, "k"); err != nil || left <= 0 || left > time.Hour {
		t.Fatalf("after the resend: %v left, %v; want the resend's ttl", left, err)
	}
	if ok, err := s.CompareAndSwap(ctx, "k", []byte("v1"), []byte("v2"), 0); err != nil || !ok {
		t.Fatalf("CompareAndSwap(v1 -> v2) = %v, %v", ok, err)
	}
	if ok, err := s.CompareAndSwap(ctx, "k", []byte("v1"), []byte("v2"), 0); err != nil || !ok {
		t.Fatalf("resent CompareAndSwap(v1 -> v2) = %v, %v; want true", ok, err)
	}
	// A real conflict stays one.
	if ok, err := s.CompareAndSwap(ctx, "k", []byte("v1"), []byte("v3"), 0); err != nil || ok {
		t.Fatalf("CompareAndSwap(v1 -> v3) on v2 = %v, %v; want false", ok, err)
	}
	wantGet(t, s, "k", "v2")
}

func wantGet(t *testing.T, s *Store, key, want string) {
	t.Helper()
	if got, err := s.Get(t.Context(), key); err != nil || string(got) != want {
		t.Fatalf("Get(%q) = %q, %v; want %q", key, got, err, want)
	}
}

func TestCompareAndDelete(t *testing.T) {
	s, clk := newClockStore(t, t.TempDir(), Options{CleanupInterval: -1})
	ctx := t.Context()
	if ok, err := s.CompareAndDelete(ctx, "absent", []byte("x")); err != nil || ok {
		t.Fatalf("CompareAndDelete of an absent key = %v, %v; want false", ok, err)
	}
	if err := s.Set(ctx, "k", []byte("mine"), 0); err != nil {
		t.Fatal(err)
	}
	if ok, err := s.CompareAndDelete(ctx, "k", []byte("stale")); err != nil || ok {
		t.Fatalf("CompareAndDelete with another value = %v, %v; want false", ok, err)
	}
	if ok, err := s.CompareAndDelete(ctx, "k", nil); err != nil || ok {
		t.Fatalf("CompareAndDelete with nil old on a key holding a value = %v, %v; want false", ok, err)
	}
	wantGet(t, s, "k", "mine")
	if ok, err := s.CompareAndDelete(ctx, "k", []byte("mine")); err != nil || !ok {
		t.Fatalf("CompareAndDelete with the current value = %v, %v; want true", ok, err)
	}
	if _, err := s.Get(ctx, "k"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Get after CompareAndDelete = %v, want ErrNotFound", err)
	}
	// Resent: the key is already gone, and this call deleted nothing.
	if ok, err := s.CompareAndDelete(ctx, "k", []byte("mine")); err != nil || ok {
		t.Fatalf("resent CompareAndDelete = %v, %v; want false", ok, err)
	}
	// An empty value is a value.
	if err := s.Set(ctx, "e", []byte{}, 0); err != nil {
		t.Fatal(err)
	}
	if ok, err := s.CompareAndDelete(ctx, "e", []byte{}); err != nil || !ok {
		t.Fatalf("CompareAndDelete of an empty value = %v, %v; want true", ok, err)
	}
	// An expired key counts as absent.
	if err := s.Set(ctx, "x", []byte("v"), time.Minute); err != nil {
		t.Fatal(err)
	}
	clk.advance(time.Hour)
	if ok, err := s.CompareAndDelete(ctx, "x", []byte("v")); err != nil || ok {
		t.Fatalf("CompareAndDelete of an expired key = %v, %v; want false", ok, err)
	}
}

// CompareAndDelete racing with CompareAndSwap on one key from two Stores
// (two processes, as far as the locks go): the delete happens only when
// it finds its value, so a swap that succeeded after the read is never
// erased.
func TestCompareAndDeleteAgainstSwaps(t *testing.T) {
	dir := t.TempDir()
	a, b := openStore(t, dir), openStore(t, dir)
	ctx := t.Context()
	for round := range 200 {
		if err := a.Set(ctx, "k", []byte("v0"), 0); err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		var swapped, deleted bool
		var swapErr, delErr error
		wg.Go(func() { swapped, swapErr = b.CompareAndSwap(ctx, "k", []byte("v0"), []byte("v1"), 0) })
		wg.Go(func() { deleted, delErr = a.CompareAndDelete(ctx, "k", []byte("v0")) })
		wg.Wait()
		if swapErr != nil || delErr != nil {
			t.Fatal(swapErr, delErr)
		}
		got, err := a.Get(ctx, "k")
		switch {
		case swapped && deleted:
			// The swap went first (v0 -> v1)? Then the delete found v1 and
			// must have said false. The delete went first? Then the swap
			// found nothing and must have said false.
			t.Fatalf("round %d: both the swap and the delete of v0 succeeded; Get = %q, %v", round, got, err)
		case swapped && (err != nil || string(got) != "v1"):
			t.Fatalf("round %d: acknowledged swap lost: Get = %q, %v", round, got, err)
		case deleted && !errors.Is(err, store.ErrNotFound):
			t.Fatalf("round %d: acknowledged delete undone: Get = %q, %v", round, got, err)
		}
	}
}

// Issue 12, item 5: a file truncated to 30 bytes stopped every Scan with
// an error, for every prefix. Now Scan lists every key (a damaged file of a
// short key too: its name says the key), skips a damaged long-key file and
// reports it through OnError, and Get of the damaged key matches
// store.ErrCorrupt.
func TestScanSurvivesDamagedFiles(t *testing.T) {
	dir := t.TempDir()
	var mu sync.Mutex
	var reported []error
	s, err := New(dir, Options{CleanupInterval: -1, OnError: func(err error) {
		mu.Lock()
		defer mu.Unlock()
		reported = append(reported, err)
	}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	ctx := t.Context()
	longGood := "n:" + strings.Repeat("g", 300)
	longBad := "n:" + strings.Repeat("b", 300)
	keys := []string{"n:1", "n:2", "n:3", "m:1", "m:2", longGood, longBad}
	for _, k := range keys {
		if err := s.Set(ctx, k, bytes.Repeat([]byte("x"), 100), 0); err != nil {
			t.Fatal(err)
		}
	}
	for _, k := range []string{"n:2", longBad} {
		if err := os.Truncate(filepath.Join(dir, fileName(k)), 30); err != nil {
			t.Fatal(err)
		}
	}
	scan := func(prefix string) []string {
		t.Helper()
		var got []string
		if err := s.Scan(ctx, prefix, func(k string) error { got = append(got, k); return nil }); err != nil {
			t.Fatalf("Scan(%q) = %v; a damaged file must not stop it", prefix, err)
		}
		slices.Sort(got)
		return got
	}
	if diff := cmp.Diff([]string{"n:1", "n:2", "n:3", longGood}, scan("n:")); diff != "" {
		t.Errorf("Scan(\"n:\") mismatch (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"m:1", "m:2"}, scan("m:")); diff != "" {
		t.Errorf("Scan(\"m:\") mismatch (-want +got):\n%s", diff)
	}
	mu.Lock()
	if len(reported) != 2 {
		t.Errorf("OnError got %d errors for two scans past one damaged long-key file, want 2: %v", len(reported), reported)
	}
	for _, err := range reported {
		if !errors.Is(err, store.ErrCorrupt) || !strings.Contains(err.Error(), fileName(longBad)) {
			t.Errorf("OnError got %v; want an error matching store.ErrCorrupt naming %s", err, fileName(longBad))
		}
	}
	mu.Unlock()
	for _, k := range []string{"n:2", longBad} {
		_, err := s.Get(ctx, k)
		if !errors.Is(err, store.ErrCorrupt) {
			t.Errorf("Get(%s) of a truncated file = %v, want store.ErrCorrupt", quoteKey(k), err)
		}
	}
}

// Issue 12, item 6: a value over the cap is refused from the header, before
// the store allocates it; Set and CompareAndSwap refuse it too.
func TestMaxValueBytes(t *testing.T) {
	const limit = 1 << 20
	dir := t.TempDir()
	s, clk := newClockStore(t, dir, Options{CleanupInterval: -1, MaxValueBytes: limit})
	ctx := t.Context()

	// A file whose header announces a 3 GiB value: sparse, so it costs no
	// disk, and the whole of it would cost 3 GiB of memory.
	const huge = 3 << 30
	hdr := encode("big", nil, 0)
	binaryPutLen(hdr, huge)
	path := filepath.Join(dir, fileName("big"))
	if err := os.WriteFile(path, hdr, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(path, int64(len(hdr))+huge); err != nil {
		t.Skipf("cannot make a sparse 3 GiB file here: %v", err)
	}
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	_, getErr := s.Get(ctx, "big")
	_, _, gwtErr := s.GetWithTTL(ctx, "big")
	_, gatErr := s.GetAndTouch(ctx, "big", time.Hour)
	_, casErr := s.CompareAndSwap(ctx, "big", []byte("x"), []byte("y"), 0)
	_, cadErr := s.CompareAndDelete(ctx, "big", []byte("x"))
	touchErr := s.Touch(ctx, "big", time.Hour)
	runtime.ReadMemStats(&after)
	for op, err := range map[string]error{"Get": getErr, "GetWithTTL": gwtErr, "GetAndTouch": gatErr, "CompareAndSwap": casErr, "CompareAndDelete": cadErr, "Touch": touchErr} {
		if !errors.Is(err, store.ErrTooLarge) {
			t.Errorf("%s of a 3 GiB value with MaxValueBytes 1 MiB = %v, want store.ErrTooLarge", op, err)
		}
	}
	if got := after.TotalAlloc - before.TotalAlloc; got > limit {
		t.Errorf("refusing a 3 GiB value allocated %d bytes; it must read the header only", got)
	}

	// Writes over the cap are refused and leave the key as it was.
	if err := s.Set(ctx, "k", []byte("small"), 0); err != nil {
		t.Fatal(err)
	}
	big := make([]byte, limit+1)
	if err := s.Set(ctx, "k", big, 0); !errors.Is(err, store.ErrTooLarge) {
		t.Errorf("Set of %d bytes = %v, want store.ErrTooLarge", len(big), err)
	}
	if _, err := s.CompareAndSwap(ctx, "k", []byte("small"), big, 0); !errors.Is(err, store.ErrTooLarge) {
		t.Errorf("CompareAndSwap to %d bytes = %v, want store.ErrTooLarge", len(big), err)
	}
	wantGet(t, s, "k", "small")
	// At the cap is fine.
	if err := s.Set(ctx, "k", big[:limit], 0); err != nil {
		t.Fatalf("Set of exactly MaxValueBytes: %v", err)
	}
	if v, err := s.Get(ctx, "k"); err != nil || len(v) != limit {
		t.Fatalf("Get of exactly MaxValueBytes = %d bytes, %v", len(v), err)
	}

	// An expired value over the cap is absent, like any expired key.
	binaryPutExpiry(hdr, clk.now().Add(time.Minute).UnixNano())
	if err := os.WriteFile(path, hdr, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(path, int64(len(hdr))+huge); err != nil {
		t.Fatal(err)
	}
	clk.advance(time.Hour)
	if _, err := s.Get(ctx, "big"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Get of an expired value over the cap = %v, want ErrNotFound", err)
	}
}

// binaryPutLen sets the value length in the header of file data.
func binaryPutLen(data []byte, n uint32) { binary.BigEndian.PutUint32(data[16:], n) }

// binaryPutExpiry sets the expiry in the header of file data.
func binaryPutExpiry(data []byte, unixNano int64) {
	binary.BigEndian.PutUint64(data[4:], uint64(unixNano))
}

func TestNewRejectsNegativeMaxValueBytes(t *testing.T) {
	if s, err := New(t.TempDir(), Options{MaxValueBytes: -1}); err == nil {
		s.Close()
		t.Fatal("New with MaxValueBytes -1: no error")
	}
}

// Issue 11, item 4, for filestore: the sweep removes only what is still
// expired when it removes it. Here a writer (another Store, as another
// process would be) refreshes the key between the sweep's first look and
// its removal; the sweep must re-check under the lock and keep the key.
func TestSweepSparesRefreshedKey(t *testing.T) {
	for _, refresh := range []string{"Set", "GetAndTouch", "CompareAndSwap"} {
		t.Run(refresh, func(t *testing.T) {
			dir := t.TempDir()
			sweeper, clk := newClockStore(t, dir, Options{CleanupInterval: -1})
			writer, err := newStore(dir, Options{CleanupInterval: -1}, clk.now)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { writer.Close() })
			ctx := t.Context()
			if err := writer.Set(ctx, "k", []byte("v"), time.Minute); err != nil {
				t.Fatal(err)
			}
			if err := writer.Set(ctx, "other", []byte("v"), time.Minute); err != nil {
				t.Fatal(err)
			}
			clk.advance(time.Hour) // both expired
			testHookSweepLocking = func(key string) {
				if key != "k" {
					return
				}
				// The sweep has read "k" expired and is about to lock it:
				// the user comes back now.
				var err error
				switch refresh {
				case "Set":
					err = writer.Set(ctx, "k", []byte("fresh"), time.Hour)
				case "GetAndTouch":
					clk.advance(-time.Hour) // Touch needs a live key: a writer whose clock is behind
					_, err = writer.GetAndTouch(ctx, "k", 2*time.Hour)
					clk.advance(time.Hour)
				case "CompareAndSwap":
					var ok bool
					ok, err = writer.CompareAndSwap(ctx, "k", nil, []byte("fresh"), time.Hour)
					if err == nil && !ok {
						t.Error("CompareAndSwap(nil) of an expired key = false")
					}
				}
				if err != nil {
					t.Error(err)
				}
			}
			t.Cleanup(func() { testHookSweepLocking = nil })
			if err := sweeper.sweep(ctx, true); err != nil {
				t.Fatal(err)
			}
			if _, err := writer.Get(ctx, "k"); err != nil {
				t.Fatalf("Get after the sweep = %v; the sweep removed a key refreshed before it removed it", err)
			}
			if exists(t, filepath.Join(dir, fileName("other"))) {
				t.Error("the sweep left an expired key that nobody refreshed")
			}
		})
	}
}

// A sweep that fails is reported through OnError, from the background
// loop, and the loop goes on. Here the lock file of the key's stripe is a
// directory, so the sweep cannot lock the expired key to remove it.
func TestSweepErrorReported(t *testing.T) {
	dir := t.TempDir()
	errs := make(chan error, 100)
	c := &clock{}
	s, err := newStore(dir, Options{CleanupInterval: 5 * time.Millisecond, OnError: func(err error) {
		select {
		case errs <- err:
		default:
		}
	}}, c.now)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	if err := s.Set(t.Context(), "k", []byte("v"), time.Minute); err != nil {
		t.Fatal(err)
	}
	st := &s.stripes[stripeOf("k")]
	s.mu.Lock() // no operation runs; swap the lock file for a directory
	st.f.Close()
	st.f = nil
	if err := os.Remove(st.path); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(st.path, 0o700); err != nil {
		t.Fatal(err)
	}
	s.mu.Unlock()
	c.advance(time.Hour)
	err = <-errs // the test's deadline bounds the wait
	if !strings.Contains(err.Error(), "sweep") || !strings.Contains(err.Error(), "lock") {
		t.Errorf("OnError got %q; want the sweep's error naming the lock file", err)
	}
	if !exists(t, filepath.Join(dir, fileName("k"))) {
		t.Error("the expired file is gone, though the sweep could not lock it")
	}
}

// A file left by a version that took keys the store now refuses (a NUL
// byte, invalid UTF-8) is unreachable: Scan skips it, reports it through
// OnError, and lists the rest.
func TestScanSkipsRefusedKeyFiles(t *testing.T) {
	dir := t.TempDir()
	var reported []error
	s, err := New(dir, Options{CleanupInterval: -1, OnError: func(err error) { reported = append(reported, err) }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	for _, k := range []string{"nul\x00byte", "\xff\xfe"} {
		if err := os.WriteFile(filepath.Join(dir, fileName(k)), encode(k, []byte("v"), 0), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Set(t.Context(), "good", []byte("v"), 0); err != nil {
		t.Fatal(err)
	}
	var keys []string
	if err := s.Scan(t.Context(), "", func(k string) error { keys = append(keys, k); return nil }); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"good"}, keys); diff != "" {
		t.Errorf("Scan mismatch (-want +got):\n%s", diff)
	}
	if len(reported) != 2 {
		t.Fatalf("OnError got %d errors, want 2: %v", len(reported), reported)
	}
	for _, err := range reported {
		if !errors.Is(err, store.ErrInvalidKey) {
			t.Errorf("OnError got %v, want an error matching store.ErrInvalidKey", err)
		}
	}
}
