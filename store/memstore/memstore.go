package memstore

import (
	"context"
	"fmt"
	"hash/maphash"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/typedsession/session/internal/storeutil"
	"github.com/typedsession/session/store"
)

// ErrClosed is [store.ErrClosed], which every method of a Store returns
// after Close.
//
// Deprecated: test for store.ErrClosed, which every backend returns.
var ErrClosed = store.ErrClosed

const (
	backend    = "memstore"
	shardCount = 64
)

// Options configures a Store. The zero value is a store with a sweep every
// minute, no value size cap and no snapshot file.
type Options struct {
	// DefaultTTL must be zero: New returns an error otherwise.
	//
	// Deprecated: a ttl of zero means "no expiry" in every store, so that a
	// session manager configured to never expire sessions never loses one.
	// DefaultTTL used to apply to a ttl of zero and silently expired such
	// sessions. Set session.Config.TTL (or pass the ttl to each call)
	// instead.
	DefaultTTL time.Duration

	// CleanupInterval is how often expired keys are removed from memory.
	// Zero means one minute; a negative value turns the sweep off (expired
	// keys stay invisible, but take memory until overwritten or deleted).
	CleanupInterval time.Duration

	// BackupPath, when set, is the snapshot file that New restores and
	// that the store writes every BackupInterval and on Close. Its folder
	// must exist. Only one Store may use a BackupPath at a time.
	BackupPath string

	// BackupInterval is how often the snapshot is written. Zero means one
	// minute; a negative value writes it only on Close. It has no effect
	// without BackupPath.
	BackupInterval time.Duration

	// MaxValueBytes caps the size of a value, in bytes. Set and
	// CompareAndSwap refuse a longer value with an error matching
	// [store.ErrTooLarge] before they copy it, and New refuses a snapshot
	// holding one, before it allocates the value. Zero means no cap; a
	// negative value makes New fail. (Without a cap a snapshot's entry
	// is still never allocated larger than the bytes left in the file.)
	MaxValueBytes int64

	// OnError receives the errors that no caller is waiting for: a
	// periodic snapshot that failed (the previous snapshot stays in place
	// and the next tick or Close tries again), and an entry of a version 1
	// snapshot that New skipped because its key is no longer valid. It is
	// called from the snapshot's goroutine or from New, and must not block
	// for long. Nil means such errors are logged with log/slog's default
	// logger at level Error.
	OnError func(error)
}

type entry struct {
	value   []byte // never mutated after it is stored
	expires int64  // unix nanoseconds; 0 means never
}

func (e entry) live(now int64) bool { return e.expires == 0 || now < e.expires }

type shard struct {
	mu     sync.RWMutex
	m      map[string]entry
	closed bool // set under mu by Close; every method checks it under mu
}

// Store is an in-memory store. Create it with [New]; it is safe for
// concurrent use. Call [Store.Close] to stop its background work and, with a
// BackupPath, write the final snapshot.
type Store struct {
	opts    Options // resolved by New: intervals set, OnError never nil
	seed    maphash.Seed
	shards  [shardCount]shard
	loops   []*storeutil.Loop
	backup  sync.Mutex // serialises snapshot writes
	closing sync.Once
	closed  chan struct{} // closed when Close has returned its result
	result  error         // the first Close's result

	// sweepHook, when set (by tests), runs between the sweep's search
	// for expired keys and their removal.
	sweepHook func()
}

