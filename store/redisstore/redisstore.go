package redisstore

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/typedsession/session/internal/storeutil"
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

	// AutoPipeline sends a call through the client's automatic pipelining
	// (go-redis's AutoPipeline, experimental since go-redis v9.22) when
	// another call of this Store is in flight, and straight through the
	// client when it is the only one. Concurrent sessions then share
	// socket writes and reads: with 64 updates in flight, 0.03 round trips
	// per update instead of 2, and about a third of the client's and of
	// Redis's CPU per update (package doc, "Automatic pipelining"); a lone
	// call keeps the cost of a plain command. Every call that goes through
	// the pipeliner is sent with go-redis's resends off, and the store
	// resends it itself, so that the calls of concurrent updates stay in
	// one batch. A read with TTL that is pipelined runs as one Lua script
	// (GET and PTTL), so that it is one command in the batch. It needs a
	// *redis.Client, *redis.ClusterClient or *redis.Ring (New panics for
	// another client) and starts the client's pipeliner, which lives until
	// the client is closed. A client that is itself a *redis.AutoPipeliner
	// sends every call through it, lone ones too, with or without this
	// option. Default false.
	AutoPipeline bool
}

// Store is a [store.Store] backed by Redis. It also implements
// [store.Swapper], [store.Deleter], [store.Toucher], [store.Refresher],
// [store.TTLGetter] and [store.Scanner], and the batch forms
// [store.BatchGetter], [store.BatchTTLGetter] and [store.BatchSwapper].
// Every method that takes a key
// refuses, before any I/O and with an error matching [store.ErrInvalidKey],
// a key that [store.CheckKey] refuses; the limit of [store.MaxKeyLen]
// bytes applies to the key the caller passes, before Options.Prefix is
// put in front.
// It is safe for concurrent use; it holds no state of its own beyond its
// options, so the client's pool decides concurrency.
type Store struct {
	client redis.UniversalClient
	// ap is the client's auto-pipeliner (Options.AutoPipeline), or nil;
	// busy counts the calls in flight when ap is set. piped is true when
	// client is itself a *redis.AutoPipeliner: every call is batched.
	ap        redis.UniversalClient
	busy      atomic.Int64
	piped     bool
	prefix    string
	scanCount int64
	resend    resendPolicy // for CompareAndSwap and CompareAndDelete
}

// Compile-time checks that Store has every capability.
var (
	_ store.Store     = (*Store)(nil)
	_ store.Swapper   = (*Store)(nil)
	_ store.Toucher   = (*Store)(nil)
	_ store.Refresher = (*Store)(nil)
	_ store.Deleter   = (*Store)(nil)
	_ store.TTLGetter = (*Store)(nil)
	_ store.Scanner   = (*Store)(nil)
)

// New returns a store that keeps its keys in Redis through client, which
// may be a *redis.Client (single node, or a Sentinel failover client from
// redis.NewFailoverClient), a *redis.ClusterClient, a *redis.Ring or a
// client's *redis.AutoPipeliner (then every call is batched, as with
// Options.AutoPipeline but lone calls too; the store resends its calls
// under go-redis's default retry settings then: 3 resends, backing off from
// 10 ms to 1 s). The
// store does not own the client: closing it is the caller's job. New
// reads the client's retry settings once (MaxRetries, or MaxRedirects for
// a cluster client, and the retry backoffs): the store resends its
// conditional writes itself under them (see the package doc, "Lost
// replies"). Configure the client with ContextTimeoutEnabled: true, or
// ctx deadlines are not honoured while a reply is awaited (package doc,
// "Client options").
//
// New panics if client is nil (or a nil pointer).
func New(client redis.UniversalClient, opts Options) *Store {
	if client == nil || storeutil.NilInside(client) {
		// A nil *redis.Client is not a nil interface: without this it
		// panicked with a nil dereference in New.
		panic(fmt.Sprintf("redisstore: New called with a nil client (%T); pass a *redis.Client or *redis.ClusterClient", client))
	}
	n := int64(opts.ScanCount)
	if n <= 0 {
		n = DefaultScanCount
	}
	s := &Store{client: client, prefix: opts.Prefix, scanCount: n, resend: policyOf(client)}
	if _, ok := client.(*redis.AutoPipeliner); ok {
		s.piped = true // Options.AutoPipeline has nothing to add
	} else if opts.AutoPipeline {
		var err error
		switch c := client.(type) {
		case *redis.Client:
			s.ap, err = c.AutoPipeline()
		case *redis.ClusterClient:
			s.ap, err = c.AutoPipeline()
		case *redis.Ring:
			s.ap, err = c.AutoPipeline()
		default:
			err = fmt.Errorf("a %T has no AutoPipeline; pass a *redis.Client, *redis.ClusterClient or *redis.Ring", client)
		}
		if err != nil {
			panic("redisstore: Options.AutoPipeline: " + err.Error())
		}
	}
	return s
}

