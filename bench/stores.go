package main

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"fmt"
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
	// admin is a second client on the same server, not counted, for
	// INFO; nil unless rdb is set.
	admin *redis.Client
	// redisURL is the Redis the run uses, and redisDesc says which it is
	// ("" without Redis).
	redisURL, redisDesc string
	// prefix is the Redis key prefix of this run.
	prefix string
	// rc counts the Redis commands and round trips sent through rdb (a
	// go-redis hook); nil without Redis.
	rc *redisCounter
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
		url, desc, stopOwn, err := redisFor(cfg)
		if err != nil {
			return nil, err
		}
		opts, err := redis.ParseURL(url)
		if err != nil {
			stopOwn()
			return nil, fmt.Errorf("-redis %q: %w", url, err)
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
			stopOwn()
			return nil, fmt.Errorf("no Redis answers at %s: %w", url, err)
		}
		b.rc = new(redisCounter)
		rdb.AddHook(countHook{b.rc})
		b.rdb = rdb
		b.admin = redis.NewClient(&redis.Options{Addr: opts.Addr, Username: opts.Username, Password: opts.Password, DB: opts.DB, TLSConfig: opts.TLSConfig})
		b.redisURL, b.redisDesc = url, desc
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
			b.admin.Close()
			stopOwn()
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

// redisFor returns the Redis URL of a run and a description of it for the
// header: cfg.RedisURL when set, else a redis-server of the run's own (when
// redis-server is installed), else the loopback default. stop stops the
// server the run started, if any.
func redisFor(cfg Config) (url, desc string, stop func(), err error) {
	if cfg.RedisURL != "" {
		return cfg.RedisURL, "Redis at " + cfg.RedisURL + " (not started by this run: Redis CPU and cmdstat figures include any other client's work)", func() {}, nil
	}
	own, err := startOwnRedis()
	if err != nil {
		return "", "", nil, err
	}
	if own == nil {
		const def = "redis://127.0.0.1:6379/0"
		return def, "Redis at " + def + " (redis-server not installed, so none of the run's own; Redis CPU and cmdstat figures include other clients' work)", func() {}, nil
	}
	return own.url, "a redis-server of this run's own at " + own.url + " (no persistence, no other clients)", own.stop, nil
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
