package redisstore_test

import (
	"context"
	"errors"
	"math"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/typedsession/session/internal/testenv"
	"github.com/typedsession/session/store"
	"github.com/typedsession/session/store/redisstore"
	"github.com/typedsession/session/store/storetest"
)

// These tests check the points of the store contract that the conformance
// suite cannot see from outside: what Redis holds (PTTL), how many commands
// each method sends, and that nothing is sent for a refused key.

// keyOps calls every method of the store that takes a key, with key, and
// returns each one's error.
func keyOps(s *redisstore.Store) map[string]func(ctx context.Context, key string) error {
	return map[string]func(ctx context.Context, key string) error{
		"Get": func(ctx context.Context, key string) error { _, err := s.Get(ctx, key); return err },
		"Set": func(ctx context.Context, key string) error { return s.Set(ctx, key, []byte("v"), time.Hour) },
		"Delete": func(ctx context.Context, key string) error {
			return s.Delete(ctx, key)
		},
		"CompareAndSwap": func(ctx context.Context, key string) error {
			_, err := s.CompareAndSwap(ctx, key, []byte("a"), []byte("b"), time.Hour)
			return err
		},
		"CompareAndSwapNilOld": func(ctx context.Context, key string) error {
			_, err := s.CompareAndSwap(ctx, key, nil, []byte("b"), time.Hour)
			return err
		},
		"CompareAndDelete": func(ctx context.Context, key string) error {
			_, err := s.CompareAndDelete(ctx, key, []byte("a"))
			return err
		},
		"Touch":        func(ctx context.Context, key string) error { return s.Touch(ctx, key, time.Hour) },
		"TouchPersist": func(ctx context.Context, key string) error { return s.Touch(ctx, key, 0) },
		"GetAndTouch": func(ctx context.Context, key string) error {
			_, err := s.GetAndTouch(ctx, key, time.Hour)
			return err
		},
		"GetWithTTL": func(ctx context.Context, key string) error {
			_, _, err := s.GetWithTTL(ctx, key)
			return err
		},
	}
}

// TestInvalidKeyNoIO checks that every method refuses a key outside the
// store alphabet with store.ErrInvalidKey and sends nothing: the client
// points at a closed port, so any I/O would give a connection error, and a
// hook counts the commands.
func TestInvalidKeyNoIO(t *testing.T) {
	client := redis.NewClient(&redis.Options{Addr: closedPort(t), MaxRetries: -1})
	t.Cleanup(func() { client.Close() })
	counter := countCommands(client)
	s := redisstore.New(client, redisstore.Options{Prefix: "p:"})
	keys := map[string]string{
		"empty":   "",
		"NUL":     "a\x00b",
		"notUTF8": "\xff\xfe",
		"1025B":   strings.Repeat("k", store.MaxKeyLen+1),
	}
	for opName, op := range keyOps(s) {
		for keyName, key := range keys {
			err := op(t.Context(), key)
			if !errors.Is(err, store.ErrInvalidKey) {
				t.Errorf("%s(%s key) = %v, want an error matching store.ErrInvalidKey", opName, keyName, err)
			}
			if err != nil && len(err.Error()) > 200 {
				t.Errorf("%s(%s key): error is %d bytes long, want the key shortened: %.300s", opName, keyName, len(err.Error()), err)
			}
		}
	}
	if n := counter.n.Load(); n != 0 {
		t.Errorf("refused keys sent %d commands, want 0", n)
	}
}

// TestLongestKeyWithPrefix checks that the MaxKeyLen limit applies to the
// caller's key: a key of exactly MaxKeyLen bytes works behind a prefix that
// makes the Redis key longer, through every method.
func TestLongestKeyWithPrefix(t *testing.T) {
	client := testenv.Redis(t)
	s, _ := newStorePrefix(t, client)
	ctx := t.Context()
	key := strings.Repeat("é", store.MaxKeyLen/2) // 1024 bytes of valid UTF-8
	if err := s.Set(ctx, key, []byte("v1"), time.Hour); err != nil {
		t.Fatal(err)
	}
	if ok, err := s.CompareAndSwap(ctx, key, []byte("v1"), []byte("v2"), time.Hour); err != nil || !ok {
		t.Fatalf("CompareAndSwap of a %d-byte key = %v, %v; want true, nil", len(key), ok, err)
	}
	if v, ttl, err := s.GetWithTTL(ctx, key); err != nil || string(v) != "v2" || ttl <= 0 {
		t.Fatalf("GetWithTTL of a %d-byte key = %q, %v, %v; want \"v2\", > 0, nil", len(key), v, ttl, err)
	}
	if ok, err := s.CompareAndDelete(ctx, key, []byte("v2")); err != nil || !ok {
		t.Fatalf("CompareAndDelete of a %d-byte key = %v, %v; want true, nil", len(key), ok, err)
	}
}

