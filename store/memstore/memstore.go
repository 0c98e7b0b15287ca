// Package memstore is an in-memory [store.Store] with expiry, a background
// sweep and an optional snapshot file.
//
// It implements every optional capability of package store: [store.Swapper],
// [store.Toucher], [store.Refresher] and [store.Scanner]. The map is split
// into shards, each with its own lock, so that readers on one core do not
// wait for writers or for the sweep on another.
//
// # Expiry
//
// A key whose TTL has passed is invisible at once. Its memory is reclaimed by
// a sweep that runs every [Options.CleanupInterval], one shard at a time.
//
// # Snapshots
//
// With [Options.BackupPath] set, the whole store is written to that file every
// [Options.BackupInterval] and on [Store.Close], and [New] restores it,
// keeping each key's absolute expiry. A snapshot is written to a temporary
// file in the same folder, synced and renamed over the old one, so a crash
// leaves either the previous snapshot or the new one. A snapshot that exists
// but cannot be read makes New fail: the store never starts empty and then
// overwrites sessions it could not read.
//
// The snapshot is JSON: {"format":"typedsession-memstore","version":1,
// "entries":[{"key":"...","value":"<base64>","expires":<unix ns, 0 = never>}]}.
package memstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/maphash"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/typedsession/session/store"
)

// ErrClosed is returned by every method of a Store after Close.
var ErrClosed = errors.New("memstore: store is closed")

const shardCount = 64

// Options configures a Store. The zero value is a store with no default
// TTL, a sweep every minute and no snapshot file.
type Options struct {
	// DefaultTTL is used by Set, CompareAndSwap, Touch and GetAndTouch when
	// they are given a ttl of zero. Zero (the default) means no expiry. A
	// negative ttl passed to a method always means no expiry.
	DefaultTTL time.Duration

	// CleanupInterval is how often expired keys are removed from memory.
	// Zero means one minute; a negative value turns the sweep off (expired
	// keys stay invisible, but take memory until overwritten or deleted).
	CleanupInterval time.Duration

	// BackupPath, when set, is the snapshot file that New restores and
	// that the store writes every BackupInterval and on Close. Its folder
	// must exist.
	BackupPath string

	// BackupInterval is how often the snapshot is written. Zero means one
	// minute; a negative value writes it only on Close. It has no effect
	// without BackupPath.
	BackupInterval time.Duration
}

type entry struct {
	value   []byte // never mutated after it is stored
	expires int64  // unix nanoseconds; 0 means never
}

func (e entry) live(now int64) bool { return e.expires == 0 || now < e.expires }

type shard struct {
	mu sync.RWMutex
	m  map[string]entry
}

// Store is an in-memory store. Create it with New; it is safe for
// concurrent use. Call Close to stop its background work and, with a
// BackupPath, write the final snapshot.
type Store struct {
	opts   Options
	seed   maphash.Seed
	shards [shardCount]shard

	// backupMu serialises snapshot writes, so that a periodic snapshot
	// and the one written by Close never race on the temporary file.
	backupMu sync.Mutex

	closeOnce sync.Once
	closed    chan struct{}
	done      sync.WaitGroup
	closeErr  error
}

// New returns a store configured by opts. With a BackupPath whose file
// exists, New restores it; if that file cannot be read or parsed, New
// returns an error and leaves the file untouched.
func New(opts Options) (*Store, error) {
	if opts.CleanupInterval == 0 {
		opts.CleanupInterval = time.Minute
	}
	if opts.BackupInterval == 0 {
		opts.BackupInterval = time.Minute
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
		s.every(opts.CleanupInterval, s.sweep)
	}
	if opts.BackupPath != "" && opts.BackupInterval > 0 {
		s.every(opts.BackupInterval, func() {
			// A failed periodic snapshot leaves the previous one in
			// place; the next tick or Close tries again and Close
			// reports its error.
			_ = s.snapshot()
		})
	}
	return s, nil
}

func (s *Store) every(d time.Duration, fn func()) {
	s.done.Go(func() {
		t := time.NewTicker(d)
		defer t.Stop()
		for {
			select {
			case <-s.closed:
				return
			case <-t.C:
				fn()
			}
		}
	})
}

// Close stops the sweep and the periodic snapshots and, with a BackupPath,
// writes the final snapshot, returning its error. Close is idempotent;
// after it every other method returns ErrClosed.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		close(s.closed)
		s.done.Wait()
		if s.opts.BackupPath != "" {
			s.closeErr = s.snapshot()
		}
	})
	return s.closeErr
}

func (s *Store) shard(key string) *shard {
	return &s.shards[maphash.String(s.seed, key)%shardCount]
}

func (s *Store) check(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	select {
	case <-s.closed:
		return ErrClosed
	default:
		return nil
	}
}

func (s *Store) expiry(now int64, ttl time.Duration) int64 {
	if ttl == 0 {
		ttl = s.opts.DefaultTTL
	}
	if ttl <= 0 {
		return 0
	}
	return now + int64(ttl)
}

func clone(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return append(make([]byte, 0, len(b)), b...)
}

// Get returns a copy of the value under key, or store.ErrNotFound.
func (s *Store) Get(ctx context.Context, key string) ([]byte, error) {
	if err := s.check(ctx); err != nil {
		return nil, err
	}
	sh := s.shard(key)
	sh.mu.RLock()
	e, ok := sh.m[key]
	sh.mu.RUnlock()
	if !ok || !e.live(time.Now().UnixNano()) {
		return nil, store.ErrNotFound
	}
	return clone(e.value), nil
}

