package redisstore_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/typedsession/session/internal/testenv"
	"github.com/typedsession/session/store"
	"github.com/typedsession/session/store/redisstore"
)

// The fault tests run compare-and-swap increments through one client with
// the recommended options while the connections are cut or the server is
// killed, and check the measure of "an acknowledged write is never lost or
// applied twice" at the store level.
//
// Each increment has a write id, unique per increment ("w12.7": worker 12,
// its 7th increment), and a key's value is the list of the ids applied to
// it, in order, so that the final value says exactly which increments
// landed and whether one landed twice. An increment reads the key and
// swaps the value for the value plus its id:
//
//   - the swap reports true: acknowledged;
//   - the swap returns an error: the outcome is unknown, and the increment
//     is not retried (as the session manager returns ErrOutcomeUnknown and
//     never retries it);
//   - the swap reports false: it reads the key again. If the value holds
//     its id, the store reported a conflict for a swap that landed: with
//     its own value on top (a resend that found its own write, which the
//     resend rule answers true), or under later writes (a resend that
//     found another writer's value, which the store must report as an
//     error, since it cannot tell). Both are counted and must be 0; the
//     increment is then acknowledged, so that the count stays exact.
//     Otherwise it is a real conflict and the increment starts again.
//
// The test keeps the whole history in the value, so it measures the store
// alone; it reports how deep a landed write was buried when its swap said
// false, the depth a write history would have to cover without the
// store's own resends (206 writes, measured through go-redis's resends).

// faultRun is one run's counts.
type faultRun struct {
	acked          atomic.Int64 // swaps that reported true, and false ones found landed
	unknown        atomic.Int64 // swaps that returned an error
	resentConflict atomic.Int64 // … of them because a resend found another value
	foundBuilt     atomic.Int64 // false, but found landed under later writes
	ownLatest      atomic.Int64 // false, but the value was the swap's own: must be 0
	conflicts      atomic.Int64 // real conflicts (false, not landed)
	readErrors     atomic.Int64 // failed reads, retried
	maxDepth       atomic.Int64 // deepest landed write found under later ones

	mu         sync.Mutex
	ackedIDs   map[string]bool
	unknownIDs map[string]bool
}

// faultParams sizes a run.
type faultParams struct {
	workers, perWorker, keys int
}

// runIncrements runs p.workers goroutines × p.perWorker increments on
// p.keys keys of s, running during alongside on the test's goroutine with
// a channel closed when the workers are done, a progress function
// reporting how many increments have finished (any outcome) and an abort
// function that stops the workers. It then checks the final values and
// returns the counts.
func runIncrements(t *testing.T, s *redisstore.Store, p faultParams, during func(done <-chan struct{}, progress func() int64, abort func())) *faultRun {
	t.Helper()
	// No run-wide deadline: each call has its own, so the run ends by
	// itself however slow the machine; abort (or go test -timeout, for a
	// call that ignored its deadline) stops it early.
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	r := &faultRun{ackedIDs: map[string]bool{}, unknownIDs: map[string]bool{}}
	var finished atomic.Int64
	done := make(chan struct{})
	var workers sync.WaitGroup
	defer func() {
		cancel()
		workers.Wait()
	}()
	for w := range p.workers {
		workers.Go(func() {
			for seq := range p.perWorker {
				if ctx.Err() != nil {
					return
				}
				key := "k" + strconv.Itoa((w+seq)%p.keys)
				id := fmt.Sprintf("w%d.%d", w, seq)
				r.increment(ctx, t, s, key, id)
				finished.Add(1)
			}
		})
	}
	go func() {
		workers.Wait()
		close(done)
	}()
	during(done, finished.Load, cancel)
	<-done
	if t.Failed() {
		t.FailNow()
	}
	if ctx.Err() != nil {
		t.Fatalf("the run was stopped: %v", ctx.Err())
	}
	r.check(t, s, p)
	return r
}

// increment does one increment of key with write id id.
func (r *faultRun) increment(ctx context.Context, t *testing.T, s *redisstore.Store, key, id string) {
	for ctx.Err() == nil {
		cur, ok := r.read(ctx, s, key)
		if !ok {
			return
		}
		next := id
		if cur != nil {
			next = string(cur) + "," + id
		}
		callCtx, cancel := context.WithTimeout(ctx, 2*time.Second)
		swapped, err := s.CompareAndSwap(callCtx, key, cur, []byte(next), time.Hour)
		cancel()
		switch {
		case errors.Is(err, store.ErrNotFound) || errors.Is(err, store.ErrInvalidKey):
			t.Errorf("CompareAndSwap %q: %v", key, err)
			return
		case err != nil:
			r.unknown.Add(1)
			if strings.Contains(err.Error(), "outcome unknown") {
				r.resentConflict.Add(1)
			}
			r.mu.Lock()
			r.unknownIDs[id] = true
			r.mu.Unlock()
			return
		case swapped:
			r.ack(id)
			return
		}
		// false: find out whether this write landed after all.
		now, ok := r.read(ctx, s, key)
		if !ok {
			return
		}
		ids := strings.Split(string(now), ",")
		if i := slices.Index(ids, id); i >= 0 {
			depth := int64(len(ids) - 1 - i)
			if depth == 0 {
				r.ownLatest.Add(1)
			} else {
				r.foundBuilt.Add(1)
				for {
					m := r.maxDepth.Load()
					if depth <= m || r.maxDepth.CompareAndSwap(m, depth) {
						break
					}
				}
			}
			r.ack(id)
			return
		}
		r.conflicts.Add(1)
	}
}

