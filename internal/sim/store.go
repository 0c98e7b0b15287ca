package sim

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/typedsession/session/store"
)

// Fault is one kind of fault that a Store injects into one call.
type Fault uint8

// The faults. Each is decided per call from the run's seed, the calling
// operation's ID and the call's number within that operation (see
// [WithOp]), so a seed injects the same faults into the same calls
// whatever the interleaving.
const (
	None Fault = iota
	// ErrBefore fails the call before it reaches the store: nothing
	// applied, and the error is not one that says so.
	ErrBefore
	// LostReply applies the call, then loses its reply: the caller gets
	// an error that is not definite.
	LostReply
	// Delay sleeps before the call; DelayAfter applies it and sleeps
	// before the reply.
	Delay
	DelayAfter
	// Expire deletes the key just before the call, as a TTL would.
	Expire
	// Foreign makes another process write the key just before the call
	// (a read and a compare-and-swap of the inner store, a new write
	// identity on top of what it read); ForeignAfter just after it
	// applied, and the reply is then delayed (as DelayAfter);
	// ForeignLost just after it applied, and the reply is then lost.
	Foreign
	ForeignAfter
	ForeignLost
	// Damage makes another process write damaged bytes (which
	// Config.Quarantine would move aside) just before the call.
	Damage
	// TTLLow makes a read that reports the time left report that the key
	// is about to expire.
	TTLLow
	// Restart closes the store and opens it again (Options.Reopen)
	// before the call, while no call runs.
	Restart
	// Outage stops the store answering the operation: this call and the
	// next OutageCalls of the same operation apply, and their replies are
	// lost (so resends fail too, and the outcome stays open).
	Outage

	numFaults
)

var faultNames = [...]string{"none", "error-before", "lost-reply", "delay", "delay-after", "expire", "foreign-write", "foreign-write-after", "foreign-write-lost-reply", "damage", "ttl-low", "restart", "outage"}

func (f Fault) String() string {
	if int(f) < len(faultNames) {
		return faultNames[f]
	}
	return fmt.Sprintf("Fault(%d)", f)
}

// ParseFault returns the fault named name (as String prints it).
func ParseFault(name string) (Fault, error) {
	for i, n := range faultNames {
		if n == name {
			return Fault(i), nil
		}
	}
	return None, fmt.Errorf("sim: no fault %q (one of %s)", name, strings.Join(faultNames[1:], ", "))
}

// FailsCall reports whether the caller of a call with this fault gets an
// error (that leaves the call's outcome open).
func (f Fault) FailsCall() bool {
	return f == ErrBefore || f == LostReply || f == ForeignLost || f == Outage
}

// OutageCalls is how many calls after the first an Outage lasts.
const OutageCalls = 6

// Rates gives, for each fault, the probability that a call gets it.
type Rates [numFaults]float64

// ErrInjected is matched by every error a Store injects. It is never a
// definite error: the caller cannot tell whether the call applied.
var ErrInjected = errors.New("sim: injected fault")

var (
	errBefore = fmt.Errorf("%w: connection reset before the command was sent", ErrInjected)
	errLost   = fmt.Errorf("%w: reply lost after the command applied", ErrInjected)
)

// Clock is a logical clock shared by a Store and the recorder of a history:
// every Tick is later than every Tick before it.
type Clock struct{ n atomic.Int64 }

// Tick returns the next instant.
func (c *Clock) Tick() int64 { return c.n.Add(1) }

// CallInfo names one call, for Options.Plan.
type CallInfo struct {
	Op     uint64 // the operation's ID (WithOp); 0 for a call without one
	N      int    // the call's number within its operation, from 1
	Method string // "Get", "CompareAndSwap", ...
	Key    string
}

