package filestore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/typedsession/session/store"
)

// Defaults for the zero fields of [Options].
const (
	DefaultCleanupInterval = time.Minute
	DefaultFileMode        = fs.FileMode(0o600)
	DefaultDirMode         = fs.FileMode(0o700)
)

// numStripes is the number of lock files under dir/.locks. Keys are spread
// over them by hash, so the number of lock files is fixed whatever the
// number of keys. Two keys that share a stripe serialize their writes, which
// costs little next to the fsyncs each write makes.
const numStripes = 32

// staleTempAge is how old a temp file must be before New or the sweep
// removes it. A write takes milliseconds; a temp file this old was left by
// a crash. Removing a live writer's temp file would make its rename fail,
// which returns an error and loses nothing, so the margin is about
// politeness, not safety.
const staleTempAge = 10 * time.Minute

// ErrCorrupt is wrapped by the error a method returns when a file that
// belongs to the store cannot be parsed: bad magic, wrong length, bad
// checksum, or a header naming another key. Such a file is never reported
// as ErrNotFound and never overwritten by CompareAndSwap, Touch or
// GetAndTouch; Set and Delete replace or remove it as they would a valid
// one. The sweep reads headers only: it leaves a file whose header does
// not parse, and removes one whose sound header says it has expired.
var ErrCorrupt = errors.New("filestore: corrupt file")

// ErrClosed is returned by every method called after [Store.Close].
var ErrClosed = errors.New("filestore: store is closed")

// errNoFlock is New's answer where flock(2) is missing: without it the
// store cannot keep its promises to other processes.
var errNoFlock = errors.New("flock(2) is not available on this system")

// Options configures a [Store]. The zero value means defaults.
type Options struct {
	// CleanupInterval is how often a background sweep removes the files
	// of expired keys and temp files left by crashes (older than ten
	// minutes). Zero means DefaultCleanupInterval (one minute); a
	// negative value disables the sweep. Expired keys are invisible as
	// soon as they expire, whether or not the sweep has removed them.
	CleanupInterval time.Duration

	// FileMode is the permission of the value and lock files the store
	// creates, applied exactly (the umask does not narrow it). Zero means
	// DefaultFileMode (0600): sessions are private.
	FileMode fs.FileMode

	// DirMode is the permission of the directories New creates: dir when
	// it does not exist (with any missing parents) and dir/.locks,
	// narrowed by the umask. Zero means DefaultDirMode (0700). An
	// existing dir keeps its permission.
	DirMode fs.FileMode
}

// Store keeps each key in its own file under one directory. It implements
// [store.Store], [store.Swapper], [store.Toucher], [store.Refresher] and
// [store.Scanner]. It is safe for concurrent use by many goroutines and by
// many processes that open the same directory. Create it with [New] and
// release it with [Store.Close].
type Store struct {
	dir      string // absolute
	fileMode fs.FileMode
	dirFile  *os.File // dir itself, kept open to fsync it after renames
	now      func() time.Time

	stripes [numStripes]stripe

	// closed is set first thing by Close; every method checks it at entry.
	closed atomic.Bool
	// mu is read-held by every operation that uses dirFile or the stripes'
	// lock files, for as long as it uses them; Close write-holds it while
	// it closes them. No user callback ever runs with mu held, so a Scan
	// callback may call the store's other methods.
	mu        sync.RWMutex
	closeOnce sync.Once
	closeErr  error
	stopSweep context.CancelFunc
	sweepDone chan struct{} // closed when the sweep goroutine has returned
}

// stripe serializes the writers of the keys that hash to it: sem among the
// goroutines of this process, an flock(2) on its lock file among
// processes. flock alone cannot do the first job: two goroutines that share
// one open file both "hold" its lock.
type stripe struct {
	sem  chan struct{} // capacity 1; holding a token owns f and the flock
	f    *os.File      // dir/.locks/NN, opened on first use
	path string
}

// New opens the store kept in dir, creating dir (mode Options.DirMode) if
// it does not exist. It removes temp files left by a crash that are older
// than ten minutes and starts the sweep unless Options.CleanupInterval is
// negative. Several Stores, in one process or many, may open the same dir
// at once.
func New(dir string, opts Options) (*Store, error) {
	return newStore(dir, opts, time.Now)
}

