package storetest

import (
	"fmt"
	"math"
	"testing"
	"time"

	"github.com/typedsession/session/store"
)

// Two rules of the store contract about ttl that every write method
// follows: a ttl of zero or less means "no expiry" and removes the key's
// previous expiry; a ttl too long to represent is clamped, so that the key
// is live right after the write.

// noTTLs are the ttls that mean "no expiry".
var noTTLs = []time.Duration{0, -1, -time.Hour, math.MinInt64}

// longTTLs are ttls that reach past what a backend can represent; a store
// that adds them to now without clamping wraps around into the past.
func longTTLs() []time.Duration {
	return []time.Duration{
		250 * 365 * 24 * time.Hour, // 250 years
		time.Until(store.MaxExpiry),
		time.Until(store.MaxExpiry) + time.Hour,
		1 << 62,
		math.MaxInt64 - 1,
		math.MaxInt64,
	}
}

// wantNoExpiry checks, with a TTLGetter, that key has no expiry now.
func wantNoExpiry(t *testing.T, s store.Store, key string) {
	t.Helper()
	g, ok := s.(store.TTLGetter)
	if !ok {
		return
	}
	_, ttl, err := g.GetWithTTL(ctx(t), key)
	if err != nil {
		t.Fatalf("GetWithTTL(%q): %v", key, err)
	}
	if ttl != store.NoExpiry {
		t.Fatalf("GetWithTTL(%q) reports %v left, want store.NoExpiry: the expiry was not removed", key, ttl)
	}
}

// wantClamped checks that key is live and, with a TTLGetter, that it
// expires far in the future rather than never or in the past.
func wantClamped(t *testing.T, s store.Store, key string, value []byte, ttl time.Duration) {
	t.Helper()
	got, err := s.Get(ctx(t), key)
	if err != nil || string(got) != string(value) {
		t.Fatalf("Get(%q) right after a write with ttl %v = %q, %v; want %q (a deadline beyond the backend's range must be clamped, not wrapped)", key, ttl, short(got), err, value)
	}
	g, ok := s.(store.TTLGetter)
	if !ok {
		return
	}
	_, left, err := g.GetWithTTL(ctx(t), key)
	if err != nil {
		t.Fatalf("GetWithTTL(%q) after a write with ttl %v: %v", key, ttl, err)
	}
	if left < 365*24*time.Hour {
		t.Fatalf("GetWithTTL(%q) after a write with ttl %v reports %v left, want the latest expiry the backend can store (years, not NoExpiry)", key, ttl, left)
	}
}

func testSetNoTTLRemovesExpiry(t *testing.T, s store.Store) {
	for i, ttl := range noTTLs {
		k := fmt.Sprintf("k%d", i)
		mustSet(t, s, k, []byte("v1"), setupTTL)
		mustSet(t, s, k, []byte("v2"), ttl)
		wantNoExpiry(t, s, k)
	}
	time.Sleep(pastSetupTTL)
	for i, ttl := range noTTLs {
		k := fmt.Sprintf("k%d", i)
		got, err := s.Get(ctx(t), k)
		if err != nil || string(got) != "v2" {
			t.Errorf("Set with ttl %v over a key with an expiry: Get after that expiry = %q, %v; want %q", ttl, got, err, "v2")
		}
	}
}

func testSetLongTTL(t *testing.T, s store.Store) {
	for i, ttl := range longTTLs() {
		k := fmt.Sprintf("k%d", i)
		mustSet(t, s, k, []byte("v"), ttl)
		wantClamped(t, s, k, []byte("v"), ttl)
		// Over a key that had a short expiry too.
		k = fmt.Sprintf("short%d", i)
		mustSet(t, s, k, []byte("v1"), setupTTL)
		mustSet(t, s, k, []byte("v2"), ttl)
		wantClamped(t, s, k, []byte("v2"), ttl)
	}
	time.Sleep(pastSetupTTL)
	for i := range longTTLs() {
		wantValue(t, s, fmt.Sprintf("short%d", i), []byte("v2"))
	}
}

