package storetest

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"sync"
	"time"

	"github.com/typedsession/session/store"
)

// Counter wraps a store and counts the calls of each method, to check how
// many round trips an operation costs:
//
//	c := storetest.NewCounter(st)
//	m, _ := session.New(session.Config[T]{Store: c})
//	... Load and Save ...
//	if n := c.Calls("Set", "CompareAndSwap"); n != 0 { t.Errorf("unchanged Save wrote %d times", n) }
//
// Counter has every optional method of package store ([store.Swapper],
// [store.Deleter], [store.Toucher], [store.Refresher], [store.TTLGetter],
// [store.Scanner]) and forwards each to the wrapped store; when that store
// lacks the capability, the method returns an error. It has no Close: close
// the wrapped store. A Counter is safe for concurrent use.
type Counter struct {
	inner store.Store
	mu    sync.Mutex
	calls map[string]int
}

// NewCounter returns a Counter that forwards to s.
func NewCounter(s store.Store) *Counter {
	return &Counter{inner: s, calls: map[string]int{}}
}

func (c *Counter) count(op string) {
	c.mu.Lock()
	c.calls[op]++
	c.mu.Unlock()
}

// Calls returns the number of calls of the named methods ("Get", "Set",
// "Delete", "CompareAndSwap", "CompareAndDelete", "Touch", "GetAndTouch",
// "GetWithTTL", "Scan") since the last Reset, or of all methods when none
// is named.
func (c *Counter) Calls(methods ...string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	if len(methods) == 0 {
		for _, v := range c.calls {
			n += v
		}
		return n
	}
	for _, m := range methods {
		n += c.calls[m]
	}
	return n
}

// Writes returns the number of calls that may change the store: Set,
// CompareAndSwap, Delete, CompareAndDelete and Touch. GetAndTouch, a read
// that also sets the expiry, is not counted: ask for it by name.
func (c *Counter) Writes() int {
	return c.Calls("Set", "CompareAndSwap", "Delete", "CompareAndDelete", "Touch")
}

// Snapshot returns a copy of the counts by method name.
func (c *Counter) Snapshot() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return maps.Clone(c.calls)
}

// Unwrap returns the wrapped store, to read or change it without counting.
func (c *Counter) Unwrap() store.Store { return c.inner }

// Reset sets every count back to zero.
func (c *Counter) Reset() {
	c.mu.Lock()
	clear(c.calls)
	c.mu.Unlock()
}

// errLacks reports a capability the wrapped store does not have.
var errLacks = errors.New("storetest: the wrapped store does not implement this method")

func (c *Counter) lacks(method string) error {
	return fmt.Errorf("%w: %T.%s", errLacks, c.inner, method)
}

// Get counts and forwards.
func (c *Counter) Get(ctx context.Context, key string) ([]byte, error) {
	c.count("Get")
	return c.inner.Get(ctx, key)
}

// Set counts and forwards.
func (c *Counter) Set(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	c.count("Set")
	return c.inner.Set(ctx, key, value, ttl)
}

// Delete counts and forwards.
func (c *Counter) Delete(ctx context.Context, key string) error {
	c.count("Delete")
	return c.inner.Delete(ctx, key)
}

// CompareAndSwap counts and forwards to the wrapped store.Swapper.
func (c *Counter) CompareAndSwap(ctx context.Context, key string, old, value []byte, ttl time.Duration) (bool, error) {
	c.count("CompareAndSwap")
	sw, ok := c.inner.(store.Swapper)
	if !ok {
		return false, c.lacks("CompareAndSwap")
	}
	return sw.CompareAndSwap(ctx, key, old, value, ttl)
}

// CompareAndDelete counts and forwards to the wrapped store.Deleter.
func (c *Counter) CompareAndDelete(ctx context.Context, key string, old []byte) (bool, error) {
	c.count("CompareAndDelete")
	d, ok := c.inner.(store.Deleter)
	if !ok {
		return false, c.lacks("CompareAndDelete")
	}
	return d.CompareAndDelete(ctx, key, old)
}

// Touch counts and forwards to the wrapped store.Toucher.
func (c *Counter) Touch(ctx context.Context, key string, ttl time.Duration) error {
	c.count("Touch")
	to, ok := c.inner.(store.Toucher)
	if !ok {
		return c.lacks("Touch")
	}
	return to.Touch(ctx, key, ttl)
}

// GetAndTouch counts and forwards to the wrapped store.Refresher.
func (c *Counter) GetAndTouch(ctx context.Context, key string, ttl time.Duration) ([]byte, error) {
	c.count("GetAndTouch")
	r, ok := c.inner.(store.Refresher)
	if !ok {
		return nil, c.lacks("GetAndTouch")
	}
	return r.GetAndTouch(ctx, key, ttl)
}

// GetWithTTL counts and forwards to the wrapped store.TTLGetter.
func (c *Counter) GetWithTTL(ctx context.Context, key string) ([]byte, time.Duration, error) {
	c.count("GetWithTTL")
	g, ok := c.inner.(store.TTLGetter)
	if !ok {
		return nil, 0, c.lacks("GetWithTTL")
	}
	return g.GetWithTTL(ctx, key)
}

// Scan counts and forwards to the wrapped store.Scanner.
func (c *Counter) Scan(ctx context.Context, prefix string, fn func(key string) error) error {
	c.count("Scan")
	sc, ok := c.inner.(store.Scanner)
	if !ok {
		return c.lacks("Scan")
	}
	return sc.Scan(ctx, prefix, fn)
}
