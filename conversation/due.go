package conversation

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"math/rand/v2"
	"runtime/debug"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	session "github.com/typedsession/session"
	"github.com/typedsession/session/internal/managercaps"
	"github.com/typedsession/session/store"
)

// The due-index lists, for every conversation with a deadline, its key
// and its deadline, so that a sweeper finds the conversations whose
// timeout has run out without reading the others. It is made of ordinary
// session values in the flow's store, under Config.IndexNamespace, each
// kept with compare-and-swap through a session.Manager (Update): so it
// works on every store with compare-and-swap, and every guarantee of a
// session write (exactly once through lost replies, ErrOutcomeUnknown)
// holds for it.
//
// Time is cut in slots of Config.Granularity. The deadline d of key k is
// listed in the value "<slot of d>.<shard of k>" (Config.Shards values per
// slot, so that writers of one slot rarely meet), in its map from key to
// deadlines. One more value, "cursor", holds the first slot that may
// still hold entries. The rules that keep every entry at or above the
// cursor:
//
//   - A sweeper moves the cursor from the value it read at the start of
//     its sweep only if the cursor was not written since (a
//     compare-and-swap of the bytes it read), and only past slots it
//     found empty and that had ended Config.Lag before the sweep began.
//   - A writer lists its entry first, then, if the cursor may have passed
//     the entry's slot, moves the cursor back to that slot or the current
//     one, whichever is earlier (never forward; the cursor is never ahead
//     of the current slot, so that a later deadline that is earlier than
//     this one is not behind it). That is the case when the writer has not
//     yet seen the cursor in this process (the first entry creates it), or when the
//     writer's clock, after the entry is written, is past the slot's end
//     plus half of Lag: a deadline lies in the future when it is set, so
//     only a writer that paused (or a clock more than Lag/2 off) needs
//     this round trip. A sweeper that read the slot before the entry was
//     written began its sweep before the slot's end plus Lag (by the
//     clocks, within Lag/2 of each other), so it does not move past it.
//
// A deadline is listed before the session that holds it is saved, so a
// saved deadline is always listed; an entry whose save then failed, or
// whose conversation moved on since, is stale, and the sweeper drops it
// when it comes due. An entry leaves the index only after its timeout was
// run (or found stale) and saved.

// indexDoc is one value of the index.
type indexDoc struct {
	// Due maps a session key to its deadlines listed here (Unix
	// milliseconds), in a slot value.
	Due map[string][]int64 `json:"due,omitempty"`
	// Next is the cursor's first slot that may hold entries.
	Next int64 `json:"next,omitempty"`
}

const cursorKey = "cursor"

// maxSlotsPerSweep bounds the slots one sweep reads, so that a sweeper
// that starts far behind catches up over several sweeps.
const maxSlotsPerSweep = 1440

// sweepWorkers is how many timeouts of one index value a sweep runs at
// once.
const sweepWorkers = 8

type index struct {
	m      *session.Manager[indexDoc]
	gran   int64 // milliseconds
	shards int
	lag    time.Duration
	now    func() time.Time
	// deletes: the store can delete conditionally (store.Deleter), so
	// an emptied slot value is deleted; without, it is saved empty (a
	// session's Destroy is refused there).
	deletes bool
	// cursorSeen is set once this process has seen the cursor exist (it
	// is never deleted).
	cursorSeen atomic.Bool
}

