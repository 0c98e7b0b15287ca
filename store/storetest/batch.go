package storetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/typedsession/session/store"
)

// Cases of the batch capabilities: [store.BatchGetter],
// [store.BatchTTLGetter] and [store.BatchSwapper].

// RunBatch runs the conformance cases of the batch capabilities against
// stores made by newStore, with the same rules as [Run] (a fresh, empty
// store per case; cases run in parallel). A case whose capability the
// store lacks is skipped, naming it. Call it next to Run:
//
//	func TestConformance(t *testing.T) {
//		storetest.Run(t, newStore)
//		storetest.RunBatch(t, newStore)
//	}
func RunBatch(t *testing.T, newStore func(t *testing.T) store.Store) {
	t.Helper()
	runCases(t, batchCases(), newStore)
}

func batchCases() []testCase {
	return []testCase{
		// BatchGetter.
		{"GetManyValues", "GetMany returns each key's value in the order of keys, nil for an absent key, an empty value non-nil, bytes exact", testGetManyValues},
		{"GetManyEmpty", "GetMany of no keys returns an empty result and no error", testGetManyEmpty},
		{"GetManyRepeated", "a key given twice is read twice", testGetManyRepeated},
		{"GetManyExpired", "an expired key reads as absent", testGetManyExpired},
		{"GetManyCopiesOut", "mutating a returned value does not change the stored one", testGetManyCopiesOut},
		{"GetManyLarge", "one call reads a thousand keys (on a cluster, keys of every slot range)", testGetManyLarge},
		{"GetManyInvalidKey", "one invalid key fails the whole call with ErrInvalidKey", testGetManyInvalidKey},
		{"GetManyCancelled", "a cancelled context returns ctx.Err()", testGetManyCancelled},

		// BatchTTLGetter.
		{"GetManyWithTTL", "GetManyWithTTL returns values and the time left: NoExpiry for none, within the ttl set, 0 for an absent key", testGetManyWithTTL},
		{"GetManyWithTTLInvalidKey", "one invalid key fails GetManyWithTTL with ErrInvalidKey", testGetManyWithTTLInvalidKey},

		// BatchSwapper.
		{"CASManyOutcomes", "each swap of a batch is decided as CompareAndSwap decides it: match, mismatch, absent and present with nil old, empty old, the resend rule", testCASManyOutcomes},
		{"CASManyTTL", "each swap applies its own ttl; ttl <= 0 removes an expiry", testCASManyTTL},
		{"CASManyEmpty", "CompareAndSwapMany of no swaps returns an empty result and no error", testCASManyEmpty},
		{"CASManyInvalidKey", "one invalid key fails the whole batch before any I/O: nothing is written", testCASManyInvalidKey},
		{"CASManyCancelled", "a cancelled context fails the whole batch and writes nothing", testCASManyCancelled},
		{"CASManyCounter", "concurrent batches of increments over shared keys lose nothing and apply nothing twice", testCASManyCounter},
	}
}

func batchGetter(t *testing.T, s store.Store) store.BatchGetter {
	t.Helper()
	g, ok := s.(store.BatchGetter)
	if !ok {
		t.Skipf("%T does not implement store.BatchGetter", s)
	}
	return g
}

func batchTTLGetter(t *testing.T, s store.Store) store.BatchTTLGetter {
	t.Helper()
	g, ok := s.(store.BatchTTLGetter)
	if !ok {
		t.Skipf("%T does not implement store.BatchTTLGetter", s)
	}
	return g
}

func batchSwapper(t *testing.T, s store.Store) store.BatchSwapper {
	t.Helper()
	b, ok := s.(store.BatchSwapper)
	if !ok {
		t.Skipf("%T does not implement store.BatchSwapper", s)
	}
	return b
}

// getMany calls GetMany and checks the result's shape.
func getMany(t *testing.T, g store.BatchGetter, keys ...string) [][]byte {
	t.Helper()
	got, err := g.GetMany(ctx(t), keys)
	if err != nil {
		t.Fatalf("GetMany(%d keys): %v", len(keys), err)
	}
	if len(got) != len(keys) {
		t.Fatalf("GetMany(%d keys) returned %d values", len(keys), len(got))
	}
	return got
}

// wantValues compares values read by a batch with want (nil: absent).
func wantValues(t *testing.T, op string, keys []string, got, want [][]byte) {
	t.Helper()
	for i := range want {
		switch {
		case want[i] == nil && got[i] != nil:
			t.Errorf("%s: key %q = %q, want absent (nil)", op, keys[i], short(got[i]))
		case want[i] != nil && got[i] == nil:
			t.Errorf("%s: key %q = nil (absent), want %q", op, keys[i], short(want[i]))
		case !bytes.Equal(got[i], want[i]):
			t.Errorf("%s: key %q = %q, want %q", op, keys[i], short(got[i]), short(want[i]))
		}
	}
}

