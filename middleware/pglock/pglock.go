package pglock

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/typedsession/session/middleware"
)

// Defaults of [Options].
const (
	// DefaultClass is the first integer of every advisory lock this
	// package takes (pg_try_advisory_lock(class, key)), when
	// [Options].Class is 0: the bytes "tses" read as a big-endian int32.
	// An application's own advisory locks of the two-integer form with
	// another first integer, and all of the one-bigint form, never collide
	// with ours.
	DefaultClass int32 = 0x74736573
	// DefaultChannel is the NOTIFY channel of releases when
	// [Options].Channel is empty.
	DefaultChannel = "typedsession_lock"
	// DefaultMaxConns caps the pool connections the locks use at once when
	// [Options].MaxConns is 0 and the pool has 16 connections or more;
	// on a smaller pool the default is half the pool's MaxConns (see
	// [Options].MaxConns).
	DefaultMaxConns = 8
	// DefaultPoll is the longest a waiter sleeps between two tries when no
	// notification wakes it, when [Options].Poll is 0.
	DefaultPoll = 250 * time.Millisecond
	// DefaultTimeout bounds each release when [Options].Timeout is 0.
	DefaultTimeout = 5 * time.Second
)

// ErrClosed is returned by Lock after [Locker.Close].
var ErrClosed = errors.New("pglock: locker closed")

// Options configures a [Locker]. The zero value means the defaults.
type Options struct {
	// Class is the first integer of the two-integer advisory lock; the
	// second is a 32-bit hash of the middleware's key. 0 means
	// [DefaultClass]. Give middleware (namespaces) that share a database
	// and may use equal keys different classes.
	Class int32

	// Channel is the channel on which a release is announced with
	// pg_notify, and which waiters LISTEN on. Default [DefaultChannel].
	// Lockers of different Class may share it. At most 63 bytes (New
	// panics otherwise: pg_notify refuses a longer one).
	Channel string

	// MaxConns caps the connections of the pool that locks hold (and
	// that try to take one) at once: a held lock keeps its connection
	// until unlock. Lock waits for a free slot (or ctx). It must be below
	// the pool's MaxConns, so that the handlers holding the locks still
	// find connections for their own queries (with every connection held
	// by a lock, a handler that queries the pool waits forever, and so
	// does every update); New panics otherwise. 0 (or less) means half the pool's
	// MaxConns (pgxpool's default pool of 4 gives 2), at most
	// [DefaultMaxConns]; a pool of one connection has no room for both
	// and makes New panic. The listener's connection is separate, not
	// from the pool.
	MaxConns int

	// Poll is the longest a waiter sleeps between two tries when no
	// notification wakes it. A lock that ends with its connection (a
	// replica that crashed) sends no notification, so this is how long
	// the others may take to notice. Zero or less means [DefaultPoll].
	Poll time.Duration

	// Timeout bounds each release, which runs without the update's
	// context. Zero or less means [DefaultTimeout].
	Timeout time.Duration

	// OnError, when set, hears of the errors that no caller receives: a
	// failed release (the connection is then closed, which ends the lock),
	// and a lost listener connection (waiters poll until it is back). key
	// is the middleware's key, or "" for the listener. It must not block
	// for long.
	OnError func(key string, err error)
}

// maxChannel is the longest channel name PostgreSQL takes (NAMEDATALEN
// less one).
const maxChannel = 63

// Locker is a [middleware.Locker] on PostgreSQL advisory locks, shared by
// every process that uses the same database and Class. See the package
// documentation. It is safe for concurrent use. Create one with [New].
type Locker struct {
	pool    *pgxpool.Pool
	class   int32
	channel string
	poll    time.Duration
	timeout time.Duration
	onError func(string, error)
	sem     chan struct{} // one token per connection in use by the locks
	local   *middleware.LockTable

	mu      sync.Mutex
	waiters map[int32]map[*waiter]struct{} // by hashed key; keys may collide
	ready   chan struct{}                  // closed once the listener listens; nil before it starts
	cancel  context.CancelFunc             // stops the listener
	stopped chan struct{}                  // closed when the listener has stopped
	closed  bool
}

