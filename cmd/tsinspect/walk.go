package main

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/typedsession/session/store"
)

// entry is one value read by a walk: its description and, when keep was
// asked for, the value itself.
type entry struct {
	info
	Gone bool   // expired or deleted between the scan and the read
	Raw  []byte // the value (shared by info.Env.Payload)
}

// read reads key's value and the time it has left.
func read(ctx context.Context, t *target, key string) (entry, error) {
	var (
		raw   []byte
		ttl   time.Duration
		known bool
		err   error
	)
	if g, ok := t.Store.(store.TTLGetter); ok {
		raw, ttl, err = g.GetWithTTL(ctx, key)
		known = true
	} else {
		raw, err = t.Store.Get(ctx, key)
	}
	switch {
	case errors.Is(err, store.ErrNotFound):
		return entry{info: info{Key: key}, Gone: true}, nil
	case errors.Is(err, store.ErrCorrupt):
		return entry{info: info{Key: key, Status: StatusCorrupt, Err: err}}, nil
	case err != nil:
		return entry{}, err
	}
	e := entry{info: describe(key, raw), Raw: raw}
	e.TTL, e.TTLKnown = ttl, known
	return e, nil
}

// walk reads every key under prefix with workers concurrent readers and
// calls fn with each, from the calling goroutine, in no particular order.
// Memory stays flat: at most a few values per worker are held at a time.
func walk(ctx context.Context, t *target, prefix string, workers int, fn func(entry) error) error {
	sc, ok := t.Store.(store.Scanner)
	if !ok {
		return fmt.Errorf("%s store cannot list its keys (no Scan)", t.Kind)
	}
	if workers < 1 {
		workers = 1
	}
	parent := ctx
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	keys := make(chan string, workers*4)
	results := make(chan entry, workers*4)
	var (
		mu       sync.Mutex
		firstErr error
	)
	fail := func(err error) {
		mu.Lock()
		if firstErr == nil {
			firstErr = err
		}
		mu.Unlock()
		cancel()
	}
	go func() {
		defer close(keys)
		err := sc.Scan(ctx, prefix, func(k string) error {
			select {
			case keys <- k:
				return nil
			case <-ctx.Done():
				return ctx.Err()
			}
		})
		if err != nil {
			fail(fmt.Errorf("scan: %w", err))
		}
	}()
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := range keys {
				e, err := read(ctx, t, k)
				if err != nil {
					fail(fmt.Errorf("read %q: %w", k, err))
					return
				}
				select {
				case results <- e:
				case <-ctx.Done():
					return
				}
			}
		}()
	}
	go func() { wg.Wait(); close(results) }()
	for e := range results {
		if ctx.Err() != nil {
			continue // drain
		}
		if err := fn(e); err != nil {
			fail(err)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if firstErr == nil && parent.Err() != nil {
		return parent.Err() // interrupted after the last key: still not a whole run
	}
	return firstErr
}
