package redisstore_test

import (
	"context"
	"errors"
	"net"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/typedsession/session/internal/testenv"
	"github.com/typedsession/session/store/redisstore"
)

// recommendedClient returns a client of addr with the options the package
// doc recommends (and nothing else but short dial timeouts for the tests),
// closed when t ends.
func recommendedClient(t *testing.T, addr string) *redis.Client {
	t.Helper()
	c := redis.NewClient(&redis.Options{
		Addr:                  addr,
		ContextTimeoutEnabled: true,
		DialTimeout:           500 * time.Millisecond,
	})
	t.Cleanup(func() { c.Close() })
	return c
}

// stall makes the Redis at addr run DEBUG SLEEP for d on a connection of
// its own, and returns once the server has stopped answering (a PING with a
// short deadline times out), so that the caller's commands meet a stalled
// server. The returned wait blocks until DEBUG SLEEP has returned.
func stall(t *testing.T, addr string, d time.Duration) (wait func()) {
	t.Helper()
	sleeper := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1, ReadTimeout: d + 5*time.Second})
	probe := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1, ContextTimeoutEnabled: true})
	defer probe.Close()
	// Open the probe's connection before the stall.
	if err := probe.Ping(t.Context()).Err(); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Go(func() {
		defer sleeper.Close()
		secs := strconv.FormatFloat(d.Seconds(), 'f', 3, 64)
		if err := sleeper.Do(context.Background(), "DEBUG", "SLEEP", secs).Err(); err != nil {
			t.Errorf("DEBUG SLEEP %s: %v", secs, err)
		}
	})
	for range 200 {
		ctx, cancel := context.WithTimeout(t.Context(), 20*time.Millisecond)
		err := probe.Ping(ctx).Err()
		cancel()
		var ne net.Error
		if errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout()) {
			return wg.Wait
		}
		time.Sleep(5 * time.Millisecond)
	}
	wg.Wait()
	t.Fatal("the server never stalled under DEBUG SLEEP")
	return nil
}

// TestDeadlineStalledServer runs each store method with a 200 ms deadline
// against a Redis of the test's own that DEBUG SLEEP 2 has stalled, through
// a client with the recommended options: each must return promptly (well
// before the server wakes) with an error matching
// context.DeadlineExceeded. A swap sent into the stall may still be run by
// the server when it wakes; resending it afterwards must report success
// and leave the value written once.
func TestDeadlineStalledServer(t *testing.T) {
	testenv.Slow(t)
	needBinaries(t)
	port := freePort(t, map[int]bool{})
	srv, err := startServer(port, filepath.Join(t.TempDir(), strconv.Itoa(port)), "--enable-debug-command", "local")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Kill)
	client := recommendedClient(t, srv.Addr())
	s := redisstore.New(client, redisstore.Options{Prefix: "deadline:"})
	ctx := t.Context()
	for _, k := range []string{"get", "cas", "cad", "getttl", "touch", "getandtouch"} {
		if err := s.Set(ctx, k, []byte("v1"), time.Hour); err != nil {
			t.Fatal(err)
		}
	}
	// Warm the pool and the script cache, so that the calls below need no
	// dial and no EVAL.
	if _, err := s.CompareAndSwap(ctx, "warm", nil, []byte("w"), time.Hour); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.GetWithTTL(ctx, "warm"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.CompareAndDelete(ctx, "warm", []byte("w")); err != nil {
		t.Fatal(err)
	}

	ops := []struct {
		name string
		call func(ctx context.Context) error
	}{
		{"Get", func(ctx context.Context) error { _, err := s.Get(ctx, "get"); return err }},
		{"Set", func(ctx context.Context) error { return s.Set(ctx, "set", []byte("v"), time.Hour) }},
		{"CompareAndSwap", func(ctx context.Context) error {
			_, err := s.CompareAndSwap(ctx, "cas", []byte("v1"), []byte("v2"), time.Hour)
			return err
		}},
		{"CompareAndDelete", func(ctx context.Context) error {
			_, err := s.CompareAndDelete(ctx, "cad", []byte("v1"))
			return err
		}},
		{"GetWithTTL", func(ctx context.Context) error { _, _, err := s.GetWithTTL(ctx, "getttl"); return err }},
		{"Touch", func(ctx context.Context) error { return s.Touch(ctx, "touch", time.Hour) }},
		{"GetAndTouch", func(ctx context.Context) error { _, err := s.GetAndTouch(ctx, "getandtouch", time.Hour); return err }},
	}
	const (
		deadline = 200 * time.Millisecond
		prompt   = time.Second // the server sleeps 2 s
	)
	wait := stall(t, srv.Addr(), 2*time.Second)
	var wg sync.WaitGroup
	for _, op := range ops {
		wg.Go(func() {
			callCtx, cancel := context.WithTimeout(ctx, deadline)
			defer cancel()
			start := time.Now()
			err := op.call(callCtx)
			took := time.Since(start)
			t.Logf("%s: returned after %v: %v", op.name, took.Round(time.Millisecond), err)
			if !errors.Is(err, context.DeadlineExceeded) {
				t.Errorf("%s on a stalled server with a %v deadline = %v, want an error matching context.DeadlineExceeded", op.name, deadline, err)
			}
			if took > prompt {
				t.Errorf("%s on a stalled server with a %v deadline returned after %v, want under %v", op.name, deadline, took, prompt)
			}
		})
	}
	wg.Wait()
	wait()

	// The swap may or may not have run when the server woke; resending it
	// reports success either way, and the value is the new one.
	ok, err := s.CompareAndSwap(ctx, "cas", []byte("v1"), []byte("v2"), time.Hour)
	if err != nil || !ok {
		t.Fatalf("resent CompareAndSwap after the stall = %v, %v; want true, nil", ok, err)
	}
	if v, err := s.Get(ctx, "cas"); err != nil || string(v) != "v2" {
		t.Fatalf("after the resent swap Get = %q, %v; want \"v2\"", v, err)
	}
}
