package main

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"fmt"
	"sync/atomic"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // database/sql driver "pgx"
	"github.com/redis/go-redis/v9"

	"github.com/typedsession/session/store"
	"github.com/typedsession/session/store/memstore"
	"github.com/typedsession/session/store/redisstore"
	"github.com/typedsession/session/store/sqlstore"
)

// backend is the store under test and what the baseline uses to reach it.
type backend struct {
	name string
	st   store.Store
	// rdb is the go-redis client of the redis backend, nil otherwise.
	rdb *redis.Client
	// prefix is the Redis key prefix of this run.
	prefix string
	// cmds counts the Redis commands sent through rdb (a go-redis hook).
	cmds atomic.Int64
	// get and set are the hand-written baseline's two store calls: raw
	// GET and SET EX on Redis, the store's own Get and Set elsewhere.
	get   func(ctx context.Context, key string) ([]byte, error)
	set   func(ctx context.Context, key string, v []byte, ttl time.Duration) error
	close func()
}

func randomHex() string {
	var b [6]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func openBackend(ctx context.Context, cfg Config) (*backend, error) {
	b := &backend{name: cfg.Store}
	switch cfg.Store {
	case "memory":
		st, err := memstore.New(memstore.Options{})
		if err != nil {
			return nil, err
		}
		b.st, b.get, b.set = st, st.Get, st.Set
		b.close = func() { st.Close() }
	case "redis":
		opts, err := redis.ParseURL(cfg.RedisURL)
		if err != nil {
			return nil, fmt.Errorf("-redis %q: %w", cfg.RedisURL, err)
		}
		// Enough connections for the contention run and the HTTP
		// middleware, so that the pool never makes a case wait.
		opts.PoolSize = max(opts.PoolSize, cfg.Concurrency+8)
		opts.ContextTimeoutEnabled = true // the client configuration the README recommends
		rdb := redis.NewClient(opts)
		pctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		err = rdb.Ping(pctx).Err()
		cancel()
		if err != nil {
			rdb.Close()
			return nil, fmt.Errorf("no Redis answers at %s: %w", cfg.RedisURL, err)
		}
		rdb.AddHook(countHook{&b.cmds})
		b.rdb = rdb
		b.prefix = "tsbench:" + randomHex() + ":"
		b.st = redisstore.New(rdb, redisstore.Options{Prefix: b.prefix})
		b.get = func(ctx context.Context, key string) ([]byte, error) {
			return rdb.Get(ctx, b.prefix+key).Bytes()
		}
		b.set = func(ctx context.Context, key string, v []byte, ttl time.Duration) error {
			return rdb.Set(ctx, b.prefix+key, v, ttl).Err()
		}
		b.close = func() {
			deletePrefix(context.Background(), rdb, b.prefix)
			rdb.Close()
		}
	case "postgres":
		db, err := sql.Open("pgx", cfg.DatabaseURL)
		if err != nil {
			return nil, err
		}
		pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		err = db.PingContext(pctx)
		cancel()
		if err != nil {
			db.Close()
			return nil, fmt.Errorf("no PostgreSQL answers at the -database URL: %w", err)
		}
		db.SetMaxOpenConns(cfg.Concurrency + 8)
		db.SetMaxIdleConns(cfg.Concurrency + 8)
		table := "tsbench_" + randomHex()
		st, err := sqlstore.New(db, sqlstore.Options{Table: table})
		if err != nil {
			db.Close()
			return nil, err
		}
		b.st, b.get, b.set = st, st.Get, st.Set
		b.close = func() {
			st.Close()
			db.ExecContext(context.Background(), `DROP TABLE IF EXISTS "`+table+`"`)
			db.Close()
		}
	default:
		return nil, fmt.Errorf("-store %q: want memory, redis or postgres", cfg.Store)
	}
	return b, nil
}

// deletePrefix removes the keys this run left in Redis.
func deletePrefix(ctx context.Context, rdb *redis.Client, prefix string) {
	iter := rdb.Scan(ctx, 0, prefix+"*", 500).Iterator()
	var keys []string
	for iter.Next(ctx) {
		keys = append(keys, iter.Val())
	}
	for len(keys) > 0 {
		n := min(len(keys), 500)
		rdb.Del(ctx, keys[:n]...)
		keys = keys[n:]
	}
}

// countHook counts every command a go-redis client sends, one per command
// of a pipeline.
type countHook struct{ n *atomic.Int64 }

func (h countHook) DialHook(next redis.DialHook) redis.DialHook { return next }

func (h countHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		h.n.Add(1)
		return next(ctx, cmd)
	}
}

func (h countHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		h.n.Add(int64(len(cmds)))
		return next(ctx, cmds)
	}
}

// conflictCounter wraps a store that has every capability and counts the
// compare-and-swaps that found someone else's write: the conflicts that
// Update retried.
type conflictCounter struct {
	store.Store
	swapper   store.Swapper
	refresher store.Refresher
	toucher   store.Toucher
	conflicts atomic.Int64
}

func newConflictCounter(st store.Store) (*conflictCounter, error) {
	c := &conflictCounter{Store: st}
	var ok1, ok2, ok3 bool
	c.swapper, ok1 = st.(store.Swapper)
	c.refresher, ok2 = st.(store.Refresher)
	c.toucher, ok3 = st.(store.Toucher)
	if !ok1 || !ok2 || !ok3 {
		return nil, fmt.Errorf("store %T lacks a capability the contention run needs", st)
	}
	return c, nil
}

func (c *conflictCounter) CompareAndSwap(ctx context.Context, key string, old, value []byte, ttl time.Duration) (bool, error) {
	ok, err := c.swapper.CompareAndSwap(ctx, key, old, value, ttl)
	if err == nil && !ok {
		c.conflicts.Add(1)
	}
	return ok, err
}

func (c *conflictCounter) GetAndTouch(ctx context.Context, key string, ttl time.Duration) ([]byte, error) {
	return c.refresher.GetAndTouch(ctx, key, ttl)
}

func (c *conflictCounter) Touch(ctx context.Context, key string, ttl time.Duration) error {
	return c.toucher.Touch(ctx, key, ttl)
}