// Options configures a Store.
type Options struct {
	// Seed and Rates decide the faults of the calls made under an
	// operation ID (WithOp); calls without one get none.
	Seed  uint64
	Rates Rates
	// Plan, when set, decides the fault of every call first (None: Rates
	// decide): the examples' tests use it to place one fault exactly.
	Plan func(CallInfo) Fault
	// Faultable reports whether another process may write or expire key
	// (Expire, Foreign..., Damage); nil: every key.
	Faultable func(key string) bool
	// Forge returns what another process writes over cur (nil: absent):
	// damaged bytes when damaged is set; n is unique to the write.
	// Nil turns Foreign and Damage faults off.
	Forge func(cur []byte, damaged bool, n uint64) []byte
	// Reopen closes old and opens the same store again (a restart where
	// the store persists). Nil turns Restart faults off.
	Reopen func(old store.Store) (store.Store, error)
	// MaxDelay is the longest Delay or DelayAfter; zero means 2ms.
	MaxDelay time.Duration
	// Clock orders the calls; nil: a Clock of the Store's own.
	Clock *Clock
	// Ident returns the write identity of a value written, for
	// Call.Fresh; nil: no call is Fresh.
	Ident func(value []byte) string
}

// Call records one call of the inner store's method for one key (a batch
// call gives one Call per key).
type Call struct {
	Op     uint64
	N      int
	Method string
	Key    string
	// Old and Value are the compare-and-swap's or -delete's old value and
	// the value written (Set, CompareAndSwap, a batch swap).
	Old, Value []byte
	// Reply is the value read (nil: absent) and OK the answer of a
	// conditional write, as the inner store gave them.
	Reply []byte
	OK    bool
	// Applied reports that the call reached the inner store; InnerErr is
	// its error there, Err what the caller got.
	Applied       bool
	InnerErr, Err error
	Fault         Fault
	Start, End    int64 // Clock ticks
	// Fresh reports that Value's write identity (Options.Ident) was
	// first sent by this call's operation: a new write, or its resend.
	Fresh bool
	// Left is the time left that a GetWithTTL or GetManyWithTTL call
	// reported to the caller.
	Left time.Duration
}

// Env records a change that another process, or time, made behind the
// managers' back: Kind "expire" (a delete) or "write" (a
// compare-and-swap of Value over Base, the value read just before; OK
// its answer).
type Env struct {
	Kind        string
	Key         string
	Base, Value []byte
	OK          bool
	Err         error
	Op          uint64 // the operation whose call it came with
	Start, End  int64
}

// Stats counts what a Store did.
type Stats struct {
	Calls    int64
	Faults   [numFaults]int64
	Restarts int64
}

// Injected is the total number of faults injected.
func (s Stats) Injected() int64 {
	var n int64
	for _, v := range s.Faults[1:] {
		n += v
	}
	return n
}

// Store wraps a store and injects faults into its calls. Use it through a
// view ([Store.View]) that offers the capabilities a run enables. It is
// safe for concurrent use.
type Store struct {
	opts  Options
	clock *Clock
	caps  Caps

	mu    sync.RWMutex // held shared by calls, exclusively by a restart
	inner store.Store

	logMu sync.Mutex
	ops   map[uint64]*opLog
	env   []Env

	first     map[string]uint64 // write identity -> the operation that sent it first
	forged    atomic.Uint64
	calls     atomic.Int64
	faults    [numFaults]atomic.Int64
	restarts  atomic.Int64
	reopenErr atomic.Pointer[error]
}

type opLog struct {
	n      int
	outage int // calls of an Outage still to come
	calls  []Call
}

// New returns a Store that forwards to inner.
func New(inner store.Store, opts Options) *Store {
	if opts.Clock == nil {
		opts.Clock = new(Clock)
	}
	if opts.MaxDelay <= 0 {
		opts.MaxDelay = 2 * time.Millisecond
	}
	return &Store{opts: opts, clock: opts.Clock, caps: capsOf(inner), inner: inner, ops: map[uint64]*opLog{}, first: map[string]uint64{}}
}

// View returns the store with the capabilities c that the inner store has
// (CompareAndSwapMany is emulated on any store.Swapper).
func (s *Store) View(c Caps) store.Store { return newView(s, c&s.caps) }

// Caps returns the capabilities of the inner store.
func (s *Store) Caps() Caps { return s.caps }

// Inner returns the inner store as it is now, to read or write it without
// faults or records.
func (s *Store) Inner() store.Store {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.inner
}

// Clock returns the Store's clock.
func (s *Store) Clock() *Clock { return s.clock }

// Stats returns the counts so far.
func (s *Store) Stats() Stats {
	st := Stats{Calls: s.calls.Load(), Restarts: s.restarts.Load()}
	for i := range st.Faults {
		st.Faults[i] = s.faults[i].Load()
	}
	return st
}

