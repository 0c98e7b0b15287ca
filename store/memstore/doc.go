// Package memstore is an in-memory [store.Store] with expiry, a background
// sweep and an optional snapshot file.
//
//	st, err := memstore.New(memstore.Options{BackupPath: "/var/lib/mybot/sessions.snap"})
//	if err != nil { ... }
//	defer st.Close() // writes the final snapshot
//
// It implements every optional capability of package store: [store.Swapper],
// [store.Deleter], [store.Toucher], [store.Refresher], [store.TTLGetter] and
// [store.Scanner]. The map is split into shards, each with its own lock, so
// that readers on one core do not wait for writers or for the sweep on
// another.
//
// # Keys and values
//
// A key is what [store.CheckKey] accepts: 1 to [store.MaxKeyLen] (1024) bytes
// of UTF-8 without NUL. Every method refuses another key with an error
// matching [store.ErrInvalidKey]. Values are opaque bytes, copied in and out;
// [Options].MaxValueBytes caps their size.
//
// # Expiry
//
// A ttl of zero or less means "no expiry" in every method and removes a
// key's previous expiry. A ttl that reaches past [store.MaxExpiry] (the year
// 2200), up to the largest time.Duration, is clamped to it. Expiry is decided
// by the local clock: a key whose deadline has passed is invisible at once.
// Its memory is reclaimed by a sweep that runs every [Options].CleanupInterval,
// one shard at a time; the sweep removes a key only after checking, under the
// shard's write lock, that it is still expired, so a key written or extended
// while the sweep runs is kept.
//
// # Snapshots
//
// With [Options].BackupPath set, the whole store is written to that file
// every [Options].BackupInterval and on [Store.Close], and [New] restores it,
// keeping each key's absolute deadline. A snapshot is written to a temporary
// file in the same folder (".<name>.tmp-<digits>"), synced and renamed over
// the old one, so a crash leaves either the previous snapshot or the new one;
// New removes the temporary files such a crash leaves behind. A snapshot that
// exists but cannot be read makes New fail with an error matching
// [store.ErrCorrupt] (or [store.ErrTooLarge] for a value over
// MaxValueBytes): the store never starts empty and then overwrites sessions
// it could not read. One BackupPath belongs to one Store at a time.
//
// Snapshots stream: writing one holds a 256 KiB buffer and the references
// (not copies) to the entries of one shard at a time, 1/64 of the store;
// restoring one reads it entry by entry through a 256 KiB buffer. Neither
// builds the snapshot in memory.
//
// A snapshot (format version 2) is a stream of records after a 24-byte magic
// string. Integers are unsigned LEB128 varints (as encoding/binary's
// AppendUvarint writes them) unless said otherwise:
//
//	"\x00typedsession-memstore2\n" hint                    magic, 24 bytes, and a size hint
//	'E' len(key) key len(value) value expires              one per live key
//	'Z' count crc                                          trailer, then EOF
//
// hint is the number of entries the store held when the snapshot began (the
// restore sizes its maps with it, never beyond what the file can hold);
// expires is the key's deadline in Unix nanoseconds as a zig-zag varint
// (encoding/binary's AppendVarint), 0 meaning none; count is the number of
// 'E' records; crc is the CRC-32C (Castagnoli) of every byte before it, as 4
// bytes little-endian. Keys and values are stored byte for byte.
//
// New also reads the JSON snapshots that earlier versions wrote (format
// version 1: {"format":"typedsession-memstore","version":1,"entries":[{"key":
// "...","value":"<base64>","expires":<unix ns>}]}), streaming them too, so
// existing backups load; the next snapshot is written in version 2. A version
// 1 entry whose key the store no longer accepts (a key that is empty, holds
// NUL or is longer than MaxKeyLen bytes) is skipped and reported through
// [Options].OnError, since no method could reach it.
//
// # Close
//
// [Store.Close] follows the contract of package store: it stops the sweep
// and the periodic snapshot, waits for every operation already running,
// writes the final snapshot and returns its error. Every call after that, and
// a second Close, returns an error matching [store.ErrClosed]. A write that
// races with Close either returns nil and is in the final snapshot, or
// returns ErrClosed and is not.
package memstore
