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
	"github.com/typedsession/session/internal/testenv"
	"github.com/typedsession/session/store/redisstore"
)

// The manager's fault tests: issue 11's examples. 64 goroutines × 40
// Update(n++) on 4 keys through one client with the recommended options,
// on a Redis of the test's own, while something goes wrong. An Update that
// returned nil counts as acknowledged, one that returned
// session.ErrOutcomeUnknown as unknown; the counters must sum to at least
// the acknowledged and at most the acknowledged plus the unknown (nothing
// applied twice, nothing acknowledged lost, and no Update that failed with
// another error, such as a Load whose every resend met a cut connection,
// wrote).
//
// On the manager of commit 1d06461, under CLIENT KILL, 7 to 10 of 2,560
// Updates were applied twice: a false after its own resend was called a
// conflict when the write id was not among the last MaxWrites ids, though
// a landed write can be buried deeper than that by the time the resend
// arrives.

const (
	mfaultWorkers   = 64
	mfaultPerWorker = 40
	mfaultKeys      = 4
)

// runManagerFault runs the Updates through client, running during on the
// test's goroutine with a channel closed when the workers are done, the
// number of Updates finished so far, and a function that stops the
// workers; then it checks the counters.
func runManagerFault(t *testing.T, client *redis.Client, during func(done <-chan struct{}, progress func() int64, abort func())) {
	t.Helper()
	runManagerFaultWith(t, client, redisstore.Options{Prefix: "mfault:"}, during)
}

// callTimeout is the deadline of each Update of runManagerFaultWith: 5 s,
// and 1 s through the auto-pipeliner, whose batches can stall until their
// callers' deadlines when their connection is cut (see the package doc).
func callTimeout(opts redisstore.Options) time.Duration {
	if opts.AutoPipeline {
		return time.Second
	}
	return 5 * time.Second
}