type waiter struct {
	wake chan struct{} // capacity 1
}

// New returns a Locker on pool. The listener's connection (a separate
// connection of the same configuration) is opened by the first Lock that
// has to wait; [Locker.Close] closes it. New panics if pool is nil,
// [Options].MaxConns is not below the pool's MaxConns, or
// [Options].Channel is longer than PostgreSQL takes.
func New(pool *pgxpool.Pool, opts Options) *Locker {
	if pool == nil {
		panic("session/middleware/pglock: nil pool; create one with pgxpool.New")
	}
	n := maxConns(opts.MaxConns, int(pool.Config().MaxConns))
	l := &Locker{
		pool:    pool,
		class:   opts.Class,
		channel: opts.Channel,
		poll:    opts.Poll,
		timeout: opts.Timeout,
		onError: opts.OnError,
		local:   middleware.NewLockTable(),
		waiters: make(map[int32]map[*waiter]struct{}),
	}
	if l.class == 0 {
		l.class = DefaultClass
	}
	if l.channel == "" {
		l.channel = DefaultChannel
	}
	if len(l.channel) > maxChannel || strings.IndexByte(l.channel, 0) >= 0 {
		// pg_notify refuses it ("channel name too long"): every release
		// would fail and close its connection.
		panic(fmt.Sprintf("session/middleware/pglock: Options.Channel is %d bytes or holds a NUL byte; PostgreSQL takes a channel of at most %d bytes without NUL", len(l.channel), maxChannel))
	}
	l.sem = make(chan struct{}, n)
	if l.poll <= 0 {
		l.poll = DefaultPoll
	}
	if l.timeout <= 0 {
		l.timeout = DefaultTimeout
	}
	return l
}

// maxConns resolves [Options].MaxConns (set) against the pool's MaxConns
// (pool), panicking when the locks could hold every connection of the
// pool.
func maxConns(set, pool int) int {
	if set <= 0 {
		if pool < 2 {
			panic(fmt.Sprintf("session/middleware/pglock: the pool has MaxConns %d; a held lock keeps a connection of the pool, so the handlers would find none: give the pool at least 2 connections (pgxpool.Config.MaxConns, or pool_max_conns in the URL)", pool))
		}
		return min(pool/2, DefaultMaxConns)
	}
	if set >= pool {
		panic(fmt.Sprintf("session/middleware/pglock: Options.MaxConns is %d and the pool's MaxConns %d; a held lock keeps a connection of the pool, so with every connection held by a lock a handler that queries the pool waits forever: set MaxConns below %d, or leave it 0 (half the pool)", set, pool, pool))
	}
	return set
}

// Hash returns the second integer of key's advisory lock: the 32-bit
// FNV-1a hash of key. Two keys with the same hash share one lock (they are
// serialized together, which is safe); to look at our locks in pg_locks:
// locktype 'advisory', classid = Class, objid = Hash(key) as unsigned,
// objsubid 2.
func Hash(key string) int32 {
	h := fnv.New32a()
	h.Write([]byte(key))
	return int32(h.Sum32())
}