// New returns a store configured by opts. With a BackupPath, New first
// removes the temporary files that a snapshot interrupted by a crash left
// next to it, then restores the file if it exists; if that file cannot be
// read or parsed, New returns an error (matching [store.ErrCorrupt] for a
// damaged snapshot) and leaves the file untouched. New also returns an error
// for a BackupPath whose folder does not exist, a non-zero DefaultTTL or a
// negative MaxValueBytes.
func New(opts Options) (*Store, error) {
	if opts.DefaultTTL != 0 {
		return nil, fmt.Errorf("memstore: Options.DefaultTTL (%v) is no longer supported: a ttl of 0 means no expiry in every store; set session.Config.TTL, or pass the ttl to each call, instead", opts.DefaultTTL)
	}
	if opts.MaxValueBytes < 0 {
		return nil, fmt.Errorf("memstore: Options.MaxValueBytes is %d; give 0 for no cap or a positive number of bytes", opts.MaxValueBytes)
	}
	if opts.CleanupInterval == 0 {
		opts.CleanupInterval = time.Minute
	}
	if opts.BackupInterval == 0 {
		opts.BackupInterval = time.Minute
	}
	if opts.OnError == nil {
		opts.OnError = func(err error) { slog.Error("memstore: background error", "err", err) }
	}
	s := &Store{opts: opts, seed: maphash.MakeSeed(), closed: make(chan struct{})}
	for i := range s.shards {
		s.shards[i].m = make(map[string]entry)
	}
	if opts.BackupPath != "" {
		if err := s.restore(opts.BackupPath); err != nil {
			return nil, err
		}
	}
	if opts.CleanupInterval > 0 {
		s.loops = append(s.loops, storeutil.StartLoop(opts.CleanupInterval, func(ctx context.Context) error {
			s.sweep(ctx)
			return nil
		}, nil))
	}
	if opts.BackupPath != "" && opts.BackupInterval > 0 {
		s.loops = append(s.loops, storeutil.StartLoop(opts.BackupInterval, s.snapshot, opts.OnError))
	}
	return s, nil
}

// Close stops the sweep and the periodic snapshot, waits for the
// operations already running, and, with a BackupPath, writes the final
// snapshot and returns its error. Every write that returned nil is in that
// snapshot. After Close every method returns an error matching
// [store.ErrClosed], and so does a second Close (a Close that runs at the
// same time as the first waits for it).
func (s *Store) Close() error {
	first := false
	s.closing.Do(func() {
		first = true
		for _, l := range s.loops {
			l.Stop()
		}
		// Mark every shard closed under its write lock: that waits for
		// the operations running on it, and every operation after it
		// sees the mark. So the snapshot below, which starts after the
		// last shard is marked, holds every write that returned nil.
		for i := range s.shards {
			sh := &s.shards[i]
			sh.mu.Lock()
			sh.closed = true
			sh.mu.Unlock()
		}
		if s.opts.BackupPath != "" {
			s.result = s.snapshot(context.Background())
		}
		close(s.closed)
	})
	<-s.closed
	if !first {
		return storeutil.Wrap(backend, "close", "", store.ErrClosed)
	}
	return s.result
}

func (s *Store) shard(key string) *shard {
	return &s.shards[maphash.String(s.seed, key)%shardCount]
}

// begin checks the key and ctx before an operation.
func begin(ctx context.Context, key string) error {
	if err := store.CheckKey(key); err != nil {
		return err
	}
	return ctx.Err()
}

// deadline returns the Unix-nanosecond expiry of a key written at now
// with ttl: 0 for ttl <= 0, clamped to store.MaxExpiry.
func deadline(now time.Time, ttl time.Duration) int64 {
	if ttl <= 0 {
		return 0
	}
	return store.Deadline(now, ttl).UnixNano()
}

func (s *Store) checkValue(value []byte) error {
	if s.opts.MaxValueBytes > 0 && int64(len(value)) > s.opts.MaxValueBytes {
		return fmt.Errorf("%w: %d bytes, the cap (Options.MaxValueBytes) is %d", store.ErrTooLarge, len(value), s.opts.MaxValueBytes)
	}
	return nil
}

func clone(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return append(make([]byte, 0, len(b)), b...)
}

// Get returns a copy of the value under key, or an error matching
// [store.ErrNotFound] when it is absent or expired.
func (s *Store) Get(ctx context.Context, key string) ([]byte, error) {
	if err := begin(ctx, key); err != nil {
		return nil, storeutil.Wrap(backend, "get", key, err)
	}
	sh := s.shard(key)
	sh.mu.RLock()
	e, ok := sh.m[key]
	closed := sh.closed
	sh.mu.RUnlock()
	if closed {
		return nil, storeutil.Wrap(backend, "get", key, store.ErrClosed)
	}
	if !ok || !e.live(time.Now().UnixNano()) {
		return nil, store.ErrNotFound
	}
	return clone(e.value), nil
}

