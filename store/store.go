// Package store defines the byte-oriented storage contract that every
// typedsession backend satisfies.
//
// A store keeps opaque values under string keys. It knows nothing of
// sessions, codecs or schema versions: encoding lives in the root package.
// Any type with the three methods of [Store] is a store, so a user's own
// database is three methods away. Further abilities are optional and found by
// type assertion: [Swapper], [Deleter], [Toucher], [Refresher], [TTLGetter]
// and [Scanner], and for bulk work (MigrateAll, the inspector) the batch
// forms [BatchGetter], [BatchTTLGetter] and [BatchSwapper].
//
// The backends in this module live in sibling folders (memstore, filestore,
// redisstore, sqlstore) and each passes the conformance suite in
// [github.com/typedsession/session/store/storetest].
//
// # The contract
//
// Every method of a store, including the optional ones:
//
//   - may be called concurrently from many goroutines;
//   - accepts every valid key (see [CheckKey]: UTF-8 text without NUL, 1 to
//     [MaxKeyLen] bytes, including spaces, colons, slashes and glob or LIKE
//     metacharacters) and refuses every other key with an error matching
//     [ErrInvalidKey], before any I/O;
//   - treats values as opaque bytes: an empty value and values with NUL bytes
//     are stored and returned exactly;
//   - copies the bytes it is given and returns bytes the caller owns, so
//     neither side can change the other's data by mutating a slice;
//   - returns ctx.Err() (possibly wrapped) when ctx is cancelled or its
//     deadline passes before the operation completes, and leaves the stored
//     value either as it was or as the operation intended, never torn;
//   - reports an infrastructure failure (connection refused, timeout, disk
//     error) as an error, never as [ErrNotFound];
//   - reports a stored value it cannot read back whole (a damaged file or
//     snapshot entry, an expiry it did not write, a value of a kind it does
//     not hold, such as a Redis hash) with an error matching [ErrCorrupt],
//     and leaves it in place; every read agrees on it (Get, GetWithTTL,
//     GetAndTouch and the batch reads report the same key as corrupt, never
//     one of them as absent), and Scan reports its key;
//   - treats a ttl of zero or less, in every method that takes one, as "no
//     expiry": the key's previous expiry, if any, is removed. A ttl too
//     long for the backend to represent (up to the largest time.Duration)
//     is clamped to the latest expiry it can store, so that a key written
//     with it is live right after the write.
//
// # Close
//
// A backend that holds resources has a Close method (not part of [Store]).
// Close stops the backend's own background work (sweeps, snapshots), waits
// for operations already running to finish, makes every write that returned
// nil durable where the backend promises durability (memstore's snapshot
// file, for instance), and returns. It never closes a client or *sql.DB that
// the caller passed in. Every call after Close, and a second Close, returns
// an error matching [ErrClosed]; a write that races with Close either
// returns nil and is kept, or returns ErrClosed and is not.
//
// A key whose TTL has passed is expired: from that instant it behaves exactly
// like an absent key, whether or not the backend has reclaimed its storage yet.
package store

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"
)

// Errors shared by every backend. Test for them with errors.Is: a backend
// may wrap them with the operation and the key.
var (
	// ErrNotFound is returned by Get, GetAndTouch, GetWithTTL and Touch
	// when the key is absent or expired.
	ErrNotFound = errors.New("store: key not found")

	// ErrInvalidKey is returned, before any I/O, for a key that [CheckKey]
	// refuses.
	ErrInvalidKey = errors.New("store: invalid key")

	// ErrCorrupt is returned for a stored value that the backend cannot
	// read back whole (a damaged file, a bad checksum). The value is left
	// as it is. The session manager maps it to session.ErrCorrupt.
	ErrCorrupt = errors.New("store: stored value is corrupt")

	// ErrClosed is returned by every method called after the store's
	// Close, and by a second Close.
	ErrClosed = errors.New("store: closed")

	// ErrTooLarge is returned by a backend that caps the size of the
	// values it reads or writes (an option of the backend), before it
	// reads or allocates the whole value where it can learn the size
	// first.
	ErrTooLarge = errors.New("store: value too large")
)

