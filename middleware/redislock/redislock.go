package redislock

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/typedsession/session/internal/storeutil"
	"github.com/typedsession/session/middleware"
)

// Defaults of [Options].
const (
	// DefaultPrefix is put in front of every lock key (and release channel)
	// when [Options].Prefix is empty.
	DefaultPrefix = "typedsession:lock:"
	// DefaultLease is the lease of a lock when [Options].Lease is 0.
	DefaultLease = 10 * time.Second
	// DefaultPoll is the longest a waiter sleeps between two tries when no
	// release message wakes it, when [Options].Poll is 0.
	DefaultPoll = 250 * time.Millisecond
	// DefaultTimeout bounds each renewal and release when
	// [Options].Timeout is 0.
	DefaultTimeout = 5 * time.Second
	// DefaultMaxHandoffs is [Options].MaxHandoffs when it is 0.
	DefaultMaxHandoffs = 16
)

// ErrLeaseLost is reported to [Options].OnError when a renewal or the
// release finds that the lock no longer holds this holder's token: the
// lease expired (the process stalled longer than the lease, or Redis was
// unreachable for that long) and another replica may have taken the lock.
// The handler's save is then protected by compare-and-swap alone.
var ErrLeaseLost = errors.New("redislock: the lease expired before the lock was released")

// ErrClosed is returned by Lock after [Locker.Close].
var ErrClosed = errors.New("redislock: locker closed")

// Options configures a [Locker]. The zero value means the defaults.
type Options struct {
	// Prefix is put in front of the middleware's key to make the Redis key
	// of the lock; the releaser publishes on a channel of the same name.
	// Default [DefaultPrefix]. Give each middleware (namespace) sharing a
	// Redis its own prefix, or one Locker per middleware with different
	// prefixes, when their session keys may be equal.
	Prefix string

	// Lease is how long a lock outlives its holder's last renewal: the
	// longest a crashed replica keeps a key locked. It also bounds a
	// release's reservation for the first waiting process (see the package
	// documentation, # Fairness): a replica that crashes while waiting
	// keeps the key from the others at most that long. Zero or less
	// means [DefaultLease]; Redis counts it in milliseconds (at least
	// 1 ms).
	Lease time.Duration

	// Renew is the interval between renewals of a held lock, each of which
	// sets the lease to Lease again. 0 means Lease/3; a negative value
	// turns renewal off, so that Lease is a hard limit on how long one
	// update may hold the lock. A Renew of Lease or more makes New panic:
	// the lock would expire between two renewals.
	Renew time.Duration

	// Poll is the longest a waiter sleeps between two tries when no
	// release message wakes it (a message lost to a reconnection, a holder
	// that crashed and whose lease runs out: a waiter also wakes when the
	// holder's lease ends, if that is sooner). Zero or less means
	// [DefaultPoll].
	Poll time.Duration

	// Timeout bounds each renewal and each release, which run without the
	// update's context. Zero or less means [DefaultTimeout].
	Timeout time.Duration

	// MaxHandoffs is how many times in a row a lock held in Redis is
	// handed straight to the next update of this process waiting for the
	// same key, without being released and taken again in Redis. Each
	// handoff saves the release and the acquire (two round trips, and the
	// wait for the wake-up). After MaxHandoffs in a row the lock is
	// released in Redis, and if another process waits for it there,
	// reserved for the one that has waited longest (see the package
	// documentation, # Fairness): so a process that waits for a key is
	// overtaken by at most MaxHandoffs more updates of the process that
	// holds it. Default [DefaultMaxHandoffs]; a negative value releases it
	// after every update. A lock is never passed without renewal (Renew
	// below zero: the next update would get only what is left of the
	// lease) nor once its lease may have run out (a renewal failed or was
	// late).
	MaxHandoffs int

	// OnError, when set, hears of the errors that no caller receives: a
	// failed renewal or release (the lock then ends with its lease), and
	// [ErrLeaseLost]. key is the middleware's key, without Prefix. It is
	// called from the renewal timer's goroutine or from unlock, and must
	// not block for long.
	OnError func(key string, err error)
}

// Locker is a [middleware.Locker] that serializes the updates of one key
// across every process that shares a Redis and a Prefix. See the package
// documentation. It is safe for concurrent use. Create one with [New].
type Locker struct {
	c       redis.UniversalClient
	prefix  string
	leaseMS int64
	renew   time.Duration // <= 0: no renewal
	poll    time.Duration
	timeout time.Duration
	onError func(string, error)
	local   *middleware.LockTable
	passes  int    // MaxHandoffs, resolved
	pid     string // this Locker's place in the queues of Redis (see scripts.go)
	// enqueued, when set (by the tests, before any Lock), hears of every
	// try that found the key taken and left this Locker in its queue.
	enqueued func(key string)

	mu      sync.Mutex
	ps      *redis.PubSub      // started by the first waiter; nil before
	waiters map[string]*waiter // by Redis key: at most one per key (see local)
	queued  map[string]int     // by key: Lock calls waiting for the local lock
	passed  map[string]*held   // by key: a lock held in Redis, left for the next local holder
	closed  bool
}