// GetWithTTL returns a copy of the value under key and the time left before
// it expires, or [store.NoExpiry] when it has no expiry. It returns an error
// matching [store.ErrNotFound] when the key is absent or expired.
func (s *Store) GetWithTTL(ctx context.Context, key string) ([]byte, time.Duration, error) {
	if err := begin(ctx, key); err != nil {
		return nil, 0, storeutil.Wrap(backend, "get with ttl", key, err)
	}
	sh := s.shard(key)
	sh.mu.RLock()
	e, ok := sh.m[key]
	closed := sh.closed
	sh.mu.RUnlock()
	if closed {
		return nil, 0, storeutil.Wrap(backend, "get with ttl", key, store.ErrClosed)
	}
	now := time.Now().UnixNano()
	if !ok || !e.live(now) {
		return nil, 0, store.ErrNotFound
	}
	left := store.NoExpiry
	if e.expires != 0 {
		left = time.Duration(e.expires - now)
	}
	return clone(e.value), left, nil
}

// Set stores a copy of value under key. A ttl greater than zero makes the
// key expire after ttl (clamped to [store.MaxExpiry]); a ttl of zero or less
// stores it without expiry. A value longer than Options.MaxValueBytes is
// refused with an error matching [store.ErrTooLarge].
func (s *Store) Set(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	if err := begin(ctx, key); err != nil {
		return storeutil.Wrap(backend, "set", key, err)
	}
	if err := s.checkValue(value); err != nil {
		return storeutil.Wrap(backend, "set", key, err)
	}
	e := entry{value: clone(value), expires: deadline(time.Now(), ttl)}
	sh := s.shard(key)
	sh.mu.Lock()
	if sh.closed {
		sh.mu.Unlock()
		return storeutil.Wrap(backend, "set", key, store.ErrClosed)
	}
	sh.m[key] = e
	sh.mu.Unlock()
	return nil
}

// Delete removes key; an absent key is not an error.
func (s *Store) Delete(ctx context.Context, key string) error {
	if err := begin(ctx, key); err != nil {
		return storeutil.Wrap(backend, "delete", key, err)
	}
	sh := s.shard(key)
	sh.mu.Lock()
	if sh.closed {
		sh.mu.Unlock()
		return storeutil.Wrap(backend, "delete", key, store.ErrClosed)
	}
	delete(sh.m, key)
	sh.mu.Unlock()
	return nil
}

// CompareAndSwap stores value with ttl (as in Set) if the current value
// equals old (nil old: if the key is absent or expired), and reports
// whether it did. When the current value already equals value it reports
// true and sets the ttl: a resent swap finds its own write (see
// [store.Swapper]). A value longer than Options.MaxValueBytes is refused
// with an error matching [store.ErrTooLarge].
func (s *Store) CompareAndSwap(ctx context.Context, key string, old, value []byte, ttl time.Duration) (bool, error) {
	if err := begin(ctx, key); err != nil {
		return false, storeutil.Wrap(backend, "compare and swap", key, err)
	}
	if err := s.checkValue(value); err != nil {
		return false, storeutil.Wrap(backend, "compare and swap", key, err)
	}
	v := clone(value) // copy outside the lock
	sh := s.shard(key)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if sh.closed {
		return false, storeutil.Wrap(backend, "compare and swap", key, store.ErrClosed)
	}
	now := time.Now()
	e, ok := sh.m[key]
	present := ok && e.live(now.UnixNano())
	switch {
	case present && string(e.value) == string(value):
		// Already there: the resend rule. Keep the stored slice.
		v = e.value
	case old == nil:
		if present {
			return false, nil
		}
	case !present || string(e.value) != string(old):
		return false, nil
	}
	sh.m[key] = entry{value: v, expires: deadline(now, ttl)}
	return true, nil
}

