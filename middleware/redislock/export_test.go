package redislock

import "context"

// SetEnqueued sets a function that hears of every try of l that found the
// key taken and left l in the key's queue in Redis. Call it before l's
// first Lock.
func SetEnqueued(l *Locker, f func(key string)) { l.enqueued = f }

// LockHandoff is lockHandoff for the tests.
func (l *Locker) LockHandoff(ctx context.Context, key string) (func(), bool, error) {
	return l.lockHandoff(ctx, key)
}
