package redisstore_test

import (
	"context"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/typedsession/session/internal/testenv"
	"github.com/typedsession/session/store/redisstore"
)

// A blind Delete made while the server is unreachable, whose call returns
// its error, must not land once the server is back: another writer's
// acknowledged write of the key in between must stand (the kind of
// natsstore's reconnect buffer), plain and through the auto-pipeliner.
func TestAttackNoWriteLandsAfterItReturned(t *testing.T) {
	for _, auto := range []bool{false, true} {
		name := map[bool]string{false: "plain", true: "autopipeline"}[auto]
		t.Run(name, func(t *testing.T) {
			direct := testenv.Redis(t)
			opt, err := redis.ParseURL(testenv.RedisURL())
			if err != nil {
				t.Fatal(err)
			}
			prefix := testenv.Prefix(t, "outage")
			testenv.CleanupPrefix(t, direct, prefix)
			other := redisstore.New(direct, redisstore.Options{Prefix: prefix})
			p := testenv.StartProxy(t, opt.Addr)
			po := *opt
			po.Addr = p.Addr()
			c := redis.NewClient(&po)
			t.Cleanup(func() { c.Close() })
			s := redisstore.New(c, redisstore.Options{Prefix: prefix, AutoPipeline: auto})
			ctx := context.Background()
			const key = "k"
			if err := other.Set(ctx, key, []byte("old"), time.Hour); err != nil {
				t.Fatal(err)
			}
			if _, err := s.Get(ctx, key); err != nil { // connected
				t.Fatal(err)
			}
			p.SetDown(true)
			dctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
			err = s.Delete(dctx, key)
			cancel()
			if err == nil {
				t.Fatal("Delete succeeded with the server unreachable")
			}
			if err := other.Set(ctx, key, []byte("other"), time.Hour); err != nil {
				t.Fatal(err)
			}
			p.SetDown(false)
			for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
				if _, err := s.Get(ctx, key); err == nil {
					break
				} else if time.Now().After(deadline) {
					t.Fatalf("no read through the proxy after it came back: %v", err)
				}
			}
			time.Sleep(200 * time.Millisecond)
			got, err := other.Get(ctx, key)
			if err != nil || string(got) != "other" {
				t.Fatalf("after a Delete that returned an error and another writer's acknowledged write: %q, %v; want \"other\"", got, err)
			}
		})
	}
}
