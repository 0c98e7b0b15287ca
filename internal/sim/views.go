package sim

import (
	"context"
	"time"

	"github.com/typedsession/session/store"
)

//go:generate go run gen_views.go

// Caps is a set of the optional capabilities of package store that a view
// of a Store offers (see [Store.View]).
type Caps uint16

// The capabilities, one bit each (the order of gen_views.go's carriers).
const (
	CapSwapper Caps = 1 << iota
	CapDeleter
	CapToucher
	CapRefresher
	CapTTLGetter
	CapScanner
	CapBatchGetter
	CapBatchTTLGetter
	CapBatchSwapper

	// CapAll is every capability; CapNone leaves Get, Set and Delete.
	CapAll  Caps = 1<<9 - 1
	CapNone Caps = 0
)

var capNames = []string{"Swapper", "Deleter", "Toucher", "Refresher", "TTLGetter", "Scanner", "BatchGetter", "BatchTTLGetter", "BatchSwapper"}

// String lists the capabilities, "Get/Set/Delete only" for none.
func (c Caps) String() string {
	if c == 0 {
		return "Get/Set/Delete only"
	}
	s := ""
	for i, n := range capNames {
		if c&(1<<i) != 0 {
			if s != "" {
				s += "+"
			}
			s += n
		}
	}
	return s
}

// capsOf returns the capabilities st implements. BatchSwapper counts
// whenever st is a Swapper: the view emulates it (see Store.casMany).
func capsOf(st store.Store) Caps {
	var c Caps
	if _, ok := st.(store.Swapper); ok {
		c |= CapSwapper | CapBatchSwapper
	}
	if _, ok := st.(store.Deleter); ok {
		c |= CapDeleter
	}
	if _, ok := st.(store.Toucher); ok {
		c |= CapToucher
	}
	if _, ok := st.(store.Refresher); ok {
		c |= CapRefresher
	}
	if _, ok := st.(store.TTLGetter); ok {
		c |= CapTTLGetter
	}
	if _, ok := st.(store.Scanner); ok {
		c |= CapScanner
	}
	if _, ok := st.(store.BatchGetter); ok {
		c |= CapBatchGetter
	}
	if _, ok := st.(store.BatchTTLGetter); ok {
		c |= CapBatchTTLGetter
	}
	return c
}

// The carriers of the generated views: each forwards one capability's
// methods to the Store.
type (
	base           struct{ s *Store }
	swapper        struct{ s *Store }
	deleter        struct{ s *Store }
	toucher        struct{ s *Store }
	refresher      struct{ s *Store }
	ttlGetter      struct{ s *Store }
	scanner        struct{ s *Store }
	batchGetter    struct{ s *Store }
	batchTTLGetter struct{ s *Store }
	batchSwapper   struct{ s *Store }
)

// Sim returns the Store a view belongs to.
func (c base) Sim() *Store { return c.s }

func (c base) Get(ctx context.Context, key string) ([]byte, error) { return c.s.get(ctx, key) }
func (c base) Set(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	return c.s.set(ctx, key, value, ttl)
}
func (c base) Delete(ctx context.Context, key string) error { return c.s.del(ctx, key) }
func (c swapper) CompareAndSwap(ctx context.Context, key string, old, value []byte, ttl time.Duration) (bool, error) {
	return c.s.cas(ctx, key, old, value, ttl)
}
func (c deleter) CompareAndDelete(ctx context.Context, key string, old []byte) (bool, error) {
	return c.s.cad(ctx, key, old)
}
func (c toucher) Touch(ctx context.Context, key string, ttl time.Duration) error {
	return c.s.touch(ctx, key, ttl)
}
func (c refresher) GetAndTouch(ctx context.Context, key string, ttl time.Duration) ([]byte, error) {
	return c.s.getAndTouch(ctx, key, ttl)
}
func (c ttlGetter) GetWithTTL(ctx context.Context, key string) ([]byte, time.Duration, error) {
	return c.s.getWithTTL(ctx, key)
}
func (c scanner) Scan(ctx context.Context, prefix string, fn func(key string) error) error {
	return c.s.scan(ctx, prefix, fn)
}
func (c batchGetter) GetMany(ctx context.Context, keys []string) ([][]byte, error) {
	v, _, err := c.s.getMany(ctx, "GetMany", keys)
	return v, err
}
func (c batchTTLGetter) GetManyWithTTL(ctx context.Context, keys []string) ([][]byte, []time.Duration, error) {
	return c.s.getMany(ctx, "GetManyWithTTL", keys)
}
func (c batchSwapper) CompareAndSwapMany(ctx context.Context, swaps []store.Swap) ([]store.SwapResult, error) {
	return c.s.casMany(ctx, swaps)
}
