package middleware

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/typedsession/session/store/redisstore"
)

// newRedisStore returns a redisstore under a fresh prefix, removed at the
// end of the test, or skips when no Redis answers (fails under CI=true).
func newRedisStore(t *testing.T) *redisstore.Store {
	t.Helper()
	url := os.Getenv("REDIS_URL")
	if url == "" {
		url = "redis://127.0.0.1:6379/0"
	}
	opts, err := redis.ParseURL(url)
	if err != nil {
		t.Fatalf("REDIS_URL %q: %v", url, err)
	}
	c := redis.NewClient(opts)
	t.Cleanup(func() { c.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := c.Ping(ctx).Err(); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("no Redis answers at %s: %v", url, err)
		}
		t.Skipf("no Redis answers at %s (set REDIS_URL): %v", url, err)
	}
	b := make([]byte, 8)
	rand.Read(b)
	prefix := "mwtest:" + hex.EncodeToString(b) + ":"
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		iter := c.Scan(ctx, 0, prefix+"*", 100).Iterator()
		for iter.Next(ctx) {
			c.Del(ctx, iter.Val())
		}
	})
	return redisstore.New(c, redisstore.Options{Prefix: prefix})
}

func TestRedisConcurrentTwoInstancesRelyOnCAS(t *testing.T) {
	st := newRedisStore(t)
	testTwoInstances(t, st, newManager[counter](t, st, "c"), newManager[counter](t, st, "c"))
}

func TestRedisConcurrentSameKeyOneInstance(t *testing.T) {
	st := newRedisStore(t)
	m := newManager[counter](t, st, "c")
	mw := New(m, userKey, Options{OnError: func(_ context.Context, op, key string, err error) {
		t.Errorf("hook %s %s: %v", op, key, err)
	}})
	h := mw.Wrap(incr)
	const n = 100
	done := make(chan error, n)
	for range n {
		go func() { done <- h(context.Background(), &update{User: "ann"}) }()
	}
	for range n {
		if err := <-done; err != nil {
			t.Error(err)
		}
	}
	if got := stored(t, m, "ann").N; got != n {
		t.Errorf("N = %d, want %d", got, n)
	}
	if size := mw.core.locks.size(); size != 0 {
		t.Errorf("lock table holds %d keys, want 0", size)
	}
}