// newStore is New with a clock, so that in-package tests can move time.
func newStore(dir string, opts Options, now func() time.Time) (*Store, error) {
	if !locksSupported {
		return nil, fmt.Errorf("filestore: New %q: %w", dir, errNoFlock)
	}
	if dir == "" {
		return nil, errors.New("filestore: New: empty dir; give the directory that holds the store")
	}
	if opts.CleanupInterval == 0 {
		opts.CleanupInterval = DefaultCleanupInterval
	}
	if opts.FileMode == 0 {
		opts.FileMode = DefaultFileMode
	}
	if opts.DirMode == 0 {
		opts.DirMode = DefaultDirMode
	}
	if opts.FileMode&^fs.ModePerm != 0 || opts.DirMode&^fs.ModePerm != 0 {
		return nil, fmt.Errorf("filestore: New %q: FileMode %v and DirMode %v must hold permission bits only", dir, opts.FileMode, opts.DirMode)
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("filestore: New %q: %w", dir, err)
	}
	if err := os.MkdirAll(abs, opts.DirMode); err != nil {
		return nil, fmt.Errorf("filestore: New %q: %w", dir, err)
	}
	if err := os.Mkdir(filepath.Join(abs, lockDir), opts.DirMode); err != nil && !errors.Is(err, fs.ErrExist) {
		return nil, fmt.Errorf("filestore: New %q: %w", dir, err)
	}
	dirFile, err := os.Open(abs)
	if err != nil {
		return nil, fmt.Errorf("filestore: New %q: %w", dir, err)
	}
	s := &Store{
		dir:       abs,
		fileMode:  opts.FileMode,
		dirFile:   dirFile,
		now:       now,
		stopSweep: func() {},
	}
	for i := range s.stripes {
		s.stripes[i] = stripe{
			sem:  make(chan struct{}, 1),
			path: filepath.Join(abs, lockDir, fmt.Sprintf("%02d", i)),
		}
	}
	if err := s.sweep(context.Background(), false); err != nil {
		dirFile.Close()
		return nil, fmt.Errorf("filestore: New %q: %w", dir, err)
	}
	if opts.CleanupInterval > 0 {
		ctx, cancel := context.WithCancel(context.Background())
		s.stopSweep = cancel
		s.sweepDone = make(chan struct{})
		go s.sweepLoop(ctx, opts.CleanupInterval)
	}
	return s, nil
}

// Close stops the sweep, waits for writes in progress to finish and
// releases the store's open files (the lock files and dir). The files that
// hold the data stay, for the next New. It is safe to call more than once; every
// call returns the first call's result. Every other method returns
// ErrClosed once Close has begun.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		s.closed.Store(true)
		s.stopSweep()
		if s.sweepDone != nil {
			<-s.sweepDone
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		var errs []error
		for i := range s.stripes {
			if f := s.stripes[i].f; f != nil {
				errs = append(errs, f.Close())
				s.stripes[i].f = nil
			}
		}
		errs = append(errs, s.dirFile.Close())
		if err := errors.Join(errs...); err != nil {
			s.closeErr = fmt.Errorf("filestore: Close: %w", err)
		}
	})
	return s.closeErr
}

// Dir returns the absolute path of the directory that holds the store.
func (s *Store) Dir() string { return s.dir }

// Get returns the value stored under key, or [store.ErrNotFound] when the
// key is absent or expired. It takes no lock: a rename replaces a file in
// one step, so a reader sees the old value or the new one.
func (s *Store) Get(ctx context.Context, key string) ([]byte, error) {
	if err := s.check(ctx); err != nil {
		return nil, opError("get", key, err)
	}
	rec, err := s.read(key)
	if err != nil {
		return nil, opError("get", key, err)
	}
	return rec.value, nil
}

// Set stores value under key with the given ttl (ttl <= 0: no expiry). The
// new file is complete and fsynced before it replaces the old one, and the
// directory is fsynced after, so once Set returns nil the value survives a
// crash of the process or the machine.
func (s *Store) Set(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	if err := s.begin(ctx); err != nil {
		return opError("set", key, err)
	}
	defer s.mu.RUnlock()
	if err := checkSizes(key, value); err != nil {
		return opError("set", key, err)
	}
	st, err := s.lock(ctx, key)
	if err != nil {
		return opError("set", key, err)
	}
	defer st.unlock()
	if err := s.write(key, value, s.expiry(ttl)); err != nil {
		return opError("set", key, err)
	}
	return nil
}

