// Package store defines the byte-oriented storage contract that every
// typedsession backend satisfies.
//
// A store keeps opaque values under string keys. It knows nothing of
// sessions, codecs or schema versions: encoding lives in the root package.
// Any type with the three methods of [Store] is a store, so a user's own
// database is three methods away. Further abilities are optional and found by
// type assertion: [Swapper], [Toucher], [Refresher] and [Scanner].
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
//   - treats keys as opaque strings: any UTF-8 text, including spaces,
//     colons, slashes and glob or LIKE metacharacters, is a valid key;
//   - treats values as opaque bytes: an empty value and values with NUL bytes
//     are stored and returned exactly;
//   - copies the bytes it is given and returns bytes the caller owns, so
//     neither side can change the other's data by mutating a slice;
//   - returns ctx.Err() (possibly wrapped) when ctx is cancelled or its
//     deadline passes before the operation completes, and leaves the stored
//     value either as it was or as the operation intended, never torn;
//   - reports an infrastructure failure (connection refused, timeout, disk
//     error) as an error, never as [ErrNotFound].
//
// A key whose TTL has passed is expired: from that instant it behaves exactly
// like an absent key, whether or not the backend has reclaimed its storage yet.
package store

import (
	"context"
	"errors"
	"time"
)

// ErrNotFound is returned by Get, GetAndTouch and Touch when the key is absent
// or expired. Test for it with errors.Is: a backend may wrap it.
var ErrNotFound = errors.New("store: key not found")

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

// Scanner is implemented by stores that can list their keys.
type Scanner interface {
	// Scan calls fn for every live key that begins with prefix, in no
	// particular order. The prefix is matched literally: characters such
	// as '*', '?', '[', '%' and '_' have no special meaning. An empty
	// prefix matches every key. A key written or deleted while the scan
	// runs may or may not be reported, but a key that exists for the
	// whole scan is reported at least once. If fn returns an error, Scan
	// stops and returns that error. Scan returns ctx.Err() when ctx ends.
	Scan(ctx context.Context, prefix string, fn func(key string) error) error
}
