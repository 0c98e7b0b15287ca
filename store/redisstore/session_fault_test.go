package redisstore_test

import (
	"context"
	"errors"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	session "github.com/typedsession/session"
	"github.com/typedsession/session/store/redisstore"
)

// TestManagerClientKill is issue 11's example at the manager's level: 64
// goroutines × 40 Update(n++) on 4 keys through one client with the
// recommended options, while a second connection cuts every connection of
// the first (CLIENT KILL TYPE normal SKIPME yes) every 3 ms, on a Redis of
// the test's own. An Update that returned nil counts as acknowledged, one
// that returned session.ErrOutcomeUnknown as unknown; the counters must sum
// to at least the acknowledged and at most the acknowledged plus the
// unknown (nothing applied twice, and no Update that failed with another
// error, such as a Load whose every resend met a cut connection, wrote).
//
// On the manager of commit 1d06461 7 to 10 of 2,560 Updates were applied
// twice: a false after its own resend was called a conflict when the write
// id was not among the last MaxWrites ids, though a landed write can be
// buried deeper than that by the time the resend arrives.
func TestManagerClientKill(t *testing.T) {
	needBinaries(t)
	port := freePort(t, map[int]bool{})
	srv, err := startServer(port, filepath.Join(t.TempDir(), strconv.Itoa(port)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.kill)
	client := recommendedClient(t, srv.addr())
	m := newCounterManager(t, redisstore.New(client, redisstore.Options{Prefix: "mfault:"}), time.Hour)
	killer := redis.NewClient(&redis.Options{Addr: srv.addr()})
	t.Cleanup(func() { killer.Close() })

	const (
		workers   = 64
		perWorker = 40
		keys      = 4
	)
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	var (
		acked, unknown, otherErr atomic.Int64
		wg                       sync.WaitGroup
	)
	for w := range workers {
		wg.Go(func() {
			for i := range perWorker {
				key := "k" + strconv.Itoa((w+i)%keys)
				callCtx, callCancel := context.WithTimeout(ctx, 5*time.Second)
				_, err := m.Update(callCtx, key, increment)
				callCancel()
				switch {
				case err == nil:
					acked.Add(1)
				case errors.Is(err, session.ErrOutcomeUnknown):
					unknown.Add(1)
				default:
					otherErr.Add(1)
					t.Logf("Update %s: %v", key, err)
				}
			}
		})
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	var killed atomic.Int64
	tick := time.NewTicker(3 * time.Millisecond)
loop:
	for {
		select {
		case <-done:
			break loop
		case <-tick.C:
		}
		n, err := killer.Do(ctx, "CLIENT", "KILL", "TYPE", "normal", "SKIPME", "yes").Int64()
		if err != nil {
			t.Errorf("CLIENT KILL: %v", err)
			cancel()
			<-done
			break
		}
		killed.Add(n)
	}
	tick.Stop()
	if t.Failed() {
		t.FailNow()
	}

	check, checkCancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer checkCancel()
	stored := 0
	for k := range keys {
		s, err := m.Load(check, "k"+strconv.Itoa(k))
		if err != nil {
			t.Fatal(err)
		}
		stored += s.Data.N
	}
	a, u := int(acked.Load()), int(unknown.Load())
	t.Logf("%d Updates: acknowledged %d, ErrOutcomeUnknown %d, other errors %d; stored %d; %d connections killed",
		workers*perWorker, a, u, otherErr.Load(), stored, killed.Load())
	if stored < a || stored > a+u {
		t.Errorf("want acknowledged (%d) <= stored (%d) <= acknowledged + unknown (%d): %d applied twice or %d lost",
			a, stored, a+u, max(0, stored-a-u), max(0, a-stored))
	}
}
