package redisstore_test

import (
	"context"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/typedsession/session/internal/testenv"
)

// This file starts redis-server processes for the tests that need a server
// of their own: a three-master cluster and a single node that is killed
// and restarted.

// The servers come from internal/testenv, shared by every package whose
// tests need a Redis of their own.

type server = testenv.RedisServer

var (
	needBinaries = testenv.NeedRedisBinaries
	freePort     = testenv.FreePort
	startServer  = testenv.StartRedisServer
)

// The cluster is started once, by the first test that needs it, and
// stopped by TestMain after every test has run.
var (
	clusterOnce sync.Once
	clusterErr  error
	theCluster  *testenv.RedisCluster
)

// cluster returns a client of a three-master Redis Cluster on loopback
// ports, starting it on first use.
func cluster(t *testing.T) *redis.ClusterClient {
	t.Helper()
	testenv.Slow(t) // the cluster tests are in the slow suite
	needBinaries(t)
	clusterOnce.Do(func() { theCluster, clusterErr = testenv.StartRedisCluster(t, "redisstore") })
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

// startDurableServer starts a single Redis on a free port, killed when t
// ends, and a client of it with short timeouts and the given MaxRetries
// (0: go-redis's default of 3; -1: none).
//
// Persistence is on for the tests that use it: with appendonly yes and
// appendfsync always, Redis appends each write to its AOF and fsyncs it
// before it replies, so a write the store acknowledged survives a SIGKILL
// and is loaded again at restart. Without it a restarted server would be
// empty, and a test would measure Redis's configuration, not whether the
// store ever reports success for a write that did not happen.
func startDurableServer(t *testing.T, maxRetries int) (*server, *redis.Client) {
	t.Helper()
	port := freePort(t, map[int]bool{})
	dir := filepath.Join(t.TempDir(), strconv.Itoa(port))
	srv, err := startServer(port, dir, "--appendonly", "yes", "--appendfsync", "always")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Kill)
	client := redis.NewClient(&redis.Options{
		Addr:         srv.Addr(),
		DialTimeout:  500 * time.Millisecond,
		ReadTimeout:  time.Second,
		WriteTimeout: time.Second,
		MaxRetries:   maxRetries,
	})
	t.Cleanup(func() { client.Close() })
	return srv, client
}

// restartWhen waits until reached reports true (or ctx ends), then kills
// srv and starts it again on the same port and in the same folder. If the
// restart fails it stops the workers (stop, then wg.Wait) and fails t.
func restartWhen(t *testing.T, ctx context.Context, srv *server, reached func() bool, stop func(), wg *sync.WaitGroup) {
	t.Helper()
	for !reached() && ctx.Err() == nil {
		time.Sleep(5 * time.Millisecond)
	}
	srv.Kill()
	if err := srv.Start(); err != nil {
		stop()
		wg.Wait()
		t.Fatalf("restarting redis-server: %v", err)
	}
}