// Delete removes key. Removing an absent or expired key is not an error.
func (s *Store) Delete(ctx context.Context, key string) error {
	if err := s.begin(ctx); err != nil {
		return opError("delete", key, err)
	}
	defer s.mu.RUnlock()
	st, err := s.lock(ctx, key)
	if err != nil {
		return opError("delete", key, err)
	}
	defer st.unlock()
	if err := os.Remove(filepath.Join(s.dir, fileName(key))); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		return opError("delete", key, err)
	}
	if err := s.dirFile.Sync(); err != nil {
		return opError("delete", key, err)
	}
	return nil
}

// CompareAndSwap stores value under key with the given ttl if the current
// value equals old (nil old: if the key is absent or expired), and reports
// whether it did. The read and the write happen under the key's lock, which
// every writer in every process that opens dir takes, so no other write can
// come between them. A corrupt file matches no old value: CompareAndSwap
// returns an error wrapping [ErrCorrupt] and leaves the file alone.
func (s *Store) CompareAndSwap(ctx context.Context, key string, old, value []byte, ttl time.Duration) (bool, error) {
	if err := s.begin(ctx); err != nil {
		return false, opError("compare-and-swap", key, err)
	}
	defer s.mu.RUnlock()
	if err := checkSizes(key, value); err != nil {
		return false, opError("compare-and-swap", key, err)
	}
	st, err := s.lock(ctx, key)
	if err != nil {
		return false, opError("compare-and-swap", key, err)
	}
	defer st.unlock()
	rec, err := s.read(key)
	switch {
	case errors.Is(err, store.ErrNotFound):
		if old != nil {
			return false, nil
		}
	case err != nil:
		return false, opError("compare-and-swap", key, err)
	case old == nil || !bytes.Equal(rec.value, old):
		return false, nil
	}
	if err := s.write(key, value, s.expiry(ttl)); err != nil {
		return false, opError("compare-and-swap", key, err)
	}
	return true, nil
}

// Touch sets key to expire ttl from now (ttl <= 0: never). It rewrites the
// key's file the way Set does, under the key's lock, so the value cannot
// change between the read and the write. It returns [store.ErrNotFound]
// when the key is absent or expired.
func (s *Store) Touch(ctx context.Context, key string, ttl time.Duration) error {
	_, err := s.getAndTouch(ctx, "touch", key, ttl)
	return err
}

// GetAndTouch returns the value stored under key and sets it to expire ttl
// from now (ttl <= 0: never), under the key's lock. It returns
// [store.ErrNotFound] when the key is absent or expired.
func (s *Store) GetAndTouch(ctx context.Context, key string, ttl time.Duration) ([]byte, error) {
	return s.getAndTouch(ctx, "get-and-touch", key, ttl)
}

func (s *Store) getAndTouch(ctx context.Context, op, key string, ttl time.Duration) ([]byte, error) {
	if err := s.begin(ctx); err != nil {
		return nil, opError(op, key, err)
	}
	defer s.mu.RUnlock()
	st, err := s.lock(ctx, key)
	if err != nil {
		return nil, opError(op, key, err)
	}
	defer st.unlock()
	rec, err := s.read(key)
	if err != nil {
		return nil, opError(op, key, err)
	}
	if err := s.write(key, rec.value, s.expiry(ttl)); err != nil {
		return nil, opError(op, key, err)
	}
	return rec.value, nil
}

// Scan calls fn for every live key that begins with prefix. It reads the
// directory in batches and each candidate file's header (not its value),
// skipping temp files, the lock folder, files that are not the store's
// and expired keys. A file of the store's whose header cannot be parsed
// stops the scan with an error wrapping [ErrCorrupt]; the checksum, which
// covers the value, is left to Get. fn may call the store's other methods.
func (s *Store) Scan(ctx context.Context, prefix string, fn func(key string) error) error {
	if err := s.check(ctx); err != nil {
		return scanError(prefix, err)
	}
	d, err := os.Open(s.dir)
	if err != nil {
		return scanError(prefix, err)
	}
	defer d.Close()
	for {
		entries, rerr := d.ReadDir(256)
		for _, e := range entries {
			if err := s.check(ctx); err != nil {
				return scanError(prefix, err)
			}
			name := e.Name()
			kind, key := classify(name)
			if kind != directName && kind != hashedName {
				continue
			}
			if kind == directName && !strings.HasPrefix(key, prefix) {
				continue
			}
			path := filepath.Join(s.dir, name)
			expiry, hkey, err := readHeader(path)
			if errors.Is(err, fs.ErrNotExist) {
				continue // deleted since ReadDir
			}
			if err == nil {
				err = checkName(name, kind, key, hkey)
			}
			if err != nil {
				return scanError(prefix, wrapFormat(path, err))
			}
			if !strings.HasPrefix(hkey, prefix) || s.expired(expiry) {
				continue
			}
			if err := fn(hkey); err != nil {
				return err
			}
		}
		if rerr == io.EOF {
			return nil
		}
		if rerr != nil {
			return scanError(prefix, rerr)
		}
	}
}

