package redisstore_test

// Attacks on Options.AutoPipeline (issue 18), written by the reviewer of
// that work: conditional writes through the auto-pipeliner while the
// server forgets its scripts, and with contexts that end while a call
// waits in a batch. The contract points: a CompareAndSwap's false is a
// promise that nothing was written; a true means it landed.

import (
	"context"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/typedsession/session/internal/testenv"
	"github.com/typedsession/session/store/redisstore"
)

// privateRedis starts a Redis of the test's own (SCRIPT FLUSH must not
// disturb other tests) and returns a client of it.
func privateRedis(t *testing.T) *redis.Client {
	t.Helper()
	needBinaries(t)
	port := freePort(t, map[int]bool{})
	srv, err := startServer(port, filepath.Join(t.TempDir(), strconv.Itoa(port)), "--appendonly", "no")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Kill)
	c := redis.NewClient(&redis.Options{Addr: srv.Addr(), ContextTimeoutEnabled: true})
	t.Cleanup(func() { c.Close() })
	return c
}

// swapChains runs workers goroutines, each swapping its own key along a
// chain of values v0, v1, ... through s, with ctxOf giving each call its
// context, and checks every reply against what the key holds after it: a
// true must have landed, a false must not have; an error leaves the
// outcome open and the chain goes on from what is stored. It returns the
// numbers of trues, falses and errors.
func swapChains(t *testing.T, c redis.UniversalClient, s *redisstore.Store, prefix string, workers, each int, ctxOf func() (context.Context, context.CancelFunc)) (trues, falses, errs int64) {
	t.Helper()
	var nt, nf, ne atomic.Int64
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			key := fmt.Sprintf("w%d", w)
			var old []byte
			for i := range each {
				val := fmt.Appendf(nil, "%d-%d", w, i)
				ctx, cancel := ctxOf()
				ok, err := s.CompareAndSwap(ctx, key, old, val, time.Minute)
				cancel()
				got, gerr := c.Get(context.Background(), prefix+key).Bytes()
				if gerr != nil && gerr != redis.Nil {
					t.Error(gerr)
					return
				}
				switch {
				case err != nil:
					ne.Add(1)
				case ok:
					nt.Add(1)
					if string(got) != string(val) {
						t.Errorf("%s: CompareAndSwap said true, the key holds %q, want %q", key, got, val)
						return
					}
				default:
					nf.Add(1)
					if string(got) == string(val) {
						t.Errorf("%s: CompareAndSwap said false, yet its value %q landed", key, val)
						return
					}
					if string(got) != string(old) {
						t.Errorf("%s: CompareAndSwap said false with nobody else writing: the key holds %q, old was %q", key, got, old)
						return
					}
				}
				if gerr == redis.Nil {
					old = nil
				} else {
					old = got
				}
			}
		})
	}
	wg.Wait()
	return nt.Load(), nf.Load(), ne.Load()
}

// TestAttackAutoPipelineScriptFlush: SCRIPT FLUSH every millisecond while
// 32 goroutines swap through the auto-pipeliner (always, and adaptive):
// every swap of a key nobody else writes is true, none is false.
func TestAttackAutoPipelineScriptFlush(t *testing.T) {
	testenv.Slow(t)
	c := privateRedis(t)
	for _, always := range []bool{true, false} {
		t.Run(map[bool]string{true: "always", false: "adaptive"}[always], func(t *testing.T) {
			prefix := fmt.Sprintf("flush%v:", always)
			s := redisstore.New(c, redisstore.Options{Prefix: prefix, AutoPipeline: true})
			if always {
				s = redisstore.AlwaysPipelined(s)
			}
			stop := make(chan struct{})
			done := make(chan struct{})
			var flushes atomic.Int64
			go func() {
				defer close(done)
				for {
					select {
					case <-stop:
						return
					default:
					}
					if err := c.ScriptFlush(context.Background()).Err(); err != nil {
						t.Error(err)
						return
					}
					flushes.Add(1)
					time.Sleep(time.Millisecond)
				}
			}()
			nt, nf, ne := swapChains(t, c, s, prefix, 32, 100, func() (context.Context, context.CancelFunc) {
				return context.WithTimeout(context.Background(), 10*time.Second)
			})
			close(stop)
			<-done
			if nf != 0 || ne != 0 {
				t.Errorf("%d trues, %d falses, %d errors; want every swap true", nt, nf, ne)
			}
			t.Logf("%d swaps true across %d SCRIPT FLUSHes", nt, flushes.Load())
		})
	}
}

// TestAttackAutoPipelineContextEnds: contexts that end while a swap waits
// in a batch or is on the wire: an error is allowed (the outcome is
// open), a false must be a promise and a true must have landed.
func TestAttackAutoPipelineContextEnds(t *testing.T) {
	c := privateRedis(t)
	for _, always := range []bool{true, false} {
		t.Run(map[bool]string{true: "always", false: "adaptive"}[always], func(t *testing.T) {
			prefix := fmt.Sprintf("ctx%v:", always)
			s := redisstore.New(c, redisstore.Options{Prefix: prefix, AutoPipeline: true})
			if always {
				s = redisstore.AlwaysPipelined(s)
			}
			nt, nf, ne := swapChains(t, c, s, prefix, 48, 100, func() (context.Context, context.CancelFunc) {
				if rand.N(3) == 0 {
					return context.WithTimeout(context.Background(), time.Duration(rand.N(400))*time.Microsecond)
				}
				return context.WithTimeout(context.Background(), 10*time.Second)
			})
			t.Logf("%d true, %d false, %d errors", nt, nf, ne)
		})
	}
}

// TestAttackAutoPipelineClusterContextEnds is the same on a Redis
// Cluster, where the pipeliner batches per node.
func TestAttackAutoPipelineClusterContextEnds(t *testing.T) {
	c := cluster(t)
	prefix := fmt.Sprintf("apctx%d:", rand.N(1<<30))
	s := redisstore.AlwaysPipelined(redisstore.New(c, redisstore.Options{Prefix: prefix, AutoPipeline: true}))
	nt, nf, ne := swapChains(t, c, s, prefix, 48, 60, func() (context.Context, context.CancelFunc) {
		if rand.N(3) == 0 {
			return context.WithTimeout(context.Background(), time.Duration(rand.N(400))*time.Microsecond)
		}
		return context.WithTimeout(context.Background(), 10*time.Second)
	})
	t.Logf("%d true, %d false, %d errors", nt, nf, ne)
	for w := range 48 {
		_ = c.Del(context.Background(), fmt.Sprintf("%sw%d", prefix, w)).Err()
	}
}
