package testenv

import (
	"context"
	"fmt"
	"math/rand/v2"
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
)

// This file starts redis-server processes for the tests that need a server
// of their own: a three-master cluster, a single node that is killed and
// restarted, stalled or cut off.

// NeedRedisBinaries skips tb (fails it under CI=true) when redis-server or
// redis-cli is not installed.
func NeedRedisBinaries(tb testing.TB) {
	tb.Helper()
	for _, bin := range []string{"redis-server", "redis-cli"} {
		if _, err := exec.LookPath(bin); err != nil {
			SkipOrFail(tb, "%s not found in PATH; install Redis to run this test: %v", bin, err)
		}
	}
}

// FreePort returns a loopback port on which nothing listens and whose
// cluster bus port (port+10000) is free too, and that taken does not hold;
// it adds both to taken. Both lie below the kernel's ephemeral port range
// (/proc/sys/net/ipv4/ip_local_port_range, 32768 when unreadable): a port in
// that range may be held by any outgoing connection, which no probe sees,
// and redis-server then fails to bind it. Another process may still take
// the port before the server binds it; the server's start then fails
// loudly.
func FreePort(tb testing.TB, taken map[int]bool) int {
	tb.Helper()
	low := 32768
	if b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range"); err == nil {
		if f := strings.Fields(string(b)); len(f) == 2 {
			if n, err := strconv.Atoi(f[0]); err == nil {
				low = n
			}
		}
	}
	const first = 15000
	span := low - 10000 - first
	if span < 1000 {
		span = 10000 // an unusual range: rely on the probes
	}
	for range 200 {
		port := first + rand.IntN(span)
		if taken[port] || taken[port+10000] {
			continue
		}
		if !portFree(port) || !portFree(port+10000) {
			continue
		}
		taken[port] = true
		taken[port+10000] = true
		return port
	}
	tb.Fatal("no free loopback port pair (P, P+10000) found in 200 tries")
	return 0
}

// portFree reports whether a listener can bind 127.0.0.1:port.
func portFree(port int) bool {
	l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(port))
	if err != nil {
		return false
	}
	l.Close()
	return true
}

// RedisServer is one redis-server process that a test started.
type RedisServer struct {
	Port int
	Dir  string
	args []string
	cmd  *exec.Cmd
	log  *os.File
	// waited receives cmd.Wait's result once the process has exited.
	waited chan error
}

// StartRedisServer runs redis-server on port with its files in dir (no
// snapshots; extra arguments added) and waits until it answers PING.
func StartRedisServer(port int, dir string, extra ...string) (*RedisServer, error) {
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
	s := &RedisServer{Port: port, Dir: dir, args: args}
	return s, s.Start()
}

// Addr returns the server's host:port.
func (s *RedisServer) Addr() string { return "127.0.0.1:" + strconv.Itoa(s.Port) }