// MaxKeyLen is the longest key, in bytes, that every store accepts. It
// keeps a key (and a backend's prefix) well inside PostgreSQL's B-tree
// index entry limit of 2,704 bytes and a file name digest's reach.
const MaxKeyLen = 1024

// CheckKey returns nil for a valid key: 1 to [MaxKeyLen] bytes of valid
// UTF-8 without a NUL byte. Otherwise it returns an error matching
// [ErrInvalidKey] that says why. Every backend calls it first in every
// method that takes a key; a store of your own should too.
func CheckKey(key string) error {
	switch {
	case key == "":
		return fmt.Errorf("%w: empty key", ErrInvalidKey)
	case len(key) > MaxKeyLen:
		return fmt.Errorf("%w: key is %d bytes, the limit is %d", ErrInvalidKey, len(key), MaxKeyLen)
	case !utf8.ValidString(key):
		return fmt.Errorf("%w: key is not valid UTF-8", ErrInvalidKey)
	case strings.IndexByte(key, 0) >= 0:
		return fmt.Errorf("%w: key contains a NUL byte", ErrInvalidKey)
	}
	return nil
}

// MaxExpiry is the latest expiry a backend needs to represent: a ttl that
// reaches past it is clamped to it. It is far enough (the year 2200) to mean
// "never" in practice and near enough for every backend's time type (an int64 of Unix nanoseconds
// reaches 2262).
var MaxExpiry = time.Date(2200, 1, 1, 0, 0, 0, 0, time.UTC)

// Deadline returns the absolute expiry of a key written at now with ttl:
// the zero time for ttl <= 0 (no expiry), and at most [MaxExpiry], without
// overflowing for any ttl.
func Deadline(now time.Time, ttl time.Duration) time.Time {
	if ttl <= 0 {
		return time.Time{}
	}
	if ttl >= MaxExpiry.Sub(now) {
		return MaxExpiry
	}
	return now.Add(ttl)
}

// NoExpiry is the remaining TTL that [TTLGetter.GetWithTTL] reports for a
// key without an expiry (as Redis PTTL reports -1).
const NoExpiry time.Duration = -1

// Store is the minimum a backend provides.
type Store interface {
	// Get returns a copy of the value stored under key. It returns
	// ErrNotFound when the key is absent or expired.
	Get(ctx context.Context, key string) ([]byte, error)

	// Set stores a copy of value under key, replacing any previous value.
	// A ttl greater than zero makes the key expire after ttl; a ttl of zero
	// or less stores it without expiry. A value that replaces another takes
	// the new ttl.
	Set(ctx context.Context, key string, value []byte, ttl time.Duration) error

	// Delete removes key. Deleting an absent or expired key is not an error.
	//
	// Set and Delete are not safe to resend once an attempt may have
	// reached the backend: if it ran, and another writer then built on
	// its outcome (a create "only if absent" after a delete), a resend
	// would undo that writer's acknowledged write. A backend (or its
	// client library) must therefore not send them again after a lost
	// reply; it returns an error, which the session manager settles by
	// reading the key.
	Delete(ctx context.Context, key string) error
}

// Swapper is implemented by stores that can replace a value atomically only
// if it still holds what the caller last read. The session manager uses it so
// that concurrent writers of one key never lose an update.
type Swapper interface {
	// CompareAndSwap stores value under key with the given ttl (as in
	// Store.Set) if and only if the current value equals old, byte for
	// byte, and reports whether it did. A nil old means "only if the key is
	// absent or expired"; a non-nil empty old matches a stored empty value.
	// A swap that does not happen returns false and a nil error; the
	// stored value is unchanged.
	//
	// A swap is safe to resend: when the current value already equals
	// value, byte for byte, CompareAndSwap reports true (and sets the
	// ttl), because a resent swap whose first attempt landed finds its own
	// value there. This is sound only because the session manager never
	// writes the same bytes twice: every value it writes carries a unique
	// write identity.
	//
	// False is a promise that the swap did not happen and will not: a
	// backend (or its client library) that sends the swap again after a
	// lost reply and then finds another value cannot know whether the
	// first attempt landed and was built on since, so it must return an
	// error then, never false. The session manager trusts a false as a
	// conflict and applies the change again. In the same way an error
	// matching [ErrInvalidKey], [ErrTooLarge], [ErrClosed] or
	// [ErrCorrupt] promises that nothing was written (the session
	// manager does not resend it): after a lost reply, a resend that
	// meets one of them must return an error that matches none.
	CompareAndSwap(ctx context.Context, key string, old, value []byte, ttl time.Duration) (bool, error)
}

