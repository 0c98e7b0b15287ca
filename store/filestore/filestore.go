package filestore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/typedsession/session/internal/storeutil"
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

// ErrCorrupt is [store.ErrCorrupt], kept under this name for code written
// before store.ErrCorrupt existed: errors.Is(err, filestore.ErrCorrupt)
// and errors.Is(err, store.ErrCorrupt) are the same test.
//
// A method returns an error matching it when a file that belongs to the
// store cannot be parsed: bad magic, wrong length, bad checksum, or a
// header naming another key. Such a file is never reported as
// [store.ErrNotFound] and never overwritten by CompareAndSwap,
// CompareAndDelete, Touch or GetAndTouch; Set and Delete replace or remove
// it as they would a valid one. The sweep reads headers only: it leaves a
// file whose header does not parse, and removes one whose sound header
// says it has expired.
//
// Deprecated: use [store.ErrCorrupt].
var ErrCorrupt = store.ErrCorrupt

// ErrClosed is [store.ErrClosed], returned by every method called after
// [Store.Close] and by a second Close.
//
// Deprecated: use [store.ErrClosed].
var ErrClosed = store.ErrClosed

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

	// MaxValueBytes caps the size of a value, in bytes. Set and
	// CompareAndSwap refuse a longer value, and every read of a file whose
	// header announces a longer one (Get, GetWithTTL, GetAndTouch, Touch,
	// CompareAndSwap, CompareAndDelete) returns an error matching
	// [store.ErrTooLarge] after reading only the 24-byte header, before it
	// allocates the value. Zero means no cap beyond the file format's
	// 4 GiB; a negative value makes New fail.
	MaxValueBytes int64

	// OnError receives the errors that no caller is waiting for: a
	// background sweep that failed (it is tried again at the next tick),
	// and a damaged file that Scan skipped because its key cannot be
	// recovered (a long key's file, named by a digest, whose header does
	// not parse: the error matches [store.ErrCorrupt] and names the
	// file). It is called from the sweep's goroutine or from the
	// goroutine that runs Scan, and must not block for long. Nil: such
	// errors are logged with slog.Default() at level Error, as memstore
	// and sqlstore do.
	OnError func(error)
}

