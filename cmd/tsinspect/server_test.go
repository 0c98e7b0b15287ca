package main

import (
	"sync"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/typedsession/session/internal/testenv"
)

// The cluster is started once, by the first test that needs it, and
// stopped by TestMain after every test has run.
var (
	clusterOnce sync.Once
	clusterErr  error
	theCluster  *testenv.RedisCluster
)

// cluster returns a client of a three-master Redis Cluster on loopback
// ports (internal/testenv), starting it on first use.
func cluster(t *testing.T) *redis.ClusterClient {
	t.Helper()
	testenv.Slow(t) // the cluster tests are in the slow suite
	testenv.NeedRedisBinaries(t)
	clusterOnce.Do(func() { theCluster, clusterErr = testenv.StartRedisCluster(t, "tsinspect") })
	if clusterErr != nil {
		t.Fatalf("starting a Redis Cluster: %v", clusterErr)
	}
	return theCluster.Client
}

// stopCluster stops the cluster, if a test started it.
func stopCluster() {
	if theCluster != nil {
		theCluster.Stop()
	}
}
