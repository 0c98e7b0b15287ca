package storetest

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/typedsession/session/store"
)

// Cases of store.PrefixSwapper: compare-and-swap against the first bytes
// of the stored value. The values below begin with a 5-byte header that
// stands for a write identity ("HDR1-", "HDR2-", ...), followed by a body.

func prefixSwapper(t *testing.T, s store.Store) store.PrefixSwapper {
	t.Helper()
	p, ok := s.(store.PrefixSwapper)
	if !ok {
		t.Skipf("%T does not implement store.PrefixSwapper", s)
	}
	if _, ok := s.(store.Swapper); !ok {
		t.Fatalf("%T implements store.PrefixSwapper but not store.Swapper", s)
	}
	return p
}

func casPrefix(t *testing.T, p store.PrefixSwapper, key string, oldPrefix, value []byte, valuePrefix int, want bool) {
	t.Helper()
	ok, err := p.CompareAndSwapPrefix(ctx(t), key, oldPrefix, value, valuePrefix, 0)
	if err != nil {
		t.Fatalf("CompareAndSwapPrefix(%q, oldPrefix=%q, value=%q, %d): %v", key, short(oldPrefix), short(value), valuePrefix, err)
	}
	if ok != want {
		t.Fatalf("CompareAndSwapPrefix(%q, oldPrefix=%q, value=%q, %d) = %v, want %v", key, short(oldPrefix), short(value), valuePrefix, ok, want)
	}
}

func testPrefixMatch(t *testing.T, s store.Store) {
	p := prefixSwapper(t, s)
	mustSet(t, s, "k", []byte("HDR1-the first body"), 0)
	casPrefix(t, p, "k", []byte("HDR1-"), []byte("HDR2-a longer second body"), 5, true)
	wantValue(t, s, "k", []byte("HDR2-a longer second body"))
	// The whole value is a prefix of itself; NUL and other bytes compare exactly.
	mustSet(t, s, "bin", []byte("\x00TS\x02\xff-body"), 0)
	casPrefix(t, p, "bin", []byte("\x00TS\x02\xff-body"), []byte("\x00TS\x02\xfe"), 5, true)
	wantValue(t, s, "bin", []byte("\x00TS\x02\xfe"))
}

func testPrefixMismatch(t *testing.T, s store.Store) {
	p := prefixSwapper(t, s)
	mustSet(t, s, "k", []byte("HDR1-body"), 0)
	casPrefix(t, p, "k", []byte("HDR0-"), []byte("HDR2-new"), 5, false)
	casPrefix(t, p, "k", []byte("HDR1-body and more"), []byte("HDR2-new"), 5, false) // longer than the value
	casPrefix(t, p, "k", []byte("HDR1-\x00"), []byte("HDR2-new"), 5, false)
	wantValue(t, s, "k", []byte("HDR1-body"))
}

func testPrefixAbsent(t *testing.T, s store.Store) {
	p := prefixSwapper(t, s)
	casPrefix(t, p, "absent", []byte("HDR1-"), []byte("HDR2-new"), 5, false)
	casPrefix(t, p, "absent", []byte{}, []byte("HDR2-new"), 5, false)
	casPrefix(t, p, "absent", nil, []byte{}, 0, false)
	wantAbsent(t, s, "absent")
}

func testPrefixEmpty(t *testing.T, s store.Store) {
	p := prefixSwapper(t, s)
	// An empty oldPrefix matches any stored value, an empty one too.
	mustSet(t, s, "k", []byte("anything"), 0)
	casPrefix(t, p, "k", []byte{}, []byte("HDR1-x"), 5, true)
	wantValue(t, s, "k", []byte("HDR1-x"))
	mustSet(t, s, "empty", []byte{}, 0)
	casPrefix(t, p, "empty", []byte{}, []byte("HDR1-x"), 5, true)
	wantValue(t, s, "empty", []byte("HDR1-x"))
	// A non-empty oldPrefix never matches a stored empty value.
	mustSet(t, s, "empty2", []byte{}, 0)
	casPrefix(t, p, "empty2", []byte("H"), []byte("HDR1-x"), 5, false)
	wantValue(t, s, "empty2", []byte{})
}