// waiter is the one goroutine of this process waiting in Redis for a key.
type waiter struct {
	wake       chan struct{} // capacity 1: a release (or a resubscription) was seen
	subscribed chan struct{} // capacity 1: the SUBSCRIBE was confirmed
}

// New returns a Locker on client: a *redis.Client (a single node, or
// Sentinel failover) or a *redis.ClusterClient. Its subscription for
// wake-ups is opened by the first Lock that has to wait; [Locker.Close]
// closes it. New panics if client is nil (or a nil pointer) or
// Options.Renew is not below Options.Lease.
func New(client redis.UniversalClient, opts Options) *Locker {
	if client == nil || storeutil.NilInside(client) {
		panic(fmt.Sprintf("session/middleware/redislock: nil client (%T); pass a *redis.Client or *redis.ClusterClient", client))
	}
	l := &Locker{
		c:       client,
		prefix:  opts.Prefix,
		renew:   opts.Renew,
		poll:    opts.Poll,
		timeout: opts.Timeout,
		onError: opts.OnError,
		local:   middleware.NewLockTable(),
		waiters: make(map[string]*waiter),
		queued:  make(map[string]int),
		passed:  make(map[string]*held),
		passes:  opts.MaxHandoffs,
		pid:     randomHex(8),
	}
	if l.passes == 0 {
		l.passes = DefaultMaxHandoffs
	}
	if l.prefix == "" {
		l.prefix = DefaultPrefix
	}
	lease := opts.Lease
	if lease <= 0 {
		lease = DefaultLease
	}
	l.leaseMS = max(int64(lease/time.Millisecond), 1)
	if l.renew == 0 {
		l.renew = lease / 3
	}
	if l.renew >= lease {
		panic(fmt.Sprintf("session/middleware/redislock: Options.Renew (%v) is not below Options.Lease (%v): the lock would expire between two renewals; leave Renew 0 (Lease/3)", l.renew, lease))
	}
	if l.poll <= 0 {
		l.poll = DefaultPoll
	}
	if l.timeout <= 0 {
		l.timeout = DefaultTimeout
	}
	return l
}

// Lock takes key's lock: first in this process's [middleware.LockTable],
// so that one process never has two goroutines waiting in Redis for one
// key, then in Redis. It waits until the lock is free or ctx ends; then
// it returns ctx.Err() (or a Redis error, wrapped) and holds nothing.
// The returned unlock releases the lock in Redis at once (publishing the
// release to waiters of every replica) and then locally, unless another
// Lock of this process waits for the key: then, up to
// [Options].MaxHandoffs times in a row, the lock stays held in Redis and
// passes to that one. Call unlock exactly once.
func (l *Locker) Lock(ctx context.Context, key string) (func(), error) {
	unlock, _, err := l.lockHandoff(ctx, key)
	return unlock, err
}

// lockHandoff is Lock, and reports whether the lock was handed on from the
// previous holder of this process without being released in Redis, so
// that no other process can have held it in between.
func (l *Locker) lockHandoff(ctx context.Context, key string) (func(), bool, error) {
	l.mu.Lock()
	l.queued[key]++
	l.mu.Unlock()
	unlockLocal, err := l.local.Lock(ctx, key)
	l.mu.Lock()
	if l.queued[key]--; l.queued[key] == 0 {
		delete(l.queued, key)
	}
	h := l.passed[key]
	var orphan *held
	switch {
	case h != nil && err == nil:
		delete(l.passed, key)
	case h != nil && l.queued[key] == 0:
		// The lock was left for the waiters, and the last of them gave
		// up: nobody will take it.
		delete(l.passed, key)
		orphan, h = h, nil
	}
	l.mu.Unlock()
	if orphan != nil {
		orphan.release()
	}
	if err != nil {
		return nil, false, err
	}
	if h != nil {
		h.mu.Lock()
		h.unlockLocal = unlockLocal
		h.runs++
		h.mu.Unlock()
		return h.unlock, true, nil
	}
	h = &held{l: l, key: key, rkey: l.prefix + key, token: l.pid + "." + randomHex(16), unlockLocal: unlockLocal, runs: 1}
	if err := l.acquire(ctx, h); err != nil {
		unlockLocal()
		return nil, false, err
	}
	if l.renew > 0 {
		h.mu.Lock()
		h.timer = time.AfterFunc(l.renew, h.renewLease)
		h.mu.Unlock()
	}
	return h.unlock, false, nil
}