// Store keeps each key in its own file under one directory. It implements
// [store.Store], [store.Swapper], [store.Deleter], [store.Toucher],
// [store.Refresher], [store.TTLGetter] and [store.Scanner]. It is safe for
// concurrent use by many goroutines and by many processes that open the
// same directory. Create it with [New] and release it with [Store.Close].
type Store struct {
	dir      string // absolute
	fileMode fs.FileMode
	maxValue int64       // 0: no cap
	onError  func(error) // never nil
	dirFile  *os.File    // dir itself, kept open to fsync it after removals
	now      func() time.Time

	stripes [numStripes]stripe

	// closed is set first thing by Close; every method checks it at entry.
	closed atomic.Bool
	// mu is read-held by every operation except Scan for as long as it
	// runs (so that Close, which write-holds it, waits for them); Close
	// closes the lock files and dirFile under it. Scan holds it only while
	// it reads a directory batch, never while a user callback runs, so a
	// Scan callback may call the store's other methods, and Close.
	mu   sync.RWMutex
	loop *storeutil.Loop // the background sweep
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
//
// A dir on a read-only file system (or one the process may only read)
// opens too, as long as it exists: Get, GetWithTTL and Scan work, and
// every write returns an error. The sweep then reports each expired file
// it cannot remove through Options.OnError; disable it with a negative
// CleanupInterval.
func New(dir string, opts Options) (*Store, error) {
	return newStore(dir, opts, time.Now)
}

// newStore is New with a clock, so that in-package tests can move time.
func newStore(dir string, opts Options, now func() time.Time) (*Store, error) {
	fail := func(err error) (*Store, error) {
		return nil, fmt.Errorf("filestore: New %s: %w", storeutil.QuoteKey(dir), err)
	}
	if !locksSupported {
		return fail(errNoFlock)
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
		return fail(fmt.Errorf("FileMode %v and DirMode %v must hold permission bits only", opts.FileMode, opts.DirMode))
	}
	if opts.MaxValueBytes < 0 {
		return fail(fmt.Errorf("MaxValueBytes is %d; give 0 for no cap or a positive number of bytes", opts.MaxValueBytes))
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return fail(err)
	}
	if err := os.MkdirAll(abs, opts.DirMode); err != nil {
		return fail(err)
	}
	if err := os.Mkdir(filepath.Join(abs, lockDir), opts.DirMode); err != nil && !errors.Is(err, fs.ErrExist) {
		// A store that may only be read has no use for locks: reads take
		// none, and every write will fail when it opens its lock file.
		if !isReadOnly(err) && !errors.Is(err, fs.ErrPermission) {
			return fail(err)
		}
	}
	dirFile, err := os.Open(abs)
	if err != nil {
		return fail(err)
	}
	onError := opts.OnError
	if onError == nil {
		onError = func(err error) { slog.Error("filestore: background error", "dir", abs, "err", err) }
	}
	s := &Store{
		dir:      abs,
		fileMode: opts.FileMode,
		maxValue: opts.MaxValueBytes,
		onError:  onError,
		dirFile:  dirFile,
		now:      now,
	}
	for i := range s.stripes {
		s.stripes[i] = stripe{
			sem:  make(chan struct{}, 1),
			path: filepath.Join(abs, lockDir, fmt.Sprintf("%02d", i)),
		}
	}
	if err := s.sweep(context.Background(), false); err != nil {
		dirFile.Close()
		return fail(err)
	}
	s.loop = storeutil.StartLoop(opts.CleanupInterval, func(ctx context.Context) error {
		return s.sweep(ctx, true)
	}, onError)
	return s, nil
}

// Close stops the sweep, waits for the operations in progress to finish
// (a running Scan stops at its next file) and releases the store's open
// files (the lock files and dir). Every write that returned nil is already
// durable; the files that hold the data stay, for the next New. Every
// later call, and a second Close, returns an error matching
// [store.ErrClosed].
func (s *Store) Close() error {
	if s.closed.Swap(true) {
		return storeutil.Wrap(backend, "close", "", store.ErrClosed)
	}
	s.loop.Stop()
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
	return storeutil.Wrap(backend, "close", "", errors.Join(errs...))
}

// Dir returns the absolute path of the directory that holds the store.
func (s *Store) Dir() string { return s.dir }

// Get returns the value stored under key, or [store.ErrNotFound] when the
// key is absent or expired. It only reads (no file lock, no write), so it works
// on a read-only or full disk: a rename replaces a file in one step, so a
// reader sees the old value or the new one.
func (s *Store) Get(ctx context.Context, key string) ([]byte, error) {
	if err := s.begin(ctx, key); err != nil {
		return nil, opError("get", key, err)
	}
	defer s.mu.RUnlock()
	rec, err := s.read(key)
	if err != nil {
		return nil, opError("get", key, err)
	}
	return rec.value, nil
}

// GetWithTTL returns the value stored under key and the time it has left,
// in nanoseconds, or [store.NoExpiry] when it has no expiry. It returns
// [store.ErrNotFound] when the key is absent or expired. Like Get it only
// reads, so it works on a read-only or full disk.
func (s *Store) GetWithTTL(ctx context.Context, key string) ([]byte, time.Duration, error) {
	if err := s.begin(ctx, key); err != nil {
		return nil, 0, opError("get-with-ttl", key, err)
	}
	defer s.mu.RUnlock()
	rec, err := s.read(key)
	if err != nil {
		return nil, 0, opError("get-with-ttl", key, err)
	}
	if rec.expiry == 0 {
		return rec.value, store.NoExpiry, nil
	}
	return rec.value, time.Duration(rec.expiry - s.now().UnixNano()), nil
}

// Set stores value under key with the given ttl (ttl <= 0: no expiry; a ttl
// past [store.MaxExpiry] is clamped to it). The new file is complete and
// fsynced before it replaces the old one, and the directory is fsynced
// after, so once Set returns nil the value survives a crash of the process
// or the machine. A value longer than Options.MaxValueBytes is refused
// with an error matching [store.ErrTooLarge].
func (s *Store) Set(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	if err := s.begin(ctx, key); err != nil {
		return opError("set", key, err)
	}
	defer s.mu.RUnlock()
	if err := s.checkValue(value); err != nil {
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
	if err := s.begin(ctx, key); err != nil {
		return opError("delete", key, err)
	}
	defer s.mu.RUnlock()
	st, err := s.lock(ctx, key)
	if err != nil {
		return opError("delete", key, err)
	}
	defer st.unlock()
	if err := s.remove(key); err != nil {
		return opError("delete", key, err)
	}
	return nil
}

// CompareAndSwap stores value under key with the given ttl if the current
// value equals old (nil old: if the key is absent or expired), and reports
// whether it did. A current value that already equals value also reports
// true and takes the ttl: a resent swap whose first attempt landed finds
// its own value (see [store.Swapper]). The read and the write happen under
// the key's lock, which every writer in every process that opens dir
// takes, so no other write can come between them. A corrupt file matches
// no old value: CompareAndSwap returns an error matching
// [store.ErrCorrupt] and leaves the file alone.
func (s *Store) CompareAndSwap(ctx context.Context, key string, old, value []byte, ttl time.Duration) (bool, error) {
	if err := s.begin(ctx, key); err != nil {
		return false, opError("compare-and-swap", key, err)
	}
	defer s.mu.RUnlock()
	if err := s.checkValue(value); err != nil {
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
	case bytes.Equal(rec.value, value):
		// The resend rule: this value is already there.
	case old == nil || !bytes.Equal(rec.value, old):
		return false, nil
	}
	if err := s.write(key, value, s.expiry(ttl)); err != nil {
		return false, opError("compare-and-swap", key, err)
	}
	return true, nil
}

// CompareAndDelete deletes key if its current value equals old, and
// reports whether this call deleted it: false (leaving it alone) when it
// holds another value or is absent or expired. It takes the key's lock, as CompareAndSwap does, so it is atomic
// against every writer in every process that opens dir. A corrupt file
// matches no old value: it returns an error matching [store.ErrCorrupt]
// and leaves the file alone.
func (s *Store) CompareAndDelete(ctx context.Context, key string, old []byte) (bool, error) {
	if err := s.begin(ctx, key); err != nil {
		return false, opError("compare-and-delete", key, err)
	}
	defer s.mu.RUnlock()
	st, err := s.lock(ctx, key)
	if err != nil {
		return false, opError("compare-and-delete", key, err)
	}
	defer st.unlock()
	rec, err := s.read(key)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return false, nil
	case err != nil:
		return false, opError("compare-and-delete", key, err)
	case !bytes.Equal(rec.value, old):
		return false, nil
	}
	if err := s.remove(key); err != nil {
		return false, opError("compare-and-delete", key, err)
	}
	return true, nil
}

// Touch sets key to expire ttl from now (ttl <= 0: never; a ttl past
// [store.MaxExpiry] is clamped to it). It rewrites the key's file the way
// Set does, under the key's lock, so the value cannot change between the
// read and the write. It returns [store.ErrNotFound] when the key is absent
// or expired.
func (s *Store) Touch(ctx context.Context, key string, ttl time.Duration) error {
	_, err := s.getAndTouch(ctx, "touch", key, ttl)
	return err
}

// GetAndTouch returns the value stored under key and sets it to expire ttl
// from now (ttl <= 0: never; a ttl past [store.MaxExpiry] is clamped to
// it), under the key's lock. It returns [store.ErrNotFound] when the key is
// absent or expired. It rewrites the file, so it needs a writable disk
// with room for a second copy of the value: a caller that only needs to
// know the time left reads with [Store.GetWithTTL].
func (s *Store) GetAndTouch(ctx context.Context, key string, ttl time.Duration) ([]byte, error) {
	return s.getAndTouch(ctx, "get-and-touch", key, ttl)
}

func (s *Store) getAndTouch(ctx context.Context, op, key string, ttl time.Duration) ([]byte, error) {
	if err := s.begin(ctx, key); err != nil {
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
// directory in batches, skipping temp files, the lock folder and files
// that are not the store's, and never reads a value:
//
//   - a key of up to 124 bytes is the file's name; Scan reads only the
//     file's 24-byte header to skip an expired key. A file whose header
//     does not parse is still reported (its key is known), so that the
//     caller's Get meets the damage and reports it for that key alone.
//   - a longer key is in the file's header (the name is its digest); Scan
//     reads the header and the key. A file whose header or key does not
//     parse is skipped and reported through Options.OnError with an error
//     matching [store.ErrCorrupt] that names the file; the scan goes on.
//
// A damaged file never stops a Scan. fn may call the store's other
// methods. Scan returns fn's error, ctx.Err() when ctx ends, ErrClosed
// once the store is closed, or an error reading the directory.
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
			key, ok := s.scanEntry(prefix, e.Name())
			if !ok {
				continue
			}
			if err := fn(key); err != nil {
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

// scanEntry returns the key of directory entry name and whether Scan
// reports it: a live key of the store's that begins with prefix.
func (s *Store) scanEntry(prefix, name string) (string, bool) {
	kind, key := classify(name)
	path := filepath.Join(s.dir, name)
	switch kind {
	case directName:
		if !strings.HasPrefix(key, prefix) {
			return "", false
		}
		if err := store.CheckKey(key); err != nil {
			// Written by a version that took keys the store now
			// refuses: no method can reach it.
			s.onError(scanError(prefix, fmt.Errorf("skipped %s: %w", path, err)))
			return "", false
		}
		expiry, _, err := readHeader(path, false)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			return "", false // deleted since ReadDir
		case err == nil && s.expired(expiry):
			return "", false
		}
		return key, true // a damaged file too: Get reports it for this key
	case hashedName:
		expiry, hkey, err := readHeader(path, true)
		if errors.Is(err, fs.ErrNotExist) {
			return "", false
		}
		if err == nil {
			err = checkName(name, kind, key, hkey)
		}
		if err != nil {
			s.onError(scanError(prefix, fmt.Errorf("skipped a file whose key cannot be recovered: %w", wrapFormat(path, err))))
			return "", false
		}
		if !strings.HasPrefix(hkey, prefix) || s.expired(expiry) {
			return "", false
		}
		return hkey, true
	}
	return "", false
}

// ---- internals ----

// backend names the package in errors.
const backend = "filestore"

// check returns ctx.Err() or ErrClosed.
func (s *Store) check(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if s.closed.Load() {
		return store.ErrClosed
	}
	return nil
}

// begin checks key (with an empty key meaning "no key to check": the
// sweep), ctx and Close; on success it leaves s.mu read-held, and the
// caller must RUnlock it. No I/O happens before the key is checked.
func (s *Store) begin(ctx context.Context, key string) error {
	if err := store.CheckKey(key); err != nil {
		return err
	}
	return s.beginNoKey(ctx)
}

func (s *Store) beginNoKey(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.RLock()
	if s.closed.Load() {
		s.mu.RUnlock()
		return store.ErrClosed
	}
	return nil
}

// expiry is the absolute expiry, in Unix nanoseconds, of a key written now
// with ttl: 0 (never) for ttl <= 0, at most store.MaxExpiry.
func (s *Store) expiry(ttl time.Duration) int64 {
	d := store.Deadline(s.now(), ttl)
	if d.IsZero() {
		return 0
	}
	return d.UnixNano()
}

func (s *Store) expired(expiry int64) bool {
	return expiry != 0 && s.now().UnixNano() >= expiry
}

func (s *Store) checkValue(value []byte) error {
	switch {
	case s.maxValue > 0 && int64(len(value)) > s.maxValue:
		return fmt.Errorf("%w: value of %d bytes, Options.MaxValueBytes is %d", store.ErrTooLarge, len(value), s.maxValue)
	case uint64(len(value)) > math.MaxUint32:
		return fmt.Errorf("%w: value of %d bytes, the file format's limit is 4 GiB", store.ErrTooLarge, len(value))
	}
	return nil
}

// read returns the live record of key, store.ErrNotFound when the key is
// absent or expired, an error wrapping store.ErrTooLarge when the value
// is longer than the cap (found from the header alone), or an error
// wrapping store.ErrCorrupt.
func (s *Store) read(key string) (record, error) {
	path := filepath.Join(s.dir, fileName(key))
	rec, hd, tooLarge, err := readFile(path, s.maxValue)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return record{}, store.ErrNotFound
	case err != nil:
		return record{}, wrapFormat(path, err)
	case tooLarge:
		if s.expired(hd.expiry) {
			return record{}, store.ErrNotFound
		}
		return record{}, fmt.Errorf("%w: file %s holds a value of %d bytes, Options.MaxValueBytes is %d", store.ErrTooLarge, path, hd.vl, s.maxValue)
	case rec.key != key:
		return record{}, wrapFormat(path, formatErrorf("it holds key %s", storeutil.QuoteKey(rec.key)))
	case s.expired(rec.expiry):
		return record{}, store.ErrNotFound
	}
	return rec, nil
}

// write replaces key's file through storeutil.WriteFileAtomic: a temp file
// in dir, written whole, fsynced, renamed over the target, then dir
// fsynced. The caller holds key's lock, which is what makes a
// read-compare-write atomic; the write itself needs nothing more.
func (s *Store) write(key string, value []byte, expiry int64) error {
	return storeutil.WriteFileAtomic(filepath.Join(s.dir, fileName(key)), s.fileMode, func(w io.Writer) error {
		return writeRecord(w, key, value, expiry)
	})
}

// remove removes key's file, if any, and fsyncs dir. The caller holds
// key's lock.
func (s *Store) remove(key string) error {
	if err := os.Remove(filepath.Join(s.dir, fileName(key))); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		return err
	}
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

// testHookSweepLocking, when set by a test, runs after the sweep has
// found key expired and before it takes key's lock to re-check it.
var testHookSweepLocking func(key string)

// sweep removes temp files older than staleTempAge and, when expired is
// true, the files of expired keys. A file that cannot be parsed is left
// where it is. A file it cannot remove does not stop it: it goes on with
// the rest and returns the first such error with the number of files that
// failed. It stops at once when ctx ends or the store closes.
func (s *Store) sweep(ctx context.Context, expired bool) error {
	if err := s.beginNoKey(ctx); err != nil {
		return storeutil.Wrap(backend, "sweep", "", err)
	}
	defer s.mu.RUnlock()
	d, err := os.Open(s.dir)
	if err != nil {
		return storeutil.Wrap(backend, "sweep", "", err)
	}
	defer d.Close()
	removed := false
	var first error
	failed := 0
	fail := func(err error) {
		if first == nil {
			first = err
		}
		failed++
	}
	result := func() error {
		if removed {
			if err := s.dirFile.Sync(); err != nil {
				fail(err)
			}
		}
		if first == nil {
			return nil
		}
		return storeutil.Wrap(backend, "sweep", "", fmt.Errorf("%d files could not be removed; the first: %w", failed, first))
	}
	for {
		entries, rerr := d.ReadDir(256)
		for _, e := range entries {
			if err := ctx.Err(); err != nil {
				return storeutil.Wrap(backend, "sweep", "", err)
			}
			name := e.Name()
			path := filepath.Join(s.dir, name)
			kind, key := classify(name)
			switch {
			case kind == tempName:
				info, err := e.Info()
				if err == nil && info.Mode().IsRegular() && s.now().Sub(info.ModTime()) > staleTempAge {
					switch err := os.Remove(path); {
					case err == nil:
						removed = true
					case !errors.Is(err, fs.ErrNotExist) && expired:
						fail(err) // New, which may run on a read-only disk, stays quiet
					}
				}
			case expired && (kind == directName || kind == hashedName):
				exp, hkey, err := readHeader(path, true)
				if err != nil || checkName(name, kind, key, hkey) != nil || !s.expired(exp) {
					continue
				}
				if testHookSweepLocking != nil {
					testHookSweepLocking(hkey)
				}
				ok, err := s.removeExpired(ctx, hkey, path)
				if err != nil {
					if ctx.Err() != nil {
						return storeutil.Wrap(backend, "sweep", "", ctx.Err())
					}
					fail(err)
				}
				removed = removed || ok
			}
		}
		if rerr == io.EOF {
			return result()
		}
		if rerr != nil {
			fail(rerr)
			return result()
		}
	}
}

// removeExpired removes the file of key if, under key's lock, it still
// holds an expired value: a writer, in this process or another, may have
// replaced it since the sweep read it, and the lock keeps every writer out
// between the re-check and the removal.
func (s *Store) removeExpired(ctx context.Context, key, path string) (bool, error) {
	st, err := s.lock(ctx, key)
	if err != nil {
		return false, err
	}
	defer st.unlock()
	exp, hkey, err := readHeader(path, true)
	if err != nil || hkey != key || !s.expired(exp) {
		return false, nil
	}
	if err := os.Remove(path); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return false, nil
		}
		return false, err
	}
	return true, nil
}

