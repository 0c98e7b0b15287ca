package redisstore

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/typedsession/session/internal/storeutil"
	"github.com/typedsession/session/store"
)

// This file holds the batch capabilities: many keys read, or many
// compare-and-swaps run, in one round trip. On a *redis.Client (one node,
// or a Sentinel failover client) a read of values is one MGET; on a
// *redis.ClusterClient or *redis.Ring, where one MGET cannot span slots, it
// is a pipeline of GETs, which go-redis splits by node and sends to every
// node at once. Writes are a pipeline of the compare-and-swap script.

// Compile-time checks of the batch capabilities.
var (
	_ store.BatchGetter    = (*Store)(nil)
	_ store.BatchTTLGetter = (*Store)(nil)
	_ store.BatchSwapper   = (*Store)(nil)
)

// ops of the batch methods, for errors.
const (
	opGetMany        = "get-many"
	opGetManyWithTTL = "get-many-with-ttl"
	opCASMany        = "compare-and-swap-many"
)

// checkMany refuses, before any I/O, a batch holding an invalid key or
// called with an ended ctx. It returns the error to return, naming the
// key at fault.
func checkMany(ctx context.Context, op string, n int, key func(int) string) error {
	for i := range n {
		if err := store.CheckKey(key(i)); err != nil {
			return storeutil.Wrap(backend, op, key(i), err)
		}
	}
	if err := ctx.Err(); err != nil {
		return storeutil.Wrap(backend, op, batchName(n, key), err)
	}
	return nil
}

// batchName names a batch in an error: its first key and how many others.
func batchName(n int, key func(int) string) string {
	if n == 0 {
		return ""
	}
	if n == 1 {
		return key(0)
	}
	return fmt.Sprintf("%s (and %d more keys)", key(0), n-1)
}

// mget reports whether one MGET can read any set of keys of this client:
// only a plain client talks to one server.
func (s *Store) mget() bool {
	_, ok := s.client.(*redis.Client)
	return ok
}

// GetMany returns the values of keys in one round trip: one MGET on a
// *redis.Client, a pipeline of GETs on a cluster or ring client (go-redis
// groups them by node and sends to the nodes concurrently). Element i is
// nil when keys[i] is absent. A read is safe to resend, so go-redis's own
// retries apply. A failure is one error for the whole batch.
func (s *Store) GetMany(ctx context.Context, keys []string) ([][]byte, error) {
	key := func(i int) string { return keys[i] }
	if err := checkMany(ctx, opGetMany, len(keys), key); err != nil {
		return nil, err
	}
	if len(keys) == 0 {
		return [][]byte{}, nil
	}
	out := make([][]byte, len(keys))
	if s.mget() {
		full := make([]string, len(keys))
		for i, k := range keys {
			full[i] = s.prefix + k
		}
		vals, err := s.client.MGet(ctx, full...).Result()
		if err != nil {
			return nil, wrap(ctx, opGetMany, batchName(len(keys), key), err)
		}
		if len(vals) != len(keys) {
			return nil, wrap(ctx, opGetMany, batchName(len(keys), key), fmt.Errorf("MGET of %d keys answered %d values", len(keys), len(vals)))
		}
		var nils []int
		for i, v := range vals {
			if out[i], err = mgetValue(v); err != nil {
				return nil, wrap(ctx, opGetMany, keys[i], err)
			}
			if out[i] == nil {
				nils = append(nils, i)
			}
		}
		if err := s.checkNils(ctx, opGetMany, keys, nils); err != nil {
			return nil, err
		}
		return out, nil
	}
	pipe := s.client.Pipeline()
	cmds := make([]*redis.StringCmd, len(keys))
	for i, k := range keys {
		cmds[i] = pipe.Get(ctx, s.prefix+k)
	}
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return nil, wrap(ctx, opGetMany, batchName(len(keys), key), err)
	}
	for i, c := range cmds {
		v, err := c.Result()
		switch {
		case err == redis.Nil:
		case err != nil:
			return nil, wrap(ctx, opGetMany, keys[i], err)
		default:
			out[i] = []byte(v)
		}
	}
	return out, nil
}

