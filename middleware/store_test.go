package middleware

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/typedsession/session/store"
	"github.com/typedsession/session/store/memstore"
)

// countingStore counts every call to a real store. It forwards the
// optional interfaces Swapper, Toucher and Refresher (a plain wrapper would
// hide them and change what the manager does).
type countingStore struct {
	inner store.Store
	mu    sync.Mutex
	calls map[string]int
}

func newCountingStore(t *testing.T) *countingStore {
	t.Helper()
	ms, err := memstore.New(memstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ms.Close() })
	return &countingStore{inner: ms, calls: map[string]int{}}
}

func (c *countingStore) count(op string) {
	c.mu.Lock()
	c.calls[op]++
	c.mu.Unlock()
}

// total returns the number of calls of every method so far.
func (c *countingStore) total() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, v := range c.calls {
		n += v
	}
	return n
}

func (c *countingStore) n(op string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.calls[op]
}

func (c *countingStore) Get(ctx context.Context, key string) ([]byte, error) {
	c.count("Get")
	return c.inner.Get(ctx, key)
}

func (c *countingStore) Set(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	c.count("Set")
	return c.inner.Set(ctx, key, value, ttl)
}

func (c *countingStore) Delete(ctx context.Context, key string) error {
	c.count("Delete")
	return c.inner.Delete(ctx, key)
}

func (c *countingStore) CompareAndSwap(ctx context.Context, key string, old, value []byte, ttl time.Duration) (bool, error) {
	c.count("CompareAndSwap")
	return c.inner.(store.Swapper).CompareAndSwap(ctx, key, old, value, ttl)
}

func (c *countingStore) Touch(ctx context.Context, key string, ttl time.Duration) error {
	c.count("Touch")
	return c.inner.(store.Toucher).Touch(ctx, key, ttl)
}

func (c *countingStore) GetAndTouch(ctx context.Context, key string, ttl time.Duration) ([]byte, error) {
	c.count("GetAndTouch")
	return c.inner.(store.Refresher).GetAndTouch(ctx, key, ttl)
}

var (
	_ store.Swapper   = (*countingStore)(nil)
	_ store.Toucher   = (*countingStore)(nil)
	_ store.Refresher = (*countingStore)(nil)
)
