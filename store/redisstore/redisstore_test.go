package redisstore_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"net"
	"os"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/typedsession/session/internal/testenv"
	"github.com/typedsession/session/store"
	"github.com/typedsession/session/store/redisstore"
	"github.com/typedsession/session/store/storetest"
)

func TestMain(m *testing.M) {
	code := m.Run()
	stopCluster()
	os.Exit(code)
}

func randomHex(tb testing.TB) string {
	b := make([]byte, 8)
	if _, err := rand.Read(b); err != nil {
		tb.Fatal(err)
	}
	return hex.EncodeToString(b)
}

// deletePrefix removes every key under prefix, on every master of a
// cluster. It is a test's cleanup, so it uses its own context.
func deletePrefix(tb testing.TB, client redis.UniversalClient, prefix string) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var nodes []*redis.Client
	var mu sync.Mutex
	switch c := client.(type) {
	case *redis.ClusterClient:
		err := c.ForEachMaster(ctx, func(_ context.Context, n *redis.Client) error {
			mu.Lock()
			defer mu.Unlock()
			nodes = append(nodes, n)
			return nil
		})
		if err != nil {
			tb.Errorf("cleanup of %q: %v", prefix, err)
			return
		}
	case *redis.Client:
		nodes = append(nodes, c)
	}
	pattern := redisstore.EscapeGlob(prefix) + "*"
	for _, n := range nodes {
		iter := n.Scan(ctx, 0, pattern, 500).Iterator()
		for iter.Next(ctx) {
			if err := client.Del(ctx, iter.Val()).Err(); err != nil {
				tb.Errorf("cleanup of %q: %v", iter.Val(), err)
				return
			}
		}
		if err := iter.Err(); err != nil {
			tb.Errorf("cleanup of %q: %v", prefix, err)
		}
	}
}

// newStore returns a store on client under a fresh prefix that holds glob
// metacharacters (so the suite also checks that Prefix is escaped), and
// deletes that prefix's keys when tb ends.
func newStore(tb testing.TB, client redis.UniversalClient) *redisstore.Store {
	tb.Helper()
	s, _ := newStorePrefix(tb, client)
	return s
}

// newStorePrefix is newStore that also returns the prefix.
func newStorePrefix(tb testing.TB, client redis.UniversalClient) (*redisstore.Store, string) {
	tb.Helper()
	prefix := "tstest:[*?\\]:" + randomHex(tb) + ":"
	tb.Cleanup(func() { deletePrefix(tb, client, prefix) })
	return redisstore.New(client, redisstore.Options{Prefix: prefix}), prefix
}

func TestConformance(t *testing.T) {
	client := testenv.Redis(t)
	storetest.Run(t, func(t *testing.T) store.Store { return newStore(t, client) })
}

func TestConformanceSmallScanCount(t *testing.T) {
	testenv.Slow(t)
	client := testenv.Redis(t)
	storetest.Run(t, func(t *testing.T) store.Store {
		prefix := "tstest:" + randomHex(t) + ":"
		t.Cleanup(func() { deletePrefix(t, client, prefix) })
		return redisstore.New(client, redisstore.Options{Prefix: prefix, ScanCount: 1})
	})
}

// TestConformanceAutoPipeline runs the suite with every call through the
// client's auto-pipeliner, and again with the store choosing the route.
// The adaptive pass, whose calls one at a time go straight as without
// AutoPipeline, is in the slow suite.
func TestConformanceAutoPipeline(t *testing.T) {
	client := testenv.Redis(t)
	for _, always := range []bool{true, false} {
		t.Run(map[bool]string{true: "always", false: "adaptive"}[always], func(t *testing.T) {
			if !always {
				testenv.Slow(t)
			}
			storetest.Run(t, func(t *testing.T) store.Store {
				prefix := "tstest:[*?\\]:" + randomHex(t) + ":"
				t.Cleanup(func() { deletePrefix(t, client, prefix) })
				s := redisstore.New(client, redisstore.Options{Prefix: prefix, AutoPipeline: true})
				if always {
					s = redisstore.AlwaysPipelined(s)
				}
				return s
			})
		})
	}
}

// TestConformancePipelinerClient runs the suite on a store whose client is
// itself go-redis's auto-pipeliner: every call goes through it.
func TestConformancePipelinerClient(t *testing.T) {
	client := testenv.Redis(t)
	ap, err := client.AutoPipeline()
	if err != nil {
		t.Fatal(err)
	}
	storetest.Run(t, func(t *testing.T) store.Store {
		prefix := "tstest:" + randomHex(t) + ":"
		t.Cleanup(func() { deletePrefix(t, client, prefix) })
		return redisstore.New(ap, redisstore.Options{Prefix: prefix})
	})
}

