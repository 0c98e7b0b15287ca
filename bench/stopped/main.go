// Command stopped measures what a session Load costs against a Redis that
// has stopped answering, without and with a deadline per Load: the figures
// of the README's "The recommended client configuration".
//
//	cd bench && go run ./stopped -mode kill                # the server shut down: connections refused
//	cd bench && go run ./stopped -mode kill -deadline 2s
//	cd bench && go run ./stopped -mode pause               # kill -STOP: connections open, no reply (minutes)
//	cd bench && go run ./stopped -mode pause -deadline 2s
//
// It starts a redis-server of its own on -port (no persistence), writes one
// session through a manager on the README's recommended client
// (ContextTimeoutEnabled, go-redis's default retries), stops the server and
// times three Loads of that session, counting the lines go-redis logs
// (dial errors among them). It stops the server when it ends.
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"

	session "github.com/typedsession/session"
	"github.com/typedsession/session/store/redisstore"
)

type quiz struct {
	Score int `json:"score"`
}

// logCounter counts what go-redis logs.
type logCounter struct{ dial, other atomic.Int64 }

func (l *logCounter) Printf(_ context.Context, format string, v ...any) {
	if msg := fmt.Sprintf(format, v...); strings.Contains(msg, "dial") {
		l.dial.Add(1)
	} else {
		l.other.Add(1)
	}
}

func main() {
	mode := flag.String("mode", "kill", "how the server stops: kill (shut down) or pause (SIGSTOP)")
	deadline := flag.Duration("deadline", 0, "deadline of each Load; 0: none")
	port := flag.Int("port", 6411, "port of the redis-server this run starts")
	flag.Parse()
	if *mode != "kill" && *mode != "pause" {
		log.Fatalf("-mode %q: want kill or pause", *mode)
	}

	srv := exec.Command("redis-server", "--port", strconv.Itoa(*port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no")
	if err := srv.Start(); err != nil {
		log.Fatalf("start redis-server: %v", err)
	}
	defer func() {
		srv.Process.Signal(syscall.SIGCONT)
		srv.Process.Kill()
		srv.Wait()
	}()

	logs := &logCounter{}
	redis.SetLogger(logs)
	rdb := redis.NewUniversalClient(&redis.UniversalOptions{
		Addrs:                 []string{"127.0.0.1:" + strconv.Itoa(*port)},
		ContextTimeoutEnabled: true,
	})
	defer rdb.Close()
	m, err := session.New(session.Config[quiz]{Store: redisstore.New(rdb, redisstore.Options{Prefix: "stopped:"}), Namespace: "quiz", TTL: time.Hour})
	if err != nil {
		log.Fatal(err)
	}
	ctx := context.Background()
	for start := time.Now(); ; time.Sleep(50 * time.Millisecond) {
		if rdb.Ping(ctx).Err() == nil {
			break
		}
		if time.Since(start) > 10*time.Second {
			log.Fatal("redis-server did not answer within 10 s")
		}
	}
	if _, err := m.Update(ctx, "42", func(q *quiz) error { q.Score++; return nil }); err != nil {
		log.Fatal(err)
	}

	if *mode == "kill" {
		srv.Process.Kill()
		srv.Wait()
	} else {
		srv.Process.Signal(syscall.SIGSTOP)
	}
	load, _ := os.ReadFile("/proc/loadavg")
	fmt.Printf("server %s, deadline %v, load average %s", *mode, *deadline, load)
	for i := 1; i <= 3; i++ {
		lctx, cancel := ctx, context.CancelFunc(func() {})
		if *deadline > 0 {
			lctx, cancel = context.WithTimeout(ctx, *deadline)
		}
		d0, o0 := logs.dial.Load(), logs.other.Load()
		t0 := time.Now()
		_, err := m.Load(lctx, "42")
		took := time.Since(t0)
		cancel()
		fmt.Printf("Load %d: %.3f s, go-redis logged %d dial errors and %d other lines: %v\n",
			i, took.Seconds(), logs.dial.Load()-d0, logs.other.Load()-o0, err)
	}
}
