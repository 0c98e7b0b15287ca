package redisstore_test

import (
	"context"
	"sync/atomic"

	"github.com/redis/go-redis/v9"
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
