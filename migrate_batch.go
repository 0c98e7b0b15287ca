// MigrateAll on stores that read, and write, many keys per round trip.

package session

import (
	"context"
	"errors"
	"sync/atomic"
	"time"

	"github.com/typedsession/session/internal/format"
	"github.com/typedsession/session/internal/protocol"
	"github.com/typedsession/session/store"
)

// migrateChunk is how many keys MigrateAll reads per round trip on a store
// with batch reads, and writes per round trip on a store with batch
// compare-and-swaps: enough that the round trip is a small part of the
// time per key (about 256 values of a few hundred bytes, under 100 KiB per
// round trip), few enough that the values of one chunk are all MigrateAll
// holds.
const migrateChunk = 256

// batchRead reads the values of a chunk of store keys in one round trip
// (nil for an absent key) and, for each, until when its expiry needs no
// extension, as Manager.read decides it for one key.
type batchRead func(ctx context.Context, storeKeys []string) (values [][]byte, freshUntil []time.Time, err error)

// batchReader returns how MigrateAll reads a chunk of keys, or nil when
// the store has no batch read that gives what Manager.read gives for one
// key: without a TTL, the values; with a TTL and a store.TTLGetter, also
// the time each key has left (a store.BatchTTLGetter), so that a key near
// expiry is extended as Load extends it; with a TTL and a store.Refresher
// but no TTLGetter, never (GetAndTouch has no batch form); with a TTL and
// neither, the values, and every key found is extended as Load does.
func (m *Manager[T]) batchReader() batchRead {
	bg, _ := m.store.(store.BatchGetter)
	bt, _ := m.store.(store.BatchTTLGetter)
	values := func(ctx context.Context, keys []string) ([][]byte, []time.Time, error) {
		if bg != nil {
			v, err := bg.GetMany(ctx, keys)
			return v, make([]time.Time, len(keys)), err
		}
		v, _, err := bt.GetManyWithTTL(ctx, keys)
		return v, make([]time.Time, len(keys)), err
	}
	switch {
	case bg == nil && bt == nil:
		return nil
	case m.ttl <= 0:
		return values
	case m.ttlGetter != nil:
		if bt == nil {
			return nil
		}
		return func(ctx context.Context, keys []string) ([][]byte, []time.Time, error) {
			now := time.Now()
			v, ttls, err := bt.GetManyWithTTL(ctx, keys)
			if err != nil {
				return nil, nil, err
			}
			until := make([]time.Time, len(keys))
			for i, left := range ttls {
				until[i] = m.freshUntil(now, left)
			}
			return v, until, nil
		}
	case m.refresher != nil:
		return nil
	}
	return values
}

// firstTry is what MigrateAll did for a key in a batch before migrateOne
// takes it over: either its value, read in a batch (ran false), from which
// migrateOne's first attempt starts instead of reading the key; or the
// whole first attempt (ran true), whose result migrateOne's first attempt
// returns. Further attempts, after a conflict, load the key anew.
type firstTry[T any] struct {
	raw        []byte    // the value read; nil: the key is absent
	freshUntil time.Time // until when its expiry needs no extension

	ran           bool
	out           outcome
	unk           []string
	s             *Session[T] // the session loaded, nil if the load failed
	storedVersion int
	err           error
}

// keyList holds the keys MigrateAll collects, end to end in one buffer:
// the keys' bytes plus 8 bytes a key (a million keys of 7 bytes in 15 MB,
// against some 50 MB as strings, each pinning the scan reply it was cut
// from).
type keyList struct {
	buf  []byte
	ends []int // ends[i] is where key i ends in buf
}

func (l *keyList) add(k string) {
	l.buf = append(l.buf, k...)
	l.ends = append(l.ends, len(l.buf))
}

func (l *keyList) len() int { return len(l.ends) }

// at returns key i as a string of its own.
func (l *keyList) at(i int) string {
	start := 0
	if i > 0 {
		start = l.ends[i-1]
	}
	return string(l.buf[start:l.ends[i]])
}

