package redisstore_test

import (
	"context"
	"net"
	"sync/atomic"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/typedsession/session/internal/testenv"
)

// cmdCounter is a go-redis hook that counts the commands a client sends,
// pipelined ones included, so that tests and benchmarks can tell how many
// commands a manager operation costs.
type cmdCounter struct {
	n atomic.Int64
}

func (c *cmdCounter) DialHook(next redis.DialHook) redis.DialHook { return next }

func (c *cmdCounter) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		c.n.Add(1)
		return next(ctx, cmd)
	}
}

func (c *cmdCounter) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		c.n.Add(int64(len(cmds)))
		return next(ctx, cmds)
	}
}

// countCommands adds a cmdCounter to client and returns it.
func countCommands(client *redis.Client) *cmdCounter {
	c := &cmdCounter{}
	client.AddHook(c)
	return c
}

// writeCounter is a go-redis hook that counts the writes on the client's
// connections: go-redis writes each command, or each pipeline, in one
// write, so the count is the number of round trips.
type writeCounter struct {
	n atomic.Int64
}

func (c *writeCounter) DialHook(next redis.DialHook) redis.DialHook {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		conn, err := next(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		return &countingConn{Conn: conn, n: &c.n}, nil
	}
}

func (c *writeCounter) ProcessHook(next redis.ProcessHook) redis.ProcessHook { return next }

func (c *writeCounter) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}

type countingConn struct {
	net.Conn
	n *atomic.Int64
}

func (c *countingConn) Write(b []byte) (int, error) {
	c.n.Add(1)
	return c.Conn.Write(b)
}

// countingClient returns a fresh client of the test server (REDIS_URL),
// with the recommended options, whose commands and round trips are
// counted from its first connection on; it is closed when tb ends.
func countingClient(tb testing.TB) (*redis.Client, *cmdCounter, *writeCounter) {
	tb.Helper()
	testenv.Redis(tb) // skips without a server
	opt, err := redis.ParseURL(testenv.RedisURL())
	if err != nil {
		tb.Fatal(err)
	}
	opt.ContextTimeoutEnabled = true
	client := redis.NewClient(opt)
	tb.Cleanup(func() { client.Close() })
	writes := &writeCounter{}
	client.AddHook(writes)
	return client, countCommands(client), writes
}