func newIndex[T any](cfg Config[T]) (*index, error) {
	if _, ok := cfg.Store.(store.Swapper); !ok {
		return nil, fmt.Errorf("conversation: Config.Store (%T) has no compare-and-swap (store.Swapper); the due-index needs it so that a timeout fires once", cfg.Store)
	}
	if cfg.Manager != nil && !managercaps.Swaps(cfg.Manager) {
		// The claim of a timeout is the compare-and-swap of the Update
		// that runs it, a write of the Manager's store: a store of the
		// index's own says nothing of it.
		return nil, fmt.Errorf("conversation: Config.Manager's store has no compare-and-swap (store.Swapper), so two replicas that sweep at once would both run a timeout, each saving over the other: %w; give the Manager a store with compare-and-swap (a wrapper of a store must forward CompareAndSwap too)", errors.ErrUnsupported)
	}
	m, err := session.New(session.Config[indexDoc]{
		Store:     cfg.Store,
		Namespace: cfg.IndexNamespace,
		MaxBytes:  16 << 20,
	})
	if err != nil {
		return nil, fmt.Errorf("conversation: the due-index: %w", err)
	}
	now := cfg.Now
	if now == nil {
		now = time.Now
	}
	_, deletes := cfg.Store.(store.Deleter)
	return &index{m: m, gran: cfg.Granularity.Milliseconds(), shards: cfg.Shards, lag: cfg.Lag, now: now, deletes: deletes}, nil
}

func (ix *index) slot(unixMilli int64) int64 {
	s := unixMilli / ix.gran
	if unixMilli < 0 && unixMilli%ix.gran != 0 {
		s--
	}
	return s
}

func (ix *index) shard(key string) int {
	h := fnv.New32a()
	h.Write([]byte(key))
	return int(h.Sum32() % uint32(ix.shards))
}

func slotKey(slot int64, shard int) string {
	return strconv.FormatInt(slot, 10) + "." + strconv.Itoa(shard)
}

// add lists deadline d of key.
func (ix *index) add(ctx context.Context, key string, d time.Time) error {
	ms := d.UnixMilli()
	return ix.list(ctx, key, ms, ix.slot(ms))
}

