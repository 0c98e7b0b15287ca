package redisstore_test

import (
	"bytes"
	"context"
	"fmt"
	"path/filepath"
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
	"github.com/typedsession/session/store/storetest"
)

func TestBatchConformance(t *testing.T) {
	client := testenv.Redis(t)
	storetest.RunBatch(t, func(t *testing.T) store.Store { return newStore(t, client) })
}

func TestBatchClusterConformance(t *testing.T) {
	client := cluster(t)
	storetest.RunBatch(t, func(t *testing.T) store.Store { return newStore(t, client) })
}

// roundTrips counts, through a go-redis hook, the round trips a client
// makes (one per command sent alone, one per pipeline) and the commands
// they carry.
type roundTrips struct {
	trips, cmds atomic.Int64
	names       sync.Map // command name -> *atomic.Int64
}

func (r *roundTrips) DialHook(next redis.DialHook) redis.DialHook { return next }

func (r *roundTrips) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if handshake(cmd) {
			return next(ctx, cmd)
		}
		r.trips.Add(1)
		r.count(cmd)
		return next(ctx, cmd)
	}
}

func (r *roundTrips) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		if len(cmds) > 0 && handshake(cmds[0]) {
			return next(ctx, cmds)
		}
		r.trips.Add(1)
		for _, c := range cmds {
			r.count(c)
		}
		return next(ctx, cmds)
	}
}

// handshake reports whether c belongs to a new connection's handshake
// (HELLO, CLIENT SETINFO), which the counts leave out.
func handshake(c redis.Cmder) bool { return c.Name() == "hello" || c.Name() == "client" }

func (r *roundTrips) count(c redis.Cmder) {
	r.cmds.Add(1)
	n, _ := r.names.LoadOrStore(c.Name(), new(atomic.Int64))
	n.(*atomic.Int64).Add(1)
}

func (r *roundTrips) reset() {
	r.trips.Store(0)
	r.cmds.Store(0)
	r.names.Clear()
}

func (r *roundTrips) String() string {
	var parts []string
	r.names.Range(func(k, v any) bool {
		parts = append(parts, fmt.Sprintf("%s×%d", k, v.(*atomic.Int64).Load()))
		return true
	})
	return fmt.Sprintf("%d round trips, %d commands (%s)", r.trips.Load(), r.cmds.Load(), strings.Join(parts, " "))
}

// TestBatchRoundTrips pins what a batch sends on one node: GetMany is one
// MGET, GetManyWithTTL one pipeline of an MGET and a PTTL per key,
// CompareAndSwapMany one pipeline of one EVALSHA per swap.
func TestBatchRoundTrips(t *testing.T) {
	base := testenv.Redis(t)
	client := redis.NewClient(base.Options())
	t.Cleanup(func() { client.Close() })
	var rt roundTrips
	client.AddHook(&rt)
	s := newStore(t, client)
	ctx := t.Context()
	const n = 256
	keys := make([]string, n)
	swaps := make([]store.Swap, n)
	for i := range keys {
		keys[i] = "k" + strconv.Itoa(i)
		swaps[i] = store.Swap{Key: keys[i], Value: []byte("v" + strconv.Itoa(i)), TTL: time.Hour}
	}
	// Load the script first, so that the count below has no NOSCRIPT.
	if _, err := s.CompareAndSwap(ctx, "warm", nil, []byte("x"), time.Hour); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name              string
		run               func() error
		trips, cmds, cmd1 int64
		name1             string
	}{
		{"CompareAndSwapMany", func() error {
			res, err := s.CompareAndSwapMany(ctx, swaps)
			for _, r := range res {
				if err == nil && (r.Err != nil || !r.Swapped) {
					err = fmt.Errorf("swap = %+v, want true", r)
				}
			}
			return err
		}, 1, n, n, "evalsha"},
		{"GetMany", func() error {
			v, err := s.GetMany(ctx, keys)
			if err == nil && string(v[n-1]) != "v"+strconv.Itoa(n-1) {
				err = fmt.Errorf("last value %q", v[n-1])
			}
			return err
		}, 1, 1, 1, "mget"},
		{"GetManyWithTTL", func() error {
			_, ttls, err := s.GetManyWithTTL(ctx, keys)
			if err == nil && (ttls[0] <= 0 || ttls[0] > time.Hour) {
				err = fmt.Errorf("ttl %v", ttls[0])
			}
			return err
		}, 1, n + 1, n, "pttl"},
	} {
		rt.reset()
		if err := c.run(); err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		got, _ := rt.names.Load(c.name1)
		if rt.trips.Load() != c.trips || rt.cmds.Load() != c.cmds || got == nil || got.(*atomic.Int64).Load() != c.cmd1 {
			t.Errorf("%s of %d keys: %v; want %d round trips, %d commands, %d %s", c.name, n, &rt, c.trips, c.cmds, c.cmd1, c.name1)
		}
	}
}

