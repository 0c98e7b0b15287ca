package main

import (
	"context"
	"fmt"
	"maps"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"

	"github.com/redis/go-redis/v9"

	"github.com/typedsession/session/internal/testenv"
)

// This file holds what the harness counts on the client (commands, round
// trips, CPU) and reads from the server (INFO cpu, INFO commandstats), and
// the private redis-server a run may start for itself.

// redisCounter counts what a client sends to Redis: commands, round trips,
// and the top-level commands by name (a command queued inside MULTI/EXEC
// runs within EXEC and is not top-level; see topLevelUsec). Counting
// allocates nothing once a name has been seen, so that it does not add
// to the allocations it sits beside.
type redisCounter struct {
	cmds  atomic.Int64
	rts   atomic.Int64
	mu    sync.Mutex                               // serializes additions to names
	names atomic.Pointer[map[string]*atomic.Int64] // copied on write; read without a lock
}

// add counts one command; nested is true for a command queued inside
// MULTI/EXEC.
func (c *redisCounter) add(name string, nested bool) {
	c.cmds.Add(1)
	if nested {
		return
	}
	if m := c.names.Load(); m != nil {
		if n := (*m)[name]; n != nil {
			n.Add(1)
			return
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	var next map[string]*atomic.Int64
	if m := c.names.Load(); m != nil {
		if n := (*m)[name]; n != nil {
			n.Add(1)
			return
		}
		next = maps.Clone(*m)
	} else {
		next = map[string]*atomic.Int64{}
	}
	n := new(atomic.Int64)
	n.Add(1)
	next[strings.Clone(name)] = n
	c.names.Store(&next)
}

// counts is a snapshot of a redisCounter, or the difference of two.
type counts struct {
	Cmds  int64            `json:"cmds"`
	RTs   int64            `json:"rts"`
	Names map[string]int64 `json:"names"`
}

func (c *redisCounter) snapshot() counts {
	s := counts{Cmds: c.cmds.Load(), RTs: c.rts.Load(), Names: map[string]int64{}}
	if m := c.names.Load(); m != nil {
		for k, n := range *m {
			// go-redis names are lower case already; redigo's are not.
			s.Names[strings.ToLower(k)] += n.Load()
		}
	}
	return s
}

func (a counts) sub(b counts) counts {
	d := counts{Cmds: a.Cmds - b.Cmds, RTs: a.RTs - b.RTs, Names: maps.Clone(a.Names)}
	if d.Names == nil {
		d.Names = map[string]int64{}
	}
	for k, v := range b.Names {
		d.Names[k] -= v
	}
	return d
}

func (a counts) plus(b counts) counts {
	d := counts{Cmds: a.Cmds + b.Cmds, RTs: a.RTs + b.RTs, Names: maps.Clone(a.Names)}
	if d.Names == nil {
		d.Names = map[string]int64{}
	}
	for k, v := range b.Names {
		d.Names[k] += v
	}
	return d
}

// countHook is a go-redis hook that feeds a redisCounter: a command is one
// round trip, a pipeline or a transaction one round trip for all its
// commands (go-redis hands MULTI and EXEC of a transaction to the hook as
// commands of their own). Under go-redis's AutoPipeliner (blocking face, not
// full duplex) a batch it flushes is one pipeline, so round trips per
// operation fall below one there.
type countHook struct{ c *redisCounter }

func (h countHook) DialHook(next redis.DialHook) redis.DialHook { return next }

func (h countHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		h.c.add(cmd.Name(), false)
		h.c.rts.Add(1)
		return next(ctx, cmd)
	}
}

func (h countHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		inTx := false
		for _, cmd := range cmds {
			switch name := cmd.Name(); name {
			case "multi":
				h.c.add(name, false)
				inTx = true
			case "exec", "discard":
				h.c.add(name, false)
				inTx = false
			default:
				h.c.add(name, inTx)
			}
		}
		h.c.rts.Add(1)
		return next(ctx, cmds)
	}
}

// cpuUs returns this process's CPU time, user plus system, in µs
// (getrusage RUSAGE_SELF: every goroutine and the runtime's own threads).
func cpuUs() int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return ru.Utime.Nano()/1000 + ru.Stime.Nano()/1000
}

// cmdStat is one line of INFO commandstats.
type cmdStat struct {
	Calls int64
	Usec  float64
}

