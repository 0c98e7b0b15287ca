package redisstore_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/typedsession/session/internal/testenv"
	"github.com/typedsession/session/store"
	"github.com/typedsession/session/store/redisstore"
)

// TestStopAndRestart kills the store's Redis server in the middle of a run
// of writes and starts it again on the same port. Every call must return
// (success or error, never a hang or a panic), and every write that
// returned nil must be readable afterwards with its value.
//
// It runs twice: with go-redis's default retries, which mostly hide the
// outage from the caller, and with retries off, so that calls fail while
// the server is down and the error paths run too.
func TestStopAndRestart(t *testing.T) {
	testenv.Slow(t)
	needBinaries(t)
	for _, tc := range []struct {
		name       string
		maxRetries int
	}{
		{"DefaultRetries", 0},
		{"NoRetries", -1},
	} {
		t.Run(tc.name, func(t *testing.T) { testStopAndRestart(t, tc.maxRetries) })
	}
}

func testStopAndRestart(t *testing.T, maxRetries int) {
	srv, client := startDurableServer(t, maxRetries)
	s := redisstore.New(client, redisstore.Options{Prefix: "restart:"})

	// Bounds: each worker stops once it has perWorker acknowledged writes,
	// minAfter of them begun after the restart, or after maxAttempts calls;
	// everything stops when ctx ends.
	const (
		workers     = 4
		perWorker   = 150
		minAfter    = 25
		maxAttempts = 20000
	)
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()

	type write struct {
		key   string
		value []byte
	}
	var (
		acked        [workers][]write
		ackedTotal   atomic.Int64
		afterRestart atomic.Int64 // acknowledged writes begun after the restart
		failed       atomic.Int64 // calls that returned an error
		notSwapped   atomic.Int64 // CompareAndSwap of a fresh key that said false
		restarted    atomic.Bool
		wg           sync.WaitGroup
	)
	for w := range workers {
		wg.Go(func() {
			after := 0
			for attempt := 0; attempt < maxAttempts && ctx.Err() == nil; attempt++ {
				if len(acked[w]) >= perWorker && after >= minAfter {
					return
				}
				// A fresh key per call: a call that failed may or may not
				// have been applied, and it is never checked.
				key := fmt.Sprintf("w%d:a%d", w, attempt)
				value := []byte(key + "=value")
				afterStart := restarted.Load()
				callCtx, callCancel := context.WithTimeout(ctx, 3*time.Second)
				var err error
				ok := true
				if attempt%2 == 0 {
					err = s.Set(callCtx, key, value, time.Hour)
				} else {
					ok, err = s.CompareAndSwap(callCtx, key, nil, value, time.Hour)
				}
				callCancel()
				switch {
				case errors.Is(err, store.ErrNotFound):
					t.Errorf("write of %q returned ErrNotFound: %v", key, err)
					return
				case err != nil:
					failed.Add(1)
					time.Sleep(5 * time.Millisecond)
				case !ok:
					// Possible when go-redis retried a SET NX whose first
					// reply was lost with the connection: the key exists.
					notSwapped.Add(1)
				default:
					acked[w] = append(acked[w], write{key, value})
					ackedTotal.Add(1)
					if afterStart {
						after++
						afterRestart.Add(1)
					}
				}
			}
		})
	}

	// Kill the server once a third of the writes are in, then restart it.
	restartWhen(t, ctx, srv, func() bool { return ackedTotal.Load() >= workers*perWorker/3 }, cancel, &wg)
	restarted.Store(true)
	wg.Wait()

	t.Logf("acknowledged writes: %d (%d begun after the restart); errors: %d; CompareAndSwap false on a fresh key: %d",
		ackedTotal.Load(), afterRestart.Load(), failed.Load(), notSwapped.Load())
	if afterRestart.Load() < workers*minAfter {
		t.Fatalf("only %d writes succeeded after the restart, want %d", afterRestart.Load(), workers*minAfter)
	}
	check, checkCancel := context.WithTimeout(context.Background(), time.Minute)
	defer checkCancel()
	lost := 0
	for w := range workers {
		for _, wr := range acked[w] {
			got, err := s.Get(check, wr.key)
			if err != nil || !bytes.Equal(got, wr.value) {
				lost++
				if lost <= 10 {
					t.Errorf("acknowledged write %q: Get = %q, %v; want %q", wr.key, got, err, wr.value)
				}
			}
		}
	}
	if lost > 0 {
		t.Fatalf("%d of %d acknowledged writes are lost", lost, ackedTotal.Load())
	}
}
