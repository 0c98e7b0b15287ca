package main

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
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

// batchKeys is the most keys a walk reads per round trip on a store with
// batch reads; batchBytes is about how many bytes of values it aims to
// hold per batch, so that large values make smaller batches and memory
// stays flat (see batcher).
const (
	batchKeys  = 128
	batchBytes = 1 << 20
)

// batchReader returns how a walk reads many keys in one round trip on t:
// GetManyWithTTL on a store that can tell TTLs one key at a time (so that
// the walk reports what read reports), GetMany on a store that cannot; nil
// when the store has no such batch read.
func batchReader(t *target) func(ctx context.Context, keys []string) ([][]byte, []time.Duration, bool, error) {
	_, hasTTL := t.Store.(store.TTLGetter)
	bt, okT := t.Store.(store.BatchTTLGetter)
	bg, okG := t.Store.(store.BatchGetter)
	switch {
	case hasTTL && okT:
		return func(ctx context.Context, keys []string) ([][]byte, []time.Duration, bool, error) {
			v, ttls, err := bt.GetManyWithTTL(ctx, keys)
			return v, ttls, true, err
		}
	case !hasTTL && okG:
		return func(ctx context.Context, keys []string) ([][]byte, []time.Duration, bool, error) {
			v, err := bg.GetMany(ctx, keys)
			return v, make([]time.Duration, len(keys)), false, err
		}
	}
	return nil
}

// readBatch reads keys as read reads each one, in one round trip when
// many is not nil. A batch that fails as a whole (a value the store cannot
// read back, a lost connection) is read again key by key, which tells
// which key is at fault.
func readBatch(ctx context.Context, t *target, many func(context.Context, []string) ([][]byte, []time.Duration, bool, error), keys []string, emit func(entry) error) error {
	if many != nil && len(keys) > 1 {
		values, ttls, known, err := many(ctx, keys)
		if err == nil {
			for i, k := range keys {
				e := entry{info: info{Key: k}, Gone: true}
				if values[i] != nil {
					e = entry{info: describe(k, values[i]), Raw: values[i]}
					e.TTL, e.TTLKnown = ttls[i], known
				}
				values[i] = nil
				if err := emit(e); err != nil {
					return err
				}
			}
			return nil
		}
		if ctx.Err() != nil {
			return fmt.Errorf("read %q (and %d more keys): %w", keys[0], len(keys)-1, err)
		}
	}
	for _, k := range keys {
		e, err := read(ctx, t, k)
		if err != nil {
			return fmt.Errorf("read %q: %w", k, err)
		}
		if err := emit(e); err != nil {
			return err
		}
	}
	return nil
}

// errStopped is how a walk's reader learns that the walk is over.
var errStopped = errors.New("walk stopped")

// batcher sizes the batches of a walk: batchKeys keys, fewer when the
// values read so far are large, so that a batch holds about batchBytes.
type batcher struct {
	bytes, values atomic.Int64
}

func (b *batcher) size() int {
	n := b.values.Load()
	if n == 0 {
		return 8 // a first look at the sizes
	}
	avg := max(b.bytes.Load()/n, 1)
	return int(min(max(batchBytes/avg, 1), batchKeys))
}

func (b *batcher) saw(size int) {
	b.bytes.Add(int64(size))
	b.values.Add(1)
}

// walk reads every key under prefix with workers concurrent readers and
// calls fn with each, from the calling goroutine, in no particular order.
// On a store with batch reads (store.BatchGetter, store.BatchTTLGetter)
// each reader reads a batch of keys per round trip (up to batchKeys, and
// about batchBytes of values). Memory stays flat: at most a few batches
// per worker are held at a time.
func walk(ctx context.Context, t *target, prefix string, workers int, fn func(entry) error) error {
	sc, ok := t.Store.(store.Scanner)
	if !ok {
		return fmt.Errorf("%s store cannot list its keys (no Scan)", t.Kind)
	}
	if workers < 1 {
		workers = 1
	}
	many := batchReader(t)
	var sizes batcher
	parent := ctx
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	batches := make(chan []string, workers*2)
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
		defer close(batches)
		var batch []string
		send := func() error {
			select {
			case batches <- batch:
				batch = nil
				return nil
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		err := sc.Scan(ctx, prefix, func(k string) error {
			batch = append(batch, k)
			if many == nil || len(batch) >= sizes.size() {
				return send()
			}
			return nil
		})
		if err == nil && len(batch) > 0 {
			err = send()
		}
		if err != nil {
			fail(fmt.Errorf("scan: %w", err))
		}
	}()
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for keys := range batches {
				err := readBatch(ctx, t, many, keys, func(e entry) error {
					if !e.Gone {
						sizes.saw(e.Size)
					}
					select {
					case results <- e:
						return nil
					case <-ctx.Done():
						return errStopped
					}
				})
				if err != nil {
					if err != errStopped {
						fail(err)
					}
					return
				}
			}
		})
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