// CompareAndDelete deletes key if its current value equals old and reports
// whether this call deleted it: false (and the key left as it is) when it
// holds another value or is absent or expired.
func (s *Store) CompareAndDelete(ctx context.Context, key string, old []byte) (bool, error) {
	if err := begin(ctx, key); err != nil {
		return false, storeutil.Wrap(backend, "compare and delete", key, err)
	}
	sh := s.shard(key)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if sh.closed {
		return false, storeutil.Wrap(backend, "compare and delete", key, store.ErrClosed)
	}
	e, ok := sh.m[key]
	if !ok || !e.live(time.Now().UnixNano()) || string(e.value) != string(old) {
		return false, nil
	}
	delete(sh.m, key)
	return true, nil
}

// Touch sets key to expire after ttl from now (clamped to
// [store.MaxExpiry]); a ttl of zero or less removes its expiry. It returns
// an error matching [store.ErrNotFound] for an absent or expired key.
func (s *Store) Touch(ctx context.Context, key string, ttl time.Duration) error {
	_, err := s.touch(ctx, "touch", key, ttl, false)
	return err
}

// GetAndTouch returns a copy of the value under key and sets it to expire
// after ttl from now (as Touch does), in one step.
func (s *Store) GetAndTouch(ctx context.Context, key string, ttl time.Duration) ([]byte, error) {
	return s.touch(ctx, "get and touch", key, ttl, true)
}

func (s *Store) touch(ctx context.Context, op, key string, ttl time.Duration, get bool) ([]byte, error) {
	if err := begin(ctx, key); err != nil {
		return nil, storeutil.Wrap(backend, op, key, err)
	}
	sh := s.shard(key)
	sh.mu.Lock()
	if sh.closed {
		sh.mu.Unlock()
		return nil, storeutil.Wrap(backend, op, key, store.ErrClosed)
	}
	now := time.Now()
	e, ok := sh.m[key]
	if !ok || !e.live(now.UnixNano()) {
		sh.mu.Unlock()
		return nil, store.ErrNotFound
	}
	e.expires = deadline(now, ttl)
	sh.m[key] = e
	sh.mu.Unlock()
	if get {
		return clone(e.value), nil
	}
	return nil, nil
}

// Scan calls fn for every live key that starts with prefix. The keys of
// one shard are collected under its read lock and fn runs without any
// lock held, so fn may call the store.
func (s *Store) Scan(ctx context.Context, prefix string, fn func(key string) error) error {
	var keys []string
	for i := range s.shards {
		if err := ctx.Err(); err != nil {
			return storeutil.Wrap(backend, "scan", "", err)
		}
		sh := &s.shards[i]
		keys = keys[:0]
		now := time.Now().UnixNano()
		sh.mu.RLock()
		if sh.closed {
			sh.mu.RUnlock()
			return storeutil.Wrap(backend, "scan", "", store.ErrClosed)
		}
		for k, e := range sh.m {
			if strings.HasPrefix(k, prefix) && e.live(now) {
				keys = append(keys, k)
			}
		}
		sh.mu.RUnlock()
		for _, k := range keys {
			if err := fn(k); err != nil {
				return err
			}
		}
	}
	return nil
}

// sweep removes expired entries, one shard at a time. It finds them under
// the shard's read lock, so that readers are not held up, then removes each
// under the write lock only if it is still expired then: a key written or
// extended in between is kept.
func (s *Store) sweep(ctx context.Context) {
	var expired []string
	for i := range s.shards {
		if ctx.Err() != nil {
			return
		}
		sh := &s.shards[i]
		expired = expired[:0]
		now := time.Now().UnixNano()
		sh.mu.RLock()
		for k, e := range sh.m {
			if !e.live(now) {
				expired = append(expired, k)
			}
		}
		sh.mu.RUnlock()
		if len(expired) == 0 {
			continue
		}
		if s.sweepHook != nil {
			s.sweepHook()
		}
		sh.mu.Lock()
		now = time.Now().UnixNano()
		for _, k := range expired {
			if e, ok := sh.m[k]; ok && !e.live(now) {
				delete(sh.m, k)
			}
		}
		sh.mu.Unlock()
	}
}

// Len reports the number of live keys.
func (s *Store) Len() int {
	n := 0
	now := time.Now().UnixNano()
	for i := range s.shards {
		sh := &s.shards[i]
		sh.mu.RLock()
		for _, e := range sh.m {
			if e.live(now) {
				n++
			}
		}
		sh.mu.RUnlock()
	}
	return n
}