func testGetManyValues(t *testing.T, s store.Store) {
	g := batchGetter(t, s)
	binary := []byte{0, 1, 2, 0xff, 0xfe, 0}
	mustSet(t, s, "a", []byte("alpha"), 0)
	mustSet(t, s, "empty", []byte{}, 0)
	mustSet(t, s, "bin", binary, 0)
	mustSet(t, s, "with space:and/slash*", []byte("odd key"), longTTL)
	keys := []string{"absent1", "a", "empty", "bin", "absent2", "with space:and/slash*"}
	got := getMany(t, g, keys...)
	wantValues(t, "GetMany", keys, got, [][]byte{nil, []byte("alpha"), {}, binary, nil, []byte("odd key")})
}

func testGetManyEmpty(t *testing.T, s store.Store) {
	g := batchGetter(t, s)
	got, err := g.GetMany(ctx(t), nil)
	if err != nil || len(got) != 0 {
		t.Fatalf("GetMany(no keys) = %q, %v; want empty, nil", got, err)
	}
}

func testGetManyRepeated(t *testing.T, s store.Store) {
	g := batchGetter(t, s)
	mustSet(t, s, "k", []byte("v"), 0)
	keys := []string{"k", "x", "k"}
	wantValues(t, "GetMany", keys, getMany(t, g, keys...), [][]byte{[]byte("v"), nil, []byte("v")})
}

func testGetManyExpired(t *testing.T, s store.Store) {
	g := batchGetter(t, s)
	mustSet(t, s, "short", []byte("v"), shortTTL)
	mustSet(t, s, "long", []byte("w"), longTTL)
	time.Sleep(pastShortTTL)
	keys := []string{"short", "long"}
	wantValues(t, "GetMany", keys, getMany(t, g, keys...), [][]byte{nil, []byte("w")})
}

func testGetManyCopiesOut(t *testing.T, s store.Store) {
	g := batchGetter(t, s)
	mustSet(t, s, "k", []byte("value"), 0)
	got := getMany(t, g, "k", "k")
	got[0][0] = 'X'
	got[1][1] = 'Y'
	wantValue(t, s, "k", []byte("value"))
}

func testGetManyLarge(t *testing.T, s store.Store) {
	g := batchGetter(t, s)
	const n = 1000
	keys := make([]string, n)
	want := make([][]byte, n)
	for i := range n {
		keys[i] = "many:" + strconv.Itoa(i)
		if i%7 != 3 {
			want[i] = []byte(fmt.Sprintf("value %d %s", i, strings.Repeat("x", i%50)))
			mustSet(t, s, keys[i], want[i], longTTL)
		}
	}
	wantValues(t, "GetMany", keys, getMany(t, g, keys...), want)
}

// invalidKeys are keys that every method must refuse.
var invalidKeys = []string{"", "nul\x00key", "bad\xffutf8", strings.Repeat("k", store.MaxKeyLen+1)}

func testGetManyInvalidKey(t *testing.T, s store.Store) {
	g := batchGetter(t, s)
	mustSet(t, s, "k", []byte("v"), 0)
	for _, bad := range invalidKeys {
		got, err := g.GetMany(ctx(t), []string{"k", bad})
		if !errors.Is(err, store.ErrInvalidKey) {
			t.Errorf("GetMany(k, %q) = %q, %v; want ErrInvalidKey", short([]byte(bad)), got, err)
		}
	}
}

func testGetManyCancelled(t *testing.T, s store.Store) {
	g := batchGetter(t, s)
	mustSet(t, s, "k", []byte("v"), 0)
	_, err := g.GetMany(cancelled(t), []string{"k"})
	wantCanceled(t, "GetMany", err)
	if tg, ok := s.(store.BatchTTLGetter); ok {
		_, _, err := tg.GetManyWithTTL(cancelled(t), []string{"k"})
		wantCanceled(t, "GetManyWithTTL", err)
	}
}

