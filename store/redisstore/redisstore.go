package redisstore

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/typedsession/session/store"
)

// DefaultScanCount is the COUNT hint that Scan sends with each SCAN when
// Options.ScanCount is zero.
const DefaultScanCount = 100

// Options configures a [Store]. The zero value is valid and means defaults.
type Options struct {
	// Prefix is put in front of every key: the caller's key "k" lives in
	// Redis as Prefix+"k". Scan reports keys with Prefix removed and sees
	// only keys under Prefix. Default: "" (keys are stored as given and Scan
	// covers the whole database).
	Prefix string

	// ScanCount is the COUNT hint given to each SCAN call: how much work
	// the server does per round trip. It changes neither which keys Scan
	// reports nor their number. Default (zero or less): DefaultScanCount.
	ScanCount int
}

// Store is a [store.Store] backed by Redis. It also implements
// [store.Swapper], [store.Toucher], [store.Refresher] and [store.Scanner].
// It is safe for concurrent use; it holds no state of its own beyond its
// options, so the client's pool decides concurrency.
type Store struct {
	client    redis.UniversalClient
	prefix    string
	scanCount int64
}

// Compile-time checks that Store has every capability.
var (
	_ store.Store     = (*Store)(nil)
	_ store.Swapper   = (*Store)(nil)
	_ store.Toucher   = (*Store)(nil)
	_ store.Refresher = (*Store)(nil)
	_ store.Scanner   = (*Store)(nil)
)

// New returns a store that keeps its keys in Redis through client, which
// may be a *redis.Client (single node, or a Sentinel failover client from
// redis.NewFailoverClient), a *redis.ClusterClient or a *redis.Ring. The
// store does not own the client: closing it is the caller's job.
//
// New panics if client is nil.
func New(client redis.UniversalClient, opts Options) *Store {
	if client == nil {
		panic("redisstore: New called with a nil client; pass a *redis.Client or *redis.ClusterClient")
	}
	n := int64(opts.ScanCount)
	if n <= 0 {
		n = DefaultScanCount
	}
	return &Store{client: client, prefix: opts.Prefix, scanCount: n}
}

// casScript replaces KEYS[1] with ARGV[2] if its current value equals
// ARGV[1] byte for byte, with a PX of ARGV[3] milliseconds when that is
// positive and no expiry otherwise. An absent key (GET gives false) never
// equals a string, so a non-nil old never matches an absent key, and an
// empty old matches only a stored empty string. It is created once; Run
// sends EVALSHA and falls back to EVAL when the server does not know it.
var casScript = redis.NewScript(`
local cur = redis.call('GET', KEYS[1])
if cur ~= ARGV[1] then return 0 end
local ms = tonumber(ARGV[3])
if ms > 0 then
  redis.call('SET', KEYS[1], ARGV[2], 'PX', ms)
else
  redis.call('SET', KEYS[1], ARGV[2])
end
return 1
`)

// persistScript removes the expiry of KEYS[1] and returns 1 when the key
// exists, 0 otherwise. PERSIST alone answers 0 both for an absent key and
// for a key without expiry, which Touch must tell apart.
var persistScript = redis.NewScript(`
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('PERSIST', KEYS[1])
return 1
`)

// expiry maps a store ttl onto what go-redis expects: 0 for "no expiry"
// (a negative duration would mean KEEPTTL to go-redis, which is not the
// store contract), and at least one millisecond otherwise, Redis's
// resolution.
func expiry(ttl time.Duration) time.Duration {
	switch {
	case ttl <= 0:
		return 0
	case ttl < time.Millisecond:
		return time.Millisecond
	}
	return ttl
}

// wrap builds the error of a failed operation. When ctx has ended, the
// error matches ctx.Err() whatever the driver made of it (go-redis may
// report an i/o timeout for a deadline), as the store contract requires.
func wrap(ctx context.Context, op, key string, err error) error {
	if cerr := ctx.Err(); cerr != nil && !errors.Is(err, cerr) {
		return fmt.Errorf("redisstore: %s %q: %w (%w)", op, key, cerr, err)
	}
	return fmt.Errorf("redisstore: %s %q: %w", op, key, err)
}