// ---- internals ----

// check returns ctx.Err() or ErrClosed.
func (s *Store) check(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if s.closed.Load() {
		return ErrClosed
	}
	return nil
}

// begin is check for operations that use the lock files or dirFile: on
// success it leaves s.mu read-held, and the caller must RUnlock it.
func (s *Store) begin(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.RLock()
	if s.closed.Load() {
		s.mu.RUnlock()
		return ErrClosed
	}
	return nil
}

func (s *Store) expiry(ttl time.Duration) int64 {
	if ttl <= 0 {
		return 0
	}
	return s.now().Add(ttl).UnixNano()
}

func (s *Store) expired(expiry int64) bool {
	return expiry != 0 && s.now().UnixNano() >= expiry
}

// read returns the live record of key, store.ErrNotFound when the key is
// absent or expired, or an error wrapping ErrCorrupt.
func (s *Store) read(key string) (record, error) {
	name := fileName(key)
	path := filepath.Join(s.dir, name)
	data, err := os.ReadFile(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return record{}, store.ErrNotFound
		}
		return record{}, err
	}
	rec, err := decode(data)
	if err == nil && rec.key != key {
		err = formatErrorf("it holds key %s", quoteKey(rec.key))
	}
	if err != nil {
		return record{}, wrapFormat(path, err)
	}
	if s.expired(rec.expiry) {
		return record{}, store.ErrNotFound
	}
	return rec, nil
}

// write replaces key's file: a temp file in dir, written whole, fsynced,
// renamed over the target, then dir fsynced. The caller holds key's lock.
func (s *Store) write(key string, value []byte, expiry int64) (err error) {
	f, err := os.CreateTemp(s.dir, tempPattern)
	if err != nil {
		return err
	}
	tmp := f.Name()
	renamed := false
	defer func() {
		if err != nil && !renamed {
			f.Close()
			os.Remove(tmp)
		}
	}()
	if s.fileMode != 0o600 { // CreateTemp makes 0600 files
		if err := f.Chmod(s.fileMode); err != nil {
			return err
		}
	}
	if _, err := f.Write(encode(key, value, expiry)); err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, filepath.Join(s.dir, fileName(key))); err != nil {
		return err
	}
	renamed = true
	return s.dirFile.Sync()
}

// lock takes key's stripe lock: first the in-process semaphore, then the
// flock on the stripe's lock file. Both waits end when ctx does.
func (s *Store) lock(ctx context.Context, key string) (*stripe, error) {
	st := &s.stripes[stripeOf(key)]
	select {
	case st.sem <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	if st.f == nil {
		f, err := os.OpenFile(st.path, os.O_RDWR|os.O_CREATE, s.fileMode)
		if err != nil {
			<-st.sem
			return nil, fmt.Errorf("open lock file: %w", err)
		}
		st.f = f
	}
	if err := flockContext(ctx, int(st.f.Fd())); err != nil {
		<-st.sem
		if ctx.Err() != nil {
			return nil, err
		}
		return nil, fmt.Errorf("lock %s: %w", st.path, err)
	}
	return st, nil
}

func (st *stripe) unlock() {
	if err := funlock(int(st.f.Fd())); err != nil {
		// Closing the file drops the flock; the next lock reopens it.
		st.f.Close()
		st.f = nil
	}
	<-st.sem
}

// stripeOf hashes key with FNV-1a.
func stripeOf(key string) int {
	h := uint32(2166136261)
	for i := 0; i < len(key); i++ {
		h ^= uint32(key[i])
		h *= 16777619
	}
	return int(h % numStripes)
}

// sweepLoop runs the sweep every interval until ctx ends. A sweep that
// fails is tried again at the next tick; it has no one to report to.
func (s *Store) sweepLoop(ctx context.Context, interval time.Duration) {
	defer close(s.sweepDone)
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			_ = s.sweep(ctx, true)
		}
	}
}