// Set stores a copy of value under key. A ttl of zero uses
// Options.DefaultTTL; a negative ttl means no expiry.
func (s *Store) Set(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	if err := s.check(ctx); err != nil {
		return err
	}
	e := entry{value: clone(value), expires: s.expiry(time.Now().UnixNano(), ttl)}
	sh := s.shard(key)
	sh.mu.Lock()
	sh.m[key] = e
	sh.mu.Unlock()
	return nil
}

// Delete removes key; an absent key is not an error.
func (s *Store) Delete(ctx context.Context, key string) error {
	if err := s.check(ctx); err != nil {
		return err
	}
	sh := s.shard(key)
	sh.mu.Lock()
	delete(sh.m, key)
	sh.mu.Unlock()
	return nil
}

// CompareAndSwap stores value if the current value equals old (nil old:
// if the key is absent or expired), and reports whether it did.
func (s *Store) CompareAndSwap(ctx context.Context, key string, old, value []byte, ttl time.Duration) (bool, error) {
	if err := s.check(ctx); err != nil {
		return false, err
	}
	v := clone(value) // copy outside the lock
	sh := s.shard(key)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	now := time.Now().UnixNano()
	e, ok := sh.m[key]
	present := ok && e.live(now)
	if old == nil {
		if present {
			return false, nil
		}
	} else if !present || string(e.value) != string(old) {
		return false, nil
	}
	sh.m[key] = entry{value: v, expires: s.expiry(now, ttl)}
	return true, nil
}

// Touch sets key to expire after ttl from now (zero: DefaultTTL; negative:
// never). It returns store.ErrNotFound for an absent or expired key.
func (s *Store) Touch(ctx context.Context, key string, ttl time.Duration) error {
	_, err := s.touch(ctx, key, ttl, false)
	return err
}

// GetAndTouch returns a copy of the value under key and sets it to expire
// after ttl from now, in one step.
func (s *Store) GetAndTouch(ctx context.Context, key string, ttl time.Duration) ([]byte, error) {
	return s.touch(ctx, key, ttl, true)
}

func (s *Store) touch(ctx context.Context, key string, ttl time.Duration, get bool) ([]byte, error) {
	if err := s.check(ctx); err != nil {
		return nil, err
	}
	sh := s.shard(key)
	sh.mu.Lock()
	now := time.Now().UnixNano()
	e, ok := sh.m[key]
	if !ok || !e.live(now) {
		sh.mu.Unlock()
		return nil, store.ErrNotFound
	}
	e.expires = s.expiry(now, ttl)
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
		if err := s.check(ctx); err != nil {
			return err
		}
		sh := &s.shards[i]
		keys = keys[:0]
		now := time.Now().UnixNano()
		sh.mu.RLock()
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

// sweep removes expired entries, holding one shard's lock at a time.
func (s *Store) sweep() {
	for i := range s.shards {
		sh := &s.shards[i]
		now := time.Now().UnixNano()
		sh.mu.Lock()
		for k, e := range sh.m {
			if !e.live(now) {
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

const snapshotFormat = "typedsession-memstore"

type snapshotFile struct {
	Format  string          `json:"format"`
	Version int             `json:"version"`
	Entries []snapshotEntry `json:"entries"`
}

type snapshotEntry struct {
	Key     string `json:"key"`
	Value   []byte `json:"value"`
	Expires int64  `json:"expires,omitempty"`
}

func (s *Store) restore(path string) error {
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("memstore: read snapshot: %w", err)
	}
	var snap snapshotFile
	if err := json.Unmarshal(data, &snap); err != nil {
		return fmt.Errorf("memstore: snapshot %s cannot be parsed (left untouched; move it away to start empty): %w", path, err)
	}
	if snap.Format != snapshotFormat || snap.Version != 1 {
		return fmt.Errorf("memstore: %s is not a version 1 memstore snapshot (format %q, version %d); left untouched", path, snap.Format, snap.Version)
	}
	now := time.Now().UnixNano()
	for _, e := range snap.Entries {
		en := entry{value: clone(e.Value), expires: e.Expires}
		if en.live(now) {
			s.shard(e.Key).m[e.Key] = en
		}
	}
	return nil
}

// snapshot writes every live entry to BackupPath atomically: a temporary
// file in the same folder, fsync, rename, fsync of the folder.
func (s *Store) snapshot() error {
	s.backupMu.Lock()
	defer s.backupMu.Unlock()
	snap := snapshotFile{Format: snapshotFormat, Version: 1, Entries: []snapshotEntry{}}
	now := time.Now().UnixNano()
	for i := range s.shards {
		sh := &s.shards[i]
		sh.mu.RLock()
		for k, e := range sh.m {
			if e.live(now) {
				// Stored values are never mutated, so sharing them
				// outside the lock is safe.
				snap.Entries = append(snap.Entries, snapshotEntry{Key: k, Value: e.value, Expires: e.expires})
			}
		}
		sh.mu.RUnlock()
	}
	data, err := json.Marshal(snap)
	if err != nil {
		return fmt.Errorf("memstore: encode snapshot: %w", err)
	}
	if err := writeFileAtomic(s.opts.BackupPath, data); err != nil {
		return fmt.Errorf("memstore: write snapshot: %w", err)
	}
	return nil
}

func writeFileAtomic(path string, data []byte) (err error) {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	if _, err = f.Write(data); err != nil {
		return err
	}
	if err = f.Sync(); err != nil {
		return err
	}
	if err = f.Close(); err != nil {
		return err
	}
	if err = os.Rename(f.Name(), path); err != nil {
		return err
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
