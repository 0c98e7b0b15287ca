package middleware

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os/exec"
	"strconv"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	session "github.com/typedsession/session"
	"github.com/typedsession/session/internal/testenv"
	"github.com/typedsession/session/store/redisstore"
)

// stoppedRedis starts a redis-server of the test's own on a free loopback
// port, returns a store on it, and stops the server: a store outage.
func stoppedRedis(t *testing.T) *redisstore.Store {
	t.Helper()
	if _, err := exec.LookPath("redis-server"); err != nil {
		testenv.SkipOrFail(t, "redis-server not found in PATH; install Redis to run this test: %v", err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	cmd := exec.Command("redis-server", "--port", strconv.Itoa(port), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--dir", t.TempDir())
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	c := redis.NewClient(&redis.Options{Addr: "127.0.0.1:" + strconv.Itoa(port), MaxRetries: -1, DialTimeout: 200 * time.Millisecond, DialerRetries: 1})
	redis.SetLogger(quietRedis{})
	t.Cleanup(func() { c.Close() })
	up := false
	for range 200 {
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		err := c.Ping(ctx).Err()
		cancel()
		if err == nil {
			up = true
			break
		}
		select {
		case err := <-exited:
			t.Fatalf("redis-server on port %d exited: %v", port, err)
		case <-time.After(25 * time.Millisecond):
		}
	}
	if !up {
		cmd.Process.Kill()
		<-exited
		t.Fatalf("redis-server on port %d did not answer", port)
	}
	st := redisstore.New(c, redisstore.Options{Prefix: "outage:"})
	// The store worked; now it is down.
	if err := st.Set(context.Background(), "probe", []byte("x"), 0); err != nil {
		t.Fatal(err)
	}
	cmd.Process.Kill()
	<-exited
	return st
}

// TestContinueOnLoadError: with the store down, a bot that opted in still
// runs its handler, which finds the load error in session.From, and
// nothing is saved; the error reaches OnError. Without the option the
// update stops before the handler.
func TestContinueOnLoadError(t *testing.T) {
	st := stoppedRedis(t)
	m := newManager[counter](t, st, "c")
	for _, cont := range []bool{false, true} {
		t.Run(fmt.Sprintf("generic/continue=%v", cont), func(t *testing.T) {
			var hooks hookLog
			var fromErr error
			ran := false
			mw := New(m, userKey, Options{ContinueOnLoadError: cont, OnError: hooks.hook})
			err := mw.Wrap(func(ctx context.Context, u *update) error {
				ran = true
				s, err := session.From[counter](ctx)
				fromErr = err
				if err == nil {
					s.Data.N++
				}
				return nil // "log the error and continue without a session"
			})(context.Background(), &update{User: "ann"})
			if ran != cont {
				t.Errorf("handler ran = %v, want %v", ran, cont)
			}
			if cont && (err != nil || fromErr == nil) {
				t.Errorf("update err = %v, From err = %v; want nil and the load error", err, fromErr)
			}
			if !cont && err == nil {
				t.Error("update err = nil, want the load error")
			}
			if c := hooks.get(); len(c) != 1 || c[0].op != "load" || c[0].key != "ann" {
				t.Errorf("hooks = %+v, want one load error", c)
			}
			if n := mw.core.lockLen(); n != 0 {
				t.Errorf("lock table holds %d keys, want 0", n)
			}
		})
		t.Run(fmt.Sprintf("http/continue=%v", cont), func(t *testing.T) {
			var hooks hookLog
			h := HTTP(m, HTTPOptions{Options: Options{ContinueOnLoadError: cont, OnError: hooks.hook}})(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if _, err := session.From[counter](r.Context()); err != nil {
					fmt.Fprint(w, "answered without a session")
					return
				}
				fmt.Fprint(w, "with a session")
			}))
			rec := serve(h, request("/", newToken()))
			want := 500
			if cont {
				want = 200
			}
			if rec.Code != want || (cont && rec.Body.String() != "answered without a session") {
				t.Errorf("response %d %q, want %d", rec.Code, rec.Body.String(), want)
			}
			if c := rec.Result().Cookies(); len(c) != 0 {
				t.Errorf("cookies %v, want none: nothing was saved", c)
			}
			if c := hooks.get(); len(c) != 1 || c[0].op != "load" {
				t.Errorf("hooks = %+v, want one load error", c)
			}
		})
	}
}

// quietRedis drops go-redis's log lines (the refused dials are the test).
type quietRedis struct{}

func (quietRedis) Printf(context.Context, string, ...any) {}