// Lock takes key's lock: first in this process's [middleware.LockTable],
// so that one process never has two goroutines trying one key, then in
// PostgreSQL with pg_try_advisory_lock(Class, Hash(key)) on a pool
// connection, which it keeps until unlock. While the lock is taken
// elsewhere it holds no connection: it waits for a notification of a
// release (or Poll) and tries again, until ctx ends; then it returns
// ctx.Err() (or a database error, wrapped) and holds nothing. Call the
// returned unlock exactly once.
func (l *Locker) Lock(ctx context.Context, key string) (func(), error) {
	unlockLocal, err := l.local.Lock(ctx, key)
	if err != nil {
		return nil, err
	}
	id := Hash(key)
	var (
		w     *waiter
		timer *time.Timer
	)
	defer func() {
		if w != nil {
			l.removeWaiter(id, w)
		}
		if timer != nil {
			timer.Stop()
		}
	}()
	for {
		conn, err := l.try(ctx, key, id)
		if err != nil {
			unlockLocal()
			return nil, err
		}
		if conn != nil {
			h := &held{l: l, key: key, id: id, conn: conn, unlockLocal: unlockLocal}
			return h.unlock, nil
		}
		if w == nil {
			// Listen before the next try, so that a release after it
			// cannot go unnoticed.
			if w, err = l.addWaiter(ctx, id); err != nil {
				unlockLocal()
				return nil, err
			}
			continue
		}
		if timer == nil {
			timer = time.NewTimer(l.poll)
		} else {
			timer.Reset(l.poll)
		}
		select {
		case <-w.wake:
		case <-timer.C:
		case <-ctx.Done():
			unlockLocal()
			return nil, ctx.Err()
		}
	}
}

// try takes a connection slot and a pool connection and tries the lock
// once. It returns the connection, still acquired, when the lock is
// taken, and nil (slot and connection given back) when it is not.
func (l *Locker) try(ctx context.Context, key string, id int32) (*pgxpool.Conn, error) {
	select {
	case l.sem <- struct{}{}:
	default:
		select {
		case l.sem <- struct{}{}:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	conn, err := l.pool.Acquire(ctx)
	if err != nil {
		<-l.sem
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, fmt.Errorf("pglock: lock %q: %w", key, err)
	}
	var ok bool
	err = conn.QueryRow(ctx, "SELECT pg_try_advisory_lock($1, $2)", l.class, id).Scan(&ok)
	if err != nil {
		// Whether the lock was taken is unknown: end the connection's
		// session, which ends any lock it holds.
		discard(conn)
		<-l.sem
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, fmt.Errorf("pglock: lock %q: %w", key, err)
	}
	if !ok {
		conn.Release()
		<-l.sem
		return nil, nil
	}
	return conn, nil
}

// discard closes conn's connection and gives it back to the pool, which
// then drops it.
func discard(conn *pgxpool.Conn) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	conn.Conn().Close(ctx)
	cancel()
	conn.Release()
}

// addWaiter registers a waiter for id, starting the listener if needed
// and waiting until it listens (at most Poll, or until ctx ends: the
// waiter then polls).
func (l *Locker) addWaiter(ctx context.Context, id int32) (*waiter, error) {
	w := &waiter{wake: make(chan struct{}, 1)}
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return nil, ErrClosed
	}
	if l.ready == nil {
		lctx, cancel := context.WithCancel(context.Background())
		l.ready, l.cancel, l.stopped = make(chan struct{}), cancel, make(chan struct{})
		go l.listen(lctx, l.ready, l.stopped)
	}
	ready := l.ready
	set := l.waiters[id]
	if set == nil {
		set = make(map[*waiter]struct{}, 1)
		l.waiters[id] = set
	}
	set[w] = struct{}{}
	l.mu.Unlock()
	select {
	case <-ready:
		return w, nil
	default:
	}
	t := time.NewTimer(l.poll)
	defer t.Stop()
	select {
	case <-ready:
	case <-t.C:
	case <-ctx.Done():
	}
	return w, nil
}

func (l *Locker) removeWaiter(id int32, w *waiter) {
	l.mu.Lock()
	set := l.waiters[id]
	delete(set, w)
	if len(set) == 0 {
		delete(l.waiters, id)
	}
	l.mu.Unlock()
}