// TestErrorQuotesKeyShortened checks that a driver error on a long key
// carries the key shortened, once.
func TestErrorQuotesKeyShortened(t *testing.T) {
	client := testenv.Redis(t)
	s, prefix := newStorePrefix(t, client)
	ctx := t.Context()
	key := strings.Repeat("k", store.MaxKeyLen)
	for opName, op := range keyOps(s) {
		if opName == "Set" || opName == "Delete" || opName == "Touch" || opName == "TouchPersist" {
			continue // SET, DEL, PEXPIRE and PERSIST work on any type
		}
		// A hash under the key makes every string command fail with
		// WRONGTYPE.
		if err := client.HSet(ctx, prefix+key, "f", "v").Err(); err != nil {
			t.Fatal(err)
		}
		err := op(ctx, key)
		if err == nil || errors.Is(err, store.ErrNotFound) {
			t.Errorf("%s of a hash = %v, want a WRONGTYPE error", opName, err)
			continue
		}
		if len(err.Error()) > 300 || !strings.Contains(err.Error(), "WRONGTYPE") {
			t.Errorf("%s: error of %d bytes, want a WRONGTYPE error with the key shortened: %.400s", opName, len(err.Error()), err)
		}
	}
}

// TestLongTTL writes with TTLs that reach past store.MaxExpiry through every
// method that takes a ttl, and checks that the key is live afterwards and
// expires no later than MaxExpiry.
func TestLongTTL(t *testing.T) {
	client := testenv.Redis(t)
	s, prefix := newStorePrefix(t, client)
	ctx := t.Context()
	ttls := map[string]time.Duration{
		"250y":        250 * 365 * 24 * time.Hour,
		"MaxDuration": math.MaxInt64,
	}
	writes := map[string]func(key string, ttl time.Duration) error{
		"Set": func(key string, ttl time.Duration) error { return s.Set(ctx, key, []byte("v"), ttl) },
		"CompareAndSwapNilOld": func(key string, ttl time.Duration) error {
			return wantSwap(s.CompareAndSwap(ctx, key, nil, []byte("v"), ttl))
		},
		"CompareAndSwap": func(key string, ttl time.Duration) error {
			if err := s.Set(ctx, key, []byte("old"), time.Minute); err != nil {
				return err
			}
			return wantSwap(s.CompareAndSwap(ctx, key, []byte("old"), []byte("v"), ttl))
		},
		"Touch": func(key string, ttl time.Duration) error {
			if err := s.Set(ctx, key, []byte("v"), time.Minute); err != nil {
				return err
			}
			return s.Touch(ctx, key, ttl)
		},
		"GetAndTouch": func(key string, ttl time.Duration) error {
			if err := s.Set(ctx, key, []byte("v"), time.Minute); err != nil {
				return err
			}
			_, err := s.GetAndTouch(ctx, key, ttl)
			return err
		},
	}
	for wName, write := range writes {
		for tName, ttl := range ttls {
			key := wName + ":" + tName
			before := time.Now()
			if err := write(key, ttl); err != nil {
				t.Errorf("%s with ttl %s: %v", wName, tName, err)
				continue
			}
			after := time.Now()
			v, left, err := s.GetWithTTL(ctx, key)
			if err != nil || string(v) != "v" {
				t.Errorf("%s with ttl %s: the key is not live right after the write: GetWithTTL = %q, %v", wName, tName, v, err)
				continue
			}
			pt, err := client.PTTL(ctx, prefix+key).Result()
			if err != nil {
				t.Fatal(err)
			}
			// At least MaxExpiry − after − a minute of slack, at most
			// MaxExpiry − before.
			lo, hi := store.MaxExpiry.Sub(after)-time.Minute, store.MaxExpiry.Sub(before)
			if left < lo || left > hi || pt < lo || pt > hi {
				t.Errorf("%s with ttl %s: GetWithTTL reports %v left, PTTL %v; want both between %v and %v (clamped to store.MaxExpiry)",
					wName, tName, left, pt, lo, hi)
			}
		}
	}
}

// wantSwap turns a swap that did not happen into an error.
func wantSwap(ok bool, err error) error {
	if err == nil && !ok {
		return errors.New("CompareAndSwap reported false")
	}
	return err
}

