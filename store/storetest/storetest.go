// Package storetest is the conformance suite for [store.Store]
// implementations.
//
// Every backend in this module runs it, and so can yours:
//
//	func TestConformance(t *testing.T) {
//		storetest.Run(t, func(t *testing.T) store.Store {
//			s := mystore.New(...)
//			t.Cleanup(func() { s.Close() })
//			return s
//		})
//	}
//
// Run calls newStore once per case, so each case starts with an empty store.
// newStore must return a store that holds no keys and that no other case
// shares (use a fresh prefix, table or directory) and register its own
// cleanup with t.Cleanup. Cases run in parallel with each other.
//
// Cases that need an optional capability ([store.Swapper], [store.Deleter],
// [store.Toucher], [store.Refresher], [store.TTLGetter], [store.Scanner])
// are skipped, with a message naming the capability, when the store does not
// implement it.
//
// A store with a Close() error method is also checked against the Close
// contract of package store: the "Close" case closes it and expects every
// later call, and a second Close, to return an error matching
// [store.ErrClosed]. The cleanup that newStore registers therefore meets an
// already closed store in that case and must accept ErrClosed from Close.
//
// # Persistence
//
// A store that keeps its data across a close and a reopen (a snapshot file,
// a folder, a database file) also runs [RunPersistent], which checks that
// values, keys byte for byte, expiries and every write acknowledged before
// Close are there after the store is opened again.
//
// Expiry cases sleep for a few hundred milliseconds; they check only that a
// key is gone once its TTL has certainly passed and present while it
// certainly has not, so they do not depend on the machine's speed.
package storetest

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/typedsession/session/store"
)

// shortTTL is the lifetime given to keys that a case expects to expire;
// pastShortTTL is how long the case waits before it checks. The margin
// absorbs clock granularity and scheduling, so that the check is about
// correctness and not speed.
const (
	shortTTL     = 150 * time.Millisecond
	pastShortTTL = shortTTL + 350*time.Millisecond

	// setupTTL is the expiry of a key that a case writes and must find
	// live at its next write (the ttl <= 0 cases): long enough that a
	// loaded machine or a slow database does not let it lapse in between.
	setupTTL     = time.Second
	pastSetupTTL = setupTTL + 500*time.Millisecond
	longTTL      = time.Hour
)

type testCase struct {
	name   string
	reason string
	run    func(t *testing.T, s store.Store)
}

// Run runs every conformance case against stores made by newStore. The
// cases of the batch capabilities (store.BatchGetter and the like) are in
// [RunBatch]; a store that has any of them calls both.
func Run(t *testing.T, newStore func(t *testing.T) store.Store) {
	t.Helper()
	runCases(t, cases(), newStore)
}

// runCases runs each case as a parallel subtest on a fresh store.
func runCases(t *testing.T, cases []testCase, newStore func(t *testing.T) store.Store) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := newStore(t)
			if s == nil {
				t.Fatal("storetest: newStore returned nil")
			}
			t.Logf("contract: %s", tc.reason)
			tc.run(t, s)
		})
	}
}