// listen keeps a connection listening on the channel until ctx ends,
// waking the waiters of each notified key. After a lost connection it
// reconnects (every Poll) and wakes every waiter, since notifications may
// have been missed meanwhile.
func (l *Locker) listen(ctx context.Context, ready, stopped chan struct{}) {
	defer close(stopped)
	first := true
	for ctx.Err() == nil {
		conn, err := l.connectListener(ctx)
		if err != nil {
			if ctx.Err() == nil {
				l.report("", fmt.Errorf("pglock: listener: %w", err))
				sleep(ctx, l.poll)
			}
			continue
		}
		if first {
			close(ready)
			first = false
		} else {
			l.wakeAll()
		}
		for {
			n, err := conn.WaitForNotification(ctx)
			if err != nil {
				if ctx.Err() == nil {
					l.report("", fmt.Errorf("pglock: listener: %w", err))
				}
				break
			}
			id, err := strconv.ParseInt(n.Payload, 10, 32)
			if err != nil {
				continue // not one of ours
			}
			l.wake(int32(id))
		}
		cctx, cancel := context.WithTimeout(context.Background(), time.Second)
		conn.Close(cctx)
		cancel()
	}
}

func (l *Locker) connectListener(ctx context.Context) (*pgx.Conn, error) {
	conn, err := pgx.ConnectConfig(ctx, l.pool.Config().ConnConfig)
	if err != nil {
		return nil, err
	}
	if _, err := conn.Exec(ctx, "LISTEN "+pgx.Identifier{l.channel}.Sanitize()); err != nil {
		conn.Close(context.Background())
		return nil, err
	}
	return conn, nil
}

func (l *Locker) wake(id int32) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for w := range l.waiters[id] {
		poke(w)
	}
}

func (l *Locker) wakeAll() {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, set := range l.waiters {
		for w := range set {
			poke(w)
		}
	}
}

func poke(w *waiter) {
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}

// Close stops the listener and closes its connection, waiting for it.
// Locks held at Close stay held until their unlock; a Lock after Close
// that has to wait returns [ErrClosed]. Close does not close the pool.
func (l *Locker) Close() error {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return nil
	}
	l.closed = true
	cancel, stopped := l.cancel, l.stopped
	l.mu.Unlock()
	if cancel != nil {
		cancel()
		<-stopped
	}
	return nil
}

func (l *Locker) report(key string, err error) {
	if l.onError != nil {
		l.onError(key, err)
	}
}

// unlockSQL releases the advisory lock ($1, $2) and notifies channel $3
// with payload $4, in one statement. A transaction that notifies gets a
// transaction ID, so with the default synchronous_commit its commit would
// wait for a WAL flush (under a lock that every notifying commit of the
// cluster takes in turn). The notification needs no durability (a lost one
// costs a waiter one Poll), so the statement turns synchronous_commit off
// for its own transaction only. (On the test machine's disk the difference
// was within the noise; on a disk with slow flushes it is one flush per
// update.)
const unlockSQL = `SELECT pg_advisory_unlock($1, $2), set_config('synchronous_commit', 'off', true), pg_notify($3, $4)`

// held is one advisory lock held on conn.
type held struct {
	l           *Locker
	key         string
	id          int32
	conn        *pgxpool.Conn
	unlockLocal func()
}

// unlock releases the advisory lock and announces it in one statement
// (the notification is sent when the statement commits, after the
// release), gives the connection back, then releases the local lock. If
// the release fails, the connection is closed, which ends the lock.
func (h *held) unlock() {
	l := h.l
	ctx, cancel := context.WithTimeout(context.Background(), l.timeout)
	var ok bool
	err := h.conn.QueryRow(ctx, unlockSQL, l.class, h.id, l.channel, strconv.FormatInt(int64(h.id), 10)).Scan(&ok, nil, nil)
	cancel()
	switch {
	case err != nil:
		l.report(h.key, fmt.Errorf("pglock: release (closing the connection, which ends the lock): %w", err))
		discard(h.conn)
	case !ok:
		l.report(h.key, errors.New("pglock: release: the connection did not hold the lock"))
		discard(h.conn)
	default:
		h.conn.Release()
	}
	<-l.sem
	h.unlockLocal()
}