// list lists deadline ms of key in slot, then moves the cursor back to
// slot if it may have passed it (the rules above).
func (ix *index) list(ctx context.Context, key string, ms int64, slot int64) error {
	_, err := ix.m.Update(ctx, slotKey(slot, ix.shard(key)), func(doc *indexDoc) error {
		if slices.Contains(doc.Due[key], ms) {
			return nil
		}
		if doc.Due == nil {
			doc.Due = map[string][]int64{}
		}
		doc.Due[key] = append(doc.Due[key], ms)
		return nil
	})
	if err != nil {
		return fmt.Errorf("conversation: listing the deadline in the due-index: %w", err)
	}
	now := ix.now()
	late := !now.Before(time.UnixMilli((slot + 1) * ix.gran).Add(ix.lag / 2))
	if ix.cursorSeen.Load() && !late {
		return nil
	}
	// Never past the current slot: a deadline listed later may be earlier
	// than this one, and the cursor must not be ahead of it.
	target := min(slot, ix.slot(now.UnixMilli()))
	_, err = ix.m.Update(ctx, cursorKey, func(c *indexDoc) error {
		if c.Next == 0 || c.Next > target {
			c.Next = target
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("conversation: moving the due-index's cursor back: %w", err)
	}
	ix.cursorSeen.Store(true)
	return nil
}

// remove takes the entries in done off the slot value under sk, deleting
// the value when it is left empty, and returns how many entries are left.
// Only a store.Deleter deletes it (only if it still holds what was read):
// on another store a session's Destroy is refused (a blind delete could
// erase a deadline listed since the read), so the emptied value is
// written empty instead (by compare-and-swap), and stays.
func (ix *index) remove(ctx context.Context, sk string, done map[string][]int64) (int, error) {
	left := 0
	err := ix.m.Retry(ctx, func() error {
		s, err := ix.m.Load(ctx, sk)
		if err != nil {
			return err
		}
		for k, ds := range done {
			kept := slices.DeleteFunc(s.Data.Due[k], func(d int64) bool { return slices.Contains(ds, d) })
			if len(kept) == 0 {
				delete(s.Data.Due, k)
			} else {
				s.Data.Due[k] = kept
			}
		}
		left = 0
		for _, ds := range s.Data.Due {
			left += len(ds)
		}
		if left == 0 {
			if s.IsNew() {
				return nil
			}
			if ix.deletes {
				s.Destroy()
			}
		}
		return ix.m.Save(ctx, s)
	})
	return left, err
}

// SweepReport is what one Sweep did.
type SweepReport struct {
	// Reads is the number of index values read (the cursor and each slot
	// value; a missing value counts, as it costs a read too).
	Reads int
	// Fired is the number of timeouts this sweep ran and saved (a
	// conversation in a step this binary does not have counts when the
	// OnUnknown fallback ran instead).
	Fired int
	// Stale is the number of due entries whose conversation had moved on
	// (another sweeper or an update fired it first, the step changed, the
	// session is gone): dropped without running anything.
	Stale int
	// Failed lists the due entries whose timeout failed, with the error
	// (an unknown step, a store error): they stay listed (moved to the
	// current slot, so that the cursor is not held back) and every sweep
	// tries them again.
	Failed []error
	// Cursor is the start of the first slot the next sweep reads.
	Cursor time.Time
}

// Sweep runs, once, the timeouts of every conversation of the flow whose
// deadline has run out by now, reading only the index's slots from its
// cursor to now (at most 1440 slots a sweep; none when nothing was ever
// listed). Each timeout runs as a
// Handle does, in one Manager.Update whose compare-and-swap is the claim:
// any number of processes may sweep at once, and each timeout is run and
// saved once, by one of them; a sweeper killed at any point leaves its
// entries for the next sweep, which runs them if it had not saved them
// and drops them if it had. Do functions of a timeout handler run in the
// process that saved it, after the save (at most once).
//
// It returns the report and an error when a read or write of the index
// failed (the sweep stops there; the next one goes on). Failing
// timeouts do not stop it: they are in SweepReport.Failed, and so is a
// handler's panic (with its stack), which the sweep recovers. The flow
// needs Config.Store and Config.Manager.
func (f *Flow[T, U, R]) Sweep(ctx context.Context) (SweepReport, error) {
	var rep SweepReport
	ix := f.ix
	if ix == nil {
		return rep, ErrNoIndex
	}
	if f.cfg.Manager == nil {
		return rep, errNoManager
	}
	now := f.now()
	nowMs := now.UnixMilli()
	cur, err := ix.m.Load(ctx, cursorKey)
	rep.Reads++
	if err != nil {
		return rep, fmt.Errorf("conversation: reading the due-index's cursor: %w", err)
	}
	first := cur.Data.Next
	if cur.IsNew() || first == 0 {
		return rep, nil // nothing was ever listed
	}
	last := min(ix.slot(nowMs), first+maxSlotsPerSweep-1)
	clean, advancing := first, true
	// Sweepers start at a random shard, so that two of them at once
	// mostly read different values first.
	off := rand.N(ix.shards)
	tried := map[entry]bool{} // a failed entry moved on is not tried twice in a sweep
	for s := first; s <= last; s++ {
		empty := true
		for i := range ix.shards {
			sk := slotKey(s, (i+off)%ix.shards)
			left, err := f.sweepSlot(ctx, s, sk, nowMs, tried, &rep)
			if err != nil {
				rep.Cursor = time.UnixMilli(clean * ix.gran).UTC()
				return rep, err
			}
			if left > 0 {
				empty = false
			}
		}
		ended := time.UnixMilli((s + 1) * ix.gran)
		if advancing && empty && !now.Before(ended.Add(ix.lag)) {
			clean = s + 1
		} else {
			advancing = false
		}
	}
	if clean > first {
		// A compare-and-swap against the cursor as this sweep read it: a
		// writer that moved it back since (or another sweeper that moved
		// it on) makes it a conflict, and the cursor stays as they left it;
		// comparing the value instead would miss a move on and back.
		cur.Data.Next = clean
		switch err := ix.m.Save(ctx, cur); {
		case errors.Is(err, session.ErrConflict):
			clean = first
		case err != nil:
			rep.Cursor = time.UnixMilli(first * ix.gran).UTC()
			return rep, fmt.Errorf("conversation: moving the due-index's cursor: %w", err)
		}
	}
	rep.Cursor = time.UnixMilli(clean * ix.gran).UTC()
	return rep, nil
}

// entry is one deadline of one key in the index.
type entry struct {
	key string
	d   int64 // Unix milliseconds
}

// sweepSlot runs the due entries of the slot value under sk and returns
// how many entries it still holds.
func (f *Flow[T, U, R]) sweepSlot(ctx context.Context, slot int64, sk string, nowMs int64, tried map[entry]bool, rep *SweepReport) (int, error) {
	ix := f.ix
	s, err := ix.m.Load(ctx, sk)
	rep.Reads++
	if err != nil {
		return 0, fmt.Errorf("conversation: reading the due-index: %w", err)
	}
	if s.IsNew() {
		return 0, nil
	}
	var due []entry
	total := 0
	for key, ds := range s.Data.Due {
		for _, d := range ds {
			total++
			if e := (entry{key, d}); d <= nowMs && !tried[e] {
				tried[e] = true
				due = append(due, e)
			}
		}
	}
	// The due entries run sweepWorkers at a time: each is a Manager.Update
	// of its own key, so they do not meet, and a sweep's wall time on a
	// remote store is not one round trip after another.
	now := ix.slot(nowMs)
	done := map[string][]int64{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	sem := make(chan struct{}, sweepWorkers)
	for _, e := range due {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			out, err := f.fireRecover(ctx, e.key, e.d)
			ran := out.TimedOut || out.Fallback
			// A timeout that failed in a past slot is listed again in the
			// current one, where every sweep tries it, so that the cursor
			// can move on; if that fails, it stays where it is.
			moved := err != nil && !ran && slot < now && ix.list(ctx, e.key, e.d, now) == nil
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err != nil && !ran:
				rep.Failed = append(rep.Failed, fmt.Errorf("conversation: the timeout of a key due at %s: %w", time.UnixMilli(e.d).UTC().Format(time.RFC3339Nano), err))
				if !moved {
					return
				}
			case ran:
				rep.Fired++ // saved; err, if any, is a Do function's
				if err != nil {
					rep.Failed = append(rep.Failed, err)
				}
			default:
				rep.Stale++
			}
			done[e.key] = append(done[e.key], e.d)
		})
	}
	wg.Wait()
	if len(done) == 0 {
		return total, nil
	}
	left, err := ix.remove(ctx, sk, done)
	if err != nil {
		return 0, fmt.Errorf("conversation: removing entries from the due-index: %w", err)
	}
	return left, nil
}

// fireRecover is fire for the sweeper's goroutines: a handler that
// panics fails its timeout (reported in SweepReport.Failed, tried again
// on the next sweep) instead of ending the process, which would restart
// into the same panic on every replica that sweeps.
func (f *Flow[T, U, R]) fireRecover(ctx context.Context, key string, deadline int64) (out Outcome[R], err error) {
	defer func() {
		if p := recover(); p != nil {
			out, err = Outcome[R]{}, fmt.Errorf("conversation: a handler panicked: %v\n%s", p, debug.Stack())
		}
	}()
	return f.fire(ctx, key, deadline)
}

// RunSweeper sweeps every interval (zero or less: one second) until ctx ends,
// and returns ctx's error then. onError, when not nil, gets each sweep's
// error and each failed timeout's. Run it in every replica, or in some:
// each timeout runs once whichever replicas sweep.
func (f *Flow[T, U, R]) RunSweeper(ctx context.Context, interval time.Duration, onError func(error)) error {
	if interval <= 0 {
		interval = time.Second
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		rep, err := f.Sweep(ctx)
		if onError != nil {
			if err != nil && !errors.Is(err, ctx.Err()) {
				onError(err)
			}
			for _, e := range rep.Failed {
				onError(e)
			}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
}
