package storetest

import (
	"errors"
	"testing"
	"time"

	"github.com/typedsession/session/store"
)

// Cases of the capabilities the store interface gained with resend-safe
// swaps: the resend rule of Swapper, Deleter and TTLGetter.

// ---- Swapper: the resend rule ----

func testCASResend(t *testing.T, s store.Store) {
	sw := swapper(t, s)
	// A resent swap whose first attempt landed: old no longer matches,
	// but the current value is the one the swap writes.
	mustSet(t, s, "k", []byte("v2"), 0)
	cas(t, sw, "k", []byte("v1"), []byte("v2"), 0, true)
	wantValue(t, s, "k", []byte("v2"))
	// A resent create (nil old) finds its own value.
	cas(t, sw, "created", nil, []byte("mine"), 0, true)
	cas(t, sw, "created", nil, []byte("mine"), 0, true)
	cas(t, sw, "created", nil, []byte("other"), 0, false)
	wantValue(t, s, "created", []byte("mine"))
	// An empty value counts too, and a prefix of the value does not.
	mustSet(t, s, "empty", []byte{}, 0)
	cas(t, sw, "empty", []byte("x"), []byte{}, 0, true)
	cas(t, sw, "empty", []byte("x"), []byte("\x00"), 0, false)
	wantValue(t, s, "empty", []byte{})
	mustSet(t, s, "longer", []byte("v2+"), 0)
	cas(t, sw, "longer", []byte("v1"), []byte("v2"), 0, false)
	wantValue(t, s, "longer", []byte("v2+"))
	// An absent key holds no value, so nothing is resent there.
	cas(t, sw, "absent", []byte("v1"), []byte("v2"), 0, false)
	wantAbsent(t, s, "absent")
	// The resent swap sets the ttl, as the first attempt did.
	mustSet(t, s, "ttl", []byte("v2"), 0)
	cas(t, sw, "ttl", []byte("v1"), []byte("v2"), shortTTL, true)
	mustSet(t, s, "persist", []byte("v2"), setupTTL) // live at the swap, even on a loaded machine
	cas(t, sw, "persist", []byte("v1"), []byte("v2"), longTTL, true)
	time.Sleep(pastSetupTTL)
	wantAbsent(t, s, "ttl")
	wantValue(t, s, "persist", []byte("v2"))
}

// ---- Deleter ----

func cad(t *testing.T, d store.Deleter, key string, old []byte, want bool) {
	t.Helper()
	ok, err := d.CompareAndDelete(ctx(t), key, old)
	if err != nil {
		t.Fatalf("CompareAndDelete(%q, old=%q): %v", key, short(old), err)
	}
	if ok != want {
		t.Fatalf("CompareAndDelete(%q, old=%q) = %v, want %v", key, short(old), ok, want)
	}
}

func testCADMatch(t *testing.T, s store.Store) {
	d := deleter(t, s)
	mustSet(t, s, "k", []byte("v"), 0)
	mustSet(t, s, "other", []byte("v"), 0)
	cad(t, d, "k", []byte("v"), true)
	wantAbsent(t, s, "k")
	wantValue(t, s, "other", []byte("v"))
	// Resent after it landed: this call deleted nothing, so false.
	cad(t, d, "k", []byte("v"), false)
	mustSet(t, s, "ttl", []byte("v"), longTTL)
	cad(t, d, "ttl", []byte("v"), true)
	wantAbsent(t, s, "ttl")
}

func testCADMismatch(t *testing.T, s store.Store) {
	d := deleter(t, s)
	mustSet(t, s, "k", []byte("v2"), longTTL)
	cad(t, d, "k", []byte("v1"), false)
	cad(t, d, "k", []byte("v2\x00"), false) // a longer old is not a match
	cad(t, d, "k", []byte("v"), false)      // nor a prefix
	cad(t, d, "k", []byte{}, false)
	wantValue(t, s, "k", []byte("v2"))
}

func testCADAbsent(t *testing.T, s store.Store) {
	d := deleter(t, s)
	cad(t, d, "absent", []byte("v"), false)
	cad(t, d, "absent", []byte{}, false)
	wantAbsent(t, s, "absent")
	if sc, ok := s.(store.Scanner); ok {
		wantKeys(t, sc, "")
	}
}

func testCADExpired(t *testing.T, s store.Store) {
	d := deleter(t, s)
	mustSet(t, s, "k", []byte("v"), shortTTL)
	mustSet(t, s, "j", []byte("v"), shortTTL)
	time.Sleep(pastShortTTL)
	cad(t, d, "k", []byte("v"), false)
	cad(t, d, "j", []byte("other"), false)
	wantAbsent(t, s, "k")
	wantAbsent(t, s, "j")
	// The expired key is gone for good: a swap that it is absent succeeds.
	if sw, ok := s.(store.Swapper); ok {
		cas(t, sw, "k", nil, []byte("new"), 0, true)
		wantValue(t, s, "k", []byte("new"))
	}
}