// TestNoExpiryRemovesOldExpiry checks, at the Redis level, that a ttl of
// zero or less leaves no expiry on the key in every method that takes a
// ttl (PTTL -1), never an old one kept (KEEPTTL).
func TestNoExpiryRemovesOldExpiry(t *testing.T) {
	client := testenv.Redis(t)
	s, prefix := newStorePrefix(t, client)
	ctx := t.Context()
	writes := map[string]func(key string, ttl time.Duration) error{
		"Set": func(key string, ttl time.Duration) error { return s.Set(ctx, key, []byte("v2"), ttl) },
		"CompareAndSwap": func(key string, ttl time.Duration) error {
			return wantSwap(s.CompareAndSwap(ctx, key, []byte("v1"), []byte("v2"), ttl))
		},
		"CompareAndSwapResend": func(key string, ttl time.Duration) error {
			if err := s.Set(ctx, key, []byte("v2"), time.Hour); err != nil {
				return err
			}
			return wantSwap(s.CompareAndSwap(ctx, key, []byte("v1"), []byte("v2"), ttl))
		},
		"CompareAndSwapNilOldResend": func(key string, ttl time.Duration) error {
			if err := s.Set(ctx, key, []byte("v2"), time.Hour); err != nil {
				return err
			}
			return wantSwap(s.CompareAndSwap(ctx, key, nil, []byte("v2"), ttl))
		},
		"Touch": func(key string, ttl time.Duration) error { return s.Touch(ctx, key, ttl) },
		"GetAndTouch": func(key string, ttl time.Duration) error {
			_, err := s.GetAndTouch(ctx, key, ttl)
			return err
		},
	}
	for wName, write := range writes {
		for _, ttl := range []time.Duration{0, -1, -time.Hour, math.MinInt64} {
			key := wName + ":" + ttl.String()
			if err := s.Set(ctx, key, []byte("v1"), time.Hour); err != nil {
				t.Fatal(err)
			}
			if err := write(key, ttl); err != nil {
				t.Errorf("%s with ttl %v: %v", wName, ttl, err)
				continue
			}
			if pt, err := client.PTTL(ctx, prefix+key).Result(); err != nil || pt != -1 {
				t.Errorf("%s with ttl %v on a key with an expiry: PTTL = %v, %v; want -1 (no expiry)", wName, ttl, pt, err)
			}
			if _, left, err := s.GetWithTTL(ctx, key); err != nil || left != store.NoExpiry {
				t.Errorf("%s with ttl %v: GetWithTTL reports %v, %v; want store.NoExpiry", wName, ttl, left, err)
			}
		}
	}
}

// TestCASResend checks the resend rule: a swap that finds the value it
// would write reports true and sets its ttl, for a nil old (SET NX's
// case) as for a non-nil one; a swap that finds a third value reports
// false and changes nothing.
func TestCASResend(t *testing.T) {
	client := testenv.Redis(t)
	s, prefix := newStorePrefix(t, client)
	ctx := t.Context()
	for _, old := range [][]byte{nil, []byte("old")} {
		name := "old=" + string(old)
		if old == nil {
			name = "old=nil"
		}
		t.Run(name, func(t *testing.T) {
			key := name
			// The first attempt lands and its reply is lost; the resend
			// comes with another ttl.
			if err := s.Set(ctx, key, []byte("new"), time.Minute); err != nil {
				t.Fatal(err)
			}
			ok, err := s.CompareAndSwap(ctx, key, old, []byte("new"), time.Hour)
			if err != nil || !ok {
				t.Fatalf("resent CompareAndSwap = %v, %v; want true, nil", ok, err)
			}
			if pt, err := client.PTTL(ctx, prefix+key).Result(); err != nil || pt < time.Hour-time.Minute || pt > time.Hour {
				t.Errorf("PTTL after the resent swap = %v, %v; want about 1h (the swap's ttl)", pt, err)
			}
			// Another writer has replaced the value: a conflict.
			if err := s.Set(ctx, key, []byte("third"), time.Minute); err != nil {
				t.Fatal(err)
			}
			ok, err = s.CompareAndSwap(ctx, key, old, []byte("new"), time.Hour)
			if err != nil || ok {
				t.Fatalf("CompareAndSwap over a third value = %v, %v; want false, nil", ok, err)
			}
			if v, err := s.Get(ctx, key); err != nil || string(v) != "third" {
				t.Errorf("after a failed swap Get = %q, %v; want \"third\"", v, err)
			}
		})
	}
}

// TestCompareAndDeleteResend checks CompareAndDelete's three answers at
// the Redis level: a match deletes and reports true, an absent key reports
// false (a resent delete deleted nothing), another value reports false and
// stays with its expiry.
func TestCompareAndDeleteResend(t *testing.T) {
	client := testenv.Redis(t)
	s, prefix := newStorePrefix(t, client)
	ctx := t.Context()
	if err := s.Set(ctx, "k", []byte("a"), time.Hour); err != nil {
		t.Fatal(err)
	}
	if ok, err := s.CompareAndDelete(ctx, "k", []byte("b")); err != nil || ok {
		t.Fatalf("CompareAndDelete of another value = %v, %v; want false, nil", ok, err)
	}
	if pt, err := client.PTTL(ctx, prefix+"k").Result(); err != nil || pt <= 0 {
		t.Fatalf("after a refused CompareAndDelete PTTL = %v, %v; want the key with its expiry", pt, err)
	}
	for i, want := range []bool{true, false} { // the second is a resend
		if ok, err := s.CompareAndDelete(ctx, "k", []byte("a")); err != nil || ok != want {
			t.Fatalf("CompareAndDelete #%d = %v, %v; want %v, nil", i+1, ok, err, want)
		}
	}
	if n, err := client.Exists(ctx, prefix+"k").Result(); err != nil || n != 0 {
		t.Fatalf("EXISTS after CompareAndDelete = %d, %v; want 0", n, err)
	}
}