// ReopenErr returns the error of the last restart that failed, or nil.
func (s *Store) ReopenErr() error {
	if p := s.reopenErr.Load(); p != nil {
		return *p
	}
	return nil
}

type opKey struct{}

// WithOp returns ctx carrying the operation ID id (not 0): the Store
// decides the faults of the calls made with it and records them under id.
func WithOp(ctx context.Context, id uint64) context.Context {
	return context.WithValue(ctx, opKey{}, id)
}

// OpOf returns the operation ID that ctx carries, or 0.
func OpOf(ctx context.Context) uint64 {
	id, _ := ctx.Value(opKey{}).(uint64)
	return id
}

// Take returns the calls recorded under operation id, in order, and
// forgets them.
func (s *Store) Take(id uint64) []Call {
	s.logMu.Lock()
	defer s.logMu.Unlock()
	l := s.ops[id]
	delete(s.ops, id)
	if l == nil {
		return nil
	}
	return l.calls
}

// TakeEnv returns the changes made behind the managers' back so far and
// forgets them.
func (s *Store) TakeEnv() []Env {
	s.logMu.Lock()
	defer s.logMu.Unlock()
	e := s.env
	s.env = nil
	return e
}

// next numbers a call of operation id and decides its fault.
func (s *Store) next(id uint64, method, key string) (int, Fault) {
	s.calls.Add(1)
	if id == 0 {
		return 0, None
	}
	s.logMu.Lock()
	l := s.ops[id]
	if l == nil {
		l = &opLog{}
		s.ops[id] = l
	}
	l.n++
	n := l.n
	inOutage := l.outage > 0
	if inOutage {
		l.outage--
	}
	s.logMu.Unlock()
	f := None
	if inOutage {
		f = Outage
	}
	if f == None && s.opts.Plan != nil {
		f = s.opts.Plan(CallInfo{Op: id, N: n, Method: method, Key: key})
	}
	if f == None {
		u := unit(mix(s.opts.Seed, id, uint64(n)))
		for k := Fault(1); k < numFaults; k++ {
			if u < s.opts.Rates[k] {
				f = k
				break
			}
			u -= s.opts.Rates[k]
		}
	}
	switch f {
	case Expire, Foreign, ForeignAfter, ForeignLost, Damage:
		if key == "" || (s.opts.Faultable != nil && !s.opts.Faultable(key)) || (f != Expire && s.opts.Forge == nil) {
			f = None
		}
	case TTLLow:
		if method != "GetWithTTL" && method != "GetManyWithTTL" {
			f = None
		}
	case Restart:
		if s.opts.Reopen == nil {
			f = None
		}
	case Outage:
		if !inOutage {
			s.logMu.Lock()
			l.outage = OutageCalls
			s.logMu.Unlock()
		}
	}
	if f != None {
		s.faults[f].Add(1)
	}
	return n, f
}

// fresh reports whether value is a write identity that operation id sent
// first, and notes it.
func (s *Store) fresh(id uint64, value []byte) bool {
	if s.opts.Ident == nil || value == nil {
		return false
	}
	w := s.opts.Ident(value)
	s.logMu.Lock()
	defer s.logMu.Unlock()
	if op, ok := s.first[w]; ok {
		return op == id && id != 0
	}
	s.first[w] = id
	return id != 0
}

func (s *Store) record(c Call) {
	if c.Op == 0 {
		return
	}
	s.logMu.Lock()
	if l := s.ops[c.Op]; l != nil {
		l.calls = append(l.calls, c)
	}
	s.logMu.Unlock()
}

// mix is SplitMix64 over the seed, the operation and the call.
func mix(seed, id, n uint64) uint64 {
	z := seed ^ id*0x9e3779b97f4a7c15 ^ n*0xbf58476d1ce4e5b9 ^ 0x94d049bb133111eb
	z = (z ^ z>>30) * 0xbf58476d1ce4e5b9
	z = (z ^ z>>27) * 0x94d049bb133111eb
	return z ^ z>>31
}

func unit(h uint64) float64 { return float64(h>>11) / (1 << 53) }

func (s *Store) delay(id uint64, n int) {
	d := time.Duration(unit(mix(s.opts.Seed^0x5bd1e995, id, uint64(n))) * float64(s.opts.MaxDelay))
	time.Sleep(d)
}