// migrateBatches is MigrateAll's walk over keys on a store with batch
// reads: a chunk of keys is read in one round trip and decoded in
// process. On a store.BatchSwapper the chunk's migrated values are also
// written in one round trip (migrateWrites); otherwise each key is written
// as Save writes it, in order, so that MigrateAll stops at the exact key
// where ctx ends, as it does key by key.
func (m *Manager[T]) migrateBatches(ctx context.Context, read batchRead, keys *keyList, opts MigrateOptions) (MigrateReport, error) {
	var r MigrateReport
	_, batchWrites := m.store.(store.BatchSwapper)
	batchWrites = batchWrites && m.proto.Swaps()
	storeKeys := make([]string, 0, migrateChunk)
	firsts := make([]*firstTry[T], migrateChunk)
	chunk := make([]string, 0, migrateChunk)
	for lo := 0; lo < keys.len(); lo += migrateChunk {
		chunk = chunk[:0]
		for i := lo; i < min(lo+migrateChunk, keys.len()); i++ {
			chunk = append(chunk, keys.at(i))
		}
		if err := ctx.Err(); err != nil {
			return r, &Error{Op: "migrate", Key: chunk[0], Err: err}
		}
		// A key the manager refuses is read with the others by no one:
		// migrateOne reports its error.
		storeKeys, firsts = storeKeys[:0], firsts[:len(chunk)]
		at := make([]int, 0, len(chunk))
		for i, key := range chunk {
			firsts[i] = nil
			if sk, err := m.storeKey(key); err == nil {
				storeKeys = append(storeKeys, sk)
				at = append(at, i)
			}
		}
		values, fresh, err := read(ctx, storeKeys)
		switch {
		case err != nil && ctx.Err() != nil:
			return r, &Error{Op: "migrate", Key: chunk[0], Err: ctx.Err()}
		case err != nil:
			// The batch failed as a whole (a value the store cannot read
			// back, a lost connection): read key by key, which tells
			// which key is at fault.
		default:
			for j, i := range at {
				firsts[i] = &firstTry[T]{raw: values[j], freshUntil: fresh[j]}
			}
		}
		if batchWrites && err == nil {
			if err := m.migrateWrites(ctx, chunk, firsts, opts, &r); err != nil {
				return r, err
			}
			continue
		}
		for i, key := range chunk {
			if err := ctx.Err(); err != nil {
				return r, &Error{Op: "migrate", Key: key, Err: err}
			}
			r.Scanned++
			var start time.Time
			if m.observing() {
				start = time.Now()
			}
			out, unknown, err := m.migrateOne(ctx, key, opts.Reseal, start, firsts[i])
			firsts[i] = nil
			if err := m.tally(ctx, &r, opts, key, out, unknown, err); err != nil {
				return r, err
			}
		}
	}
	return r, nil
}