// Toucher is implemented by stores that can change a key's expiry without
// rewriting its value.
type Toucher interface {
	// Touch sets key to expire after ttl from now; a ttl of zero or less
	// removes its expiry. It returns ErrNotFound when the key is absent or
	// expired, and never creates a key.
	Touch(ctx context.Context, key string, ttl time.Duration) error
}

// Refresher is implemented by stores that can read a value and extend its
// expiry in the same round trip (Redis GETEX). With it, loading an unchanged
// session under an idle timeout costs exactly one round trip.
type Refresher interface {
	// GetAndTouch behaves like Get and, when the key exists, sets it to
	// expire after ttl from now (ttl <= 0 removes the expiry), atomically
	// with the read. It returns ErrNotFound when the key is absent or
	// expired.
	GetAndTouch(ctx context.Context, key string, ttl time.Duration) ([]byte, error)
}

// Deleter is implemented by stores that can delete a key only if it still
// holds what the caller last read. The session manager uses it for Destroy,
// so that deleting a session never erases another writer's newer value.
type Deleter interface {
	// CompareAndDelete deletes key if and only if its current value equals
	// old, byte for byte, and reports whether this call deleted it: true
	// when the key held old and this call removed it; false, with the key
	// left as it is, when the key holds another value or is absent or
	// expired.
	//
	// False does not say why: a resent delete whose first attempt landed
	// finds nothing and reports false, as does one that another writer
	// beat. The caller settles a resend's false by reading the key (the
	// session manager does so with the write identities the value
	// carries). A backend (or its client library) that sends a
	// CompareAndDelete again after a lost reply must therefore never
	// report the resend's false: it returns an error then. (A resend's
	// true is the truth: old was still there for it to delete, which it
	// would not be had the first attempt landed, since the session
	// manager never writes the same bytes twice; the session manager's
	// own resends count on it.)
	CompareAndDelete(ctx context.Context, key string, old []byte) (bool, error)
}

// TTLGetter is implemented by stores that can read a value and the time it
// has left in the same round trip. The session manager uses it to extend an
// idle timeout only when the session is near expiry, so that most loads only
// read.
type TTLGetter interface {
	// GetWithTTL behaves like Get and also returns the time left before
	// the key expires, rounded down to the backend's precision (at worst a
	// second), or [NoExpiry] when the key has no expiry.
	GetWithTTL(ctx context.Context, key string) ([]byte, time.Duration, error)
}

// Scanner is implemented by stores that can list their keys.
type Scanner interface {
	// Scan calls fn for every live key that begins with prefix, in no
	// particular order. The prefix is matched literally: characters such
	// as '*', '?', '[', '%' and '_' have no special meaning. An empty
	// prefix matches every key. A key written or deleted while the scan
	// runs may or may not be reported, but a key that exists for the
	// whole scan is reported at least once.
	//
	// A listing never hides what a read reports: Scan reports every key
	// for which Get would return a value or an error other than
	// ErrNotFound, so that bulk work (MigrateAll, the inspector,
	// quarantine) meets every damaged value. That is every live key, and
	// every key whose value or expiry is damaged (Get: ErrCorrupt; Scan
	// never reads values, so damage never stops it). What no method can
	// reach is not reported: a key that [CheckKey] refuses (written by
	// other means, or by an older version), and an entry whose key cannot
	// be recovered (a damaged file named by a digest, a record that names
	// no key). A backend with an error hook (Options.OnError) reports such
	// an entry there, matching ErrInvalidKey or ErrCorrupt, and goes on.
	//
	// If fn returns an error, Scan stops and returns that error. Scan
	// returns ctx.Err() when ctx ends.
	Scan(ctx context.Context, prefix string, fn func(key string) error) error
}

