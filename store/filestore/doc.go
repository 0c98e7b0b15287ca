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
// [store.Swapper], [store.Toucher], [store.Refresher] and [store.Scanner].
//
// # Layout on disk
//
//	dir/
//	  k<base32(key)>     value file of a key of up to 125 bytes
//	  h<sha256(key)>     value file of a longer key (64 hex digits)
//	  .tmp-<random>      a write in progress, or one a crash interrupted
//	  .locks/00 .. 31    lock files, one per stripe of keys
//
// A file name never contains the key itself, only an encoding of it, so
// every key, however hostile ("../../etc/passwd", "CON", a NUL byte, a
// 5 KB key), maps to a file directly inside dir. The base32 alphabet is
// [0-9a-v]: names are valid on every file system and stay distinct where
// case is ignored. A key whose encoding would pass 200 bytes (file names
// are limited to 255) is stored under the SHA-256 of the key instead; its
// file's header holds the full key, which Get checks and Scan reports. All
// keys share one flat directory: Get, Set and the rest look up one name,
// which file systems with indexed directories (ext4, XFS, APFS) do quickly
// at any size, while Scan and the sweep read every entry.
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
//	12      4     key length K
//	16      4     value length V
//	20      4     CRC-32C (Castagnoli) of bytes 0..19, the key and the value
//	24      K     the key
//	24+K    V     the value
//
// A file of the store's that does not parse (wrong magic, wrong length,
// bad checksum, a key that does not belong under its name) gives an error
// wrapping [ErrCorrupt] that names the operation, the key and the file,
// never [store.ErrNotFound]. Keys and values are limited to 4 GiB each.
//
// # Durability
//
// Every write (Set, CompareAndSwap, Touch, GetAndTouch) creates a temp
// file in dir, writes the whole new file, fsyncs it, renames it over the
// key's file and fsyncs dir. Delete removes the file and fsyncs dir. When a
// method returns nil, its effect survives a power cut (given a disk that
// honours fsync). Because rename replaces a file in one step, a crash at
// any instant leaves each key with its old value or its new one, never a
// mix, and a reader never sees a half-written file. The fsyncs make a
// write cost a few milliseconds on a disk: see the benchmarks.
//
// # What a crash leaves behind
//
// At most one temp file per write in progress, named ".tmp-...". It is
// never taken for a key. New and the sweep remove temp files older than ten
// minutes; younger ones may belong to a live writer in another process.
// Lock files hold no data, and a lock dies with the process that held it.
//
// # Expiry
//
// The expiry is recorded with the value, so an expired key is invisible to
// every method the moment it expires. Its file stays until the sweep, which
// runs every [Options].CleanupInterval (one minute by default) in a
// goroutine that [Store.Close] stops, re-checks each expired file under the
// key's lock and removes it. Expiry is judged by the clock of the machine
// that reads the file.
//
// # Concurrency and other processes
//
// The keys are spread by hash over 32 stripes. A writer of a key holds the
// key's stripe: a semaphore among the goroutines of its process, then an
// flock(2) on dir/.locks/NN among processes. Set, Delete, CompareAndSwap,
// Touch and GetAndTouch all take it, so CompareAndSwap's read and write
// are atomic against every writer of every process that opens dir, and a
// Set cannot slip in between them. Get and Scan take no lock. Waiting for a
// lock ends when ctx does. The number of lock files is fixed, whatever the
// number of keys.
//
// flock(2) works between processes on one host. It is not reliable on
// network file systems (NFS, SMB): do not share dir between machines. On
// systems without flock(2) (Windows, for one) New returns an error.
package filestore
