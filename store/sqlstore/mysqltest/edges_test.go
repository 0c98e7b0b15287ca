package mysqltest

import (
	"errors"
	"math"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/typedsession/session/store"
	"github.com/typedsession/session/store/sqlstore"
)

// TestScanPrefixEdges checks Scan on VARBINARY where the key-range bound is
// delicate: multi-byte and maximal code points, the highest ASCII byte,
// case and accents (which a character collation would fold).
func TestScanPrefixEdges(t *testing.T) {
	keys := []string{
		"日本:1", "日本語", "日本", "日本\x7f", "日本\u0080", "日本\U0010FFFF", "日本\U0010FFFFx", "日杢", "日札",
		"\U0010FFFF", "\U0010FFFF\U0010FFFF", "\uD7FF:a", "\uE000:b",
		"z\x7f", "z\x7fz", "z\u0080",
		"Z", "a", "é", "e", "e ", "E",
	}
	cases := []struct {
		prefix string
		want   []string
	}{
		{"日本", []string{"日本:1", "日本語", "日本", "日本\x7f", "日本\u0080", "日本\U0010FFFF", "日本\U0010FFFFx"}},
		{"日本\U0010FFFF", []string{"日本\U0010FFFF", "日本\U0010FFFFx"}},
		{"\U0010FFFF", []string{"\U0010FFFF", "\U0010FFFF\U0010FFFF"}},
		{"\uD7FF", []string{"\uD7FF:a"}},
		{"z\x7f", []string{"z\x7f", "z\x7fz"}},
		{"e", []string{"e", "e "}},
		{"e ", []string{"e "}},
		{"Z", []string{"Z"}},
		{"", keys},
	}
	db := openDB(t, nil)
	s := newTestStore(t, db, sqlstore.Options{CleanupInterval: -1})
	ctx := t.Context()
	for _, k := range keys {
		if err := s.Set(ctx, k, []byte(k), time.Hour); err != nil {
			t.Fatal(err)
		}
	}
	for _, k := range keys {
		if got, err := s.Get(ctx, k); err != nil || string(got) != k {
			t.Errorf("Get(%q) = %q, %v; want its own value", k, got, err)
		}
	}
	for _, tc := range cases {
		var got []string
		if err := s.Scan(ctx, tc.prefix, func(k string) error {
			got = append(got, k)
			return nil
		}); err != nil {
			t.Fatalf("Scan(%q): %v", tc.prefix, err)
		}
		want := slices.Clone(tc.want)
		slices.Sort(want)
		if !slices.Equal(got, want) {
			t.Errorf("Scan(%q) = %q, want %q", tc.prefix, got, want)
		}
	}
}

// TestLongTTLClamped: every write with a ttl past store.MaxExpiry stores
// store.MaxExpiry, and the key is live.
func TestLongTTLClamped(t *testing.T) {
	db := openDB(t, nil)
	table := randomTable()
	s := newTestStore(t, db, sqlstore.Options{Table: table, CleanupInterval: -1})
	ctx := t.Context()
	expiresAt := func() int64 {
		var ms int64
		if err := db.QueryRow("SELECT expires_at FROM `"+table+"` WHERE `key` = ?", "k").Scan(&ms); err != nil {
			t.Fatal(err)
		}
		return ms
	}
	for _, ttl := range []time.Duration{250 * 365 * 24 * time.Hour, time.Duration(math.MaxInt64)} {
		writes := map[string]func() error{
			"Set":                 func() error { return s.Set(ctx, "k", []byte("v"), ttl) },
			"CompareAndSwap":      func() error { _, err := s.CompareAndSwap(ctx, "k", []byte("v"), []byte("v"), ttl); return err },
			"CompareAndSwap(nil)": func() error { _, err := s.CompareAndSwap(ctx, "k", nil, []byte("v"), ttl); return err },
			"Touch":               func() error { return s.Touch(ctx, "k", ttl) },
			"GetAndTouch":         func() error { _, err := s.GetAndTouch(ctx, "k", ttl); return err },
			"CompareAndSwap(fresh)": func() error {
				s.Delete(ctx, "k")
				_, err := s.CompareAndSwap(ctx, "k", nil, []byte("v"), ttl)
				return err
			},
		}
		for _, op := range []string{"Set", "CompareAndSwap", "CompareAndSwap(nil)", "Touch", "GetAndTouch", "CompareAndSwap(fresh)"} {
			if err := s.Set(ctx, "k", []byte("v"), time.Minute); err != nil {
				t.Fatal(err)
			}
			if err := writes[op](); err != nil {
				t.Fatalf("%s with ttl %v: %v", op, ttl, err)
			}
			if got := expiresAt(); got != store.MaxExpiry.UnixMilli() {
				t.Errorf("%s with ttl %v: expires_at = %d, want store.MaxExpiry (%d)", op, ttl, got, store.MaxExpiry.UnixMilli())
			}
			if _, left, err := s.GetWithTTL(ctx, "k"); err != nil || left < 100*365*24*time.Hour {
				t.Errorf("%s with ttl %v: GetWithTTL = %v, %v; want about %v left", op, ttl, left, err, time.Until(store.MaxExpiry))
			}
		}
	}
}

// TestBadKeys: keys outside the store alphabet are refused before any
// I/O; the longest keys (1,024 bytes, ASCII and multi-byte) fit the
// VARBINARY(1024) column; a driver error quotes a long key shortened.
func TestBadKeys(t *testing.T) {
	db := openDB(t, nil)
	table := randomTable()
	s := newTestStore(t, db, sqlstore.Options{Table: table, CleanupInterval: -1})
	ctx := t.Context()
	for _, key := range []string{"", "nul\x00byte", "bad\xffutf8", strings.Repeat("k", store.MaxKeyLen+1)} {
		if err := s.Set(ctx, key, []byte("v"), 0); !errors.Is(err, store.ErrInvalidKey) {
			t.Errorf("Set(%.20q) = %v, want ErrInvalidKey", key, err)
		}
	}
	long := []string{strings.Repeat("k", store.MaxKeyLen), strings.Repeat("日", store.MaxKeyLen/3) + "x", strings.Repeat("k", store.MaxKeyLen-1) + "j"}
	for _, key := range long {
		if err := s.Set(ctx, key, []byte(key[len(key)-1:]), time.Hour); err != nil {
			t.Fatalf("Set of a %d-byte key: %v", len(key), err)
		}
	}
	for _, key := range long {
		if got, err := s.Get(ctx, key); err != nil || string(got) != key[len(key)-1:] {
			t.Fatalf("Get of a %d-byte key = %q, %v", len(key), got, err)
		}
	}
	dropTable(t, db, table)
	err := s.Set(ctx, long[0], []byte("v"), 0)
	if err == nil || len(err.Error()) > 400 || !strings.Contains(err.Error(), "1024 bytes") {
		t.Errorf("Set of a 1024-byte key on a dropped table = %.500v; want an error quoting the key shortened", err)
	}
}