func testCADEmpty(t *testing.T, s store.Store) {
	d := deleter(t, s)
	mustSet(t, s, "empty", []byte{}, 0)
	cad(t, d, "empty", []byte("x"), false)
	cad(t, d, "empty", []byte("\x00"), false)
	wantValue(t, s, "empty", []byte{})
	cad(t, d, "empty", []byte{}, true)
	wantAbsent(t, s, "empty")
}

func testCADCancelled(t *testing.T, s store.Store) {
	d := deleter(t, s)
	mustSet(t, s, "k", []byte("v"), 0)
	_, err := d.CompareAndDelete(cancelled(t), "k", []byte("v"))
	wantCanceled(t, "CompareAndDelete", err)
	wantValue(t, s, "k", []byte("v"))
}

// ---- TTLGetter ----

func testGetWithTTLAbsent(t *testing.T, s store.Store) {
	g := ttlGetter(t, s)
	got, ttl, err := g.GetWithTTL(ctx(t), "absent")
	if !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("GetWithTTL of an absent key = %q, %v, %v; want ErrNotFound", got, ttl, err)
	}
}

func testGetWithTTLNoExpiry(t *testing.T, s store.Store) {
	g := ttlGetter(t, s)
	mustSet(t, s, "k", []byte("v\x00w"), 0)
	got, ttl, err := g.GetWithTTL(ctx(t), "k")
	if err != nil || string(got) != "v\x00w" || ttl != store.NoExpiry {
		t.Fatalf("GetWithTTL of a key without expiry = %q, %v, %v; want %q, store.NoExpiry (%v), nil", got, ttl, err, "v\x00w", store.NoExpiry)
	}
	mustSet(t, s, "empty", nil, -1)
	got, ttl, err = g.GetWithTTL(ctx(t), "empty")
	if err != nil || len(got) != 0 || ttl != store.NoExpiry {
		t.Fatalf("GetWithTTL of an empty value without expiry = %q, %v, %v; want \"\", store.NoExpiry, nil", got, ttl, err)
	}
}

func testGetWithTTLRemaining(t *testing.T, s store.Store) {
	g := ttlGetter(t, s)
	mustSet(t, s, "k", []byte("v"), longTTL)
	got, ttl, err := g.GetWithTTL(ctx(t), "k")
	if err != nil || string(got) != "v" {
		t.Fatalf("GetWithTTL = %q, %v, %v; want %q", got, ttl, err, "v")
	}
	// Within the ttl set; far more than half of it is left (this catches a
	// wrong unit, not a slow machine).
	if ttl > longTTL || ttl <= longTTL/2 {
		t.Fatalf("GetWithTTL right after Set with ttl %v reports %v left, want at most %v and more than %v", longTTL, ttl, longTTL, longTTL/2)
	}
	if to, ok := s.(store.Toucher); ok {
		if err := to.Touch(ctx(t), "k", 2*longTTL); err != nil {
			t.Fatal(err)
		}
		if _, ttl, err := g.GetWithTTL(ctx(t), "k"); err != nil || ttl <= longTTL || ttl > 2*longTTL {
			t.Fatalf("GetWithTTL after Touch(%v) reports %v, %v; want between %v and %v", 2*longTTL, ttl, err, longTTL, 2*longTTL)
		}
	}
	// A short ttl is reported within it too, rounded down at worst to the
	// backend's precision (a second): never more than was set.
	mustSet(t, s, "short", []byte("v"), 30*time.Second)
	if _, ttl, err := g.GetWithTTL(ctx(t), "short"); err != nil || ttl < 0 || ttl > 30*time.Second {
		t.Fatalf("GetWithTTL after Set with ttl 30s reports %v, %v; want between 0 and 30s", ttl, err)
	}
}

func testGetWithTTLExpired(t *testing.T, s store.Store) {
	g := ttlGetter(t, s)
	mustSet(t, s, "k", []byte("v"), shortTTL)
	time.Sleep(pastShortTTL)
	got, ttl, err := g.GetWithTTL(ctx(t), "k")
	if !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("GetWithTTL of an expired key = %q, %v, %v; want ErrNotFound", got, ttl, err)
	}
}

func testGetWithTTLCopiesOut(t *testing.T, s store.Store) {
	g := ttlGetter(t, s)
	mustSet(t, s, "k", []byte("original"), longTTL)
	got, _, err := g.GetWithTTL(ctx(t), "k")
	if err != nil {
		t.Fatal(err)
	}
	copy(got, "XXXXXXXX")
	wantValue(t, s, "k", []byte("original"))
}