// acquire takes h's key in Redis, waiting for a release message, the end
// of the holder's lease, or Poll, whichever comes first. A try that finds
// the lock taken puts this process in the key's queue (see scripts.go);
// one that gives up takes it out again.
func (l *Locker) acquire(ctx context.Context, h *held) (err error) {
	pttl, err := l.try(ctx, h)
	if err != nil || pttl == 0 {
		if err != nil {
			l.leave(h)
		}
		return err
	}
	defer func() {
		if err != nil {
			l.leave(h)
		}
	}()
	w, err := l.subscribe(ctx, h.rkey)
	if err != nil {
		return err
	}
	defer l.unsubscribe(h.rkey)
	timer := time.NewTimer(l.poll)
	defer timer.Stop()
	for {
		// Subscribed now (or given up waiting for the confirmation):
		// every release from here on wakes us, so try again first.
		pttl, err := l.try(ctx, h)
		if err != nil || pttl == 0 {
			return err
		}
		d := l.poll
		if pttl > 0 && time.Duration(pttl+1)*time.Millisecond < d {
			d = time.Duration(pttl+1) * time.Millisecond
		}
		timer.Reset(d)
		select {
		case <-w.wake:
		case <-timer.C:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// try runs the acquire script once: 0 means taken; otherwise the lock's
// remaining lease in milliseconds (-1: a key without expiry, which this
// package never writes), and this process is in the key's queue.
func (l *Locker) try(ctx context.Context, h *held) (int64, error) {
	start := time.Now()
	n, err := acquireScript.Run(ctx, l.c, []string{h.rkey}, h.token, l.leaseMS, l.pid).Int64()
	if err != nil {
		if cerr := ctxErr(ctx); cerr != nil {
			return 0, cerr
		}
		return 0, fmt.Errorf("redislock: lock %q: %w", h.key, err)
	}
	if n == 0 {
		h.mu.Lock()
		h.until = start.Add(l.lease())
		h.mu.Unlock()
		return 0, nil
	}
	if l.enqueued != nil {
		l.enqueued(h.key)
	}
	if n < 0 {
		return -1, nil
	}
	return n, nil
}

// ctxErr is ctx.Err(), or context.DeadlineExceeded once ctx's deadline
// has passed by the clock: with ContextTimeoutEnabled, go-redis puts that
// deadline on the socket, whose i/o timeout can come back a moment before
// ctx's own timer has marked ctx done (TestExpiredUnlockSparesNewHolder
// met it once in 300 runs under -race).
func ctxErr(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if d, ok := ctx.Deadline(); ok && !time.Now().Before(d) {
		return context.DeadlineExceeded
	}
	return nil
}

// leave takes this process out of h's key's queue, after a wait that gave
// up (ctx ended, or Redis failed), so that a release does not reserve the
// key for a process that no longer waits; a reservation made for it
// already passes on. If Redis cannot be told, the reservation ends with its
// Lease, as a crashed waiter's does.
func (l *Locker) leave(h *held) {
	ctx, cancel := context.WithTimeout(context.Background(), l.timeout)
	defer cancel()
	if err := leaveScript.Run(ctx, l.c, []string{h.rkey}, l.pid, l.leaseMS).Err(); err != nil {
		l.report(h.key, fmt.Errorf("redislock: leaving the queue (a reservation for this process ends with its lease): %w", err))
	}
}

// subscribe registers the waiter of rkey and subscribes to its channel,
// waiting (at most Poll, or until ctx ends) for Redis to confirm, so that
// a release after the next try cannot be missed.
func (l *Locker) subscribe(ctx context.Context, rkey string) (*waiter, error) {
	w := &waiter{wake: make(chan struct{}, 1), subscribed: make(chan struct{}, 1)}
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return nil, ErrClosed
	}
	if l.ps == nil {
		l.ps = l.c.Subscribe(context.Background())
		go l.dispatch(l.ps.ChannelWithSubscriptions())
	}
	ps := l.ps
	l.waiters[rkey] = w
	l.mu.Unlock()
	if err := ps.Subscribe(ctx, rkey); err != nil {
		// The poll still wakes us; go-redis resubscribes on reconnection.
		if ctx.Err() == nil {
			l.report(rkey[len(l.prefix):], fmt.Errorf("redislock: subscribe: %w", err))
		}
		return w, nil
	}
	t := time.NewTimer(l.poll)
	defer t.Stop()
	select {
	case <-w.subscribed:
	case <-t.C:
	case <-ctx.Done():
	}
	// The confirmation also pokes wake (see dispatch); the try that
	// follows makes that poke redundant.
	select {
	case <-w.wake:
	default:
	}
	return w, nil
}

func (l *Locker) unsubscribe(rkey string) {
	l.mu.Lock()
	delete(l.waiters, rkey)
	ps := l.ps
	l.mu.Unlock()
	if ps != nil {
		_ = ps.Unsubscribe(context.Background(), rkey)
	}
}

// dispatch hands each release message, and each subscription confirmation
// (a resubscription after a reconnection too, when messages may have been
// lost), to the waiter of its channel.
func (l *Locker) dispatch(ch <-chan any) {
	for m := range ch {
		var channel string
		confirm := false
		switch m := m.(type) {
		case *redis.Message:
			channel = m.Channel
		case *redis.Subscription:
			if m.Kind != "subscribe" {
				continue
			}
			channel, confirm = m.Channel, true
		default:
			continue
		}
		l.mu.Lock()
		w := l.waiters[channel]
		l.mu.Unlock()
		if w == nil {
			continue
		}
		if confirm {
			select {
			case w.subscribed <- struct{}{}:
			default:
			}
		}
		select {
		case w.wake <- struct{}{}:
		default:
		}
	}
}

// Close closes the subscription that wakes waiters. Locks held at Close
// stay held until their unlock; a Lock after Close that has to wait returns
// [ErrClosed]. Close does not close the client.
func (l *Locker) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return nil
	}
	l.closed = true
	if l.ps != nil {
		return l.ps.Close()
	}
	return nil
}