// runManagerFaultWith is runManagerFault on a store with opts.
func runManagerFaultWith(t *testing.T, client *redis.Client, opts redisstore.Options, during func(done <-chan struct{}, progress func() int64, abort func())) {
	t.Helper()
	m := newCounterManager(t, redisstore.New(client, opts), time.Hour)
	// No run-wide deadline: each call has its own, so the run ends by
	// itself however slow the machine; abort (or go test -timeout, for a
	// call that ignored its deadline) stops it early.
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	var (
		acked, unknown, otherErr, finished atomic.Int64
		wg                                 sync.WaitGroup
	)
	for w := range mfaultWorkers {
		wg.Go(func() {
			for i := range mfaultPerWorker {
				if ctx.Err() != nil {
					return
				}
				key := "k" + strconv.Itoa((w+i)%mfaultKeys)
				callCtx, callCancel := context.WithTimeout(ctx, callTimeout(opts))
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
				finished.Add(1)
			}
		})
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	during(done, finished.Load, cancel)
	<-done
	if t.Failed() {
		t.FailNow()
	}
	if ctx.Err() != nil {
		t.Fatalf("the run was stopped: %v", ctx.Err())
	}

	check, checkCancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer checkCancel()
	stored := 0
	for k := range mfaultKeys {
		s, err := m.Load(check, "k"+strconv.Itoa(k))
		if err != nil {
			t.Fatal(err)
		}
		stored += s.Data.N
	}
	a, u := int(acked.Load()), int(unknown.Load())
	t.Logf("%d Updates: acknowledged %d, ErrOutcomeUnknown %d, other errors %d; stored %d",
		mfaultWorkers*mfaultPerWorker, a, u, otherErr.Load(), stored)
	if stored < a || stored > a+u {
		t.Errorf("want acknowledged (%d) <= stored (%d) <= acknowledged + unknown (%d): %d applied twice or %d lost",
			a, stored, a+u, max(0, stored-a-u), max(0, a-stored))
	}
}

// TestManagerClientKill: a second connection cuts every connection of the
// client (CLIENT KILL TYPE normal SKIPME yes) every 3 ms.
func TestManagerClientKill(t *testing.T) {
	testenv.Slow(t)
	testManagerClientKill(t, redisstore.Options{Prefix: "mfault:"})
}

// TestManagerClientKillAutoPipeline is TestManagerClientKill through the
// store's auto-pipelining, the configuration the README recommends for
// concurrent load.
func TestManagerClientKillAutoPipeline(t *testing.T) {
	testenv.Slow(t)
	testManagerClientKill(t, redisstore.Options{Prefix: "mfault:", AutoPipeline: true})
}

func testManagerClientKill(t *testing.T, opts redisstore.Options) {
	needBinaries(t)
	port := freePort(t, map[int]bool{})
	srv, err := startServer(port, filepath.Join(t.TempDir(), strconv.Itoa(port)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Kill)
	killer := redis.NewClient(&redis.Options{Addr: srv.Addr()})
	t.Cleanup(func() { killer.Close() })
	var killed atomic.Int64
	client := recommendedClient(t, srv.Addr())
	if opts.AutoPipeline {
		client = pipelinedClient(t, srv.Addr())
	}
	runManagerFaultWith(t, client, opts, func(done <-chan struct{}, _ func() int64, abort func()) {
		tick := time.NewTicker(3 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-done:
				return
			case <-tick.C:
			}
			n, err := killer.Do(context.Background(), "CLIENT", "KILL", "TYPE", "normal", "SKIPME", "yes").Int64()
			if err != nil {
				t.Errorf("CLIENT KILL: %v", err)
				abort()
				return
			}
			killed.Add(n)
		}
	})
	t.Logf("%d connections killed", killed.Load())
	if killed.Load() == 0 {
		t.Fatal("CLIENT KILL never closed a connection: the test tested nothing")
	}
}

// TestManagerRestart: the durable server (appendonly yes, appendfsync
// always) is killed with SIGKILL and restarted 3 times during the run.
func TestManagerRestart(t *testing.T) {
	testenv.Slow(t)
	testManagerRestart(t, redisstore.Options{Prefix: "mfault:"})
}

// TestManagerRestartAutoPipeline is TestManagerRestart through the store's
// auto-pipelining.
func TestManagerRestartAutoPipeline(t *testing.T) {
	testenv.Slow(t)
	testManagerRestart(t, redisstore.Options{Prefix: "mfault:", AutoPipeline: true})
}

func testManagerRestart(t *testing.T, opts redisstore.Options) {
	needBinaries(t)
	srv, _ := startDurableServer(t, 0)
	total := int64(mfaultWorkers * mfaultPerWorker)
	const restarts = 3
	client := recommendedClient(t, srv.Addr())
	if opts.AutoPipeline {
		client = pipelinedClient(t, srv.Addr())
	}
	runManagerFaultWith(t, client, opts, func(done <-chan struct{}, progress func() int64, abort func()) {
		for i := range restarts {
			at := total * int64(i+1) / (restarts + 1)
			for progress() < at {
				select {
				case <-done:
					t.Errorf("the run ended before restart %d of %d", i+1, restarts)
					return
				case <-time.After(2 * time.Millisecond):
				}
			}
			srv.Kill()
			if err := srv.Start(); err != nil {
				t.Errorf("restart %d: %v", i+1, err)
				abort()
				return
			}
		}
	})
}

// pipelinedClient is recommendedClient with the read and write timeouts
// that the package doc recommends with Options.AutoPipeline: a batch of
// go-redis's pipeliner waits for its connection's ReadTimeout, not for the
// callers' deadlines, when the connection is cut under it.
func pipelinedClient(t *testing.T, addr string) *redis.Client {
	t.Helper()
	c := redis.NewClient(&redis.Options{
		Addr:                  addr,
		ContextTimeoutEnabled: true,
		DialTimeout:           500 * time.Millisecond,
		ReadTimeout:           250 * time.Millisecond,
		WriteTimeout:          250 * time.Millisecond,
	})
	t.Cleanup(func() { c.Close() })
	return c
}