func cases() []testCase {
	return []testCase{
		// Store: the three required methods.
		{"GetAbsent", "Get of a key never written returns ErrNotFound", testGetAbsent},
		{"SetGet", "a value written is read back exactly", testSetGet},
		{"Overwrite", "Set replaces the previous value", testOverwrite},
		{"EmptyValue", "an empty value is a value, distinct from an absent key", testEmptyValue},
		{"BinaryValue", "values are opaque bytes: NUL and non-UTF-8 bytes survive", testBinaryValue},
		{"LargeValue", "a 1 MiB value round-trips", testLargeValue},
		{"CopiesIn", "mutating the slice passed to Set does not change the stored value", testCopiesIn},
		{"CopiesOut", "mutating the slice returned by Get does not change the stored value", testCopiesOut},
		{"Delete", "Delete removes a key", testDelete},
		{"DeleteAbsent", "Delete of an absent key is not an error", testDeleteAbsent},
		{"KeyShapes", "keys with unicode, spaces, colons, slashes and metacharacters are distinct and exact", testKeyShapes},
		{"KeyAlphabetAccepted", "every valid key (1 to MaxKeyLen bytes of UTF-8 without NUL) round-trips exactly, in every method", testKeyAlphabetAccepted},
		{"KeyAlphabetRefused", "an empty, NUL-bearing, non-UTF-8 or over-long key gets ErrInvalidKey from every method and stores nothing", testKeyAlphabetRefused},
		{"ExpiresAfterTTL", "a key is invisible once its TTL has passed", testExpiresAfterTTL},
		{"NoTTL", "ttl <= 0 stores without expiry", testNoTTL},
		{"SetResetsTTL", "a value written again takes the new ttl", testSetResetsTTL},
		{"SetNoTTLRemovesExpiry", "Set with ttl 0 or negative removes the key's previous expiry", testSetNoTTLRemovesExpiry},
		{"SetLongTTL", "Set with a ttl up to the largest time.Duration clamps it: the key is live right after the write", testSetLongTTL},
		{"ExpiredDelete", "Delete of an expired key is not an error", testExpiredDelete},
		{"CancelledContext", "a cancelled context returns ctx.Err() and writes nothing", testCancelledContext},
		{"ConcurrentKeys", "concurrent writers of different keys do not interfere", testConcurrentKeys},

		// Swapper.
		{"CASAbsentNilOld", "CompareAndSwap with nil old creates an absent key", testCASAbsentNilOld},
		{"CASPresentNilOld", "CompareAndSwap with nil old fails when the key exists", testCASPresentNilOld},
		{"CASMatch", "CompareAndSwap replaces a value equal to old", testCASMatch},
		{"CASMismatch", "CompareAndSwap with a stale old fails and leaves the value", testCASMismatch},
		{"CASAbsentNonNilOld", "CompareAndSwap with non-nil old fails on an absent key", testCASAbsentNonNilOld},
		{"CASEmptyOld", "an empty non-nil old matches a stored empty value, not an absent key", testCASEmptyOld},
		{"CASExpiredNilOld", "an expired key counts as absent for CompareAndSwap", testCASExpiredNilOld},
		{"CASSetsTTL", "CompareAndSwap applies its ttl to the new value", testCASSetsTTL},
		{"CASCancelled", "CompareAndSwap with a cancelled context returns ctx.Err()", testCASCancelled},
		{"CASCounter", "concurrent increments through CompareAndSwap lose nothing", testCASCounter},
		{"CASResend", "a swap whose current value already equals value reports true and sets the ttl (a resent swap finds its own write)", testCASResend},
		{"CASNoTTLRemovesExpiry", "CompareAndSwap with ttl 0 or negative removes the key's previous expiry", testCASNoTTLRemovesExpiry},
		{"CASLongTTL", "CompareAndSwap with a ttl up to the largest time.Duration clamps it: the key is live right after the write", testCASLongTTL},

		// Deleter.
		{"CADMatch", "CompareAndDelete of the current value deletes the key and reports true; sent again, false", testCADMatch},
		{"CADMismatch", "CompareAndDelete of another value reports false and leaves the key", testCADMismatch},
		{"CADAbsent", "CompareAndDelete of an absent key reports false (it deleted nothing) and creates nothing", testCADAbsent},
		{"CADExpired", "an expired key counts as absent for CompareAndDelete: false", testCADExpired},
		{"CADEmpty", "an empty old matches a stored empty value and nothing else", testCADEmpty},
		{"CADCancelled", "CompareAndDelete with a cancelled context returns ctx.Err() and deletes nothing", testCADCancelled},

		// Toucher.
		{"TouchAbsent", "Touch of an absent key returns ErrNotFound and creates nothing", testTouchAbsent},
		{"TouchExtends", "Touch extends a key's life beyond its original TTL", testTouchExtends},
		{"TouchShortens", "Touch can give a persistent key a TTL", testTouchShortens},
		{"TouchPersist", "Touch with ttl <= 0 removes the expiry", testTouchPersist},
		{"TouchExpired", "Touch of an expired key returns ErrNotFound and does not revive it", testTouchExpired},
		{"TouchNoTTLRemovesExpiry", "Touch with ttl 0 or negative removes the key's expiry", testTouchNoTTLRemovesExpiry},
		{"TouchLongTTL", "Touch with a ttl up to the largest time.Duration clamps it: the key stays live", testTouchLongTTL},

		// Refresher.
		{"GetAndTouchAbsent", "GetAndTouch of an absent key returns ErrNotFound", testGetAndTouchAbsent},
		{"GetAndTouchExtends", "GetAndTouch returns the value and extends its TTL", testGetAndTouchExtends},
		{"GetAndTouchNoTTLRemovesExpiry", "GetAndTouch with ttl 0 or negative removes the key's expiry", testGetAndTouchNoTTLRemovesExpiry},
		{"GetAndTouchLongTTL", "GetAndTouch with a ttl up to the largest time.Duration clamps it: the key stays live", testGetAndTouchLongTTL},

		// TTLGetter.
		{"GetWithTTLAbsent", "GetWithTTL of an absent key returns ErrNotFound", testGetWithTTLAbsent},
		{"GetWithTTLNoExpiry", "GetWithTTL of a key without expiry returns the value and NoExpiry", testGetWithTTLNoExpiry},
		{"GetWithTTLRemaining", "GetWithTTL returns the value and the time left, within the ttl set", testGetWithTTLRemaining},
		{"GetWithTTLExpired", "GetWithTTL of an expired key returns ErrNotFound", testGetWithTTLExpired},
		{"GetWithTTLCopiesOut", "mutating the slice returned by GetWithTTL does not change the stored value", testGetWithTTLCopiesOut},

		// Scanner.
		{"ScanPrefix", "Scan reports exactly the keys under a prefix", testScanPrefix},
		{"ScanMetacharacters", "Scan treats *, ?, [, %, _ and \\ in a prefix literally", testScanMetacharacters},
		{"ScanAll", "Scan with an empty prefix reports every key", testScanAll},
		{"ScanSkipsExpired", "Scan does not report expired keys", testScanSkipsExpired},
		{"ScanStops", "an error from fn stops Scan and is returned", testScanStops},
		{"ScanMany", "Scan reports every key of a larger set", testScanMany},
		{"ScanAgreesWithGet", "Scan reports exactly the keys for which Get answers anything but ErrNotFound: a listing never hides what a read reports", testScanAgreesWithGet},

		// Close (stores with a Close() error method).
		{"Close", "after Close every method, and a second Close, returns ErrClosed", testClose},
		{"CloseRacingWrites", "a write racing with Close returns nil or ErrClosed, and Close waits for it", testCloseRacingWrites},
	}
}

