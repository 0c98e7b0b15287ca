package middleware

import (
	"context"
	"testing"

	"github.com/typedsession/session/internal/testenv"
	"github.com/typedsession/session/store/redisstore"
)

// newRedisStore returns a redisstore under a fresh prefix, removed at the
// end of the test, or skips when no Redis answers (fails under CI=true).
func newRedisStore(t *testing.T) *redisstore.Store {
	t.Helper()
	c := testenv.Redis(t)
	prefix := testenv.Prefix(t, "mwtest")
	testenv.CleanupPrefix(t, c, prefix)
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
	if size := mw.core.lockLen(); size != 0 {
		t.Errorf("lock table holds %d keys, want 0", size)
	}
}