// checkNils tells, for the keys at nils to which MGET answered nil,
// whether each is absent or holds another kind of Redis value (a hash, a
// list): MGET answers nil for those too, where GET fails with WRONGTYPE,
// and a batch read must not report as absent what Get reports as damaged
// (see [store.Store]). It costs one more round trip, for a batch with
// such keys only, and returns an error matching store.ErrCorrupt that
// names the first key of another kind. A key that is a string by now was
// written after the MGET: absent when it was read.
func (s *Store) checkNils(ctx context.Context, op string, keys []string, nils []int) error {
	if len(nils) == 0 {
		return nil
	}
	pipe := s.client.Pipeline()
	types := make([]*redis.StatusCmd, len(nils))
	for j, i := range nils {
		types[j] = pipe.Type(ctx, s.prefix+keys[i])
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return wrap(ctx, op, batchName(len(nils), func(j int) string { return keys[nils[j]] }), err)
	}
	for j, c := range types {
		if typ := c.Val(); typ != "none" && typ != "string" {
			return storeutil.Wrap(backend, op, keys[nils[j]], wrongTypeError{fmt.Errorf("WRONGTYPE the key holds a Redis %s, not a string", typ)})
		}
	}
	return nil
}

// mgetValue maps one element of an MGET reply onto a value: nil for an
// absent key, a copy of the string otherwise.
func mgetValue(v any) ([]byte, error) {
	switch v := v.(type) {
	case nil:
		return nil, nil
	case string:
		return []byte(v), nil
	}
	return nil, fmt.Errorf("MGET answered a %T", v)
}

// GetManyWithTTL returns the values of keys and the time each has left,
// in one round trip: on a *redis.Client a pipeline of one MGET and one
// PTTL per key, on a cluster or ring client a pipeline of GET and PTTL per
// key. The PTTL of a key is read just after its value, not atomically
// with it (see [store.BatchTTLGetter]): a key that expired or was deleted
// in between reports 1 ms, and a key without expiry [store.NoExpiry].
func (s *Store) GetManyWithTTL(ctx context.Context, keys []string) ([][]byte, []time.Duration, error) {
	key := func(i int) string { return keys[i] }
	if err := checkMany(ctx, opGetManyWithTTL, len(keys), key); err != nil {
		return nil, nil, err
	}
	if len(keys) == 0 {
		return [][]byte{}, []time.Duration{}, nil
	}
	pipe := s.client.Pipeline()
	ttlCmds := make([]*redis.DurationCmd, len(keys))
	var mget *redis.SliceCmd
	var gets []*redis.StringCmd
	if s.mget() {
		full := make([]string, len(keys))
		for i, k := range keys {
			full[i] = s.prefix + k
		}
		mget = pipe.MGet(ctx, full...)
		for i, k := range full {
			ttlCmds[i] = pipe.PTTL(ctx, k)
		}
	} else {
		gets = make([]*redis.StringCmd, len(keys))
		for i, k := range keys {
			gets[i] = pipe.Get(ctx, s.prefix+k)
			ttlCmds[i] = pipe.PTTL(ctx, s.prefix+k)
		}
	}
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return nil, nil, wrap(ctx, opGetManyWithTTL, batchName(len(keys), key), err)
	}
	values := make([][]byte, len(keys))
	ttls := make([]time.Duration, len(keys))
	if mget != nil {
		vals, err := mget.Result()
		if err == nil && len(vals) != len(keys) {
			err = fmt.Errorf("MGET of %d keys answered %d values", len(keys), len(vals))
		}
		if err != nil {
			return nil, nil, wrap(ctx, opGetManyWithTTL, batchName(len(keys), key), err)
		}
		for i, v := range vals {
			if values[i], err = mgetValue(v); err != nil {
				return nil, nil, wrap(ctx, opGetManyWithTTL, keys[i], err)
			}
		}
	} else {
		for i, c := range gets {
			v, err := c.Result()
			switch {
			case err == redis.Nil:
			case err != nil:
				return nil, nil, wrap(ctx, opGetManyWithTTL, keys[i], err)
			default:
				values[i] = []byte(v)
			}
		}
	}
	var nils []int // MGET's nils of keys that PTTL found: absent, or of another kind
	for i, c := range ttlCmds {
		d, err := c.Result()
		if err != nil {
			return nil, nil, wrap(ctx, opGetManyWithTTL, keys[i], err)
		}
		switch {
		case values[i] != nil:
			ttls[i] = batchTTL(d)
		case mget != nil && d != -2:
			nils = append(nils, i)
		}
	}
	if err := s.checkNils(ctx, opGetManyWithTTL, keys, nils); err != nil {
		return nil, nil, err
	}
	return values, ttls, nil
}