func testGetManyWithTTL(t *testing.T, s store.Store) {
	g := batchTTLGetter(t, s)
	mustSet(t, s, "forever", []byte("f"), 0)
	mustSet(t, s, "hour", []byte("h"), longTTL)
	mustSet(t, s, "empty", []byte{}, longTTL)
	keys := []string{"forever", "absent", "hour", "empty"}
	before := time.Now()
	values, ttls, err := g.GetManyWithTTL(ctx(t), keys)
	if err != nil {
		t.Fatalf("GetManyWithTTL: %v", err)
	}
	if len(values) != len(keys) || len(ttls) != len(keys) {
		t.Fatalf("GetManyWithTTL(%d keys) returned %d values and %d ttls", len(keys), len(values), len(ttls))
	}
	wantValues(t, "GetManyWithTTL", keys, values, [][]byte{[]byte("f"), nil, []byte("h"), {}})
	if ttls[0] != store.NoExpiry {
		t.Errorf("ttl of a key without expiry = %v, want NoExpiry", ttls[0])
	}
	if ttls[1] != 0 {
		t.Errorf("ttl of an absent key = %v, want 0", ttls[1])
	}
	// Within the ttl set, at worst a second (the coarsest precision) and
	// the time the call took below it.
	floor := longTTL - time.Second - time.Since(before)
	for _, i := range []int{2, 3} {
		if ttls[i] > longTTL || ttls[i] < floor {
			t.Errorf("ttl of %q = %v, want within (%v, %v]", keys[i], ttls[i], floor, longTTL)
		}
	}
	// The result's values are the caller's.
	values[2][0] = 'X'
	wantValue(t, s, "hour", []byte("h"))
}

func testGetManyWithTTLInvalidKey(t *testing.T, s store.Store) {
	g := batchTTLGetter(t, s)
	for _, bad := range invalidKeys {
		_, _, err := g.GetManyWithTTL(ctx(t), []string{"k", bad})
		if !errors.Is(err, store.ErrInvalidKey) {
			t.Errorf("GetManyWithTTL(k, %q) = %v; want ErrInvalidKey", short([]byte(bad)), err)
		}
	}
}

// casMany runs a batch and checks that every swap has a definite outcome.
func casMany(t *testing.T, b store.BatchSwapper, swaps ...store.Swap) []bool {
	t.Helper()
	res, err := b.CompareAndSwapMany(ctx(t), swaps)
	if err != nil {
		t.Fatalf("CompareAndSwapMany(%d swaps): %v", len(swaps), err)
	}
	if len(res) != len(swaps) {
		t.Fatalf("CompareAndSwapMany(%d swaps) returned %d results", len(swaps), len(res))
	}
	ok := make([]bool, len(res))
	for i, r := range res {
		if r.Err != nil {
			t.Fatalf("swap %d (%q): %v", i, swaps[i].Key, r.Err)
		}
		ok[i] = r.Swapped
	}
	return ok
}

func testCASManyOutcomes(t *testing.T, s store.Store) {
	b := batchSwapper(t, s)
	mustSet(t, s, "match", []byte("old"), 0)
	mustSet(t, s, "mismatch", []byte("other"), 0)
	mustSet(t, s, "present", []byte("p"), 0)
	mustSet(t, s, "empty", []byte{}, 0)
	mustSet(t, s, "resent", []byte("mine"), 0)
	mustSet(t, s, "prefix", []byte("mine+"), 0)
	swaps := []store.Swap{
		{Key: "match", Old: []byte("old"), Value: []byte("new")},
		{Key: "mismatch", Old: []byte("old"), Value: []byte("new")},
		{Key: "absent", Old: nil, Value: []byte("created")},
		{Key: "present", Old: nil, Value: []byte("created")},
		{Key: "absent-old", Old: []byte("x"), Value: []byte("y")},
		{Key: "empty", Old: []byte{}, Value: []byte("filled")},
		{Key: "resent", Old: []byte("before"), Value: []byte("mine")},
		{Key: "prefix", Old: []byte("before"), Value: []byte("mine")},
		{Key: "to-empty", Old: nil, Value: nil},
	}
	got := casMany(t, b, swaps...)
	want := []bool{true, false, true, false, false, true, true, false, true}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("swap of %q (old %q, value %q) = %v, want %v", swaps[i].Key, swaps[i].Old, swaps[i].Value, got[i], want[i])
		}
	}
	wantValue(t, s, "match", []byte("new"))
	wantValue(t, s, "mismatch", []byte("other"))
	wantValue(t, s, "absent", []byte("created"))
	wantValue(t, s, "present", []byte("p"))
	wantAbsent(t, s, "absent-old")
	wantValue(t, s, "empty", []byte("filled"))
	wantValue(t, s, "resent", []byte("mine"))
	wantValue(t, s, "prefix", []byte("mine+"))
	wantValue(t, s, "to-empty", []byte{})
}