// TestCommandsPerStoreOp pins the round trips (one each) and the commands
// each store method sends once its script is in the server's cache. The
// first call of a script on a server that lacks it costs an EVALSHA and an
// EVAL, two round trips.
func TestCommandsPerStoreOp(t *testing.T) {
	client, cmds, writes := countingClient(t)
	s := newStore(t, client)
	ctx := t.Context()
	wantCmds := map[string]int64{"GetWithTTL": 2} // GET and PTTL in one pipeline; the others: 1
	for name, op := range keyOps(s) {
		t.Run(name, func(t *testing.T) {
			if err := s.Set(ctx, "k", []byte("a"), time.Hour); err != nil {
				t.Fatal(err)
			}
			op(ctx, "k") // loads a script into the cache if needed
			if err := s.Set(ctx, "k", []byte("a"), time.Hour); err != nil {
				t.Fatal(err)
			}
			c0, w0 := cmds.n.Load(), writes.n.Load()
			if err := op(ctx, "k"); err != nil && !errors.Is(err, store.ErrNotFound) {
				t.Fatal(err)
			}
			want := wantCmds[name]
			if want == 0 {
				want = 1
			}
			if got := cmds.n.Load() - c0; got != want {
				t.Errorf("%s sent %d commands, want %d", name, got, want)
			}
			if got := writes.n.Load() - w0; got != 1 {
				t.Errorf("%s took %d round trips, want 1", name, got)
			}
		})
	}
}

// damageRuns runs storetest.RunDamage on stores of client, each key damaged
// by writing another kind of Redis value over it (another program's hash
// or list under the store's prefix): every read reports it as
// store.ErrCorrupt. Before, Get said WRONGTYPE while MGET (GetMany, and so
// the inspector's ls and export) reported the key absent: a listing that
// hid what a read reported.
func damageRuns(t *testing.T, client redis.UniversalClient) {
	var prefixes sync.Map // *redisstore.Store -> its prefix
	newStore := func(t *testing.T) store.Store {
		s, prefix := newStorePrefix(t, client)
		prefixes.Store(s, prefix)
		return s
	}
	overwrite := func(write func(ctx context.Context, rkey string) error) storetest.Damage {
		return func(t *testing.T, s store.Store, key string) {
			prefix, _ := prefixes.Load(s)
			rkey := prefix.(string) + key
			if err := client.Del(t.Context(), rkey).Err(); err != nil {
				t.Fatal(err)
			}
			if err := write(t.Context(), rkey); err != nil {
				t.Fatal(err)
			}
		}
	}
	storetest.RunDamage(t, newStore, map[string]storetest.Damage{
		"Hash": overwrite(func(ctx context.Context, k string) error { return client.HSet(ctx, k, "f", "v").Err() }),
		"List": overwrite(func(ctx context.Context, k string) error { return client.RPush(ctx, k, "v").Err() }),
	})
}

func TestDamage(t *testing.T) { damageRuns(t, testenv.Redis(t)) }

func TestClusterDamage(t *testing.T) { damageRuns(t, cluster(t)) }

// TestScanSkipsRefusedKeys: a key another program wrote under the store's
// prefix that store.CheckKey refuses (not UTF-8, a NUL byte) is not listed:
// no method can reach it, and before, the inspector's ls stopped at its
// first Get ("invalid key"). The store's own keys are listed.
func TestScanSkipsRefusedKeys(t *testing.T) {
	client := testenv.Redis(t)
	s, prefix := newStorePrefix(t, client)
	ctx := t.Context()
	if err := s.Set(ctx, "good", []byte("v"), 0); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"bad\xff", "nul\x00"} {
		if err := client.Set(ctx, prefix+k, "v", 0).Err(); err != nil {
			t.Fatal(err)
		}
	}
	var keys []string
	if err := s.Scan(ctx, "", func(k string) error { keys = append(keys, k); return nil }); err != nil {
		t.Fatal(err)
	}
	if len(keys) != 1 || keys[0] != "good" {
		t.Errorf("Scan listed %q, want only \"good\"", keys)
	}
}