// sweep removes temp files older than staleTempAge and, when expired is
// true, the files of expired keys. A file that cannot be parsed is left
// where it is. It returns the first error that stopped it.
func (s *Store) sweep(ctx context.Context, expired bool) error {
	if err := s.begin(ctx); err != nil {
		return err
	}
	defer s.mu.RUnlock()
	d, err := os.Open(s.dir)
	if err != nil {
		return err
	}
	defer d.Close()
	removed := false
	defer func() {
		if removed {
			s.dirFile.Sync()
		}
	}()
	for {
		entries, rerr := d.ReadDir(256)
		for _, e := range entries {
			if err := ctx.Err(); err != nil {
				return err
			}
			name := e.Name()
			path := filepath.Join(s.dir, name)
			kind, key := classify(name)
			switch {
			case kind == tempName:
				info, err := e.Info()
				if err == nil && info.Mode().IsRegular() && s.now().Sub(info.ModTime()) > staleTempAge {
					if os.Remove(path) == nil {
						removed = true
					}
				}
			case expired && (kind == directName || kind == hashedName):
				exp, hkey, err := readHeader(path)
				if err != nil || checkName(name, kind, key, hkey) != nil || !s.expired(exp) {
					continue
				}
				ok, err := s.removeExpired(ctx, hkey, path)
				if err != nil {
					return err
				}
				removed = removed || ok
			}
		}
		if rerr == io.EOF {
			return nil
		}
		if rerr != nil {
			return rerr
		}
	}
}

// removeExpired removes the file of key if, under key's lock, it still
// holds an expired value: a writer may have replaced it since the sweep
// read it.
func (s *Store) removeExpired(ctx context.Context, key, path string) (bool, error) {
	st, err := s.lock(ctx, key)
	if err != nil {
		return false, err
	}
	defer st.unlock()
	exp, hkey, err := readHeader(path)
	if err != nil || hkey != key || !s.expired(exp) {
		return false, nil
	}
	return os.Remove(path) == nil, nil
}

// checkName reports a value file whose header names a key that does not
// belong under its file name.
func checkName(name string, kind nameKind, nameKey, headerKey string) error {
	if kind == directName && headerKey != nameKey || kind == hashedName && fileName(headerKey) != name {
		return formatErrorf("it holds key %s, which does not belong under this name", quoteKey(headerKey))
	}
	return nil
}

func checkSizes(key string, value []byte) error {
	if uint64(len(key)) > math.MaxUint32 || uint64(len(value)) > math.MaxUint32 {
		return fmt.Errorf("key of %d bytes or value of %d bytes is too large: each is limited to 4 GiB", len(key), len(value))
	}
	return nil
}

// corruptError describes a file of the store that cannot be parsed.
type corruptError struct {
	path, detail string
}

func (e *corruptError) Error() string {
	return "corrupt file " + e.path + ": " + e.detail
}

func (e *corruptError) Is(target error) bool { return target == ErrCorrupt }

// wrapFormat turns a formatError into a corruptError; other errors pass.
func wrapFormat(path string, err error) error {
	var fe formatError
	if errors.As(err, &fe) {
		return &corruptError{path: path, detail: fe.Error()}
	}
	return err
}

// opError says which operation on which key failed. ErrNotFound passes
// unwrapped: it is an answer, not a failure.
func opError(op, key string, err error) error {
	if err == store.ErrNotFound {
		return err
	}
	return fmt.Errorf("filestore: %s %s: %w", op, quoteKey(key), err)
}

func scanError(prefix string, err error) error {
	return fmt.Errorf("filestore: scan prefix %s: %w", quoteKey(prefix), err)
}

// quoteKey quotes key for an error message, cut to its first 64 bytes.
func quoteKey(key string) string {
	if len(key) <= 64 {
		return strconv.Quote(key)
	}
	return strconv.Quote(key[:64]) + "... (" + strconv.Itoa(len(key)) + " bytes)"
}