// batchTTL maps a PTTL read after a value (go-redis gives -1 and -2 as
// they are, other replies in milliseconds as a duration) onto the time the
// value has left: -1 is [store.NoExpiry]; -2 (the key went away after its
// value was read) and anything below a millisecond is one millisecond, the
// least a value that was read can have had.
func batchTTL(d time.Duration) time.Duration {
	switch {
	case d == -1:
		return store.NoExpiry
	case d < time.Millisecond:
		return time.Millisecond
	}
	return d
}

// CompareAndSwapMany runs each swap as [Store.CompareAndSwap] does (the
// same Lua script, by EVALSHA), all in one pipeline: one round trip to
// each node the keys live on. Every command goes with go-redis's resends
// off (Cmder.NoRetry), and the store does not resend either: a swap whose
// reply was lost (a connection cut mid-pipeline, a timeout) gets an error
// in its result, never a false, and its outcome is open (see
// [store.SwapResult]). A script the server does not have yet (NOSCRIPT,
// after a restart: the script did not run) is sent again with EVAL, in a
// second round trip, for those swaps only. A server error reply (OOM, a key
// of another type) is the swap's error.
func (s *Store) CompareAndSwapMany(ctx context.Context, swaps []store.Swap) ([]store.SwapResult, error) {
	key := func(i int) string { return swaps[i].Key }
	if err := checkMany(ctx, opCASMany, len(swaps), key); err != nil {
		return nil, err
	}
	out := make([]store.SwapResult, len(swaps))
	todo := make([]int, len(swaps))
	for i := range todo {
		todo[i] = i
	}
	for _, name := range []string{"evalsha", "eval"} {
		if len(todo) == 0 {
			break
		}
		body := casScript.hash
		if name == "eval" {
			body = casScript.src
		}
		pipe := s.client.Pipeline()
		cmds := make([]*redis.Cmd, len(todo))
		for j, i := range todo {
			sw := swaps[i]
			value := sw.Value
			if value == nil {
				value = []byte{}
			}
			a := []any{name, body, 1, s.prefix + sw.Key, value, expiryMs(sw.TTL)}
			if sw.Old != nil {
				a = append(a, sw.Old)
			}
			cmds[j] = redis.NewCmd(ctx, a...)
			_ = pipe.Process(ctx, noRetryCmd{cmds[j]})
		}
		_, _ = pipe.Exec(ctx) // each command carries its own error
		var again []int
		for j, i := range todo {
			n, err := cmds[j].Int64()
			switch {
			case err == nil:
				out[i] = store.SwapResult{Swapped: n == 1}
			case name == "evalsha" && redis.HasErrorPrefix(err, "NOSCRIPT"):
				again = append(again, i) // the script did not run: send it whole
			default:
				out[i] = store.SwapResult{Err: wrap(ctx, opCASMany, swaps[i].Key, err)}
			}
		}
		todo = again
	}
	return out, nil
}