// rewrite is one key of a chunk whose migrated value goes out in a batch
// migrateWrites migrates a chunk whose values firsts holds (a nil entry:
// the key is read and migrated by itself) with the chunk's writes in one
// round trip:
//
//  1. each key's first attempt, as migrateOne would run it, up to its
//     write: the second half of a load (Manager.open) and the first half
//     of a save (Manager.prepare);
//  2. the writes, one protocol.Store.WriteMany call, each a
//     compare-and-swap against the bytes read, resent and settled by the
//     write protocol as any write is;
//  3. each key in order: its write's outcome is committed to its session
//     as a save commits it (Manager.commit); a conflict is retried by
//     migrateOne as Update would. Only then does a key count, so the
//     report, the Progress calls and the hook events are those of the
//     key-by-key walk, in the same order.
//
// The writes of a chunk all go out before its first key is counted, so a
// ctx that ends (or a Progress callback that cancels it) mid-chunk still
// sees the chunk's writes counted: migrateWrites counts every key whose
// outcome it knows without more I/O, and stops, with ctx's error naming
// the first key left undone, after the chunk.
func (m *Manager[T]) migrateWrites(ctx context.Context, chunk []string, firsts []*firstTry[T], opts MigrateOptions, r *MigrateReport) error {
	starts := make([]time.Time, len(chunk))
	encs := make([]*format.Encoded, len(chunk))
	var items []protocol.Item
	// 1. First attempts, up to the write.
	for i, key := range chunk {
		if m.observing() {
			starts[i] = time.Now()
		}
		if f := firsts[i]; f != nil {
			encs[i] = m.prepareMigration(ctx, key, f, opts.Reseal)
			if e := encs[i]; e != nil {
				items = append(items, protocol.Item{Key: f.s.storeKey, Old: f.s.old(), New: protocol.Value{Raw: e.Bytes, ID: e.ID, TTL: m.ttl}})
			}
		}
	}
	// 2. The writes, each counted as a write of its key (see writeSeq)
	// until its outcome is known.
	var results []error
	var batchErr error
	if len(items) > 0 {
		counters := make([]*atomic.Uint64, len(items))
		for k, it := range items {
			counters[k], _ = m.seq.begin(it.Key)
		}
		results, batchErr = m.proto.WriteMany(ctx, items)
		for _, c := range counters {
			c.Add(1)
		}
	}
	// 3. Outcomes, in order.
	j := 0
	var stopped error
	for i, key := range chunk {
		f, e := firsts[i], encs[i]
		var err error
		if e != nil {
			if batchErr == nil {
				err = results[j]
			}
			j++
		}
		// Whatever needs a round trip more waits for a live ctx.
		more := f == nil ||
			e != nil && (batchErr != nil || errors.Is(err, ErrConflict)) ||
			e == nil && (!f.ran || errors.Is(f.err, ErrConflict))
		if more && ctx.Err() != nil {
			if stopped == nil {
				stopped = &Error{Op: "migrate", Key: key, Err: ctx.Err()}
			}
			continue
		}
		if e != nil {
			if batchErr != nil {
				// Nothing was sent: the write's first attempt is still
				// to come, as Save would make it.
				err = m.write(ctx, f.s, *e)
			}
			f.ran, f.err = true, m.commit(f.s, *e, err)
			if f.err == nil {
				f.out = migrated
			}
		}
		r.Scanned++
		out, unknown, err := m.migrateOne(ctx, key, opts.Reseal, starts[i], f)
		firsts[i], encs[i] = nil, nil
		if err := m.tally(ctx, r, opts, key, out, unknown, err); err != nil && stopped == nil {
			stopped = err
		}
	}
	return stopped
}

// prepareMigration runs the first attempt of migrateOne for one key from
// its value read in f, up to the write: the second half of a load and the
// first half of a save, the same functions as Load and Save. It returns
// the value to write, or nil when the attempt is over without a write in
// the batch: then f.ran is set and f holds its result (current, gone, a
// failure, or a save made by itself).
func (m *Manager[T]) prepareMigration(ctx context.Context, key string, f *firstTry[T], reseal bool) *format.Encoded {
	done := func(out outcome, err error) *format.Encoded {
		f.ran, f.out, f.err = true, out, err
		return nil
	}
	s, err := m.openRead(ctx, key, f.raw, f.freshUntil)
	f.raw = nil
	if err != nil {
		return done(0, err)
	}
	f.s, f.storedVersion, f.unk = s, s.stored.Version, m.unknownOf(s)
	if out := m.classify(s, reseal); out != migrated {
		return done(out, nil)
	}
	s.report.outcome = ""
	e, err := m.prepare(s)
	switch {
	case err != nil:
		return done(0, err)
	case e.Bytes == nil:
		// Nothing to write after all, or only an expiry to extend:
		// Save knows how.
		return done(migrated, m.save(ctx, s))
	}
	return &e
}