// ---- helpers ----

func ctx(t *testing.T) context.Context { return t.Context() }

func mustSet(t *testing.T, s store.Store, key string, value []byte, ttl time.Duration) {
	t.Helper()
	if err := s.Set(ctx(t), key, value, ttl); err != nil {
		t.Fatalf("Set(%q): %v", key, err)
	}
}

func wantValue(t *testing.T, s store.Store, key string, want []byte) {
	t.Helper()
	got, err := s.Get(ctx(t), key)
	if err != nil {
		t.Fatalf("Get(%q): %v, want value %q", key, err, short(want))
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("Get(%q) = %q, want %q", key, short(got), short(want))
	}
}

func wantAbsent(t *testing.T, s store.Store, key string) {
	t.Helper()
	got, err := s.Get(ctx(t), key)
	if !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Get(%q) = %q, %v; want ErrNotFound", key, short(got), err)
	}
}

func short(b []byte) []byte {
	if len(b) > 64 {
		return append(b[:64:64], "..."...)
	}
	return b
}

func swapper(t *testing.T, s store.Store) store.Swapper {
	t.Helper()
	sw, ok := s.(store.Swapper)
	if !ok {
		t.Skipf("%T does not implement store.Swapper", s)
	}
	return sw
}

func toucher(t *testing.T, s store.Store) store.Toucher {
	t.Helper()
	to, ok := s.(store.Toucher)
	if !ok {
		t.Skipf("%T does not implement store.Toucher", s)
	}
	return to
}

func refresher(t *testing.T, s store.Store) store.Refresher {
	t.Helper()
	r, ok := s.(store.Refresher)
	if !ok {
		t.Skipf("%T does not implement store.Refresher", s)
	}
	return r
}

func deleter(t *testing.T, s store.Store) store.Deleter {
	t.Helper()
	d, ok := s.(store.Deleter)
	if !ok {
		t.Skipf("%T does not implement store.Deleter", s)
	}
	return d
}

func ttlGetter(t *testing.T, s store.Store) store.TTLGetter {
	t.Helper()
	g, ok := s.(store.TTLGetter)
	if !ok {
		t.Skipf("%T does not implement store.TTLGetter", s)
	}
	return g
}

func scanner(t *testing.T, s store.Store) store.Scanner {
	t.Helper()
	sc, ok := s.(store.Scanner)
	if !ok {
		t.Skipf("%T does not implement store.Scanner", s)
	}
	return sc
}