// enter starts a call and returns the client to send it through: the
// auto-pipeliner when another call is in flight, else the client. The call
// must end with leave.
func (s *Store) enter() redis.UniversalClient {
	if s.ap == nil {
		return s.client
	}
	if s.busy.Add(1) > 1 {
		return s.ap
	}
	return s.client
}

// leave ends a call that enter started.
func (s *Store) leave() {
	if s.ap != nil {
		s.busy.Add(-1)
	}
}

// batched reports whether a command sent through c may share a batch
// with other callers' commands: c is the auto-pipeliner, or the client is
// one.
func (s *Store) batched(c redis.UniversalClient) bool {
	return s.piped || (s.ap != nil && c == s.ap)
}

// The commands that [Store.do] sends with go-redis's resends off, beside
// noRetryCmd: one type each, a pointer in a struct, so that wrapping a
// command allocates nothing.
type (
	noRetryString struct{ *redis.StringCmd }
	noRetryStatus struct{ *redis.StatusCmd }
	noRetryInt    struct{ *redis.IntCmd }
	noRetryBool   struct{ *redis.BoolCmd }
)

func (noRetryString) NoRetry() bool { return true }
func (noRetryStatus) NoRetry() bool { return true }
func (noRetryInt) NoRetry() bool    { return true }
func (noRetryBool) NoRetry() bool   { return true }

// noRetry returns cmd with go-redis's resends off.
func noRetry(cmd redis.Cmder) redis.Cmder {
	switch c := cmd.(type) {
	case *redis.Cmd:
		return noRetryCmd{c}
	case *redis.StringCmd:
		return noRetryString{c}
	case *redis.StatusCmd:
		return noRetryStatus{c}
	case *redis.IntCmd:
		return noRetryInt{c}
	case *redis.BoolCmd:
		return noRetryBool{c}
	}
	panic(fmt.Sprintf("redisstore: no NoRetry form for a %T", cmd))
}

// do sends the command that mk builds through c and returns it. A command
// that may share a batch (see [Store.batched]) goes with go-redis's
// resends off, like every other command of the store there: go-redis
// splits a batch that mixes commands with and without resends into one
// round trip per run of alike commands, and the compare-and-swap script is
// always sent without them, so a read that kept them would cut the
// batch of every concurrent update in pieces. The store resends such a
// command itself instead, when its reply was lost, under the client's
// retry policy (at once, then with go-redis's backoff): a resend that is
// not batched goes through the client with go-redis's own resends, as
// without the pipeliner. The callers are the commands that are safe to
// resend (reads, PEXPIRE); the blind writes go through [Store.doOnce].
func (s *Store) do(ctx context.Context, c redis.UniversalClient, mk func() redis.Cmder) redis.Cmder {
	for attempt := 0; ; attempt++ {
		cmd := mk()
		if !s.batched(c) {
			_ = c.Process(ctx, cmd)
			return cmd
		}
		_ = c.Process(ctx, noRetry(cmd))
		if err := cmd.Err(); err == nil || err == redis.Nil || !s.again(ctx, attempt, err) {
			return cmd
		}
		c = s.client // resends go straight, never through a batch
	}
}