// Start starts the server (again, after Kill) with its arguments and waits
// until it answers PING, loading its append-only file included.
func (s *RedisServer) Start() error {
	log, err := os.OpenFile(filepath.Join(s.Dir, "server.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
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
	c := redis.NewClient(&redis.Options{Addr: s.Addr(), MaxRetries: -1, DialTimeout: 200 * time.Millisecond})
	defer c.Close()
	for range 300 {
		select {
		case err := <-exited:
			exited <- err
			s.cmd = nil
			s.log.Close()
			return fmt.Errorf("redis-server on port %d exited: %v; log:\n%s", s.Port, err, s.Log())
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
	s.Kill()
	return fmt.Errorf("redis-server on port %d did not answer PING; log:\n%s", s.Port, s.Log())
}

// Log returns what the server wrote to its log file.
func (s *RedisServer) Log() string {
	b, _ := os.ReadFile(filepath.Join(s.Dir, "server.log"))
	return string(b)
}

// Kill stops the server with SIGKILL, as a crash would, and waits for it.
// Killing a stopped server does nothing.
func (s *RedisServer) Kill() {
	if s.cmd == nil {
		return
	}
	s.cmd.Process.Kill()
	err := <-s.waited
	s.waited <- err // a second Kill must not block
	s.log.Close()
	s.cmd = nil
}

// RedisCluster is a three-master Redis Cluster on loopback ports.
type RedisCluster struct {
	Client  *redis.ClusterClient
	servers []*RedisServer
	dir     string
	shared  []string // the masters of a cluster named by ClusterEnv
}

// ClusterEnv names the environment variable that holds the host:port of
// each master of a running Redis Cluster, comma-separated. When it is set,
// StartRedisCluster starts nothing and returns a client of that cluster:
// .ci/run starts one cluster that the packages run in parallel share. The
// tests that use a cluster keep to key prefixes of their own
// (testenv.Prefix) and never stop, flush or reconfigure its nodes, so
// sharing one is correct.
const ClusterEnv = "REDIS_CLUSTER_ADDRS"

// StartRedisCluster starts three redis-server processes in cluster mode,
// joins them with redis-cli --cluster create, and returns once every node
// reports the cluster healthy and the client sees the three masters. name
// names its temporary folder. Stop it with Stop. When ClusterEnv is set it
// connects to that cluster instead, and Stop only closes the client.
func StartRedisCluster(tb testing.TB, name string) (*RedisCluster, error) {
	if env := os.Getenv(ClusterEnv); env != "" {
		addrs := strings.Split(env, ",")
		c := &RedisCluster{shared: addrs}
		c.Client = redis.NewClusterClient(&redis.ClusterOptions{Addrs: addrs, ContextTimeoutEnabled: true})
		if err := c.waitMasters(); err != nil {
			c.Client.Close()
			return nil, fmt.Errorf("the cluster of %s=%s: %v", ClusterEnv, env, err)
		}
		return c, nil
	}
	NeedRedisBinaries(tb)
	dir, err := os.MkdirTemp("", name+"-cluster-")
	if err != nil {
		return nil, err
	}
	// A node's port taken by another process between FreePort's probe and
	// the server's bind fails that start; three tries on fresh ports.
	var c *RedisCluster
	for try := 0; ; try++ {
		c = &RedisCluster{dir: filepath.Join(dir, strconv.Itoa(try))}
		if err = c.start(tb); err == nil {
			c.dir = dir
			return c, nil
		}
		c.Stop()
		if try == 2 {
			os.RemoveAll(dir)
			return nil, err
		}
	}
}

func (c *RedisCluster) start(tb testing.TB) error {
	taken := map[int]bool{}
	var addrs []string
	for range 3 {
		port := FreePort(tb, taken)
		s, err := StartRedisServer(port, filepath.Join(c.dir, strconv.Itoa(port)),
			"--cluster-enabled", "yes",
			"--cluster-config-file", "nodes.conf",
			"--appendonly", "no")
		if err != nil {
			return err
		}
		c.servers = append(c.servers, s)
		addrs = append(addrs, s.Addr())
	}
	args := append([]string{"--cluster", "create"}, addrs...)
	args = append(args, "--cluster-replicas", "0", "--cluster-yes")
	out, err := exec.Command("redis-cli", args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("redis-cli %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	// Bounded wait until every node reports the cluster healthy.
	for _, addr := range addrs {
		rc := redis.NewClient(&redis.Options{Addr: addr})
		ok := false
		var info string
		for range 300 {
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			info, err = rc.ClusterInfo(ctx).Result()
			cancel()
			if err == nil && strings.Contains(info, "cluster_state:ok") {
				ok = true
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
		rc.Close()
		if !ok {
			return fmt.Errorf("node %s never reported cluster_state:ok: %v\n%s", addr, err, info)
		}
	}
	c.Client = redis.NewClusterClient(&redis.ClusterOptions{Addrs: addrs, ContextTimeoutEnabled: true})
	return c.waitMasters()
}

// waitMasters waits (at most 100 tries, 100 ms apart) until the client
// sees all three masters: the tests must not start before.
func (c *RedisCluster) waitMasters() error {
	var err error
	for range 100 {
		n := 0
		var mu sync.Mutex
		err = c.Client.ForEachMaster(context.Background(), func(context.Context, *redis.Client) error {
			mu.Lock()
			n++
			mu.Unlock()
			return nil
		})
		if err == nil && n == 3 {
			return nil
		}
		c.Client.ReloadState(context.Background())
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("cluster client does not see three masters: %v", err)
}

// Addrs returns the host:port of each of the cluster's servers.
func (c *RedisCluster) Addrs() []string {
	if c.shared != nil {
		return c.shared
	}
	addrs := make([]string, len(c.servers))
	for i, s := range c.servers {
		addrs[i] = s.Addr()
	}
	return addrs
}

// Stop stops the cluster's servers and removes their files.
func (c *RedisCluster) Stop() {
	if c.Client != nil {
		c.Client.Close()
	}
	for _, s := range c.servers {
		s.Kill()
	}
	if c.dir != "" {
		os.RemoveAll(c.dir)
	}
}