func scanKeys(t *testing.T, sc store.Scanner, prefix string) []string {
	t.Helper()
	seen := map[string]bool{}
	err := sc.Scan(ctx(t), prefix, func(key string) error {
		seen[key] = true
		return nil
	})
	if err != nil {
		t.Fatalf("Scan(%q): %v", prefix, err)
	}
	keys := make([]string, 0, len(seen))
	for k := range seen {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

func wantKeys(t *testing.T, sc store.Scanner, prefix string, want ...string) {
	t.Helper()
	got := scanKeys(t, sc, prefix)
	want = slices.Clone(want)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Fatalf("Scan(%q) reported %q, want %q", prefix, got, want)
	}
}

// ---- Store ----

func testGetAbsent(t *testing.T, s store.Store) {
	wantAbsent(t, s, "never-written")
}

func testSetGet(t *testing.T, s store.Store) {
	mustSet(t, s, "k", []byte(`{"score":3}`), 0)
	wantValue(t, s, "k", []byte(`{"score":3}`))
	mustSet(t, s, "k-ttl", []byte("v"), longTTL)
	wantValue(t, s, "k-ttl", []byte("v"))
}

func testOverwrite(t *testing.T, s store.Store) {
	mustSet(t, s, "k", []byte("first, and longer than the second"), 0)
	mustSet(t, s, "k", []byte("second"), 0)
	wantValue(t, s, "k", []byte("second"))
}

func testEmptyValue(t *testing.T, s store.Store) {
	mustSet(t, s, "empty", []byte{}, 0)
	got, err := s.Get(ctx(t), "empty")
	if err != nil {
		t.Fatalf("Get of an empty value: %v, want an empty value", err)
	}
	if len(got) != 0 {
		t.Fatalf("Get = %q, want empty", got)
	}
	mustSet(t, s, "nil", nil, 0)
	if _, err := s.Get(ctx(t), "nil"); err != nil {
		t.Fatalf("Get of a value set from nil: %v, want an empty value", err)
	}
}

func testBinaryValue(t *testing.T, s store.Store) {
	v := []byte{0, 1, 2, 0, 0xff, 0xfe, '\n', '\r', 0x80, '"', '\\', 0}
	mustSet(t, s, "bin", v, 0)
	wantValue(t, s, "bin", v)
}

func testLargeValue(t *testing.T, s store.Store) {
	v := make([]byte, 1<<20)
	for i := range v {
		v[i] = byte(i*7 + i>>8)
	}
	mustSet(t, s, "large", v, longTTL)
	wantValue(t, s, "large", v)
}

func testCopiesIn(t *testing.T, s store.Store) {
	v := []byte("original")
	mustSet(t, s, "k", v, 0)
	copy(v, "XXXXXXXX")
	wantValue(t, s, "k", []byte("original"))
	if sw, ok := s.(store.Swapper); ok {
		nv := []byte("swapped")
		if ok, err := sw.CompareAndSwap(ctx(t), "k", []byte("original"), nv, 0); err != nil || !ok {
			t.Fatalf("CompareAndSwap = %v, %v; want true, nil", ok, err)
		}
		copy(nv, "XXXXXXX")
		wantValue(t, s, "k", []byte("swapped"))
	}
}

func testCopiesOut(t *testing.T, s store.Store) {
	mustSet(t, s, "k", []byte("original"), 0)
	got, err := s.Get(ctx(t), "k")
	if err != nil {
		t.Fatal(err)
	}
	copy(got, "XXXXXXXX")
	wantValue(t, s, "k", []byte("original"))
	if r, ok := s.(store.Refresher); ok {
		got, err := r.GetAndTouch(ctx(t), "k", longTTL)
		if err != nil {
			t.Fatal(err)
		}
		copy(got, "XXXXXXXX")
		wantValue(t, s, "k", []byte("original"))
	}
}

func testDelete(t *testing.T, s store.Store) {
	mustSet(t, s, "k", []byte("v"), 0)
	mustSet(t, s, "k2", []byte("v2"), 0)
	if err := s.Delete(ctx(t), "k"); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	wantAbsent(t, s, "k")
	wantValue(t, s, "k2", []byte("v2"))
}

func testDeleteAbsent(t *testing.T, s store.Store) {
	if err := s.Delete(ctx(t), "never-written"); err != nil {
		t.Fatalf("Delete of an absent key = %v, want nil", err)
	}
}

// keyShapes are keys a session library meets: namespaced IDs, tokens,
// user-supplied text. They must all be distinct keys.
var keyShapes = []string{
	"plain",
	"quiz:123456789",
	"quiz:-1001234567890:42",
	"with space",
	" leading and trailing ",
	"a/b/c",
	"../../etc/passwd",
	"back\\slash",
	"ünïcödé:日本語:🙂",
	"glob*?[x]",
	"like%_",
	"quote'\"`",
	"tab\tnewline\n",
	"CON",
	"a",
	"A",
	strings.Repeat("long-key-", 112), // 1008 bytes
}

func testKeyShapes(t *testing.T, s store.Store) {
	for i, k := range keyShapes {
		mustSet(t, s, k, []byte(strconv.Itoa(i)), 0)
	}
	for i, k := range keyShapes {
		wantValue(t, s, k, []byte(strconv.Itoa(i)))
	}
	if sc, ok := s.(store.Scanner); ok {
		wantKeys(t, sc, "", keyShapes...)
		wantKeys(t, sc, "quiz:", "quiz:123456789", "quiz:-1001234567890:42")
	}
	for _, k := range keyShapes {
		if err := s.Delete(ctx(t), k); err != nil {
			t.Fatalf("Delete(%q): %v", k, err)
		}
		wantAbsent(t, s, k)
	}
}

func testExpiresAfterTTL(t *testing.T, s store.Store) {
	mustSet(t, s, "short", []byte("v"), shortTTL)
	mustSet(t, s, "long", []byte("v"), longTTL)
	time.Sleep(pastShortTTL)
	wantAbsent(t, s, "short")
	wantValue(t, s, "long", []byte("v"))
}

func testNoTTL(t *testing.T, s store.Store) {
	mustSet(t, s, "zero", []byte("v"), 0)
	mustSet(t, s, "negative", []byte("v"), -time.Second)
	time.Sleep(pastShortTTL)
	wantValue(t, s, "zero", []byte("v"))
	wantValue(t, s, "negative", []byte("v"))
}

func testSetResetsTTL(t *testing.T, s store.Store) {
	mustSet(t, s, "k", []byte("v1"), shortTTL)
	mustSet(t, s, "k", []byte("v2"), 0)
	mustSet(t, s, "j", []byte("v1"), 0)
	mustSet(t, s, "j", []byte("v2"), shortTTL)
	time.Sleep(pastShortTTL)
	wantValue(t, s, "k", []byte("v2"))
	wantAbsent(t, s, "j")
}

func testExpiredDelete(t *testing.T, s store.Store) {
	mustSet(t, s, "k", []byte("v"), shortTTL)
	time.Sleep(pastShortTTL)
	if err := s.Delete(ctx(t), "k"); err != nil {
		t.Fatalf("Delete of an expired key = %v, want nil", err)
	}
	wantAbsent(t, s, "k")
}

func cancelled(t *testing.T) context.Context {
	c, cancel := context.WithCancel(ctx(t))
	cancel()
	return c
}

func wantCanceled(t *testing.T, op string, err error) {
	t.Helper()
	if !errors.Is(err, context.Canceled) {
		t.Errorf("%s with a cancelled context = %v, want an error matching context.Canceled", op, err)
	}
}

func testCancelledContext(t *testing.T, s store.Store) {
	mustSet(t, s, "k", []byte("v"), 0)
	c := cancelled(t)
	_, err := s.Get(c, "k")
	wantCanceled(t, "Get", err)
	wantCanceled(t, "Set", s.Set(c, "k", []byte("changed"), 0))
	wantCanceled(t, "Set", s.Set(c, "new", []byte("v"), 0))
	wantCanceled(t, "Delete", s.Delete(c, "k"))
	if to, ok := s.(store.Toucher); ok {
		wantCanceled(t, "Touch", to.Touch(c, "k", shortTTL))
	}
	if r, ok := s.(store.Refresher); ok {
		_, err := r.GetAndTouch(c, "k", shortTTL)
		wantCanceled(t, "GetAndTouch", err)
	}
	if sc, ok := s.(store.Scanner); ok {
		wantCanceled(t, "Scan", sc.Scan(c, "", func(string) error { return nil }))
	}
	if d, ok := s.(store.Deleter); ok {
		_, err := d.CompareAndDelete(c, "k", []byte("v"))
		wantCanceled(t, "CompareAndDelete", err)
	}
	if g, ok := s.(store.TTLGetter); ok {
		_, _, err := g.GetWithTTL(c, "k")
		wantCanceled(t, "GetWithTTL", err)
	}
	// Nothing a cancelled call did may be visible.
	time.Sleep(pastShortTTL)
	wantValue(t, s, "k", []byte("v"))
	wantAbsent(t, s, "new")
}

func testConcurrentKeys(t *testing.T, s store.Store) {
	const workers, perWorker = 8, 20
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := range workers {
		wg.Go(func() {
			for i := range perWorker {
				k := fmt.Sprintf("w%d:k%d", w, i)
				v := []byte(k + "=value")
				if err := s.Set(ctx(t), k, v, longTTL); err != nil {
					errs <- err
					return
				}
				got, err := s.Get(ctx(t), k)
				if err != nil || !bytes.Equal(got, v) {
					errs <- fmt.Errorf("Get(%q) = %q, %v; want %q", k, got, err, v)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// ---- Swapper ----

func cas(t *testing.T, sw store.Swapper, key string, old, value []byte, ttl time.Duration, want bool) {
	t.Helper()
	ok, err := sw.CompareAndSwap(ctx(t), key, old, value, ttl)
	if err != nil {
		t.Fatalf("CompareAndSwap(%q, old=%q): %v", key, old, err)
	}
	if ok != want {
		t.Fatalf("CompareAndSwap(%q, old=%q) = %v, want %v", key, old, ok, want)
	}
}

func testCASAbsentNilOld(t *testing.T, s store.Store) {
	sw := swapper(t, s)
	cas(t, sw, "k", nil, []byte("v"), 0, true)
	wantValue(t, s, "k", []byte("v"))
}

func testCASPresentNilOld(t *testing.T, s store.Store) {
	sw := swapper(t, s)
	mustSet(t, s, "k", []byte("v"), 0)
	cas(t, sw, "k", nil, []byte("other"), 0, false)
	wantValue(t, s, "k", []byte("v"))
}

func testCASMatch(t *testing.T, s store.Store) {
	sw := swapper(t, s)
	mustSet(t, s, "k", []byte("v1"), 0)
	cas(t, sw, "k", []byte("v1"), []byte("v2"), 0, true)
	wantValue(t, s, "k", []byte("v2"))
	cas(t, sw, "k", []byte("v2"), []byte{}, 0, true)
	wantValue(t, s, "k", []byte{})
}

func testCASMismatch(t *testing.T, s store.Store) {
	sw := swapper(t, s)
	mustSet(t, s, "k", []byte("v2"), 0)
	cas(t, sw, "k", []byte("v1"), []byte("v3"), 0, false)
	cas(t, sw, "k", []byte("v2\x00"), []byte("v3"), 0, false) // a longer old is not a match
	cas(t, sw, "k", []byte("v"), []byte("v3"), 0, false)      // nor a prefix
	wantValue(t, s, "k", []byte("v2"))
}

func testCASAbsentNonNilOld(t *testing.T, s store.Store) {
	sw := swapper(t, s)
	cas(t, sw, "k", []byte("v"), []byte("v2"), 0, false)
	wantAbsent(t, s, "k")
}

func testCASEmptyOld(t *testing.T, s store.Store) {
	sw := swapper(t, s)
	cas(t, sw, "absent", []byte{}, []byte("v"), 0, false)
	wantAbsent(t, s, "absent")
	mustSet(t, s, "empty", []byte{}, 0)
	cas(t, sw, "empty", nil, []byte("v"), 0, false)
	cas(t, sw, "empty", []byte{}, []byte("v"), 0, true)
	wantValue(t, s, "empty", []byte("v"))
}

func testCASExpiredNilOld(t *testing.T, s store.Store) {
	sw := swapper(t, s)
	mustSet(t, s, "k", []byte("old"), shortTTL)
	time.Sleep(pastShortTTL)
	cas(t, sw, "k", []byte("old"), []byte("stale write"), 0, false)
	cas(t, sw, "k", nil, []byte("new"), 0, true)
	wantValue(t, s, "k", []byte("new"))
}

func testCASSetsTTL(t *testing.T, s store.Store) {
	sw := swapper(t, s)
	cas(t, sw, "created", nil, []byte("v"), shortTTL, true)
	mustSet(t, s, "replaced", []byte("v1"), longTTL)
	cas(t, sw, "replaced", []byte("v1"), []byte("v2"), shortTTL, true)
	mustSet(t, s, "persisted", []byte("v1"), setupTTL) // live at the swap, even on a loaded machine
	cas(t, sw, "persisted", []byte("v1"), []byte("v2"), 0, true)
	time.Sleep(pastSetupTTL)
	wantAbsent(t, s, "created")
	wantAbsent(t, s, "replaced")
	wantValue(t, s, "persisted", []byte("v2"))
}

func testCASCancelled(t *testing.T, s store.Store) {
	sw := swapper(t, s)
	mustSet(t, s, "k", []byte("v"), 0)
	_, err := sw.CompareAndSwap(cancelled(t), "k", []byte("v"), []byte("changed"), 0)
	wantCanceled(t, "CompareAndSwap", err)
	_, err = sw.CompareAndSwap(cancelled(t), "new", nil, []byte("v"), 0)
	wantCanceled(t, "CompareAndSwap", err)
	wantValue(t, s, "k", []byte("v"))
	wantAbsent(t, s, "new")
}

func testCASCounter(t *testing.T, s store.Store) {
	swapper(t, s)
	const workers, perWorker = 8, 25
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for range workers {
		wg.Go(func() {
			for range perWorker {
				if err := Increment(ctx(t), s, "counter"); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	got, err := s.Get(ctx(t), "counter")
	if err != nil {
		t.Fatal(err)
	}
	if n, err := Count(got); err != nil || n != workers*perWorker {
		t.Fatalf("after %d increments the counter holds %q (%d, %v): updates were lost", workers*perWorker, got, n, err)
	}
}

// Increment adds one to the counter stored under key (absent counts as 0)
// through CompareAndSwap, reading again and retrying until its swap lands.
// Many goroutines or processes calling it on one key must end with the
// exact count: it is how the suite, and the cross-process tests of a
// backend, check that CompareAndSwap never loses an update. s must be a
// store.Swapper.
//
// The stored value is the decimal count, a space, and a token unique to
// this write (random per process, then a sequence number): the resend rule
// of [store.Swapper] reports true for a swap whose value is already there,
// which is sound only for values never written twice, so bare counts could
// not show a lost update. Read the count with [Count].
func Increment(ctx context.Context, s store.Store, key string) error {
	sw, ok := s.(store.Swapper)
	if !ok {
		return fmt.Errorf("storetest: Increment needs a store.Swapper, and %T is not one", s)
	}
	const attempts = 100000
	for range attempts {
		old, err := s.Get(ctx, key)
		n := 0
		switch {
		case errors.Is(err, store.ErrNotFound):
			old = nil
		case err != nil:
			return err
		default:
			if n, err = Count(old); err != nil {
				return fmt.Errorf("storetest: counter %q: %v", key, err)
			}
		}
		value := fmt.Sprintf("%d %s-%d", n+1, writeToken, writeSeq.Add(1))
		ok, err := sw.CompareAndSwap(ctx, key, old, []byte(value), longTTL)
		if err != nil {
			return err
		}
		if ok {
			return nil
		}
	}
	return fmt.Errorf("storetest: Increment(%q): no CompareAndSwap succeeded in %d attempts", key, attempts)
}

// Count returns the count in a value that [Increment] wrote: the decimal
// number before the first space (or the whole value, when it has none).
func Count(value []byte) (int, error) {
	num, _, _ := strings.Cut(string(value), " ")
	n, err := strconv.Atoi(num)
	if err != nil {
		return 0, fmt.Errorf("value %q is not a count that Increment wrote", short(value))
	}
	return n, nil
}

// writeToken and writeSeq make every value Increment writes unique, across
// goroutines and processes.
var (
	writeToken = func() string {
		var b [8]byte
		rand.Read(b[:])
		return hex.EncodeToString(b[:])
	}()
	writeSeq atomic.Int64
)

// ---- Toucher ----

func testTouchAbsent(t *testing.T, s store.Store) {
	to := toucher(t, s)
	if err := to.Touch(ctx(t), "absent", longTTL); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Touch of an absent key = %v, want ErrNotFound", err)
	}
	wantAbsent(t, s, "absent")
}

func testTouchExtends(t *testing.T, s store.Store) {
	to := toucher(t, s)
	mustSet(t, s, "k", []byte("v"), setupTTL) // live at the Touch, even on a loaded machine
	if err := to.Touch(ctx(t), "k", longTTL); err != nil {
		t.Fatalf("Touch: %v", err)
	}
	time.Sleep(pastSetupTTL)
	wantValue(t, s, "k", []byte("v"))
}

func testTouchShortens(t *testing.T, s store.Store) {
	to := toucher(t, s)
	mustSet(t, s, "k", []byte("v"), 0)
	if err := to.Touch(ctx(t), "k", shortTTL); err != nil {
		t.Fatalf("Touch: %v", err)
	}
	time.Sleep(pastShortTTL)
	wantAbsent(t, s, "k")
}

func testTouchPersist(t *testing.T, s store.Store) {
	to := toucher(t, s)
	mustSet(t, s, "k", []byte("v"), setupTTL) // live at the Touch, even on a loaded machine
	if err := to.Touch(ctx(t), "k", 0); err != nil {
		t.Fatalf("Touch: %v", err)
	}
	time.Sleep(pastSetupTTL)
	wantValue(t, s, "k", []byte("v"))
}

func testTouchExpired(t *testing.T, s store.Store) {
	to := toucher(t, s)
	mustSet(t, s, "k", []byte("v"), shortTTL)
	time.Sleep(pastShortTTL)
	if err := to.Touch(ctx(t), "k", longTTL); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Touch of an expired key = %v, want ErrNotFound", err)
	}
	wantAbsent(t, s, "k")
}

// ---- Refresher ----

func testGetAndTouchAbsent(t *testing.T, s store.Store) {
	r := refresher(t, s)
	got, err := r.GetAndTouch(ctx(t), "absent", longTTL)
	if !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("GetAndTouch of an absent key = %q, %v; want ErrNotFound", got, err)
	}
	wantAbsent(t, s, "absent")
}

func testGetAndTouchExtends(t *testing.T, s store.Store) {
	r := refresher(t, s)
	// setupTTL: live at the GetAndTouch, even on a loaded machine.
	mustSet(t, s, "k", []byte("v"), setupTTL)
	mustSet(t, s, "p", []byte("v"), setupTTL)
	got, err := r.GetAndTouch(ctx(t), "k", longTTL)
	if err != nil || string(got) != "v" {
		t.Fatalf("GetAndTouch = %q, %v; want %q", got, err, "v")
	}
	if _, err := r.GetAndTouch(ctx(t), "p", 0); err != nil {
		t.Fatalf("GetAndTouch with ttl 0: %v", err)
	}
	time.Sleep(pastSetupTTL)
	wantValue(t, s, "k", []byte("v"))
	wantValue(t, s, "p", []byte("v"))
	mustSet(t, s, "shortened", []byte("v"), 0)
	if _, err := r.GetAndTouch(ctx(t), "shortened", shortTTL); err != nil {
		t.Fatal(err)
	}
	time.Sleep(pastShortTTL)
	wantAbsent(t, s, "shortened")
}

// ---- Scanner ----

func testScanPrefix(t *testing.T, s store.Store) {
	sc := scanner(t, s)
	for _, k := range []string{"quiz:1", "quiz:2", "quiz:2:extra", "quizzes:1", "prefs:1", "qui"} {
		mustSet(t, s, k, []byte("v"), longTTL)
	}
	wantKeys(t, sc, "quiz:", "quiz:1", "quiz:2", "quiz:2:extra")
	wantKeys(t, sc, "quiz", "quiz:1", "quiz:2", "quiz:2:extra", "quizzes:1")
	wantKeys(t, sc, "quiz:2", "quiz:2", "quiz:2:extra")
	wantKeys(t, sc, "nothing:")
}

func testScanMetacharacters(t *testing.T, s store.Store) {
	sc := scanner(t, s)
	keys := []string{
		"a*b:1", "aXb:1", "a*bc",
		"50%_off:1", "50xyoff:1", "50%xoff:1",
		"what?:1", "whatX:1",
		"[ab]:1", "a:1", "b:1",
		"back\\slash:1", "backXslash:1",
	}
	for _, k := range keys {
		mustSet(t, s, k, []byte("v"), longTTL)
	}
	wantKeys(t, sc, "a*b:", "a*b:1")
	wantKeys(t, sc, "a*", "a*b:1", "a*bc")
	wantKeys(t, sc, "50%_", "50%_off:1")
	wantKeys(t, sc, "50%", "50%_off:1", "50%xoff:1")
	wantKeys(t, sc, "what?", "what?:1")
	wantKeys(t, sc, "[ab]", "[ab]:1")
	wantKeys(t, sc, "[", "[ab]:1")
	wantKeys(t, sc, "back\\", "back\\slash:1")
}

func testScanAll(t *testing.T, s store.Store) {
	sc := scanner(t, s)
	mustSet(t, s, "x", []byte("v"), 0)
	mustSet(t, s, "y:z", []byte("v"), longTTL)
	wantKeys(t, sc, "", "x", "y:z")
}

func testScanSkipsExpired(t *testing.T, s store.Store) {
	sc := scanner(t, s)
	mustSet(t, s, "s:live", []byte("v"), longTTL)
	mustSet(t, s, "s:dead", []byte("v"), shortTTL)
	time.Sleep(pastShortTTL)
	wantKeys(t, sc, "s:", "s:live")
}

func testScanStops(t *testing.T, s store.Store) {
	sc := scanner(t, s)
	for i := range 10 {
		mustSet(t, s, fmt.Sprintf("k%d", i), []byte("v"), longTTL)
	}
	stop := errors.New("stop here")
	calls := 0
	err := sc.Scan(ctx(t), "", func(string) error {
		calls++
		return stop
	})
	if !errors.Is(err, stop) {
		t.Fatalf("Scan = %v, want the error fn returned", err)
	}
	if calls != 1 {
		t.Fatalf("fn was called %d times after returning an error, want 1", calls)
	}
}

func testScanMany(t *testing.T, s store.Store) {
	sc := scanner(t, s)
	const n = 1200
	want := make([]string, 0, n)
	for i := range n {
		k := fmt.Sprintf("many:%05d", i)
		want = append(want, k)
		mustSet(t, s, k, []byte("v"), longTTL)
	}
	mustSet(t, s, "other", []byte("v"), longTTL)
	wantKeys(t, sc, "many:", want...)
}

func testScanAgreesWithGet(t *testing.T, s store.Store) {
	sc := scanner(t, s)
	mustSet(t, s, "g:forever", []byte("v"), 0)
	mustSet(t, s, "g:long", []byte("v"), longTTL)
	mustSet(t, s, "g:empty", []byte{}, longTTL)
	mustSet(t, s, "g:short", []byte("v"), shortTTL)
	mustSet(t, s, "g:deleted", []byte("v"), longTTL)
	if err := s.Delete(ctx(t), "g:deleted"); err != nil {
		t.Fatal(err)
	}
	time.Sleep(pastShortTTL)
	var read []string
	for _, k := range []string{"g:forever", "g:long", "g:empty", "g:short", "g:deleted", "g:never"} {
		_, err := s.Get(ctx(t), k)
		if !errors.Is(err, store.ErrNotFound) {
			read = append(read, k)
		}
	}
	listed := scanKeys(t, sc, "g:")
	slices.Sort(read)
	if !slices.Equal(listed, read) {
		t.Fatalf("Scan reported %q; Get answers for %q: the two must agree", listed, read)
	}
}
