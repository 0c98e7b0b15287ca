package storetest

import (
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/typedsession/session/store"
)

// The key alphabet of package store: UTF-8 text without NUL, 1 to
// store.MaxKeyLen bytes. These cases check both sides of that line.

// acceptedKeys returns keys that every store must accept and keep apart,
// byte for byte: the longest key, multi-byte UTF-8 up to the last byte,
// spaces, colons, path and glob or LIKE metacharacters, control
// characters, and characters that an encoder (JSON, a file system) is
// prone to escape, replace or fold.
func acceptedKeys() []string {
	return []string{
		"a",
		"A", // distinct from "a" on a case-insensitive file system too
		strings.Repeat("k", store.MaxKeyLen),
		strings.Repeat("日", store.MaxKeyLen/3) + "x", // 1024 bytes, ends after a 3-byte rune
		strings.Repeat("🙂", store.MaxKeyLen/4),       // 1024 bytes of 4-byte runes
		"ünïcödé:日本語:🙂",
		"é",       // NFC
		"e\u0301", // the same letter in NFD: a different key
		" ",
		"with space",
		" leading and trailing ",
		":",
		"quiz:-1001234567890:42",
		".",
		"..",
		"/",
		"a/../b",
		"../../etc/passwd",
		"back\\slash",
		"~user",
		"$HOME",
		"glob*?[a-z]{x,y}",
		"*",
		"?",
		"[",
		"like%_\\%",
		"%",
		"_",
		"quote'\"`",
		"'; DROP TABLE sessions; --",
		"\x01\x02\x1f\x7f",
		"tab\tnewline\nreturn\r",
		"<script>&amp;",      // HTML-escaped by encoding/json
		"\u2028\u2029",       // escaped by encoding/json
		"\ufffd",             // what a lossy encoder turns invalid UTF-8 into
		"\ufeff",             // byte order mark
		"\U0010FFFF",         // the last code point
		"CON", "nul", "COM1", // reserved names on Windows
	}
}

// refusedKeys are keys that every store must refuse with ErrInvalidKey.
var refusedKeys = []struct{ name, key string }{
	{"empty", ""},
	{"NUL", "\x00"},
	{"NUL inside", "a\x00b"},
	{"NUL at end", "session:1\x00"},
	{"0xff", "\xff"},
	{"0xfe", "\xfe"},
	{"0xff 0xfe", "\xff\xfe"},
	{"truncated rune", "a\xc3"},
	{"overlong NUL", "\xc0\x80"},
	{"surrogate half", "\xed\xa0\x80"},
	{"Latin-1", "caf\xe9"},
	{"one byte too long", strings.Repeat("k", store.MaxKeyLen+1)},
	{"one rune too long", strings.Repeat("日", store.MaxKeyLen/3) + "xy"},
}

func testKeyAlphabetAccepted(t *testing.T, s store.Store) {
	keys := acceptedKeys()
	for i, k := range keys {
		if err := store.CheckKey(k); err != nil {
			t.Fatalf("storetest: accepted key %d is refused by store.CheckKey: %v", i, err)
		}
		mustSet(t, s, k, []byte(strconv.Itoa(i)), longTTL)
	}
	for i, k := range keys {
		wantValue(t, s, k, []byte(strconv.Itoa(i)))
	}
	if sc, ok := s.(store.Scanner); ok {
		wantKeys(t, sc, "", keys...)
		wantKeys(t, sc, "e", "e\u0301")
		wantKeys(t, sc, "é", "é")
	}
	// Every other method takes the same keys.
	for i, k := range keys {
		v := []byte(strconv.Itoa(i))
		if sw, ok := s.(store.Swapper); ok {
			cas(t, sw, k, v, []byte("swapped"), longTTL, true)
			v = []byte("swapped")
		}
		if to, ok := s.(store.Toucher); ok {
			if err := to.Touch(ctx(t), k, longTTL); err != nil {
				t.Fatalf("Touch(%q): %v", k, err)
			}
		}
		if r, ok := s.(store.Refresher); ok {
			if got, err := r.GetAndTouch(ctx(t), k, longTTL); err != nil || string(got) != string(v) {
				t.Fatalf("GetAndTouch(%q) = %q, %v; want %q", k, got, err, v)
			}
		}
		if g, ok := s.(store.TTLGetter); ok {
			if got, _, err := g.GetWithTTL(ctx(t), k); err != nil || string(got) != string(v) {
				t.Fatalf("GetWithTTL(%q) = %q, %v; want %q", k, got, err, v)
			}
		}
		if d, ok := s.(store.Deleter); ok {
			if ok, err := d.CompareAndDelete(ctx(t), k, v); err != nil || !ok {
				t.Fatalf("CompareAndDelete(%q) = %v, %v; want true, nil", k, ok, err)
			}
		} else if err := s.Delete(ctx(t), k); err != nil {
			t.Fatalf("Delete(%q): %v", k, err)
		}
		wantAbsent(t, s, k)
	}
}

func testKeyAlphabetRefused(t *testing.T, s store.Store) {
	mustSet(t, s, "valid", []byte("v"), 0)
	for _, rk := range refusedKeys {
		k := rk.key
		check := func(op string, err error) {
			t.Helper()
			if !errors.Is(err, store.ErrInvalidKey) {
				t.Errorf("%s of the %s key %q = %v, want an error matching store.ErrInvalidKey", op, rk.name, short([]byte(k)), err)
			}
		}
		if store.CheckKey(k) == nil {
			t.Fatalf("storetest: refused key %s is accepted by store.CheckKey", rk.name)
		}
		_, err := s.Get(ctx(t), k)
		check("Get", err)
		check("Set", s.Set(ctx(t), k, []byte("v"), 0))
		check("Set with a ttl", s.Set(ctx(t), k, []byte("v"), longTTL))
		check("Delete", s.Delete(ctx(t), k))
		if sw, ok := s.(store.Swapper); ok {
			ok, err := sw.CompareAndSwap(ctx(t), k, nil, []byte("v"), 0)
			check("CompareAndSwap", err)
			if ok {
				t.Errorf("CompareAndSwap of the %s key reported true", rk.name)
			}
		}
		if d, ok := s.(store.Deleter); ok {
			ok, err := d.CompareAndDelete(ctx(t), k, []byte("v"))
			check("CompareAndDelete", err)
			if ok {
				t.Errorf("CompareAndDelete of the %s key reported true", rk.name)
			}
		}
		if to, ok := s.(store.Toucher); ok {
			check("Touch", to.Touch(ctx(t), k, time.Hour))
		}
		if r, ok := s.(store.Refresher); ok {
			_, err := r.GetAndTouch(ctx(t), k, time.Hour)
			check("GetAndTouch", err)
		}
		if g, ok := s.(store.TTLGetter); ok {
			_, _, err := g.GetWithTTL(ctx(t), k)
			check("GetWithTTL", err)
		}
	}
	// Nothing was stored under a refused key, or under what a lossy
	// encoding would turn it into.
	wantValue(t, s, "valid", []byte("v"))
	wantAbsent(t, s, "\ufffd")
	wantAbsent(t, s, strings.Repeat("k", store.MaxKeyLen))
	if sc, ok := s.(store.Scanner); ok {
		wantKeys(t, sc, "", "valid")
	}
}
