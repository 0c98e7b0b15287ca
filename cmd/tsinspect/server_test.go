package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/typedsession/session/internal/testenv"
)

// This file starts a three-master Redis Cluster for the tests, copied from
// store/redisstore/server_test.go.

// needBinaries skips (fails under CI=true) when redis-server or redis-cli
// is not installed.
func needBinaries(tb testing.TB) {
	tb.Helper()
	for _, bin := range []string{"redis-server", "redis-cli"} {
		if _, err := exec.LookPath(bin); err != nil {
			testenv.SkipOrFail(tb, "%s not found in PATH; install Redis to run this test: %v", bin, err)
		}
	}
}

// freePort returns a loopback port below 55535 on which nothing listens and
// whose cluster bus port (port+10000) is free too. Another process may take
// it before the server binds it; the server's start then fails loudly.
func freePort(tb testing.TB, taken map[int]bool) int {
	tb.Helper()
	for range 200 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			tb.Fatal(err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		l.Close()
		if port >= 55535 || taken[port] || taken[port+10000] {
			continue
		}
		bus, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(port+10000))
		if err != nil {
			continue
		}
		bus.Close()
		taken[port] = true
		taken[port+10000] = true
		return port
	}
	tb.Fatal("no free loopback port pair (P, P+10000) found in 200 tries")
	return 0
}

// server is one redis-server process that the tests started.
type server struct {
	port int
	dir  string
	args []string
	cmd  *exec.Cmd
	log  *os.File
	// waited receives cmd.Wait's result once the process has exited.
	waited chan error
}

// startServer runs redis-server on port with its files in dir and waits
// until it answers PING.
func startServer(port int, dir string, extra ...string) (*server, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	args := append([]string{
		"--port", strconv.Itoa(port),
		"--bind", "127.0.0.1",
		"--dir", dir,
		"--daemonize", "no",
		"--save", "",
	}, extra...)
	s := &server{port: port, dir: dir, args: args}
	return s, s.start()
}

func (s *server) addr() string { return "127.0.0.1:" + strconv.Itoa(s.port) }

func (s *server) start() error {
	log, err := os.OpenFile(filepath.Join(s.dir, "server.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	cmd := exec.Command("redis-server", s.args...)
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		log.Close()
		return err
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	s.cmd, s.log, s.waited = cmd, log, exited
	c := redis.NewClient(&redis.Options{Addr: s.addr(), MaxRetries: -1, DialTimeout: 200 * time.Millisecond})
	defer c.Close()
	// Bounded wait for the server to come up (loading the AOF included).
	for range 300 {
		select {
		case err := <-exited:
			exited <- err
			s.cmd = nil
			s.log.Close()
			return fmt.Errorf("redis-server on port %d exited: %v; log:\n%s", s.port, err, s.logText())
		default:
		}
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		err := c.Ping(ctx).Err()
		cancel()
		if err == nil {
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	s.kill()
	return fmt.Errorf("redis-server on port %d did not answer PING; log:\n%s", s.port, s.logText())
}

func (s *server) logText() string {
	b, _ := os.ReadFile(filepath.Join(s.dir, "server.log"))
	return string(b)
}

// kill stops the server with SIGKILL, as a crash would, and waits for it.
func (s *server) kill() {
	if s.cmd == nil {
		return
	}
	s.cmd.Process.Kill()
	err := <-s.waited
	s.waited <- err // a second kill must not block
	s.log.Close()
	s.cmd = nil
}

// The cluster is started once, by the first test that needs it, and
// stopped by TestMain after every test has run.
var (
	clusterOnce    sync.Once
	clusterErr     error
	clusterServers []*server
	clusterDir     string
	clusterClient  *redis.ClusterClient
	clusterAddrs   []string
)

// cluster returns a client of a three-master Redis Cluster on loopback
// ports, starting it on first use.
func cluster(t *testing.T) *redis.ClusterClient {
	t.Helper()
	needBinaries(t)
	clusterOnce.Do(func() { clusterErr = startCluster(t) })
	if clusterErr != nil {
		t.Fatalf("starting a Redis Cluster: %v", clusterErr)
	}
	return clusterClient
}

func startCluster(t *testing.T) error {
	dir, err := os.MkdirTemp("", "redisstore-cluster-")
	if err != nil {
		return err
	}
	clusterDir = dir
	taken := map[int]bool{}
	var addrs []string
	for range 3 {
		port := freePort(t, taken)
		s, err := startServer(port, filepath.Join(dir, strconv.Itoa(port)),
			"--cluster-enabled", "yes",
			"--cluster-config-file", "nodes.conf",
			"--appendonly", "no")
		if err != nil {
			return err
		}
		clusterServers = append(clusterServers, s)
		addrs = append(addrs, s.addr())
	}
	args := append([]string{"--cluster", "create"}, addrs...)
	args = append(args, "--cluster-replicas", "0", "--cluster-yes")
	out, err := exec.Command("redis-cli", args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("redis-cli %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	// Bounded wait until every node reports the cluster healthy.
	for _, addr := range addrs {
		c := redis.NewClient(&redis.Options{Addr: addr})
		ok := false
		var info string
		for range 300 {
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			info, err = c.ClusterInfo(ctx).Result()
			cancel()
			if err == nil && strings.Contains(info, "cluster_state:ok") {
				ok = true
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
		c.Close()
		if !ok {
			return fmt.Errorf("node %s never reported cluster_state:ok: %v\n%s", addr, err, info)
		}
	}
	clusterAddrs = addrs
	clusterClient = redis.NewClusterClient(&redis.ClusterOptions{Addrs: addrs})
	// The client must see all three masters before the tests start.
	for range 100 {
		n := 0
		var mu sync.Mutex
		err = clusterClient.ForEachMaster(context.Background(), func(context.Context, *redis.Client) error {
			mu.Lock()
			n++
			mu.Unlock()
			return nil
		})
		if err == nil && n == 3 {
			return nil
		}
		clusterClient.ReloadState(context.Background())
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("cluster client does not see three masters: %v", err)
}

// stopCluster stops the cluster's servers and removes their files.
func stopCluster() {
	if clusterClient != nil {
		clusterClient.Close()
	}
	for _, s := range clusterServers {
		s.kill()
	}
	if clusterDir != "" {
		os.RemoveAll(clusterDir)
	}
}

// startDurableServer starts a single Redis on a free port, killed when t
// ends, and a client of it with short timeouts and the given MaxRetries
// (0: go-redis's default of 3; -1: none).
//
// Persistence is on for the tests that use it: with appendonly yes and
// appendfsync always, Redis appends each write to its AOF and fsyncs it
// before it replies, so a write the store acknowledged survives a SIGKILL
// and is loaded again at restart. Without it a restarted server would be
// empty, and a test would measure Redis's configuration, not whether the