func testCASManyTTL(t *testing.T, s store.Store) {
	b := batchSwapper(t, s)
	mustSet(t, s, "persist", []byte("a"), setupTTL) // live at the swap, even on a loaded machine
	got := casMany(t, b,
		store.Swap{Key: "short", Value: []byte("s"), TTL: shortTTL},
		store.Swap{Key: "long", Value: []byte("l"), TTL: longTTL},
		store.Swap{Key: "persist", Old: []byte("a"), Value: []byte("b"), TTL: 0},
	)
	if !got[0] || !got[1] || !got[2] {
		t.Fatalf("swaps = %v, want all true", got)
	}
	time.Sleep(pastSetupTTL)
	wantAbsent(t, s, "short")
	wantValue(t, s, "long", []byte("l"))
	wantValue(t, s, "persist", []byte("b"))
}

func testCASManyEmpty(t *testing.T, s store.Store) {
	b := batchSwapper(t, s)
	res, err := b.CompareAndSwapMany(ctx(t), nil)
	if err != nil || len(res) != 0 {
		t.Fatalf("CompareAndSwapMany(no swaps) = %v, %v; want empty, nil", res, err)
	}
}

func testCASManyInvalidKey(t *testing.T, s store.Store) {
	b := batchSwapper(t, s)
	for _, bad := range invalidKeys {
		res, err := b.CompareAndSwapMany(ctx(t), []store.Swap{
			{Key: "first", Value: []byte("v")},
			{Key: bad, Value: []byte("v")},
		})
		if !errors.Is(err, store.ErrInvalidKey) || res != nil {
			t.Errorf("CompareAndSwapMany(first, %q) = %v, %v; want no results, ErrInvalidKey", short([]byte(bad)), res, err)
		}
	}
	wantAbsent(t, s, "first")
}

func testCASManyCancelled(t *testing.T, s store.Store) {
	b := batchSwapper(t, s)
	_, err := b.CompareAndSwapMany(cancelled(t), []store.Swap{{Key: "k", Value: []byte("v")}})
	wantCanceled(t, "CompareAndSwapMany", err)
	wantAbsent(t, s, "k")
}

// testCASManyCounter has workers increment shared counters through
// batches: each batch swaps several keys at once, each value is the list of
// the increments applied to it, and a false is retried. Every increment
// must be in the final values exactly once.
func testCASManyCounter(t *testing.T, s store.Store) {
	b := batchSwapper(t, s)
	g, ok := s.(store.BatchGetter)
	if !ok {
		g = getEach{s}
	}
	const workers, rounds, keys = 6, 15, 4
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := range workers {
		wg.Go(func() {
			for r := range rounds {
				// Each round increments every key once, batching the
				// keys still to do.
				todo := make([]string, keys)
				for k := range keys {
					todo[k] = "counter:" + strconv.Itoa(k)
				}
				for len(todo) > 0 {
					cur, err := g.GetMany(ctx(t), todo)
					if err != nil {
						errs <- err
						return
					}
					swaps := make([]store.Swap, len(todo))
					for i, k := range todo {
						next := append(bytes.Clone(cur[i]), fmt.Sprintf("w%d.%d;", w, r)...)
						swaps[i] = store.Swap{Key: k, Old: cur[i], Value: next, TTL: longTTL}
					}
					res, err := b.CompareAndSwapMany(ctx(t), swaps)
					if err != nil {
						errs <- err
						return
					}
					var again []string
					for i, r := range res {
						switch {
						case r.Err != nil:
							errs <- fmt.Errorf("swap of %q: %v", todo[i], r.Err)
							return
						case !r.Swapped:
							again = append(again, todo[i])
						}
					}
					todo = again
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	for k := range keys {
		key := "counter:" + strconv.Itoa(k)
		v, err := s.Get(ctx(t), key)
		if err != nil {
			t.Fatalf("Get(%q): %v", key, err)
		}
		seen := map[string]int{}
		for _, id := range strings.Split(strings.TrimSuffix(string(v), ";"), ";") {
			seen[id]++
		}
		for w := range workers {
			for r := range rounds {
				if id := fmt.Sprintf("w%d.%d", w, r); seen[id] != 1 {
					t.Errorf("%s: increment %s applied %d times, want once", key, id, seen[id])
				}
			}
		}
		if len(seen) != workers*rounds {
			t.Errorf("%s holds %d increments, want %d", key, len(seen), workers*rounds)
		}
	}
}

// getEach is a BatchGetter made of Gets, for a store that can swap in
// batches but not read in batches.
type getEach struct{ s store.Store }

func (g getEach) GetMany(c context.Context, keys []string) ([][]byte, error) {
	out := make([][]byte, len(keys))
	for i, k := range keys {
		v, err := g.s.Get(c, k)
		switch {
		case errors.Is(err, store.ErrNotFound):
		case err != nil:
			return nil, err
		default:
			out[i] = v
		}
	}
	return out, nil
}
