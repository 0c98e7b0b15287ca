package redisstore_test

import (
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/typedsession/session/internal/testenv"
	"github.com/typedsession/session/store"
	"github.com/typedsession/session/store/redisstore"
)

// TestLostReplies: the shared lost-reply check (internal/testenv) on a
// real Redis through a proxy, with go-redis's default resends on.
func TestLostReplies(t *testing.T) {
	direct := testenv.Redis(t)
	opt, err := redis.ParseURL(testenv.RedisURL())
	if err != nil {
		t.Fatal(err)
	}
	prefix := testenv.Prefix(t, "lostreplies")
	testenv.CleanupPrefix(t, direct, prefix)
	other := redisstore.New(direct, redisstore.Options{Prefix: prefix})
	testenv.LostReplies(t, opt.Addr, func(t *testing.T, proxyAddr string) (store.Store, store.Store) {
		po := *opt
		po.Addr = proxyAddr
		c := redis.NewClient(&po)
		t.Cleanup(func() { c.Close() })
		return redisstore.New(c, redisstore.Options{Prefix: prefix}), other
	}, nil)
}
