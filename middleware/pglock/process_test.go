package pglock_test

import (
	"context"
	"strconv"
	"testing"
	"time"

	session "github.com/typedsession/session"
	"github.com/typedsession/session/internal/testenv"
	"github.com/typedsession/session/middleware/internal/replicatest"
)

// runReplicas starts n replicas (the one at hold, if >= 0, holds a lock
// forever at its fifth update and is SIGKILLed then: its connections end,
// and with them its advisory locks), waits for them and checks the stored
// counts against what they acknowledged.
func runReplicas(t *testing.T, n, hold int) {
	testPool(t) // skips when there is no server
	st, table := testStore(t)
	env := map[string]string{
		"url":   testenv.DatabaseURL(),
		"table": table,
		"class": strconv.Itoa(int(testClass())),
	}
	cfgs := make([]replicatest.Config, n)
	procs := make([]*replicatest.Proc, n)
	killed := make([]bool, n)
	for i := range n {
		cfgs[i] = replicatest.Config{Goroutines: 32, Users: 8, Updates: 16, Timeout: 30 * time.Second, Env: env}
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

// TestTwoReplicas: two processes x 32 goroutines, updates of the same 8
// users through the middleware with the advisory lock: every update
// stored, no conflict, no error.
func TestTwoReplicas(t *testing.T) { runReplicas(t, 2, -1) }

// TestReplicaKilledHoldingLock: of three replicas, one is SIGKILLed while
// its handler holds a user's lock; its connection ends, the lock with it,
// and the other two finish with no error and no conflict;
// acknowledged <= stored <= acknowledged + in flight at the kill.
func TestReplicaKilledHoldingLock(t *testing.T) {
	testenv.Slow(t)
	runReplicas(t, 3, 0)
}