// notFound is the error for an absent key: it matches store.ErrNotFound.
func notFound(op, key string) error {
	return fmt.Errorf("redisstore: %s %q: %w", op, key, store.ErrNotFound)
}

// Get returns a copy of the value under key with GET. It returns an error
// matching [store.ErrNotFound] when the key is absent or expired, and any
// other failure (connection refused, timeout) as itself.
func (s *Store) Get(ctx context.Context, key string) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, wrap(ctx, "get", key, err)
	}
	v, err := s.client.Get(ctx, s.prefix+key).Result()
	if err != nil {
		if err == redis.Nil {
			return nil, notFound("get", key)
		}
		return nil, wrap(ctx, "get", key, err)
	}
	// A copy, never an alias of the reply string, so the caller may
	// mutate the slice.
	return []byte(v), nil
}

// Set stores value under key with SET. A ttl > 0 is sent as PX (go-redis
// uses EX when ttl is a whole number of seconds, which is the same);
// a ttl <= 0 sends a plain SET, which also removes an expiry the key had.
func (s *Store) Set(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	if err := ctx.Err(); err != nil {
		return wrap(ctx, "set", key, err)
	}
	if value == nil {
		value = []byte{}
	}
	if err := s.client.Set(ctx, s.prefix+key, value, expiry(ttl)).Err(); err != nil {
		return wrap(ctx, "set", key, err)
	}
	return nil
}

// Delete removes key with DEL. An absent key is not an error.
func (s *Store) Delete(ctx context.Context, key string) error {
	if err := ctx.Err(); err != nil {
		return wrap(ctx, "delete", key, err)
	}
	if err := s.client.Del(ctx, s.prefix+key).Err(); err != nil {
		return wrap(ctx, "delete", key, err)
	}
	return nil
}

// CompareAndSwap stores value under key if the current value equals old,
// in one round trip. A nil old means "only if absent" and sends SET NX
// (with PX when ttl > 0); a non-nil old runs a Lua script (EVALSHA, with
// EVAL as fallback) that compares and sets atomically on the server.
func (s *Store) CompareAndSwap(ctx context.Context, key string, old, value []byte, ttl time.Duration) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, wrap(ctx, "compare-and-swap", key, err)
	}
	if value == nil {
		value = []byte{}
	}
	k := s.prefix + key
	if old == nil {
		ok, err := s.client.SetNX(ctx, k, value, expiry(ttl)).Result()
		if err != nil {
			return false, wrap(ctx, "compare-and-swap", key, err)
		}
		return ok, nil
	}
	n, err := casScript.Run(ctx, s.client, []string{k}, old, value, expiry(ttl).Milliseconds()).Int64()
	if err != nil {
		return false, wrap(ctx, "compare-and-swap", key, err)
	}
	return n == 1, nil
}

// Touch sets key to expire after ttl with PEXPIRE; a ttl <= 0 removes the
// expiry with a short Lua script (EXISTS then PERSIST, one round trip). It
// returns an error matching [store.ErrNotFound] when the key is absent and
// never creates it.
func (s *Store) Touch(ctx context.Context, key string, ttl time.Duration) error {
	if err := ctx.Err(); err != nil {
		return wrap(ctx, "touch", key, err)
	}
	k := s.prefix + key
	var ok bool
	if ttl > 0 {
		r, err := s.client.PExpire(ctx, k, expiry(ttl)).Result()
		if err != nil {
			return wrap(ctx, "touch", key, err)
		}
		ok = r
	} else {
		n, err := persistScript.Run(ctx, s.client, []string{k}).Int64()
		if err != nil {
			return wrap(ctx, "touch", key, err)
		}
		ok = n == 1
	}
	if !ok {
		return notFound("touch", key)
	}
	return nil
}

