// Package filestore is a durable [store.Store] that keeps each key in its
// own file under one directory. It needs no server, survives crashes of the
// process and of the machine, and may be shared by several processes on
// one host.
//
//	st, err := filestore.New("/var/lib/mybot/sessions", filestore.Options{})
//	if err != nil { ... }
//	defer st.Close()
//
// A [Store] implements [store.Store] and every optional capability:
// [store.Swapper], [store.Deleter], [store.Toucher], [store.Refresher],
// [store.TTLGetter] and [store.Scanner].
//
// # Keys
//
// A key is what [store.CheckKey] accepts: 1 to [store.MaxKeyLen] (1024)
// bytes of UTF-8 without NUL. Every method checks it before any I/O and
// refuses another key with an error matching [store.ErrInvalidKey]. Errors
// quote keys shortened to 64 bytes.
//
// # Layout on disk
//
//	dir/
//	  k<base32(key)>           value file of a key of up to 124 bytes
//	  h<sha256(key)>           value file of a longer key (64 hex digits)
//	  .<name>.tmp-<digits>     a write in progress, or one a crash interrupted
//	  .locks/00 .. 31          lock files, one per stripe of keys
//
// A file name never contains the key itself, only an encoding of it, so
// every key, however hostile ("../../etc/passwd", "CON", "."), maps to a
// file directly inside dir. The base32 alphabet is [0-9a-v]: names are
// valid on every file system and stay distinct where case is ignored. A
// key of up to 124 bytes gets a readable name of at most 200 bytes ("k"
// and 199 base32 digits; a 125-byte key would need 201), from which Scan
// reads the key back. A longer key is stored under the SHA-256 of the key
// instead; its file's header holds the full key, which Get checks and Scan
// reads. All keys share one flat directory: Get, Set and the rest look up
// one name, which file systems with indexed directories (ext4, XFS, APFS)
// do quickly at any size, while Scan and the sweep read every entry.
//
// Files in dir whose names do not follow this scheme are not the store's:
// Scan and the sweep leave them alone.
//
// # File format
//
// A value file is a 24-byte header, the key, then the value. Integers are
// big-endian:
//
//	offset  size  field
//	0       4     magic "TSF" and format version 1: 'T' 'S' 'F' 0x01
//	4       8     expiry, absolute Unix time in nanoseconds; 0 = never
//	12      4     key length K (1 to 1024)
//	16      4     value length V
//	20      4     CRC-32C (Castagnoli) of bytes 0..19, the key and the value
//	24      K     the key
//	24+K    V     the value
//
// A file of the store's that does not parse (wrong magic, wrong length,
// bad checksum, a key that does not belong under its name) gives an error
// matching [store.ErrCorrupt] that names the operation, the key and the
// file, never [store.ErrNotFound], and is left as it is. Values are limited
// to 4 GiB, or to [Options].MaxValueBytes: a read learns a value's length
// from the header and refuses a longer one with [store.ErrTooLarge] before
// it allocates it.
//
// # A damaged file
//
// One damaged file never stops a Scan, which does not read values. A key of
// up to 124 bytes is known from its file's name, so Scan reports it even
// when its file is damaged, and the caller's Get meets the damage for that
// key alone. A longer key is known only from its file's header: when that
// does not parse, Scan skips the file and reports it through
// [Options].OnError.
//
// # Reads only read
//
// Get, GetWithTTL and Scan open files for reading and nothing else: no
// lock, no temp file, no fsync. They keep working on a read-only mount
// and on a full disk, where every write fails with the file system's
// error. GetAndTouch and Touch rewrite the file; a caller that extends an
// idle timeout only when it runs low reads with GetWithTTL first.
//
// # Durability
//
// Every write (Set, CompareAndSwap, Touch, GetAndTouch) creates a temp
// file in dir, writes the whole new file, fsyncs it, renames it over the
// key's file and fsyncs dir (through the module's one atomic file write).
// Delete and CompareAndDelete remove the file and fsync dir. When a
// method returns nil, its effect survives a power cut (given a disk that
// honours fsync). Because rename replaces a file in one step, a crash at
// any instant leaves each key with its old value or its new one, never a
// mix, and a reader never sees a half-written file. The fsyncs make a
// write cost a few milliseconds on a disk: see the benchmarks.
//
// # What a crash leaves behind
//
// At most one temp file per write in progress, named after the key's file
// (".<name>.tmp-<digits>"; older versions named them ".tmp-<digits>"). It
// is never taken for a key. New and the sweep remove temp files older than
// ten minutes; younger ones may belong to a live writer in another
// process. Lock files hold no data, and a lock dies with the process that
// held it.
//
// # Expiry
//
// The expiry is recorded with the value as an absolute time, so an expired
// key is invisible to every method the moment it expires. A ttl of zero or
// less means no expiry (and removes a previous one) in every method; a ttl
// that reaches past [store.MaxExpiry] (the year 2200), up to the largest
// time.Duration, is clamped to it. An expired file stays until the sweep,
// which runs every [Options].CleanupInterval (one minute by default) in a
// goroutine that [Store.Close] stops. The sweep re-reads each expired
// file's header under the key's lock, which every writer in every process
// takes, and removes the file only if it is still expired then: a key
// that a writer refreshed or re-created in the meantime stays. A sweep that
// fails is reported through [Options].OnError and tried again at the next
// tick. Expiry is judged by the local clock of the machine that reads the
// file.
//
// # Concurrency and other processes
//
// The keys are spread by hash over 32 stripes. A writer of a key holds the
// key's stripe: a semaphore among the goroutines of its process, then an
// flock(2) on dir/.locks/NN among processes. Set, Delete, CompareAndSwap,
// CompareAndDelete, Touch, GetAndTouch and the sweep's removals all take
// it, so CompareAndSwap's and CompareAndDelete's read and write are atomic
// against every writer of every process that opens dir, and a Set cannot
// slip in between them. Get, GetWithTTL and Scan take no lock. Waiting for
// a lock ends when ctx does. The number of lock files is fixed, whatever
// the number of keys.
//
// CompareAndSwap follows the resend rule of [store.Swapper]: a swap that
// finds the value it would write reports true (and sets the ttl), so that
// a resent swap whose first attempt landed is not taken for a conflict.
//
// flock(2) works between processes on one host. It is not reliable on
// network file systems (NFS, SMB): do not share dir between machines. On
// systems without flock(2) (Windows, for one) New returns an error.
//
// # Close
//
// [Store.Close] stops the sweep and waits for the operations in progress
// (a running Scan stops at its next file); every write that returned nil
// is already on disk. Every later call, and a second Close, returns an
// error matching [store.ErrClosed].
package filestore