// TestPrefixIsolation checks that Options.Prefix is matched literally: a
// store whose prefix ends in '*' must not see keys of a store whose prefix
// the unescaped glob would match.
func TestPrefixIsolation(t *testing.T) {
	client := testenv.Redis(t)
	base := "tstest:" + randomHex(t) + ":"
	t.Cleanup(func() { deletePrefix(t, client, base) })
	star := redisstore.New(client, redisstore.Options{Prefix: base + "a*"})
	other := redisstore.New(client, redisstore.Options{Prefix: base + "ab"})
	ctx := t.Context()
	if err := star.Set(ctx, "1", []byte("star"), time.Hour); err != nil {
		t.Fatal(err)
	}
	if err := other.Set(ctx, "2", []byte("other"), time.Hour); err != nil {
		t.Fatal(err)
	}
	var got []string
	if err := star.Scan(ctx, "", func(k string) error { got = append(got, k); return nil }); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got, []string{"1"}) {
		t.Fatalf("Scan of prefix %q reported %q, want [\"1\"]", base+"a*", got)
	}
	// The key is stored under Prefix + key, readable by any client.
	raw, err := client.Get(ctx, base+"a*1").Result()
	if err != nil || raw != "star" {
		t.Fatalf("GET %q = %q, %v; want \"star\"", base+"a*1", raw, err)
	}
}

func TestEscapeGlob(t *testing.T) {
	tests := []struct{ in, want string }{
		{"", ""},
		{"plain:key", "plain:key"},
		{"a*b", `a\*b`},
		{"what?", `what\?`},
		{"[ab]", `\[ab\]`},
		{`back\slash`, `back\\slash`},
		{"50%_off", "50%_off"}, // not special to Redis
		{"ünï*", `ünï\*`},
	}
	for _, tt := range tests {
		if got := redisstore.EscapeGlob(tt.in); got != tt.want {
			t.Errorf("escapeGlob(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestNewNilClientPanics(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Fatal("New(nil) did not panic")
		}
	}()
	redisstore.New(nil, redisstore.Options{})
}

// closedPort returns a loopback address on which nothing listens.
func closedPort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

// TestUnreachable checks that a refused connection is an error and never
// ErrNotFound, for every method that can report ErrNotFound.
func TestUnreachable(t *testing.T) {
	client := redis.NewClient(&redis.Options{Addr: closedPort(t)})
	t.Cleanup(func() { client.Close() })
	s := redisstore.New(client, redisstore.Options{Prefix: "p:"})

	ops := []struct {
		name string
		call func(ctx context.Context) error
	}{
		{"Get", func(ctx context.Context) error { _, err := s.Get(ctx, "k"); return err }},
		{"GetAndTouch", func(ctx context.Context) error { _, err := s.GetAndTouch(ctx, "k", time.Hour); return err }},
		{"Touch", func(ctx context.Context) error { return s.Touch(ctx, "k", time.Hour) }},
		{"TouchPersist", func(ctx context.Context) error { return s.Touch(ctx, "k", 0) }},
		{"CompareAndSwap", func(ctx context.Context) error {
			_, err := s.CompareAndSwap(ctx, "k", []byte("a"), []byte("b"), 0)
			return err
		}},
		{"CompareAndDelete", func(ctx context.Context) error {
			_, err := s.CompareAndDelete(ctx, "k", []byte("a"))
			return err
		}},
		{"GetWithTTL", func(ctx context.Context) error { _, _, err := s.GetWithTTL(ctx, "k"); return err }},
		{"Scan", func(ctx context.Context) error { return s.Scan(ctx, "", func(string) error { return nil }) }},
	}
	for _, op := range ops {
		t.Run(op.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
			defer cancel()
			err := op.call(ctx)
			if err == nil {
				t.Fatalf("%s against a closed port returned nil", op.name)
			}
			if errors.Is(err, store.ErrNotFound) {
				t.Fatalf("%s against a closed port = %v, which matches ErrNotFound", op.name, err)
			}
			if ctx.Err() != nil && !errors.Is(err, ctx.Err()) {
				t.Fatalf("%s returned %v after its deadline passed, want an error matching %v", op.name, err, ctx.Err())
			}
		})
	}
}

// TestSilentServerDeadline points the store at a server that accepts
// connections and never answers: the deadline passes while go-redis waits
// for a reply, and the error must match context.DeadlineExceeded (go-redis
// itself reports an i/o timeout there).
func TestSilentServerDeadline(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var (
		mu    sync.Mutex
		conns []net.Conn
		wg    sync.WaitGroup
	)
	wg.Go(func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	})
	t.Cleanup(func() {
		l.Close()
		wg.Wait()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	client := redis.NewClient(&redis.Options{Addr: l.Addr().String(), MaxRetries: -1})
	t.Cleanup(func() { client.Close() })
	s := redisstore.New(client, redisstore.Options{})

	ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
	defer cancel()
	_, err = s.Get(ctx, "k")
	if err == nil || errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Get from a silent server = %v, want a non-ErrNotFound error", err)
	}
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Get from a silent server = %v, want an error matching context.DeadlineExceeded", err)
	}
}

// TestErrorNamesKey checks that a driver error says the operation and key.
func TestErrorNamesKey(t *testing.T) {
	client := testenv.Redis(t)
	s, prefix := newStorePrefix(t, client)
	ctx := t.Context()
	// A hash under the store's key makes GET fail with WRONGTYPE.
	if err := client.HSet(ctx, prefix+"hash", "f", "v").Err(); err != nil {
		t.Fatal(err)
	}
	_, err := s.Get(ctx, "hash")
	if err == nil || errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Get of a hash = %v, want a WRONGTYPE error", err)
	}
	want := `redisstore: get "hash": WRONGTYPE`
	if got := err.Error(); len(got) < len(want) || got[:len(want)] != want {
		t.Fatalf("error = %q, want it to begin with %q", got, want)
	}
}