// doOnce sends a blind write (SET, DEL) that mk builds through c, with
// go-redis's resends off, and sends it again only after an attempt that
// cannot have reached the server (see resendable), under the client's
// retry policy: once it may have run, its lost reply is returned as the
// error. A blind write is not safe to resend (the write protocol of the
// session manager never resends one, and settles its lost reply by
// reading the key): if the first attempt ran and another writer then
// built on its outcome (a create "only if absent" after a DEL, a
// compare-and-swap from the value a SET wrote), the resend would undo
// that writer's acknowledged write.
func (s *Store) doOnce(ctx context.Context, c redis.UniversalClient, mk func() redis.Cmder) redis.Cmder {
	for attempt := 0; ; attempt++ {
		cmd := mk()
		_ = c.Process(ctx, noRetry(cmd))
		err := cmd.Err()
		if err == nil || err == redis.Nil {
			return cmd
		}
		if _, maybeSent := resendable(err); maybeSent || !s.again(ctx, attempt, err) {
			return cmd
		}
		c = s.client // resends go straight, never through a batch
	}
}

// ops are the operation names that errors carry.
const (
	opGet         = "get"
	opSet         = "set"
	opDelete      = "delete"
	opCAS         = "compare-and-swap"
	opCAD         = "compare-and-delete"
	opTouch       = "touch"
	opGetAndTouch = "get-and-touch"
	opGetWithTTL  = "get-with-ttl"
	opScan        = "scan"
)

// expiryMs maps a store ttl onto the PX that Redis gets, in milliseconds:
// 0 for "no expiry" (ttl <= 0), at least 1 (Redis's resolution) for a
// positive ttl, and never past [store.MaxExpiry] by the local clock, so a
// ttl up to the largest time.Duration leaves the key live after the write.
// (Redis itself takes a PX up to about 2^63 ms minus the time now; the
// clamp keeps every store's longest expiry the same.)
func expiryMs(ttl time.Duration) int64 {
	if ttl <= 0 {
		return 0
	}
	if ttl > maxPlainTTL {
		now := time.Now()
		ttl = store.Deadline(now, ttl).Sub(now)
	}
	if ms := ttl.Milliseconds(); ms > 0 {
		return ms
	}
	return 1
}

// maxPlainTTL is a ttl below which no clamping can be needed: the time
// from now to [store.MaxExpiry] is longer until the year 2100.
const maxPlainTTL = 100 * 365 * 24 * time.Hour

// check refuses an invalid key and an ended ctx before any I/O.
func check(ctx context.Context, op, key string) error {
	if err := store.CheckKey(key); err != nil {
		return storeutil.Wrap(backend, op, key, err)
	}
	if err := ctx.Err(); err != nil {
		return storeutil.Wrap(backend, op, key, err)
	}
	return nil
}

// backend is the name errors start with.
const backend = "redisstore"

// wrap builds the error of a failed operation, naming the operation and
// the key (shortened). When ctx has ended, the error matches ctx.Err()
// whatever the driver made of it (go-redis may report an i/o timeout for a
// deadline), as the store contract requires.
func wrap(ctx context.Context, op, key string, err error) error {
	if cerr := ctxErr(ctx); cerr != nil && !errors.Is(err, cerr) {
		err = fmt.Errorf("%w (%w)", cerr, err)
	}
	if isWrongType(err) {
		err = wrongTypeError{err}
	}
	return storeutil.Wrap(backend, op, key, err)
}

// isWrongType reports whether err is Redis's WRONGTYPE error: the key
// holds a hash, a list or another kind of value that is not a string.
func isWrongType(err error) bool {
	var re redis.Error
	return errors.As(err, &re) && strings.HasPrefix(re.Error(), "WRONGTYPE")
}

// wrongTypeError is a WRONGTYPE error that also matches store.ErrCorrupt:
// a key that holds another kind of Redis value (another program's hash
// under the store's prefix) is a value the store cannot read back, which
// every read reports alike (see [store.Store]). Its text is Redis's.
type wrongTypeError struct{ err error }

func (e wrongTypeError) Error() string   { return e.err.Error() }
func (e wrongTypeError) Unwrap() []error { return []error{store.ErrCorrupt, e.err} }

// ctxErr is ctx.Err(), or context.DeadlineExceeded once ctx's deadline has
// passed by the clock: with ContextTimeoutEnabled, go-redis puts that
// deadline on the socket, whose i/o timeout can come back a moment before
// ctx's own timer has marked ctx done.
func ctxErr(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if d, ok := ctx.Deadline(); ok && !time.Now().Before(d) {
		return context.DeadlineExceeded
	}
	return nil
}