func testPrefixResend(t *testing.T, s store.Store) {
	p := prefixSwapper(t, s)
	// A resent swap whose first attempt landed finds its own prefix.
	mustSet(t, s, "k", []byte("HDR2-new"), 0)
	casPrefix(t, p, "k", []byte("HDR1-"), []byte("HDR2-new"), 5, true)
	wantValue(t, s, "k", []byte("HDR2-new"))
	// By prefix: the stored value begins with the first valuePrefix bytes.
	mustSet(t, s, "by-prefix", []byte("HDR2-stored"), 0)
	casPrefix(t, p, "by-prefix", []byte("HDR1-"), []byte("HDR2-new"), 5, true)
	wantValue(t, s, "by-prefix", []byte("HDR2-new"))
	// valuePrefix out of range means the whole value.
	mustSet(t, s, "whole", []byte("HDR2-stored"), 0)
	casPrefix(t, p, "whole", []byte("HDR1-"), []byte("HDR2-new"), 0, false)
	casPrefix(t, p, "whole", []byte("HDR1-"), []byte("HDR2-new"), 99, false)
	wantValue(t, s, "whole", []byte("HDR2-stored"))
	// An empty value is its own only where an empty value is stored.
	mustSet(t, s, "empty", []byte{}, 0)
	casPrefix(t, p, "empty", []byte("HDR1-"), []byte{}, 0, true)
	mustSet(t, s, "not-empty", []byte("x"), 0)
	casPrefix(t, p, "not-empty", []byte("HDR1-"), []byte{}, 0, false)
	wantValue(t, s, "not-empty", []byte("x"))
	// Another writer's value is no resend.
	mustSet(t, s, "other", []byte("HDR3-other"), 0)
	casPrefix(t, p, "other", []byte("HDR1-"), []byte("HDR2-new"), 5, false)
	wantValue(t, s, "other", []byte("HDR3-other"))
}

func testPrefixTTL(t *testing.T, s store.Store) {
	p := prefixSwapper(t, s)
	mustSet(t, s, "expires", []byte("HDR1-"), 0)
	if ok, err := p.CompareAndSwapPrefix(ctx(t), "expires", []byte("HDR1-"), []byte("HDR2-"), 5, shortTTL); err != nil || !ok {
		t.Fatalf("CompareAndSwapPrefix = %v, %v; want true", ok, err)
	}
	mustSet(t, s, "persists", []byte("HDR1-"), shortTTL)
	if ok, err := p.CompareAndSwapPrefix(ctx(t), "persists", []byte("HDR1-"), []byte("HDR2-"), 5, 0); err != nil || !ok {
		t.Fatalf("CompareAndSwapPrefix = %v, %v; want true", ok, err)
	}
	mustSet(t, s, "resent", []byte("HDR2-"), 0)
	if ok, err := p.CompareAndSwapPrefix(ctx(t), "resent", []byte("HDR1-"), []byte("HDR2-"), 5, shortTTL); err != nil || !ok {
		t.Fatalf("resent CompareAndSwapPrefix = %v, %v; want true", ok, err)
	}
	time.Sleep(pastShortTTL)
	wantAbsent(t, s, "expires")
	wantAbsent(t, s, "resent")
	wantValue(t, s, "persists", []byte("HDR2-"))
}

func testPrefixRefusals(t *testing.T, s store.Store) {
	p := prefixSwapper(t, s)
	mustSet(t, s, "k", []byte("HDR1-"), 0)
	_, err := p.CompareAndSwapPrefix(cancelled(t), "k", []byte("HDR1-"), []byte("HDR2-"), 5, 0)
	wantCanceled(t, "CompareAndSwapPrefix", err)
	wantValue(t, s, "k", []byte("HDR1-"))
	for _, key := range []string{"", "a\x00b", "\xff"} {
		if _, err := p.CompareAndSwapPrefix(ctx(t), key, nil, []byte("HDR2-"), 5, 0); !errors.Is(err, store.ErrInvalidKey) {
			t.Errorf("CompareAndSwapPrefix(%q) = %v, want ErrInvalidKey", key, err)
		}
	}
}

func testPrefixCounter(t *testing.T, s store.Store) {
	p := prefixSwapper(t, s)
	// The header is the count and a token unique to the write (the worker
	// and its sequence number), fixed width: it names each write, as a
	// write identity does. The count alone would not: two writers that
	// both read 5 both write 6, and the resend rule would count the second.
	const workers, perWorker, hdr = 8, 25, len("00000000:00:000000|")
	mustSet(t, s, "counter", []byte("00000000:00:000000|body"), 0)
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := range workers {
		wg.Go(func() {
			for i := range perWorker {
				for {
					old, err := s.Get(ctx(t), "counter")
					if err != nil {
						errs <- err
						return
					}
					var n int
					if _, err := fmt.Sscanf(string(old), "%d:", &n); err != nil || len(old) < hdr {
						errs <- fmt.Errorf("counter holds %q: %v", old, err)
						return
					}
					next := fmt.Appendf(nil, "%08d:%02d:%06d|body", n+1, w, i)
					ok, err := p.CompareAndSwapPrefix(ctx(t), "counter", old[:hdr], next, hdr, 0)
					if err != nil {
						errs <- err
						return
					}
					if ok {
						break
					}
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
	var n int
	if _, err := fmt.Sscanf(string(got), "%d:", &n); err != nil || n != workers*perWorker {
		t.Fatalf("after %d increments the counter holds %q: updates were lost", workers*perWorker, got)
	}
}