// BatchGetter is implemented by stores that can read many keys in one
// round trip (Redis MGET, or a pipeline of GETs). Bulk work (the session
// manager's MigrateAll, the inspector) reads with it a chunk of keys at a
// time instead of one key per round trip.
type BatchGetter interface {
	// GetMany returns copies of the values stored under keys, in the
	// order of keys: element i is the value of keys[i], or nil when that
	// key is absent or expired (a stored empty value is a non-nil empty
	// slice). Repeated keys are allowed. Every key is checked with
	// [CheckKey] before any I/O; one invalid key fails the whole call
	// with an error matching [ErrInvalidKey]. A failure of the batch (a
	// lost connection, ctx ending, a value the backend cannot read back
	// whole: [ErrCorrupt]) is one error for the whole call, and no value
	// is returned; read the keys one at a time with Get to learn which
	// one is at fault. An empty keys returns an empty result without I/O.
	// The values need not be read atomically together: a key written
	// during the call gives its old or its new value.
	GetMany(ctx context.Context, keys []string) ([][]byte, error)
}

// BatchTTLGetter is implemented by stores that can read many keys and the
// time each has left in one round trip: [TTLGetter] for a chunk of keys.
type BatchTTLGetter interface {
	// GetManyWithTTL behaves like [BatchGetter.GetMany] and also returns,
	// in ttls[i], the time keys[i] has left, rounded down to the backend's
	// precision (at worst a second), or [NoExpiry] when it has no expiry;
	// ttls[i] is 0 for an absent key. A key's value and its ttl are read
	// in the same round trip but not necessarily atomically together: a
	// key rewritten between the two reads may report the new value's
	// ttl, and a key that expired just after its value was read reports
	// the smallest positive ttl the backend has.
	GetManyWithTTL(ctx context.Context, keys []string) (values [][]byte, ttls []time.Duration, err error)
}

// Swap is one compare-and-swap of a [BatchSwapper] batch, with the
// arguments of [Swapper.CompareAndSwap]: store Value under Key with TTL if
// and only if the current value equals Old (nil Old: only if absent).
type Swap struct {
	Key        string
	Old, Value []byte
	TTL        time.Duration
}

// SwapResult is the outcome of one [Swap] of a batch. Err nil: Swapped
// says whether the swap happened, and false is the same promise as
// [Swapper]'s (the swap did not happen and will not). Err non-nil: the
// outcome is open unless Err matches [ErrInvalidKey], [ErrTooLarge],
// [ErrClosed] or [ErrCorrupt] (nothing was written); the swap may have landed, and the
// caller learns the truth by resending it on its own, with
// [Swapper.CompareAndSwap] and that method's resend rule.
type SwapResult struct {
	Swapped bool
	Err     error
}

// BatchSwapper is implemented by stores that can run many compare-and-swaps
// in one round trip (a pipeline of Redis scripts). The session manager's
// MigrateAll writes a chunk of migrated sessions with it.
type BatchSwapper interface {
	// CompareAndSwapMany runs each swap of swaps as
	// [Swapper.CompareAndSwap] would (the same comparison, the same
	// resend rule: a key that already holds Value reports true and takes
	// the ttl), each atomically on its own; the swaps are not atomic
	// together and may run in any order (two swaps of one key are each
	// decided against what the other left). It returns one result per
	// swap, in the order of swaps.
	//
	// It never sends a swap twice: a swap whose reply was lost gets an
	// error in its result (its outcome is open), never a false. It
	// returns a non-nil error, and no results, only when it sent nothing:
	// a key that [CheckKey] refuses ([ErrInvalidKey]), a value over the
	// backend's cap ([ErrTooLarge]), a closed store ([ErrClosed]) or ctx
	// ended before any I/O. An empty swaps returns an empty result
	// without I/O.
	CompareAndSwapMany(ctx context.Context, swaps []Swap) ([]SwapResult, error)
}
