package redislock_test

import (
	"os"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	session "github.com/typedsession/session"
	"github.com/typedsession/session/middleware"
	"github.com/typedsession/session/middleware/internal/replicatest"
	"github.com/typedsession/session/middleware/redislock"
	"github.com/typedsession/session/store/redisstore"
)

// TestMain runs the test binary as a replica when the two-process tests
// started it as one, and stops the test cluster after the tests.
func TestMain(m *testing.M) {
	if replicatest.IsReplica() {
		replicatest.RunReplica(buildReplica) // exits
	}
	if os.Getenv(fairnessChildEnv) != "" {
		runFairnessChild() // exits
	}
	code := m.Run()
	stopCluster()
	os.Exit(code)
}

// buildReplica is one replica of the two-process tests: its own client,
// store, manager, Locker and middleware, from the settings the parent
// passed ("url" of a single node, or "cluster" addresses separated by
// commas; "prefix" of the store, "lockprefix" and "lease" of the lock).
func buildReplica(r *replicatest.Replica) (middleware.Handler[*replicatest.Update], error) {
	var client redis.UniversalClient
	if addrs := r.Env("cluster"); addrs != "" {
		client = redis.NewClusterClient(&redis.ClusterOptions{Addrs: strings.Split(addrs, ",")})
	} else {
		opts, err := redis.ParseURL(r.Env("url"))
		if err != nil {
			return nil, err
		}
		client = redis.NewClient(opts)
	}
	lease, err := time.ParseDuration(r.Env("lease"))
	if err != nil {
		return nil, err
	}
	st := redisstore.New(client, redisstore.Options{Prefix: r.Env("prefix")})
	m, err := session.New(session.Config[replicatest.Counter]{Store: st, Namespace: "c"})
	if err != nil {
		return nil, err
	}
	lk := redislock.New(client, redislock.Options{Prefix: r.Env("lockprefix"), Lease: lease})
	mw := middleware.New(m, replicatest.Key, middleware.Options{Locker: lk, OnError: r.OnError})
	return mw.Wrap(r.Handler), nil
}