// notFound is the error for an absent key: it matches store.ErrNotFound.
func notFound(op, key string) error {
	return storeutil.Wrap(backend, op, key, store.ErrNotFound)
}

// Get returns a copy of the value under key with GET. It returns an error
// matching [store.ErrNotFound] when the key is absent or expired,
// [store.ErrInvalidKey] for a key that [store.CheckKey] refuses, and any
// other failure (connection refused, timeout) as itself.
func (s *Store) Get(ctx context.Context, key string) ([]byte, error) {
	if err := check(ctx, opGet, key); err != nil {
		return nil, err
	}
	c := s.enter()
	defer s.leave()
	k := s.prefix + key
	v, err := s.do(ctx, c, func() redis.Cmder { return redis.NewStringCmd(ctx, "get", k) }).(*redis.StringCmd).Result()
	if err != nil {
		if err == redis.Nil {
			return nil, notFound(opGet, key)
		}
		return nil, wrap(ctx, opGet, key, err)
	}
	// A copy, never an alias of the reply string, so the caller may
	// mutate the slice.
	return []byte(v), nil
}

// Set stores value under key with SET. A ttl > 0 is sent as PX in
// milliseconds; a ttl <= 0 sends a plain SET, which also removes an expiry
// the key had.
// A SET whose reply was lost is not sent again (see [Store.doOnce]): the
// lost reply is returned as an error.
func (s *Store) Set(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	if err := check(ctx, opSet, key); err != nil {
		return err
	}
	if value == nil {
		value = []byte{}
	}
	k := s.prefix + key
	args := make([]any, 3, 5)
	args[0], args[1], args[2] = "set", k, value
	if ms := expiryMs(ttl); ms > 0 {
		args = append(args, "px", ms)
	}
	c := s.enter()
	defer s.leave()
	if err := s.doOnce(ctx, c, func() redis.Cmder { return redis.NewStatusCmd(ctx, args...) }).Err(); err != nil {
		return wrap(ctx, opSet, key, err)
	}
	return nil
}

// Delete removes key with DEL. An absent key is not an error. A DEL
// whose reply was lost is not sent again (see [Store.doOnce]): the lost
// reply is returned as an error, which the session manager settles by
// reading the key.
func (s *Store) Delete(ctx context.Context, key string) error {
	if err := check(ctx, opDelete, key); err != nil {
		return err
	}
	k := s.prefix + key
	c := s.enter()
	defer s.leave()
	if err := s.doOnce(ctx, c, func() redis.Cmder { return redis.NewIntCmd(ctx, "del", k) }).Err(); err != nil {
		return wrap(ctx, opDelete, key, err)
	}
	return nil
}

// CompareAndSwap stores value under key if the current value equals old
// (or, for a nil old, if the key is absent), in one round trip: one Lua
// script (EVALSHA, with EVAL as fallback) that compares and sets atomically
// on the server. A key that already holds value reports true and gets the
// ttl (the resend rule of [store.Swapper]). A swap whose reply was lost is
// resent by the store, not by go-redis; a resend that finds another value
// returns an error (the outcome is unknown), so false always means that
// the swap did not land. A swap "only if absent" (nil old) is not resent
// once an attempt may have reached the server: its lost reply is returned
// as an error. See the package doc, "Lost replies".
func (s *Store) CompareAndSwap(ctx context.Context, key string, old, value []byte, ttl time.Duration) (bool, error) {
	if err := check(ctx, opCAS, key); err != nil {
		return false, err
	}
	if value == nil {
		value = []byte{}
	}
	args := []any{value, expiryMs(ttl)}
	if old != nil {
		args = append(args, old)
	}
	c := s.enter()
	defer s.leave()
	n, lost, err := s.evalResend(ctx, c, casScript, s.prefix+key, old != nil, args...)
	switch {
	case err != nil && lost != nil && err != lost:
		return false, wrap(ctx, opCAS, key, afterLost(lost, err))
	case err != nil:
		return false, wrap(ctx, opCAS, key, err)
	case n == 1:
		return true, nil
	case lost != nil:
		return false, wrap(ctx, opCAS, key, fmt.Errorf("%w: %w", errResentConflict, lost))
	}
	return false, nil
}

