// MigrateAll on stores that read, and write, many keys per round trip.

package session

import (
	"bytes"
	"context"
	"errors"
	"sync/atomic"
	"time"

	"github.com/typedsession/session/internal/format"
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
// (nil for an absent key) and, for each, whether its expiry is fresh, as
// Manager.read decides it for one key.
type batchRead func(ctx context.Context, storeKeys []string) (values [][]byte, fresh []bool, err error)

// batchReader returns how MigrateAll reads a chunk of keys, or nil when
// the store has no batch read that gives what Manager.read gives for one
// key: without a TTL, the values; with a TTL and a store.TTLGetter, also
// the time each key has left (a store.BatchTTLGetter), so that a key near
// expiry is extended as Load extends it; with a TTL and a store.Refresher
// but no TTLGetter, never (GetAndTouch has no batch form); with a TTL and
// neither, the values, and every key found is touched as Load does.
func (m *Manager[T]) batchReader() batchRead {
	bg, _ := m.store.(store.BatchGetter)
	bt, _ := m.store.(store.BatchTTLGetter)
	values := func(ctx context.Context, keys []string) ([][]byte, error) {
		if bg != nil {
			return bg.GetMany(ctx, keys)
		}
		v, _, err := bt.GetManyWithTTL(ctx, keys)
		return v, err
	}
	switch {
	case bg == nil && bt == nil:
		return nil
	case m.ttl <= 0:
		return func(ctx context.Context, keys []string) ([][]byte, []bool, error) {
			v, err := values(ctx, keys)
			return v, allFresh(len(keys), true), err
		}
	case m.ttlGetter != nil:
		if bt == nil {
			return nil
		}
		return func(ctx context.Context, keys []string) ([][]byte, []bool, error) {
			v, ttls, err := bt.GetManyWithTTL(ctx, keys)
			if err != nil {
				return nil, nil, err
			}
			fresh := make([]bool, len(keys))
			for i, left := range ttls {
				fresh[i] = left != store.NoExpiry && left >= m.ttl-m.slack
			}
			return v, fresh, nil
		}
	case m.refresher != nil:
		return nil
	}
	return func(ctx context.Context, keys []string) ([][]byte, []bool, error) {
		v, err := values(ctx, keys)
		return v, allFresh(len(keys), false), err
	}
}

func allFresh(n int, fresh bool) []bool {
	f := make([]bool, n)
	if fresh {
		for i := range f {
			f[i] = true
		}
	}
	return f
}

// firstTry is what MigrateAll did for a key in a batch before migrateOne
// takes it over: either its value, read in a batch (ran false), from which
// migrateOne's first attempt starts instead of reading the key; or the
// whole first attempt (ran true), whose result migrateOne's first attempt
// returns. Further attempts, after a conflict, load the key anew.
type firstTry[T any] struct {
	raw   []byte // the value read; nil: the key is absent
	fresh bool   // its expiry needs no extension

	ran           bool
	out           outcome
	unk           []string
	s             *Session[T] // the session loaded, nil if the load failed
	storedVersion int
	err           error
}

// loadFrom is Manager.load for a value already read: raw (nil for an
// absent key), whose expiry is fresh or not.
//
// It repeats what load does after its read (decode, quarantine, extend a
// TTL near expiry); keep the two alike. It leaves out what only Handoff
// reads (the write counter, freshUntil, current): MigrateAll never hands
// its sessions on.
func (m *Manager[T]) loadFrom(ctx context.Context, key string, raw []byte, fresh bool) (*Session[T], error) {
	s, err := m.newSession(key)
	if err != nil {
		return nil, err
	}
	if raw == nil {
		return s, m.renew(s)
	}
	s.fresh = fresh
	if err := m.fill(s, raw); err != nil {
		if m.quarantineOn && quarantinable(err) {
			if qerr := m.quarantine(ctx, s, raw, err); qerr != nil {
				return nil, errors.Join(err, qerr)
			}
			return s, nil
		}
		return nil, err
	}
	if !s.fresh && m.ttl > 0 && m.toucher != nil {
		if m.toucher.Touch(ctx, s.storeKey, m.ttl) == nil {
			s.fresh = true
		}
	}
	return s, nil
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
	bs, _ := m.store.(store.BatchSwapper)
	if m.swapper == nil {
		bs = nil
	}
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
				firsts[i] = &firstTry[T]{raw: values[j], fresh: fresh[j]}
			}
		}
		if bs != nil && err == nil {
			if err := m.migrateWrites(ctx, bs, chunk, firsts, opts, &r); err != nil {
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
// of compare-and-swaps.
type rewrite[T any] struct {
	enc       []byte // the value to write, with its new write identity
	payload   []byte
	writes    format.Writes // enc's write identities, its own first
	oldWrites format.Writes // those of the value loaded
}

// migrateWrites migrates a chunk whose values firsts holds (a nil entry:
// the key is read and migrated by itself) with the chunk's writes in one
// round trip:
//
//  1. each key's first attempt, as migrateOne would run it, up to its
//     write: decode, migrate, validate, encode with a new write identity;
//  2. the writes, one store.BatchSwapper call, each a compare-and-swap
//     against the bytes read;
//  3. each key in order: a swap that reported true is the key's
//     migration; false is a conflict (a promise that it did not land), and
//     migrateOne retries it as Update would; a swap whose outcome the batch
//     left open is resent by itself and, if it then finds another value,
//     settled by the write identities as any resent write is (write.go):
//     it may have landed the first time and been built on since. Only then
//     does a key count, so the report, the Progress calls and the hook
//     events are those of the key-by-key walk, in the same order.
//
// The writes of a chunk all go out before its first key is counted, so a
// ctx that ends (or a Progress callback that cancels it) mid-chunk still
// sees the chunk's writes counted: migrateWrites counts every key whose
// outcome it knows without more I/O, and stops, with ctx's error naming
// the first key left undone, after the chunk.
func (m *Manager[T]) migrateWrites(ctx context.Context, bs store.BatchSwapper, chunk []string, firsts []*firstTry[T], opts MigrateOptions, r *MigrateReport) error {
	starts := make([]time.Time, len(chunk))
	rws := make([]*rewrite[T], len(chunk))
	var swaps []store.Swap
	// 1. First attempts, up to the write.
	for i, key := range chunk {
		if m.observing() {
			starts[i] = time.Now()
		}
		f := firsts[i]
		if f == nil {
			continue
		}
		rw, err := m.prepareMigration(ctx, key, f, opts.Reseal)
		if err != nil || rw == nil {
			continue // f holds the whole attempt, or it runs in migrateOne
		}
		rws[i] = rw
		swaps = append(swaps, store.Swap{Key: f.s.storeKey, Old: f.s.stored, Value: rw.enc, TTL: m.ttl})
	}
	// 2. The writes, each counted as a write of its key (see writeSeq)
	// until its outcome is known.
	var results []store.SwapResult
	var batchErr error
	now := time.Now()
	seqs := make([]uint64, len(swaps))
	if len(swaps) > 0 {
		counters := make([]*atomic.Uint64, len(swaps))
		for k, sw := range swaps {
			counters[k], seqs[k] = m.seq.begin(sw.Key)
		}
		defer func() {
			for _, c := range counters {
				c.Add(1)
			}
		}()
		results, batchErr = bs.CompareAndSwapMany(ctx, swaps)
	}
	// 3. Outcomes, in order.
	j := 0
	var stopped error
	for i, key := range chunk {
		f, rw := firsts[i], rws[i]
		var res store.SwapResult
		var seq uint64
		when := now
		if rw != nil {
			if batchErr == nil {
				res = results[j]
			}
			seq = seqs[j]
			j++
		}
		// Whatever needs a round trip more waits for a live ctx.
		more := f == nil ||
			rw != nil && (batchErr != nil || res.Err != nil || !res.Swapped) ||
			rw == nil && (!f.ran || errors.Is(f.err, ErrConflict))
		if more && ctx.Err() != nil {
			if stopped == nil {
				stopped = &Error{Op: "migrate", Key: key, Err: ctx.Err()}
			}
			continue
		}
		if rw != nil {
			var err error
			switch {
			case batchErr != nil:
				// Nothing was sent: the write's first attempt is still
				// to come, as Save would make it.
				when = time.Now()
				seq, err = m.write(ctx, f.s.storeKey, f.s.stored, rw.oldWrites, rw.enc, rw.writes.At(0))
			case res.Err != nil:
				err = m.resolveSwap(ctx, f.s.storeKey, f.s.stored, rw.oldWrites, rw.enc, rw.writes.At(0), res.Err)
			case !res.Swapped:
				err = ErrConflict // a first attempt's false is a promise
			}
			f.ran, f.err = true, err
			if err == nil {
				f.s.commit(rw.enc, rw.payload, rw.writes, m.writeVersion, when, seq)
				f.s.outcome, f.out = OutcomeWritten, migrated
			}
		}
		r.Scanned++
		out, unknown, err := m.migrateOne(ctx, key, opts.Reseal, starts[i], f)
		firsts[i], rws[i] = nil, nil
		if err := m.tally(ctx, r, opts, key, out, unknown, err); err != nil && stopped == nil {
			stopped = err
		}
	}
	return stopped
}

// prepareMigration runs the first attempt of migrateOne for one key from
// its value read in f, up to the write. It returns the write to make, or
// nil when the attempt is over without one: then f.ran is set and f holds
// its result (current, gone, a failure, or, for data that needs no write
// (which MigrateAll never meets: it rewrites only what is below the write
// version or stale), a save made by itself).
//
// Between the load and the write it repeats what Manager.save does for a
// session that is neither destroyed nor moved; keep the two alike.
func (m *Manager[T]) prepareMigration(ctx context.Context, key string, f *firstTry[T], reseal bool) (*rewrite[T], error) {
	done := func(out outcome, err error) (*rewrite[T], error) {
		f.ran, f.out, f.err = true, out, err
		return nil, err
	}
	s, err := m.loadFrom(ctx, key, f.raw, f.fresh)
	f.raw = nil
	if err != nil {
		return done(0, err)
	}
	f.s, f.storedVersion, s.outcome = s, s.version, OutcomeUnchanged
	if m.format.JSONForm() {
		f.unk = m.format.Unknown(s.payload)
	}
	switch {
	case s.isNew:
		return done(gone, nil)
	case reseal && m.stale(s):
		s.rewrite = true
	case s.version >= m.writeVersion && !s.foreign:
		return done(current, nil)
	}
	// As Manager.save, up to the write.
	s.outcome, s.unknown = "", nil
	if err := m.validate(&s.Data); err != nil {
		return done(0, err)
	}
	buf, payload, err := m.encodePayload(s)
	if err != nil {
		return done(0, err)
	}
	unchanged := bytes.Equal(payload, s.payload) && !s.rewrite && !s.foreign
	if !unchanged && s.stored != nil && !s.foreign {
		if payload, unchanged, err = m.reconcile(s, payload); err != nil {
			return done(0, err)
		}
	}
	if unchanged && (s.stored == nil || s.version >= m.writeVersion) {
		// Nothing to write, or only an expiry to extend: Save knows how.
		if err := m.save(ctx, s); err != nil {
			return done(0, err)
		}
		return done(migrated, nil)
	}
	s.rewrite = false
	enc, writes, err := m.encode(s, s.key, buf, payload)
	if err != nil {
		return done(0, err)
	}
	return &rewrite[T]{enc: enc, payload: payload, writes: writes, oldWrites: s.writes}, nil
}

// resolveSwap learns the outcome of a compare-and-swap of enc (write
// identity id) that a batch sent and whose reply said nothing sure (err):
// it may have landed. It resends the swap, as Manager.write resends one
// whose reply was lost: true means it landed, now or the first time (the
// resend rule of store.Swapper); false is settled by the write identities
// stored, since the first attempt may have landed and been built on.
func (m *Manager[T]) resolveSwap(ctx context.Context, storeKey string, old []byte, oldWrites format.Writes, enc []byte, id string, err error) error {
	if definite(err) {
		return writeError(err) // nothing was written
	}
	ok, _, err := resend(ctx, func() (bool, error) {
		return m.swapper.CompareAndSwap(ctx, storeKey, old, enc, m.ttl)
	})
	switch {
	case err != nil:
		return writeError(err)
	case ok:
		return nil
	}
	return m.settle(ctx, storeKey, oldWrites, id)
}