// read returns the value of key (nil when absent), retrying failed reads
// (a read is safe to repeat) until ctx ends.
func (r *faultRun) read(ctx context.Context, s *redisstore.Store, key string) ([]byte, bool) {
	for ctx.Err() == nil {
		callCtx, cancel := context.WithTimeout(ctx, 2*time.Second)
		v, err := s.Get(callCtx, key)
		cancel()
		switch {
		case err == nil:
			return v, true
		case errors.Is(err, store.ErrNotFound):
			return nil, true
		}
		r.readErrors.Add(1)
		time.Sleep(2 * time.Millisecond)
	}
	return nil, false
}

func (r *faultRun) ack(id string) {
	r.acked.Add(1)
	r.mu.Lock()
	r.ackedIDs[id] = true
	r.mu.Unlock()
}

// check reads every key and applies the measure: no id twice, every
// acknowledged id present, acknowledged <= stored <= acknowledged +
// unknown, and no conflict reported for a value the swap wrote itself.
func (r *faultRun) check(t *testing.T, s *redisstore.Store, p faultParams) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	seen := map[string]int{}
	stored := 0
	for k := range p.keys {
		key := "k" + strconv.Itoa(k)
		v, err := s.Get(ctx, key)
		if err != nil {
			t.Fatalf("Get %q after the run: %v", key, err)
		}
		for _, id := range strings.Split(string(v), ",") {
			seen[id]++
			stored++
		}
	}
	twice, lost, unknownLanded := 0, 0, 0
	for id, n := range seen {
		if n > 1 {
			twice++
			if twice <= 5 {
				t.Errorf("write %s applied %d times", id, n)
			}
		}
		if r.unknownIDs[id] {
			unknownLanded++
		}
	}
	for id := range r.ackedIDs {
		if seen[id] == 0 {
			lost++
			if lost <= 5 {
				t.Errorf("acknowledged write %s is not stored", id)
			}
		}
	}
	acked, unknown := int(r.acked.Load()), int(r.unknown.Load())
	t.Logf("%d increments: acknowledged %d, unknown %d (%d of them a resend that found another value; %d landed), stored %d; applied twice %d, acknowledged lost %d; real conflicts %d, failed reads %d; false for a landed swap: %d with its own value on top, %d under later writes (deepest %d below the top)",
		p.workers*p.perWorker, acked, unknown, r.resentConflict.Load(), unknownLanded, stored,
		twice, lost, r.conflicts.Load(), r.readErrors.Load(), r.ownLatest.Load(), r.foundBuilt.Load(), r.maxDepth.Load())
	if n := r.ownLatest.Load(); n > 0 {
		t.Errorf("%d swaps reported a conflict although the value was the one they wrote (a resent swap must report true)", n)
	}
	if n := r.foundBuilt.Load(); n > 0 {
		t.Errorf("%d swaps reported a conflict although they had landed (under up to %d later writes): a resend that finds another value must return an error, not false", n, r.maxDepth.Load())
	}
	if acked > stored || stored > acked+unknown {
		t.Errorf("want acknowledged (%d) <= stored (%d) <= acknowledged + unknown (%d)", acked, stored, acked+unknown)
	}
}

// TestFaultClientKill cuts every connection of the store's client every
// 3 ms (CLIENT KILL TYPE normal SKIPME yes from a second connection) while
// 64 goroutines run compare-and-swap increments on 4 keys, on a Redis of
// the test's own. go-redis resends the commands whose replies were lost.
func TestFaultClientKill(t *testing.T) {
	testenv.Slow(t)
	needBinaries(t)
	port := freePort(t, map[int]bool{})
	srv, err := startServer(port, filepath.Join(t.TempDir(), strconv.Itoa(port)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Kill)
	client := recommendedClient(t, srv.Addr())
	s := redisstore.New(client, redisstore.Options{Prefix: "fault:"})
	killer := redis.NewClient(&redis.Options{Addr: srv.Addr()})
	t.Cleanup(func() { killer.Close() })

	var kills, killed atomic.Int64
	runIncrements(t, s, faultParams{workers: 64, perWorker: 40, keys: 4}, func(done <-chan struct{}, _ func() int64, abort func()) {
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
			kills.Add(1)
			killed.Add(n)
		}
	})
	t.Logf("%d CLIENT KILLs closed %d connections", kills.Load(), killed.Load())
	if killed.Load() == 0 {
		t.Fatal("CLIENT KILL never closed a connection: the test tested nothing")
	}
}

// TestFaultRestart kills the store's durable Redis (appendonly yes,
// appendfsync always) with SIGKILL and restarts it 3 times while 64
// goroutines run compare-and-swap increments on 4 keys. Every swap that
// returned true was fsynced before the reply, so the restarted server has
// it.
func TestFaultRestart(t *testing.T) {
	testenv.Slow(t)
	needBinaries(t)
	srv, _ := startDurableServer(t, 0)
	client := recommendedClient(t, srv.Addr())
	s := redisstore.New(client, redisstore.Options{Prefix: "fault:"})
	p := faultParams{workers: 64, perWorker: 40, keys: 4}
	total := int64(p.workers * p.perWorker)
	const restarts = 3
	runIncrements(t, s, p, func(done <-chan struct{}, progress func() int64, abort func()) {
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