// checkName reports a value file whose header names a key that does not
// belong under its file name.
func checkName(name string, kind nameKind, nameKey, headerKey string) error {
	if kind == directName && headerKey != nameKey || kind == hashedName && fileName(headerKey) != name {
		return formatErrorf("it holds key %s, which does not belong under this name", storeutil.QuoteKey(headerKey))
	}
	return nil
}

// corruptError describes a file of the store that cannot be parsed. It
// matches store.ErrCorrupt (and so filestore.ErrCorrupt).
type corruptError struct {
	path, detail string
}

func (e *corruptError) Error() string {
	return "corrupt file " + e.path + ": " + e.detail
}

func (e *corruptError) Unwrap() error { return store.ErrCorrupt }

// wrapFormat turns a formatError into a corruptError; other errors pass.
func wrapFormat(path string, err error) error {
	var fe formatError
	if errors.As(err, &fe) {
		return &corruptError{path: path, detail: fe.Error()}
	}
	return err
}

// opError says which operation on which key failed, through
// storeutil.Wrap (the key quoted and shortened). ErrNotFound passes
// unwrapped: it is an answer, not a failure.
func opError(op, key string, err error) error {
	if err == store.ErrNotFound {
		return err
	}
	return storeutil.Wrap(backend, op, key, err)
}

func scanError(prefix string, err error) error {
	return fmt.Errorf("filestore: scan prefix %s: %w", storeutil.QuoteKey(prefix), err)
}