// serverStats is what INFO cpu and INFO commandstats say at one moment.
type serverStats struct {
	cpuUs float64            // used_cpu_user + used_cpu_sys of the whole redis-server, µs
	cmds  map[string]cmdStat // by command name; subcommands (config|get) folded into their command
}

// readServerStats reads INFO cpu and commandstats in one round trip, on a
// client that no counter watches.
func readServerStats(ctx context.Context, admin *redis.Client) (serverStats, error) {
	s, err := admin.Info(ctx, "cpu", "commandstats").Result()
	if err != nil {
		return serverStats{}, fmt.Errorf("INFO cpu commandstats: %w", err)
	}
	st := serverStats{cmds: map[string]cmdStat{}}
	var user, sys float64
	for line := range strings.SplitSeq(s, "\r\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		switch {
		case k == "used_cpu_user":
			user, _ = strconv.ParseFloat(v, 64)
		case k == "used_cpu_sys":
			sys, _ = strconv.ParseFloat(v, 64)
		case strings.HasPrefix(k, "cmdstat_"):
			name, _, _ := strings.Cut(strings.TrimPrefix(k, "cmdstat_"), "|")
			var cs cmdStat
			for kv := range strings.SplitSeq(v, ",") {
				a, b, _ := strings.Cut(kv, "=")
				switch a {
				case "calls":
					cs.Calls, _ = strconv.ParseInt(b, 10, 64)
				case "usec":
					cs.Usec, _ = strconv.ParseFloat(b, 64)
				}
			}
			old := st.cmds[name]
			st.cmds[name] = cmdStat{old.Calls + cs.Calls, old.Usec + cs.Usec}
		}
	}
	st.cpuUs = (user + sys) * 1e6
	return st, nil
}

// serverDelta is what the server did between two readings: CPU µs, and
// per command the calls and usec, leaving out the harness's own INFO.
func serverDelta(a, b serverStats) (cpu float64, cmds map[string]cmdStat) {
	cmds = map[string]cmdStat{}
	for name, s := range b.cmds {
		if name == "info" {
			continue
		}
		d := cmdStat{s.Calls - a.cmds[name].Calls, s.Usec - a.cmds[name].Usec}
		if d.Calls > 0 {
			cmds[name] = d
		}
	}
	return b.cpuUs - a.cpuUs, cmds
}

// topLevelUsec is the commandstats time of the commands the client sent,
// in µs. Redis counts a command that a Lua script (EVALSHA) or a
// transaction (EXEC) runs in commandstats too, and its time is already
// inside the script's or EXEC's own usec; adding both would count it
// twice. So each command name contributes its usec times the share of its
// calls that the client sent at top level (at the name's mean usec per
// call): a GET inside the compare-and-swap script is left out, a GET the
// client sent is kept. Commands a client sends outside its hooks (the
// HELLO of a new connection, a pub/sub SUBSCRIBE) are left out too; the
// commands of other clients of a shared server count as far as they share
// a name with ours, which is why a run starts a redis-server of its own
// by default.
func topLevelUsec(server map[string]cmdStat, client map[string]int64) float64 {
	var usec float64
	for name, s := range server {
		if s.Calls <= 0 {
			continue
		}
		share := min(1, float64(client[name])/float64(s.Calls))
		usec += share * s.Usec
	}
	return usec
}

// ownRedis is a redis-server the harness started for itself.
type ownRedis struct {
	srv *testenv.RedisServer
	dir string
	url string
}

// startOwnRedis starts redis-server (no persistence) on a free loopback
// port, so that INFO cpu and commandstats see this run's commands only.
// It returns nil and no error when redis-server is not installed.
func startOwnRedis() (*ownRedis, error) {
	if _, err := exec.LookPath("redis-server"); err != nil {
		return nil, nil
	}
	dir, err := os.MkdirTemp("", "tsbench-redis-")
	if err != nil {
		return nil, err
	}
	var lastErr error
	for range 5 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			os.RemoveAll(dir)
			return nil, err
		}
		port := l.Addr().(*net.TCPAddr).Port
		l.Close()
		srv, err := testenv.StartRedisServer(port, dir, "--appendonly", "no")
		if err == nil {
			return &ownRedis{srv: srv, dir: dir, url: "redis://" + srv.Addr() + "/0"}, nil
		}
		lastErr = err
	}
	os.RemoveAll(dir)
	return nil, fmt.Errorf("start redis-server: %w", lastErr)
}

func (o *ownRedis) stop() {
	o.srv.Kill()
	os.RemoveAll(o.dir)
}