// restart reopens the inner store while no call runs.
func (s *Store) restart() {
	s.mu.Lock()
	defer s.mu.Unlock()
	st, err := s.opts.Reopen(s.inner)
	if err != nil {
		s.reopenErr.Store(&err)
		return
	}
	s.inner = st
	s.restarts.Add(1)
}

// behind makes the change of fault f (Expire, Foreign..., Damage) to key
// with inner, and records it.
func (s *Store) behind(ctx context.Context, inner store.Store, f Fault, id uint64, key string) {
	e := Env{Key: key, Op: id, Start: s.clock.Tick()}
	ctx = context.WithoutCancel(ctx)
	if f == Expire {
		e.Kind = "expire"
		e.Err = inner.Delete(ctx, key)
		e.OK = e.Err == nil
	} else {
		e.Kind = "write"
		cur, err := inner.Get(ctx, key)
		switch {
		case errors.Is(err, store.ErrNotFound):
			cur = nil
		case err != nil:
			e.Err = err
		}
		if e.Err == nil {
			e.Base = cur
			e.Value = s.opts.Forge(cur, f == Damage, s.forged.Add(1))
			s.fresh(0, e.Value)
			if sw, ok := inner.(store.Swapper); ok {
				e.OK, e.Err = sw.CompareAndSwap(ctx, key, cur, e.Value, 0)
			} else {
				e.Err = inner.Set(ctx, key, e.Value, 0)
				e.OK = e.Err == nil
			}
		}
	}
	e.End = s.clock.Tick()
	s.logMu.Lock()
	s.env = append(s.env, e)
	s.logMu.Unlock()
}

// do runs one call: c names it (Method, Key, Old, Value); op makes it on
// the inner store, filling c.Reply and c.OK.
func (s *Store) do(ctx context.Context, c *Call, op func(inner store.Store) error) error {
	id := OpOf(ctx)
	n, f := s.next(id, c.Method, c.Key)
	c.Op, c.N, c.Fault = id, n, f
	return s.run(ctx, c, f, op)
}

func (s *Store) run(ctx context.Context, c *Call, f Fault, op func(inner store.Store) error) error {
	switch f {
	case Restart:
		s.restart()
	case Delay:
		s.delay(c.Op, c.N)
	}
	c.Fresh = s.fresh(c.Op, c.Value)
	c.Start = s.clock.Tick()
	s.mu.RLock()
	inner := s.inner
	switch f {
	case Expire, Foreign, Damage:
		s.behind(ctx, inner, f, c.Op, c.Key)
	}
	var err error
	if f == ErrBefore {
		err = errBefore
	} else {
		err = op(inner)
		c.Applied, c.InnerErr = true, err
	}
	if f == ForeignAfter || f == ForeignLost {
		s.behind(ctx, inner, f, c.Op, c.Key)
	}
	s.mu.RUnlock()
	if f == LostReply || f == ForeignLost || f == Outage {
		err = errLost
	}
	if f == DelayAfter || f == ForeignAfter {
		// ForeignAfter's reply is slow too: the window in which the
		// caller acts on a value that is no longer there.
		s.delay(c.Op, c.N)
	}
	c.Err = err
	c.End = s.clock.Tick()
	s.record(*c)
	return err
}

func notFound(err error) bool { return errors.Is(err, store.ErrNotFound) }

func (s *Store) get(ctx context.Context, key string) ([]byte, error) {
	c := Call{Method: "Get", Key: key}
	var v []byte
	err := s.do(ctx, &c, func(inner store.Store) error {
		var err error
		v, err = inner.Get(ctx, key)
		c.Reply = v
		return err
	})
	if err != nil {
		return nil, err
	}
	return v, nil
}

func (s *Store) set(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	c := Call{Method: "Set", Key: key, Value: clone(value)}
	return s.do(ctx, &c, func(inner store.Store) error { return inner.Set(ctx, key, value, ttl) })
}

func (s *Store) del(ctx context.Context, key string) error {
	c := Call{Method: "Delete", Key: key}
	return s.do(ctx, &c, func(inner store.Store) error { return inner.Delete(ctx, key) })
}

func (s *Store) cas(ctx context.Context, key string, old, value []byte, ttl time.Duration) (bool, error) {
	c := Call{Method: "CompareAndSwap", Key: key, Old: clone(old), Value: clone(value)}
	err := s.do(ctx, &c, func(inner store.Store) error {
		var err error
		c.OK, err = inner.(store.Swapper).CompareAndSwap(ctx, key, old, value, ttl)
		return err
	})
	return c.OK && err == nil, err
}