// TestBatchNoScript: after SCRIPT FLUSH (as after a restart) a batch of
// swaps still runs each swap exactly once: EVALSHA fails with NOSCRIPT
// before running anything, and those swaps go again with EVAL.
func TestBatchNoScript(t *testing.T) {
	needBinaries(t)
	port := freePort(t, map[int]bool{})
	srv, err := startServer(port, filepath.Join(t.TempDir(), strconv.Itoa(port)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Kill)
	client := recommendedClient(t, srv.Addr())
	s := redisstore.New(client, redisstore.Options{Prefix: "noscript:"})
	ctx := t.Context()
	if err := client.ScriptFlush(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	if err := s.Set(ctx, "b", []byte("old"), 0); err != nil {
		t.Fatal(err)
	}
	res, err := s.CompareAndSwapMany(ctx, []store.Swap{
		{Key: "a", Value: []byte("1")},
		{Key: "b", Old: []byte("old"), Value: []byte("2")},
		{Key: "b", Old: []byte("old"), Value: []byte("3")}, // runs after the swap above: false
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []bool{true, true, false}
	for i, r := range res {
		if r.Err != nil || r.Swapped != want[i] {
			t.Errorf("swap %d = %+v, want %v", i, r, want[i])
		}
	}
	if v, _ := s.Get(ctx, "b"); string(v) != "2" {
		t.Errorf("b = %q, want 2", v)
	}
}

// TestBatchFaultClientKill cuts every connection of the store's client
// every 2 ms (CLIENT KILL from a second connection, as TestFaultClientKill
// does) while workers increment shared keys through batches of
// compare-and-swaps. Every value lists the increments applied to it, so
// the test checks each answer against what landed: a true landed exactly
// once, a false never landed (the batch never resends, so a false is a
// promise), and an error (the outcome is open) landed at most once.
func TestBatchFaultClientKill(t *testing.T) {
	testenv.Slow(t)
	needBinaries(t)
	port := freePort(t, map[int]bool{})
	srv, err := startServer(port, filepath.Join(t.TempDir(), strconv.Itoa(port)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Kill)
	client := recommendedClient(t, srv.Addr())
	s := redisstore.New(client, redisstore.Options{Prefix: "batchfault:"})
	killer := redis.NewClient(&redis.Options{Addr: srv.Addr()})
	t.Cleanup(func() { killer.Close() })
	// No run-wide deadline: each call has its own (callCtx), so the run
	// ends by itself however slow the machine.
	ctx := t.Context()

	const workers, rounds, nkeys = 16, 40, 32
	var (
		mu                                  sync.Mutex
		acked, refused, open                = map[string]bool{}, map[string]bool{}, map[string]bool{}
		readErrors, batchErrors, kills, cut atomic.Int64
	)
	done := make(chan struct{})
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for r := range rounds {
				keys := make([]string, 8)
				for i := range keys {
					keys[i] = "k" + strconv.Itoa((w*8+r+i*5)%nkeys)
				}
				callCtx, callCancel := context.WithTimeout(ctx, 2*time.Second)
				cur, err := s.GetMany(callCtx, keys)
				callCancel()
				if err != nil {
					readErrors.Add(1)
					continue
				}
				swaps := make([]store.Swap, len(keys))
				ids := make([]string, len(keys))
				for i, k := range keys {
					ids[i] = fmt.Sprintf("w%d.%d.%d", w, r, i)
					swaps[i] = store.Swap{Key: k, Old: cur[i], Value: append(bytes.Clone(cur[i]), ids[i]+";"...)}
				}
				// A batch holds each key once.
				seen := map[string]bool{}
				for i := range swaps {
					if seen[swaps[i].Key] {
						swaps[i].Key = "solo" + ids[i]
						swaps[i].Old, swaps[i].Value = nil, []byte(ids[i]+";")
					}
					seen[swaps[i].Key] = true
				}
				callCtx, callCancel = context.WithTimeout(ctx, 2*time.Second)
				res, err := s.CompareAndSwapMany(callCtx, swaps)
				callCancel()
				if err != nil {
					batchErrors.Add(1)
					continue
				}
				mu.Lock()
				for i, r := range res {
					switch {
					case r.Err != nil:
						open[ids[i]] = true
					case r.Swapped:
						acked[ids[i]] = true
					default:
						refused[ids[i]] = true
					}
				}
				mu.Unlock()
			}
		})
	}
	go func() { wg.Wait(); close(done) }()
	tick := time.NewTicker(2 * time.Millisecond)
loop:
	for {
		select {
		case <-done:
			break loop
		case <-tick.C:
		}
		n, err := killer.Do(context.Background(), "CLIENT", "KILL", "TYPE", "normal", "SKIPME", "yes").Int64()
		if err != nil {
			t.Errorf("CLIENT KILL: %v", err)
			break
		}
		kills.Add(1)
		cut.Add(n)
	}
	tick.Stop()
	<-done
	if ctx.Err() != nil {
		t.Fatalf("the run was stopped: %v", ctx.Err())
	}
	if cut.Load() == 0 {
		t.Fatal("CLIENT KILL never closed a connection: the test tested nothing")
	}
	// Read back what landed.
	landed := map[string]int{}
	err = s.Scan(context.Background(), "", func(k string) error {
		v, err := s.Get(context.Background(), k)
		if err != nil {
			return err
		}
		for id := range strings.SplitSeq(strings.TrimSuffix(string(v), ";"), ";") {
			landed[id]++
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for id, n := range landed {
		if n > 1 {
			t.Errorf("increment %s landed %d times", id, n)
		}
		if refused[id] {
			t.Errorf("increment %s landed, but its swap reported false", id)
		}
	}
	for id := range acked {
		if landed[id] != 1 {
			t.Errorf("increment %s was acknowledged but landed %d times", id, landed[id])
		}
	}
	openLanded := 0
	for id := range open {
		openLanded += landed[id]
	}
	t.Logf("%d CLIENT KILLs cut %d connections; swaps: %d true, %d false, %d open (%d of them landed); %d reads and %d batches failed whole",
		kills.Load(), cut.Load(), len(acked), len(refused), len(open), openLanded, readErrors.Load(), batchErrors.Load())
	if len(acked) == 0 {
		t.Fatal("no swap was acknowledged: the test tested nothing")
	}
}