// GetAndTouch returns the value under key and, in the same command, sets it
// to expire after ttl: GETEX PX (EX for whole seconds), or GETEX PERSIST
// when ttl <= 0. It requires Redis 6.2 or later.
func (s *Store) GetAndTouch(ctx context.Context, key string, ttl time.Duration) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, wrap(ctx, "get-and-touch", key, err)
	}
	v, err := s.client.GetEx(ctx, s.prefix+key, expiry(ttl)).Result()
	if err != nil {
		if err == redis.Nil {
			return nil, notFound("get-and-touch", key)
		}
		return nil, wrap(ctx, "get-and-touch", key, err)
	}
	return []byte(v), nil
}

// Scan calls fn with every key under prefix (the store's Prefix removed),
// using SCAN with MATCH on the escaped Prefix+prefix followed by "*"; it
// never sends KEYS. On a *redis.ClusterClient it scans every master and on a
// *redis.Ring every shard, one after the other, so fn is never called
// concurrently. A key may be reported more than once (SCAN's guarantee);
// keys that move between cluster nodes during the scan may be missed.
// An error from fn stops the scan and is returned as it is.
func (s *Store) Scan(ctx context.Context, prefix string, fn func(key string) error) error {
	if err := ctx.Err(); err != nil {
		return wrap(ctx, "scan", prefix, err)
	}
	nodes, err := s.nodes(ctx)
	if err != nil {
		return wrap(ctx, "scan", prefix, err)
	}
	pattern := escapeGlob(s.prefix+prefix) + "*"
	for _, node := range nodes {
		if err := s.scanNode(ctx, node, pattern, fn); err != nil {
			var fe fnError
			if errors.As(err, &fe) {
				return fe.err
			}
			return wrap(ctx, "scan", prefix, err)
		}
	}
	return nil
}

// fnError marks an error that came from the caller's fn, so that Scan
// returns it without wrapping.
type fnError struct{ err error }

func (e fnError) Error() string { return e.err.Error() }

func (s *Store) scanNode(ctx context.Context, node redis.Cmdable, pattern string, fn func(string) error) error {
	var cursor uint64
	for {
		keys, next, err := node.Scan(ctx, cursor, pattern, s.scanCount).Result()
		if err != nil {
			return err
		}
		for _, k := range keys {
			if err := ctx.Err(); err != nil {
				return err
			}
			// MATCH guarantees the prefix; the check guards against a
			// server that ignores it.
			if !strings.HasPrefix(k, s.prefix) {
				continue
			}
			if err := fn(k[len(s.prefix):]); err != nil {
				return fnError{err}
			}
		}
		if next == 0 {
			return nil
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		cursor = next
	}
}

// nodes lists the servers that hold the store's keys: every master of a
// cluster, every shard of a ring, or the client itself.
func (s *Store) nodes(ctx context.Context) ([]redis.Cmdable, error) {
	var (
		mu    sync.Mutex
		nodes []redis.Cmdable
	)
	collect := func(_ context.Context, c *redis.Client) error {
		mu.Lock()
		nodes = append(nodes, c)
		mu.Unlock()
		return nil
	}
	switch c := s.client.(type) {
	case *redis.ClusterClient:
		// ForEachMaster calls collect concurrently; the scan itself runs
		// afterwards, one master at a time.
		if err := c.ForEachMaster(ctx, collect); err != nil {
			return nil, err
		}
	case *redis.Ring:
		if err := c.ForEachShard(ctx, collect); err != nil {
			return nil, err
		}
	default:
		nodes = append(nodes, s.client)
	}
	return nodes, nil
}

// escapeGlob escapes the characters that are special in a Redis MATCH
// pattern (*, ?, [, ] and \) so that s matches only itself.
func escapeGlob(s string) string {
	if !strings.ContainsAny(s, `*?[]\`) {
		return s
	}
	var b strings.Builder
	b.Grow(len(s) + 8)
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '*', '?', '[', ']', '\\':
			b.WriteByte('\\')
			b.WriteByte(c)
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}