// CompareAndDelete deletes key if its current value equals old, in one
// round trip (one Lua script: GET, compare, DEL). It reports true when
// this call deleted the key, false when the key holds another value (left
// as it is) or is absent. Like CompareAndSwap it is resent by the store,
// and a resend that does not delete (it finds another value or nothing:
// the first attempt may have landed) returns an error, not false.
func (s *Store) CompareAndDelete(ctx context.Context, key string, old []byte) (bool, error) {
	if err := check(ctx, opCAD, key); err != nil {
		return false, err
	}
	if old == nil {
		old = []byte{}
	}
	c := s.enter()
	defer s.leave()
	n, lost, err := s.evalResend(ctx, c, cadScript, s.prefix+key, true, old)
	switch {
	case err != nil && lost != nil && err != lost:
		return false, wrap(ctx, opCAD, key, afterLost(lost, err))
	case err != nil:
		return false, wrap(ctx, opCAD, key, err)
	case n == 1:
		return true, nil
	case lost != nil:
		return false, wrap(ctx, opCAD, key, fmt.Errorf("%w: %w", errResentConflict, lost))
	}
	return false, nil
}

// Touch sets key to expire after ttl with PEXPIRE; a ttl <= 0 removes the
// expiry with a short Lua script (EXISTS then PERSIST, one round trip). It
// returns an error matching [store.ErrNotFound] when the key is absent and
// never creates it.
func (s *Store) Touch(ctx context.Context, key string, ttl time.Duration) error {
	if err := check(ctx, opTouch, key); err != nil {
		return err
	}
	k := s.prefix + key
	c := s.enter()
	defer s.leave()
	var ok bool
	if ms := expiryMs(ttl); ms > 0 {
		r, err := s.do(ctx, c, func() redis.Cmder { return redis.NewBoolCmd(ctx, "pexpire", k, ms) }).(*redis.BoolCmd).Result()
		if err != nil {
			return wrap(ctx, opTouch, key, err)
		}
		ok = r
	} else {
		var n int64
		var err error
		for attempt := 0; ; attempt++ {
			n, err = s.eval(ctx, c, persistScript, k, s.batched(c)).Int64()
			if err == nil || !s.batched(c) || !s.again(ctx, attempt, err) {
				break
			}
			c = s.client // as do: resends go straight
		}
		if err != nil {
			return wrap(ctx, opTouch, key, err)
		}
		ok = n == 1
	}
	if !ok {
		return notFound(opTouch, key)
	}
	return nil
}

// GetAndTouch returns the value under key and, in the same command, sets it
// to expire after ttl: GETEX PX, or GETEX PERSIST
// when ttl <= 0. It requires Redis 6.2 or later.
func (s *Store) GetAndTouch(ctx context.Context, key string, ttl time.Duration) ([]byte, error) {
	if err := check(ctx, opGetAndTouch, key); err != nil {
		return nil, err
	}
	k := s.prefix + key
	var args []any
	if ms := expiryMs(ttl); ms > 0 {
		args = []any{"getex", k, "px", ms}
	} else {
		args = []any{"getex", k, "persist"}
	}
	c := s.enter()
	defer s.leave()
	v, err := s.do(ctx, c, func() redis.Cmder { return redis.NewStringCmd(ctx, args...) }).(*redis.StringCmd).Result()
	if err != nil {
		if err == redis.Nil {
			return nil, notFound(opGetAndTouch, key)
		}
		return nil, wrap(ctx, opGetAndTouch, key, err)
	}
	return []byte(v), nil
}

