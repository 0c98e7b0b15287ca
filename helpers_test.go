package session_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/typedsession/session/store"
	"github.com/typedsession/session/store/memstore"
)

// Quiz is the session type of the package's tests and examples.
type Quiz struct {
	Active   bool     `json:"active"`
	Question int      `json:"question" validate:"gte=0,lte=50"`
	Score    int      `json:"score"`
	Answers  []string `json:"answers" validate:"max=50"`
}

func newMem(t testing.TB) *memstore.Store {
	t.Helper()
	s, err := memstore.New(memstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// counting wraps a store and counts the calls of each method. It forwards
// every optional capability of the wrapped store.
type counting struct {
	store.Store
	mu    sync.Mutex
	calls map[string]int
}

func newCounting(s store.Store) *counting {
	return &counting{Store: s, calls: map[string]int{}}
}

func (c *counting) count(op string) {
	c.mu.Lock()
	c.calls[op]++
	c.mu.Unlock()
}

// n returns the number of calls of the named methods, or of all methods.
func (c *counting) n(ops ...string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	total := 0
	if len(ops) == 0 {
		for _, v := range c.calls {
			total += v
		}
		return total
	}
	for _, op := range ops {
		total += c.calls[op]
	}
	return total
}

func (c *counting) writes() int { return c.n("Set", "CompareAndSwap", "Delete", "Touch") }

func (c *counting) reset() {
	c.mu.Lock()
	clear(c.calls)
	c.mu.Unlock()
}

func (c *counting) Get(ctx context.Context, key string) ([]byte, error) {
	c.count("Get")
	return c.Store.Get(ctx, key)
}

func (c *counting) Set(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	c.count("Set")
	return c.Store.Set(ctx, key, value, ttl)
}

func (c *counting) Delete(ctx context.Context, key string) error {
	c.count("Delete")
	return c.Store.Delete(ctx, key)
}

func (c *counting) CompareAndSwap(ctx context.Context, key string, old, value []byte, ttl time.Duration) (bool, error) {
	c.count("CompareAndSwap")
	return c.Store.(store.Swapper).CompareAndSwap(ctx, key, old, value, ttl)
}

func (c *counting) Touch(ctx context.Context, key string, ttl time.Duration) error {
	c.count("Touch")
	return c.Store.(store.Toucher).Touch(ctx, key, ttl)
}

func (c *counting) GetAndTouch(ctx context.Context, key string, ttl time.Duration) ([]byte, error) {
	c.count("GetAndTouch")
	return c.Store.(store.Refresher).GetAndTouch(ctx, key, ttl)
}

func (c *counting) Scan(ctx context.Context, prefix string, fn func(string) error) error {
	c.count("Scan")
	return c.Store.(store.Scanner).Scan(ctx, prefix, fn)
}

// basic hides every optional capability: only Get, Set and Delete.
type basic struct{ store.Store }

// touchOnly offers Touch but not GetAndTouch or CompareAndSwap.
type touchOnly struct {
	store.Store
	store.Toucher
}