// lease returns Lease, as resolved.
func (l *Locker) lease() time.Duration { return time.Duration(l.leaseMS) * time.Millisecond }

func (l *Locker) report(key string, err error) {
	if l.onError != nil {
		l.onError(key, err)
	}
}

// held is one lock held in Redis.
type held struct {
	l           *Locker
	key, rkey   string
	token       string
	unlockLocal func()

	mu    sync.Mutex
	timer *time.Timer // renewal; nil without renewal
	done  bool        // the release has begun: no more renewals
	lost  bool        // a renewal found the lock gone
	runs  int         // holders so far: 1 + the handoffs
	// until is when the lease ends at the earliest, as far as this
	// process knows: the start of the last successful acquire or renewal,
	// plus Lease. A lock is passed on only before then, since after it
	// another process may hold the key in Redis.
	until time.Time
}

// renewLease runs on the renewal timer: it sets the lease to Lease again
// if the lock still holds our token, and arms the timer for the next one.
func (h *held) renewLease() {
	l := h.l
	ctx, cancel := context.WithTimeout(context.Background(), l.timeout)
	start := time.Now()
	n, err := renewScript.Run(ctx, l.c, []string{h.rkey}, h.token, l.leaseMS).Int()
	cancel()
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.done {
		return
	}
	switch {
	case err != nil:
		// Try again at the next interval: the lease has room for two
		// more tries with the default Renew.
		l.report(h.key, fmt.Errorf("redislock: renew: %w", err))
	case n == 0:
		h.lost = true
		l.report(h.key, ErrLeaseLost)
		return
	default:
		h.until = start.Add(l.lease())
	}
	h.timer.Reset(l.renew)
}

// unlock hands the lock, still held in Redis, to the next Lock of this
// process waiting for the key, if there is one and the handoffs allow;
// otherwise it releases the lock in Redis and then locally. A lock is
// never passed once its lease may have ended (a renewal found it gone, or
// the last successful acquire or renewal began a Lease ago or more), since
// another process may hold it in Redis by then; nor without renewal, where
// Lease is the limit of one update and a passed lock would give the next
// update only what is left of it.
func (h *held) unlock() {
	l := h.l
	h.mu.Lock()
	pass := !h.lost && h.runs <= l.passes && l.renew > 0 && time.Now().Before(h.until)
	unlockLocal := h.unlockLocal
	h.mu.Unlock()
	if pass {
		l.mu.Lock()
		pass = l.queued[h.key] > 0 && !l.closed
		if pass {
			l.passed[h.key] = h
		}
		l.mu.Unlock()
		if pass {
			unlockLocal()
			return
		}
	}
	h.release()
	unlockLocal()
}

// release stops the renewals and releases the lock in Redis if it still
// holds our token (publishing the release).
func (h *held) release() {
	h.mu.Lock()
	h.done = true
	if h.timer != nil {
		h.timer.Stop()
	}
	h.mu.Unlock()
	l := h.l
	ctx, cancel := context.WithTimeout(context.Background(), l.timeout)
	n, err := releaseScript.Run(ctx, l.c, []string{h.rkey}, h.token, l.leaseMS).Int()
	cancel()
	switch {
	case err != nil:
		l.report(h.key, fmt.Errorf("redislock: release (the lock ends with its lease): %w", err))
	case n == 0:
		l.report(h.key, ErrLeaseLost)
	}
}

// randomHex returns n random bytes in hex: a Locker's process ID (8
// bytes), and the random part of a holder's token (16 bytes), which
// renewals and the release check.
func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b) // never fails (crypto/rand)
	return hex.EncodeToString(b)
}