func (s *Store) cad(ctx context.Context, key string, old []byte) (bool, error) {
	c := Call{Method: "CompareAndDelete", Key: key, Old: clone(old)}
	err := s.do(ctx, &c, func(inner store.Store) error {
		var err error
		c.OK, err = inner.(store.Deleter).CompareAndDelete(ctx, key, old)
		return err
	})
	return c.OK && err == nil, err
}

func (s *Store) touch(ctx context.Context, key string, ttl time.Duration) error {
	c := Call{Method: "Touch", Key: key}
	return s.do(ctx, &c, func(inner store.Store) error { return inner.(store.Toucher).Touch(ctx, key, ttl) })
}

func (s *Store) getAndTouch(ctx context.Context, key string, ttl time.Duration) ([]byte, error) {
	c := Call{Method: "GetAndTouch", Key: key}
	err := s.do(ctx, &c, func(inner store.Store) error {
		var err error
		c.Reply, err = inner.(store.Refresher).GetAndTouch(ctx, key, ttl)
		return err
	})
	if err != nil {
		return nil, err
	}
	return c.Reply, nil
}

func (s *Store) getWithTTL(ctx context.Context, key string) ([]byte, time.Duration, error) {
	c := Call{Method: "GetWithTTL", Key: key}
	var left time.Duration
	err := s.do(ctx, &c, func(inner store.Store) error {
		var err error
		c.Reply, left, err = inner.(store.TTLGetter).GetWithTTL(ctx, key)
		return err
	})
	if err != nil {
		return nil, 0, err
	}
	if c.Fault == TTLLow && left != store.NoExpiry {
		left = min(left, time.Millisecond)
	}
	s.setLeft(c.Op, c.N, c.Key, left)
	return c.Reply, left, nil
}

func (s *Store) scan(ctx context.Context, prefix string, fn func(key string) error) error {
	c := Call{Method: "Scan", Key: ""}
	var keys []string
	err := s.do(ctx, &c, func(inner store.Store) error {
		return inner.(store.Scanner).Scan(ctx, prefix, func(k string) error {
			keys = append(keys, k)
			return nil
		})
	})
	if err != nil {
		return err
	}
	for _, k := range keys {
		if err := fn(k); err != nil {
			return err
		}
	}
	return nil
}

// getMany is GetMany and GetManyWithTTL: one call, whose fault applies to
// the whole batch (Expire, Foreign and Damage to one key of it), recorded
// as one Call per key.
func (s *Store) getMany(ctx context.Context, method string, keys []string) ([][]byte, []time.Duration, error) {
	id := OpOf(ctx)
	some := ""
	if len(keys) > 0 {
		some = keys[int(mix(s.opts.Seed, id, uint64(len(keys)))%uint64(len(keys)))]
	}
	n, f := s.next(id, method, some)
	c := Call{Op: id, N: n, Method: method, Key: some, Fault: f}
	var values [][]byte
	var ttls []time.Duration
	// run records c (the key faulted, if any) with the reply for it; the
	// other keys get their Calls below.
	err := s.run(ctx, &c, f, func(inner store.Store) error {
		var err error
		if method == "GetMany" {
			values, err = inner.(store.BatchGetter).GetMany(ctx, keys)
		} else {
			values, ttls, err = inner.(store.BatchTTLGetter).GetManyWithTTL(ctx, keys)
		}
		if err == nil && some != "" {
			c.Reply = values[indexOf(keys, some)]
		}
		return err
	})
	if c.Applied && c.InnerErr == nil {
		for i, k := range keys {
			kc := c
			kc.Key, kc.Reply = k, values[i]
			if i == indexOf(keys, some) {
				continue // run recorded it
			}
			s.record(kc)
		}
	}
	if err != nil {
		return nil, nil, err
	}
	if f == TTLLow {
		for i := range ttls {
			if ttls[i] != store.NoExpiry && values[i] != nil {
				ttls[i] = min(ttls[i], time.Millisecond)
			}
		}
	}
	for i, k := range keys {
		if ttls != nil {
			s.setLeft(id, n, k, ttls[i])
		}
	}
	return values, ttls, nil
}