// GetWithTTL returns the value under key and the time it has left, at
// millisecond precision, in one round trip: a pipeline of GET and PTTL
// (two commands; see the package doc for why not MULTI/EXEC or a script).
// A key without expiry reports [store.NoExpiry]. It returns an error
// matching [store.ErrNotFound] when the key is absent or expired.
//
// The two reads are not atomic: a write that lands between them gives the
// time left of the newer value, and a key deleted or expired between them
// reports one millisecond. The time left is a hint for extending an
// expiry, which is how the session manager uses it; its writes are guarded
// by compare-and-swap against the value read, not by the TTL.
func (s *Store) GetWithTTL(ctx context.Context, key string) ([]byte, time.Duration, error) {
	if err := check(ctx, opGetWithTTL, key); err != nil {
		return nil, 0, err
	}
	k := s.prefix + key
	c := s.enter()
	defer s.leave()
	for attempt := 0; ; attempt++ {
		v, left, err := s.getWithTTL(ctx, c, k)
		switch {
		case err == nil:
			return []byte(v), pttl(left), nil
		case err == redis.Nil:
			return nil, 0, notFound(opGetWithTTL, key)
		case !s.again(ctx, attempt, err):
			return nil, 0, wrap(ctx, opGetWithTTL, key, err)
		}
		// Only reads: resending them is always safe (go-redis resends a
		// pipeline too; this covers what its policy leaves). Resends go
		// straight, never through a batch.
		c = s.client
	}
}

// getWithTTL sends GET k and PTTL k in one pipeline (through the
// auto-pipeliner, one script that runs both, without go-redis's resends
// like every batched command: see [Store.do]; GetWithTTL resends it) and
// returns the value (or redis.Nil) and the PTTL.
func (s *Store) getWithTTL(ctx context.Context, c redis.UniversalClient, k string) (string, time.Duration, error) {
	if s.batched(c) {
		r, err := s.eval(ctx, c, getTTLScript, k, true).Slice()
		if err != nil {
			return "", 0, err
		}
		if len(r) != 2 {
			return "", 0, fmt.Errorf("the read script answered %d values, want 2", len(r))
		}
		v, ok := r[0].(string)
		ms, _ := r[1].(int64)
		if !ok {
			return "", 0, redis.Nil
		}
		if ms >= 0 {
			ms *= int64(time.Millisecond)
		}
		return v, time.Duration(ms), nil
	}
	p := c.Pipeline()
	get := p.Get(ctx, k)
	left := p.PTTL(ctx, k)
	if _, err := p.Exec(ctx); err != nil && err != redis.Nil {
		return "", 0, err
	}
	v, err := get.Result()
	return v, left.Val(), err
}

// pttl maps the PTTL read after a value (go-redis gives it as a duration:
// -1 for no expiry, -2 for a key that is gone, the milliseconds left
// otherwise) onto a remaining TTL: -1 is [store.NoExpiry], and anything
// else below a millisecond (the key expired or was deleted just after the
// GET; the value read lived) is one millisecond, so that the caller sees
// it as near expiry.
func pttl(d time.Duration) time.Duration {
	switch {
	case d == -1:
		return store.NoExpiry
	case d < time.Millisecond:
		return time.Millisecond
	}
	return d
}

// Scan calls fn with every key under prefix (the store's Prefix removed),
// using SCAN with MATCH on the escaped Prefix+prefix followed by "*"; it
// never sends KEYS. On a *redis.ClusterClient it scans every master and on a
// *redis.Ring every shard, one after the other, so fn is never called
// concurrently. A key may be reported more than once (SCAN's guarantee);
// keys that move between cluster nodes during the scan may be missed.
// A key that store.CheckKey refuses (written by another program: not UTF-8,
// a NUL byte, too long) is not reported, since no method can reach it; a
// key that holds another kind of Redis value is, since every read reports
// it as store.ErrCorrupt. An error from fn stops the scan and is returned
// as it is.
func (s *Store) Scan(ctx context.Context, prefix string, fn func(key string) error) error {
	if err := ctx.Err(); err != nil {
		return wrap(ctx, opScan, prefix, err)
	}
	nodes, err := s.nodes(ctx)
	if err != nil {
		return wrap(ctx, opScan, prefix, err)
	}
	pattern := escapeGlob(s.prefix+prefix) + "*"
	for _, node := range nodes {
		if err := s.scanNode(ctx, node, pattern, fn); err != nil {
			var fe fnError
			if errors.As(err, &fe) {
				return fe.err
			}
			return wrap(ctx, opScan, prefix, err)
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
			if store.CheckKey(k[len(s.prefix):]) != nil {
				continue // written by other means: no method can reach it
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
