package redislock_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	session "github.com/typedsession/session"
	"github.com/typedsession/session/internal/testenv"
	"github.com/typedsession/session/middleware/internal/replicatest"
	"github.com/typedsession/session/store/redisstore"
)

// replicaConfig is one replica of the two-process tests: 32 goroutines
// sending 16 updates each for 8 users shared by every replica.
func replicaConfig(env map[string]string) replicatest.Config {
	return replicatest.Config{Goroutines: 32, Users: 8, Updates: 16, Timeout: 30 * time.Second, Env: env}
}

// runReplicas starts n replicas (the one at hold, if >= 0, holds a lock
// forever at its fifth update and is SIGKILLed then), waits for them and
// checks the stored counts against what they acknowledged.
func runReplicas(t *testing.T, client redis.UniversalClient, env map[string]string, n, hold int) {
	prefix := env["prefix"]
	cfgs := make([]replicatest.Config, n)
	procs := make([]*replicatest.Proc, n)
	killed := make([]bool, n)
	for i := range n {
		cfgs[i] = replicaConfig(env)
		if i == hold {
			cfgs[i].HoldAt = 4
			killed[i] = true
		}
		procs[i] = replicatest.Start(t, cfgs[i])
	}
	if hold >= 0 {
		ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
		user, ok := procs[hold].Holding(ctx)
		cancel()
		if !ok {
			r := procs[hold].Wait()
			t.Fatalf("replica %d never held its lock: %+v", hold, r)
		}
		procs[hold].Kill()
		t.Logf("killed replica %d while it held the lock of %s", hold, user)
	}
	results := make([]replicatest.Result, n)
	for i, p := range procs {
		results[i] = p.Wait()
	}
	st := redisstore.New(client, redisstore.Options{Prefix: prefix})
	m, err := session.New(session.Config[replicatest.Counter]{Store: st, Namespace: "c"})
	if err != nil {
		t.Fatal(err)
	}
	replicatest.Check(t, cfgs, results, killed, func(user string) int {
		s, err := m.Load(t.Context(), user)
		if err != nil {
			t.Fatal(err)
		}
		return s.Data.N
	})
}

func singleNodeEnv(t *testing.T, lease time.Duration) (*redis.Client, map[string]string) {
	c := testenv.Redis(t)
	prefix := testenv.Prefix(t, "redislock")
	testenv.CleanupPrefix(t, c, prefix)
	return c, map[string]string{
		"url":        testenv.RedisURL(),
		"prefix":     prefix + "s:",
		"lockprefix": prefix + "l:",
		"lease":      lease.String(),
	}
}

// TestTwoReplicas: two processes x 32 goroutines, updates of the same 8
// users through the middleware with the Redis lock: every update stored,
// no conflict, no error.
func TestTwoReplicas(t *testing.T) {
	c, env := singleNodeEnv(t, 10*time.Second)
	runReplicas(t, c, env, 2, -1)
}

// TestReplicaKilledHoldingLock: of three replicas, one is SIGKILLed while
// its handler holds a user's lock; the other two finish once the lease (1
// s) ends, with no error and no conflict, and acknowledged <= stored <=
// acknowledged + in flight at the kill.
func TestReplicaKilledHoldingLock(t *testing.T) {
	testenv.Slow(t)
	c, env := singleNodeEnv(t, time.Second)
	runReplicas(t, c, env, 3, 0)
}

func clusterEnv(t *testing.T, lease time.Duration) (*redis.ClusterClient, map[string]string) {
	c := cluster(t)
	prefix := testenv.Prefix(t, "redislock")
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		c.ForEachMaster(ctx, func(ctx context.Context, node *redis.Client) error {
			// testenv.Prefix has no glob characters.
			iter := node.Scan(ctx, 0, prefix+"*", 500).Iterator()
			for iter.Next(ctx) {
				node.Del(ctx, iter.Val())
			}
			return iter.Err()
		})
	})
	return c, map[string]string{
		"cluster":    strings.Join(theCluster.Addrs(), ","),
		"prefix":     prefix + "s:",
		"lockprefix": prefix + "l:",
		"lease":      lease.String(),
	}
}

// TestClusterTwoReplicas is TestTwoReplicas on a three-master Redis
// Cluster: lock keys spread over the masters, and the release messages
// reach subscribers on any node.
func TestClusterTwoReplicas(t *testing.T) {
	c, env := clusterEnv(t, 10*time.Second)
	runReplicas(t, c, env, 2, -1)
}

// TestClusterReplicaKilledHoldingLock is TestReplicaKilledHoldingLock on
// the Cluster.
func TestClusterReplicaKilledHoldingLock(t *testing.T) {
	c, env := clusterEnv(t, time.Second)
	runReplicas(t, c, env, 3, 0)
}