// setLeft notes the time left reported to the caller in the recorded call
// (op, n) of key.
func (s *Store) setLeft(op uint64, n int, key string, left time.Duration) {
	if op == 0 {
		return
	}
	s.logMu.Lock()
	defer s.logMu.Unlock()
	if l := s.ops[op]; l != nil {
		for i := len(l.calls) - 1; i >= 0; i-- {
			if c := &l.calls[i]; c.N == n && c.Key == key {
				c.Left = left
				return
			}
		}
	}
}

func indexOf(keys []string, k string) int {
	for i, x := range keys {
		if x == k {
			return i
		}
	}
	return -1
}

// casMany runs a batch of compare-and-swaps: each swap is one call with a
// fault of its own. On an inner store.BatchSwapper the swaps that reach
// the store go out in one batch; otherwise each is a CompareAndSwap. It
// keeps the store.BatchSwapper contract: a swap whose reply is lost gets
// an error in its result, never a false, and nothing is sent twice.
func (s *Store) casMany(ctx context.Context, swaps []store.Swap) ([]store.SwapResult, error) {
	for _, sw := range swaps {
		if err := store.CheckKey(sw.Key); err != nil {
			return nil, err
		}
	}
	if len(swaps) == 0 {
		return []store.SwapResult{}, nil
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	id := OpOf(ctx)
	res := make([]store.SwapResult, len(swaps))
	calls := make([]Call, len(swaps))
	faults := make([]Fault, len(swaps))
	for i, sw := range swaps {
		n, f := s.next(id, "CompareAndSwapMany", sw.Key)
		calls[i] = Call{Op: id, N: n, Method: "CompareAndSwapMany", Key: sw.Key, Old: clone(sw.Old), Value: clone(sw.Value), Fault: f}
		calls[i].Fresh = s.fresh(id, sw.Value)
		faults[i] = f
	}
	s.mu.RLock()
	bs, batch := s.inner.(store.BatchSwapper)
	s.mu.RUnlock()
	if !batch {
		for i, sw := range swaps {
			c := &calls[i]
			err := s.run(ctx, c, faults[i], func(inner store.Store) error {
				var err error
				c.OK, err = inner.(store.Swapper).CompareAndSwap(ctx, sw.Key, sw.Old, sw.Value, sw.TTL)
				return err
			})
			res[i] = store.SwapResult{Swapped: c.OK && err == nil, Err: err}
		}
		return res, nil
	}
	// One batch for the swaps that reach the store.
	for i, f := range faults {
		if f == Restart {
			s.restart()
		}
		if f == Delay {
			s.delay(id, calls[i].N)
		}
	}
	s.mu.RLock()
	inner := s.inner
	bs = inner.(store.BatchSwapper)
	var send []store.Swap
	var at []int
	for i, sw := range swaps {
		calls[i].Start = s.clock.Tick()
		switch faults[i] {
		case Expire, Foreign, Damage:
			s.behind(ctx, inner, faults[i], id, sw.Key)
		}
		if faults[i] == ErrBefore {
			res[i].Err = errBefore
			continue
		}
		send = append(send, sw)
		at = append(at, i)
	}
	var out []store.SwapResult
	var err error
	if len(send) > 0 {
		out, err = bs.CompareAndSwapMany(ctx, send)
	}
	for j, i := range at {
		c := &calls[i]
		if err != nil {
			res[i].Err = err
			c.InnerErr = err
			continue
		}
		c.Applied, c.OK, c.InnerErr = true, out[j].Swapped, out[j].Err
		res[i] = out[j]
		if faults[i] == ForeignAfter || faults[i] == ForeignLost {
			s.behind(ctx, inner, faults[i], id, swaps[i].Key)
		}
		if faults[i] == LostReply || faults[i] == ForeignLost || faults[i] == Outage {
			res[i] = store.SwapResult{Err: errLost}
		}
	}
	s.mu.RUnlock()
	for i := range swaps {
		if faults[i] == DelayAfter {
			s.delay(id, calls[i].N)
		}
		calls[i].Err = res[i].Err
		calls[i].End = s.clock.Tick()
		s.record(calls[i])
	}
	return res, nil
}

func clone(b []byte) []byte {
	if b == nil {
		return nil
	}
	return append(make([]byte, 0, len(b)), b...)
}