func testCASNoTTLRemovesExpiry(t *testing.T, s store.Store) {
	sw := swapper(t, s)
	for i, ttl := range noTTLs {
		k := fmt.Sprintf("k%d", i)
		mustSet(t, s, k, []byte("v1"), setupTTL)
		cas(t, sw, k, []byte("v1"), []byte("v2"), ttl, true)
		wantNoExpiry(t, s, k)
		// The resend path (current value equals value) too.
		r := fmt.Sprintf("resent%d", i)
		mustSet(t, s, r, []byte("v2"), setupTTL)
		cas(t, sw, r, []byte("v1"), []byte("v2"), ttl, true)
		wantNoExpiry(t, s, r)
	}
	time.Sleep(pastSetupTTL)
	for i, ttl := range noTTLs {
		for _, k := range []string{fmt.Sprintf("k%d", i), fmt.Sprintf("resent%d", i)} {
			got, err := s.Get(ctx(t), k)
			if err != nil || string(got) != "v2" {
				t.Errorf("CompareAndSwap with ttl %v over a key with an expiry: Get(%q) after that expiry = %q, %v; want %q", ttl, k, got, err, "v2")
			}
		}
	}
}

func testCASLongTTL(t *testing.T, s store.Store) {
	sw := swapper(t, s)
	for i, ttl := range longTTLs() {
		k := fmt.Sprintf("created%d", i)
		cas(t, sw, k, nil, []byte("v"), ttl, true)
		wantClamped(t, s, k, []byte("v"), ttl)
		k = fmt.Sprintf("replaced%d", i)
		mustSet(t, s, k, []byte("v1"), setupTTL)
		cas(t, sw, k, []byte("v1"), []byte("v2"), ttl, true)
		wantClamped(t, s, k, []byte("v2"), ttl)
	}
}

func testTouchNoTTLRemovesExpiry(t *testing.T, s store.Store) {
	to := toucher(t, s)
	for i, ttl := range noTTLs {
		k := fmt.Sprintf("k%d", i)
		mustSet(t, s, k, []byte("v"), setupTTL)
		if err := to.Touch(ctx(t), k, ttl); err != nil {
			t.Fatalf("Touch(%q, %v): %v", k, ttl, err)
		}
		wantNoExpiry(t, s, k)
	}
	time.Sleep(pastSetupTTL)
	for i, ttl := range noTTLs {
		k := fmt.Sprintf("k%d", i)
		got, err := s.Get(ctx(t), k)
		if err != nil || string(got) != "v" {
			t.Errorf("Touch with ttl %v of a key with an expiry: Get after that expiry = %q, %v; want %q", ttl, got, err, "v")
		}
	}
}

func testTouchLongTTL(t *testing.T, s store.Store) {
	to := toucher(t, s)
	for i, ttl := range longTTLs() {
		k := fmt.Sprintf("k%d", i)
		mustSet(t, s, k, []byte("v"), setupTTL)
		if err := to.Touch(ctx(t), k, ttl); err != nil {
			t.Fatalf("Touch(%q, %v): %v", k, ttl, err)
		}
		wantClamped(t, s, k, []byte("v"), ttl)
	}
	time.Sleep(pastSetupTTL)
	for i := range longTTLs() {
		wantValue(t, s, fmt.Sprintf("k%d", i), []byte("v"))
	}
}

func testGetAndTouchNoTTLRemovesExpiry(t *testing.T, s store.Store) {
	r := refresher(t, s)
	for i, ttl := range noTTLs {
		k := fmt.Sprintf("k%d", i)
		mustSet(t, s, k, []byte("v"), setupTTL)
		if got, err := r.GetAndTouch(ctx(t), k, ttl); err != nil || string(got) != "v" {
			t.Fatalf("GetAndTouch(%q, %v) = %q, %v; want %q", k, ttl, got, err, "v")
		}
		wantNoExpiry(t, s, k)
	}
	time.Sleep(pastSetupTTL)
	for i, ttl := range noTTLs {
		k := fmt.Sprintf("k%d", i)
		got, err := s.Get(ctx(t), k)
		if err != nil || string(got) != "v" {
			t.Errorf("GetAndTouch with ttl %v of a key with an expiry: Get after that expiry = %q, %v; want %q", ttl, got, err, "v")
		}
	}
}

func testGetAndTouchLongTTL(t *testing.T, s store.Store) {
	r := refresher(t, s)
	for i, ttl := range longTTLs() {
		k := fmt.Sprintf("k%d", i)
		mustSet(t, s, k, []byte("v"), setupTTL)
		if got, err := r.GetAndTouch(ctx(t), k, ttl); err != nil || string(got) != "v" {
			t.Fatalf("GetAndTouch(%q, %v) = %q, %v; want %q", k, ttl, got, err, "v")
		}
		wantClamped(t, s, k, []byte("v"), ttl)
	}
	time.Sleep(pastSetupTTL)
	for i := range longTTLs() {
		wantValue(t, s, fmt.Sprintf("k%d", i), []byte("v"))
	}
}
