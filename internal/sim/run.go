package sim

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"sort"

	"errors"
	"fmt"
	"github.com/anishathalye/porcupine"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	session "github.com/typedsession/session"
	"github.com/typedsession/session/store"
)

// Config configures one simulated run.
type Config struct {
	Seed uint64
	// Store is the inner store, empty under Namespace; Reopen, when set,
	// restarts it (Restart faults).
	Store  store.Store
	Reopen func(old store.Store) (store.Store, error)
	// Namespace of the managers; zero means "sim".
	Namespace string
	// Caps are the capabilities the managers see (of those the store
	// has); TTL is their Config.TTL.
	Caps Caps
	TTL  time.Duration
	// Clients run concurrently, Ops operations each, over Slots sessions
	// (each a family of keys that moves link).
	Clients, Ops, Slots int
	// Rates of the faults; the zero Rates mean DefaultRates.
	Rates Rates
	// MaxDelay of a Delay fault; zero means 2ms.
	MaxDelay time.Duration
	// Disable names kinds of operation the clients do not run (as Kind
	// prints them: "move", "destroy", "migrate-all", ...); a Load runs in
	// their place.
	Disable []string
}

// DefaultRates are the fault rates of a run whose Config has none.
var DefaultRates = func() Rates {
	var r Rates
	r[ErrBefore] = 0.01
	r[LostReply] = 0.015
	r[Delay] = 0.03
	r[DelayAfter] = 0.03
	r[Expire] = 0.005
	r[Foreign] = 0.01
	r[ForeignAfter] = 0.03
	r[ForeignLost] = 0.01
	r[Damage] = 0.01
	r[TTLLow] = 0.05
	r[Restart] = 0.001
	r[Outage] = 0.02
	return r
}()

// Kind is the kind of a recorded operation.
type Kind uint8

// The kinds of operation in a history.
const (
	KLoad    Kind = iota + 1
	KSave         // Save of a loaded session, changed or not
	KDestroy      // Save of a loaded session after Destroy
	KMove         // Save of a loaded session after MoveTo
	KDelete       // Manager.Delete
	KUpdate       // Manager.Update
	KMigrate      // one key of a MigrateAll (from Config.Hook's event)
	KMigrateAll
	KEnvWrite  // another process's compare-and-swap
	KEnvExpire // a key expired
	KObserve   // the store as it is after the run
	// KQuarantine is the quarantine an Update's load made, from its read
	// of the damaged value to the removal of the original.
	KQuarantine
	// KMoveWrite and KMoveDelete are the two steps of a move that
	// succeeded, as the check sees them (see splitMove): its write of the
	// new key, then its delete of the old one.
	KMoveWrite
	KMoveDelete
)

var kindNames = [...]string{"?", "load", "save", "destroy", "move", "delete", "update", "migrate", "migrate-all", "other-process-write", "expire", "observe", "quarantine", "move's write of", "move's delete of"}

func (k Kind) String() string { return kindNames[k] }

// Seen is a value read or written, or its absence.
type Seen struct {
	Present bool
	V       Value
}

func seen(b []byte) Seen {
	if b == nil {
		return Seen{}
	}
	return Seen{Present: true, V: Parse(b)}
}

func (s Seen) String() string {
	if !s.Present {
		return "absent"
	}
	return s.V.String()
}

// Class is the class of an operation's error.
type Class uint8

// The classes of errors.
const (
	OK Class = iota
	Conflict
	Unknown
	Corrupt
	Other
)

var classNames = [...]string{"ok", "ErrConflict", "ErrOutcomeUnknown", "ErrCorrupt", "error"}

func (c Class) String() string { return classNames[c] }

func classify(err error) Class {
	switch {
	case err == nil:
		return OK
	case errors.Is(err, session.ErrOutcomeUnknown):
		return Unknown
	case errors.Is(err, session.ErrConflict):
		return Conflict
	case errors.Is(err, session.ErrCorrupt):
		return Corrupt
	}
	return Other
}

// Op is one recorded operation: its call and return, what it was given
// and what it did, as the store wrapper saw it.
type Op struct {
	ID     uint64
	Client int
	Kind   Kind
	Slot   int
	Mgr    int
	// Key is the store key; Key2 the key a move goes to.
	Key, Key2 string
	// Swapper and Deleter: the manager's store has them.
	Swapper, Deleter bool
	// Loaded is what the session was loaded from (Save, Destroy, Move;
	// a Load's or a migration's read), ReadKnown whether a read was seen.
	Loaded    Seen
	ReadKnown bool
	// Change: the operation changed the data (Token is its tag);
	// ExpectWrite: the contract requires a write for success.
	Change      bool
	Token       string
	ExpectWrite bool
	// W is the new write the operation sent (the last one, with a write
	// identity of its own), if any.
	W Seen
	// Quarantined: the Load moved a damaged value aside (Config.Hook);
	// QTried: it (or an Update's load) tried to; Damaged is the damaged
	// value it read last.
	Quarantined, QTried bool
	Damaged             Seen
	// Ret is the data an Update returned, RetV its digest.
	Ret  Data
	RetV Value
	// Outcome of a migration's event.
	Outcome session.Outcome
	// Obs is the store after the run (KObserve): the slot's keys and
	// the damaged values quarantined from them.
	Obs  map[string]Value
	ObsQ []string
	// EnvOK is the answer of another process's compare-and-swap.
	EnvOK bool
	// Pending marks an operation that had not returned when the history
	// was cut short (a prefix, in the search for a short failing one).
	Pending bool

	Err          error
	Class        Class
	Calls        []Call
	Call, Return int64
}

// Result is what a run found.
type Result struct {
	Config   Config
	Ops      int // operations recorded (keys of a MigrateAll count one each)
	Env      int // changes behind the managers' back
	Handoffs int
	Stats    Stats
	Parts    int // histories checked (one per slot)
	PerKey   int // of those, checked key by key at the end (see perKey)
	Findings []Finding
	Took     time.Duration
	// Check is the time the linearizability checks took.
	Check time.Duration
	ops   []*Op
}

// Finding is one violation of the contract.
type Finding struct {
	Kind   string // "linearizability", "unknown-without-fault", ...
	Slot   int
	Detail string
	// History is the shortened history of the slot, for a
	// linearizability finding.
	History string
	ops     []porcupine.Operation
}

// WriteHistory writes the whole history of a linearizability finding, one
// operation a line in call order, and returns the file's path.
func (f Finding) WriteHistory(dir string, seed uint64) (string, error) {
	ops := slices.Clone(f.ops)
	sort.Slice(ops, func(i, j int) bool { return ops[i].Call < ops[j].Call })
	var b strings.Builder
	for _, o := range ops {
		b.WriteString(o.Input.(*Op).Describe())
		b.WriteString("\n")
	}
	path := filepath.Join(dir, fmt.Sprintf("sim-seed%d-slot%d.txt", seed, f.Slot))
	return path, os.WriteFile(path, []byte(b.String()), 0o644)
}

type harness struct {
	cfg   Config
	st    *Store
	clock *Clock
	ns    string
	mgrs  []*mgr
	cur   []atomic.Pointer[string] // the current key of each slot
	moves atomic.Int64
	// moving holds the store keys that a move is writing now (its new
	// key): no other process writes, damages or expires them while the
	// move runs. The new key is made for the move and known to nobody
	// until the move returns (an application hands it out after), and an
	// expiry of a value just written with its ttl cannot come; a fault
	// there would be one no deployment meets, and the invariant
	// unknown-without-fault would blame the library for the honest
	// answer it then gives (the undo of a move that met a conflict finds
	// the new key changed: both keys may hold a value).
	moving sync.Map

	mu       sync.Mutex
	ops      []*Op
	events   map[uint64][]event
	handoffs atomic.Int64
}

type mgr struct {
	m                *session.Manager[Data]
	swapper, deleter bool
	writeVersion     int
	quarantine       bool
}

type event struct {
	e    session.Event
	tick int64
}

// Profiles are the capability sets the quick run goes through, one per
// seed: everything, no batches, no TTL capabilities, no compare-and-delete,
// Get/Set/Delete only, a Refresher only, compare-and-delete without
// compare-and-swap.
var Profiles = []Caps{
	CapAll,
	CapAll &^ (CapBatchGetter | CapBatchTTLGetter | CapBatchSwapper),
	CapSwapper | CapDeleter | CapScanner | CapBatchGetter,
	CapSwapper | CapToucher | CapTTLGetter | CapScanner,
	CapNone,
	CapSwapper | CapDeleter | CapRefresher | CapScanner | CapBatchGetter | CapBatchSwapper,
	// Compare-and-delete without compare-and-swap: a resent delete that
	// meets a value built on the old one proves nothing there (another
	// process may have written it blindly after the delete landed).
	CapDeleter | CapScanner,
}

// Run runs the simulation of cfg and checks its history.
func Run(ctx context.Context, cfg Config) (*Result, error) {
	start := time.Now()
	if cfg.Namespace == "" {
		cfg.Namespace = "sim"
	}
	if cfg.Rates == (Rates{}) {
		cfg.Rates = DefaultRates
	}
	if cfg.Caps&CapSwapper == 0 {
		// Without compare-and-swap every write fits anywhere in a
		// linearization, and the checker's search grows steeply with the
		// length of a slot's history: one of 355 operations ran past a
		// 4 s bound (twice, with the per-key fallback) on a loaded CI
		// machine under -race. The same operations spread over four
		// times the slots make histories a quarter as long, which the
		// check decides in milliseconds; each slot is still a family
		// of keys that moves link.
		cfg.Slots *= 4
	}
	h := &harness{cfg: cfg, ns: cfg.Namespace, clock: new(Clock), events: map[uint64][]event{}}
	h.st = New(cfg.Store, Options{
		Seed: cfg.Seed, Rates: cfg.Rates, Clock: h.clock, Reopen: cfg.Reopen, MaxDelay: cfg.MaxDelay,
		Forge: Forge, Ident: Ident,
		Faultable: func(k string) bool {
			_, moving := h.moving.Load(k)
			return strings.HasPrefix(k, h.ns+":") && !moving
		},
	})
	h.cur = make([]atomic.Pointer[string], cfg.Slots)
	for i := range h.cur {
		k := fmt.Sprintf("s%d", i)
		h.cur[i].Store(&k)
	}
	// The managers: processes of one namespace; two write version 1.
	type spec struct {
		caps       Caps
		wv         int
		quarantine bool
	}
	noBatch := cfg.Caps &^ (CapBatchGetter | CapBatchTTLGetter | CapBatchSwapper)
	for _, sp := range []spec{{cfg.Caps, 0, true}, {cfg.Caps, 1, true}, {cfg.Caps, 0, false}, {noBatch, 0, true}, {cfg.Caps, 1, false}} {
		view := h.st.View(sp.caps)
		// LogKeys: the hook's events name their keys only with it, and
		// the harness correlates a MigrateAll's events with its calls by
		// key (migrated).
		m, err := session.New(session.Config[Data]{
			Store: view, Namespace: h.ns, TTL: cfg.TTL, Initial: Initial, Migrations: Plan(), LogKeys: true,
			WriteVersion: sp.wv, Quarantine: sp.quarantine, Hook: h.hook,
		})
		if err != nil {
			return nil, err
		}
		_, sw := view.(store.Swapper)
		_, del := view.(store.Deleter)
		wv := sp.wv
		if wv == 0 {
			wv = 2
		}
		h.mgrs = append(h.mgrs, &mgr{m: m, swapper: sw, deleter: del, writeVersion: wv, quarantine: sp.quarantine})
	}
	var wg sync.WaitGroup
	for c := range cfg.Clients {
		wg.Go(func() { h.client(ctx, c) })
	}
	wg.Wait()
	if err := h.st.ReopenErr(); err != nil {
		return nil, fmt.Errorf("sim: a restart failed: %w", err)
	}
	for _, e := range h.st.TakeEnv() {
		op := &Op{Client: cfg.Clients, Slot: slotOf(h.ns, e.Key), Key: e.Key, Call: e.Start, Return: e.End, Err: e.Err, ID: e.Op}
		if e.Kind == "expire" {
			op.Kind = KEnvExpire
		} else {
			op.Kind, op.Loaded, op.W, op.EnvOK = KEnvWrite, seen(e.Base), seen(e.Value), e.OK
		}
		h.ops = append(h.ops, op)
	}
	if err := h.observe(ctx); err != nil {
		return nil, err
	}
	r := &Result{Config: cfg, Stats: h.st.Stats(), Handoffs: int(h.handoffs.Load()), ops: h.ops}
	for _, op := range h.ops {
		switch op.Kind {
		case KEnvWrite, KEnvExpire:
			r.Env++
		case KObserve, KMigrateAll:
		default:
			r.Ops++
		}
	}
	r.Findings = append(r.Findings, h.invariants()...)
	t := time.Now()
	r.Findings = append(r.Findings, h.check(r)...)
	r.Check = time.Since(t)
	r.Took = time.Since(start)
	return r, nil
}

func (h *harness) hook(ctx context.Context, e session.Event) {
	id := OpOf(ctx)
	if id == 0 {
		return
	}
	if e.Handoff {
		h.handoffs.Add(1)
	}
	t := h.clock.Tick()
	h.mu.Lock()
	h.events[id] = append(h.events[id], event{e, t})
	h.mu.Unlock()
}

func (h *harness) storeKey(k string) string { return h.ns + ":" + k }

// begin starts recording an operation of client c.
func (h *harness) begin(c int, seq *uint64, kind Kind, slot, mi int, key string) (*Op, context.Context) {
	*seq++
	m := h.mgrs[mi]
	op := &Op{ID: uint64(c+1)<<32 | *seq, Client: c, Kind: kind, Slot: slot, Mgr: mi, Key: h.storeKey(key), Swapper: m.swapper, Deleter: m.deleter}
	op.Call = h.clock.Tick()
	return op, op.ctx()
}

func (op *Op) ctx() context.Context { return WithOp(context.Background(), op.ID) }

// end records the end of op with err.
func (h *harness) end(op *Op, err error) {
	op.Return = h.clock.Tick()
	op.Err, op.Class = err, classify(err)
	op.Calls = h.st.Take(op.ID)
	if op.Kind != KMigrateAll && len(op.Calls) > 0 {
		// The operation acts on the store only through its calls, so
		// it takes effect between the first call's start and the last
		// call's end: the check uses that window, not the time spent
		// before (waiting behind another Update of the same key, for
		// instance) or after. A narrower window only forbids
		// linearizations; it never admits one. Without it, on a store
		// without compare-and-swap, where every write fits anywhere, the
		// Updates that wait in line overlap so many others that the
		// search cannot end.
		op.Call = max(op.Call, op.Calls[0].Start)
		op.Return = min(op.Return, op.Calls[len(op.Calls)-1].End)
	}
	h.mu.Lock()
	evs := h.events[op.ID]
	delete(h.events, op.ID)
	h.ops = append(h.ops, op)
	h.mu.Unlock()
	if op.Kind == KMigrateAll {
		h.migrated(op, evs)
		return
	}
	name := map[Kind]string{KSave: "save", KDestroy: "save", KMove: "save", KUpdate: "update"}[op.Kind]
	for _, e := range evs {
		if e.e.Outcome == session.OutcomeQuarantined && op.Kind == KLoad {
			// A Load's own quarantine; an Update's load reports its
			// quarantine too, which the harness takes from its store
			// calls as an operation of its own (KQuarantine).
			op.Quarantined = true
		}
		if e.e.Op == name {
			op.Outcome = e.e.Outcome
		}
	}
	h.fill(op)
}

// fill finds in op's calls what it read and wrote of its keys. A Get
// that follows a CompareAndDelete of the same key, or a write whose reply
// was open, is the write protocol settling that call, not a read of the
// operation's own: it does not count as what the operation read.
func (h *harness) fill(op *Op) {
	var prev *Call // the previous call of op.Key
	for i := range op.Calls {
		c := op.Calls[i]
		settle := prev != nil && c.Key == op.Key && c.Method == "Get" &&
			(prev.Method == "CompareAndDelete" || isWrite(prev.Method) && prev.Err != nil)
		if c.Key == op.Key {
			prev = &op.Calls[i]
		}
		switch {
		case strings.HasPrefix(c.Key, session.QuarantinePrefix):
			op.QTried = true
		case c.Key != op.Key && c.Key != op.Key2:
		case settle:
		case isRead(c.Method) && c.Err == nil || isRead(c.Method) && c.Applied && notFound(c.Err) && notFound(c.InnerErr):
			if op.Kind == KLoad || op.Kind == KMigrate {
				op.Loaded, op.ReadKnown = seen(c.Reply), true
			}
			if r := seen(c.Reply); r.Present && r.V.Damaged {
				op.Damaged = r
			}
		case c.Fresh && (op.Kind != KMove || c.Key == op.Key2):
			op.W = seen(c.Value)
		}
	}
	if op.Class == OK && op.Outcome != "" && op.Outcome != session.OutcomeWritten {
		// The last write sent was an attempt that conflicted; the
		// operation then ended without one (a retry found nothing to
		// write).
		op.W = Seen{}
	}
}

func isRead(method string) bool {
	switch method {
	case "Get", "GetWithTTL", "GetAndTouch", "GetMany", "GetManyWithTTL":
		return true
	}
	return false
}

func isWrite(method string) bool {
	switch method {
	case "Set", "Delete", "CompareAndSwap", "CompareAndDelete", "CompareAndSwapMany":
		return true
	}
	return false
}

// migrated splits a MigrateAll into one operation per key it reported,
// from the first call that touched the key to the key's event.
func (h *harness) migrated(all *Op, evs []event) {
	// A scan may report a key twice (store.Scanner), and MigrateAll then
	// migrates it twice: each of its events takes the calls since the
	// key's event before.
	since := map[string]int64{}
	for _, e := range evs {
		if e.e.Op != "migrate" {
			continue
		}
		sk := h.storeKey(e.e.Key)
		after := since[sk]
		since[sk] = e.tick
		op := &Op{ID: all.ID, Client: all.Client, Kind: KMigrate, Slot: slotOf(h.ns, sk), Mgr: all.Mgr, Key: sk,
			Swapper: all.Swapper, Deleter: all.Deleter, Call: all.Call, Return: e.tick, Outcome: e.e.Outcome, Err: e.e.Err, Class: classify(e.e.Err)}
		first := true
		for _, c := range all.Calls {
			if c.Start < after {
				continue
			}
			if c.Key == sk || strings.HasSuffix(c.Key, ":"+sk) && strings.HasPrefix(c.Key, session.QuarantinePrefix) {
				if first {
					op.Call, first = c.Start, false
				}
				if c.End <= e.tick {
					op.Calls = append(op.Calls, c)
				}
			}
		}
		if op.Call > op.Return {
			op.Call = all.Call
		}
		if e.e.Outcome == session.OutcomeQuarantined {
			// The key's event carries the damage that was moved aside
			// (as Load's does); for the key, MigrateAll went on without
			// an error, as a Load that quarantines returns none. The
			// move itself is taken from the store calls (QTried), as
			// an operation of its own, as before the event told of it.
			op.Err, op.Class = nil, OK
		}
		h.fill(op)
		if op.QTried && !op.Quarantined {
			// A quarantine that did not end the key's migration (its
			// copy undone after a conflict, or open, and the key read
			// again): an operation of its own, as an Update's; the
			// migration is then its last read and its write.
			h.quarantines(op)
			op.QTried = false
		}
		h.mu.Lock()
		h.ops = append(h.ops, op)
		h.mu.Unlock()
	}
}

// client runs cfg.Ops random operations.
func (h *harness) client(ctx context.Context, c int) {
	rng := rand.New(rand.NewPCG(h.cfg.Seed, uint64(c)))
	var seq uint64
	for i := 0; i < h.cfg.Ops && ctx.Err() == nil; i++ {
		// The operations of iteration i have IDs of their own whatever
		// the outcomes before: a seed gives each the same faults.
		seq = uint64(i) << 3
		slot := rng.IntN(h.cfg.Slots)
		// A hot session: queued Updates, handoffs. Not without
		// compare-and-swap (no handoffs there), where a third of all
		// operations on one slot is a history the check cannot search
		// (see Run).
		if rng.IntN(3) == 0 && h.cfg.Caps&CapSwapper != 0 {
			slot = 0
		}
		mi := rng.IntN(len(h.mgrs))
		key := *h.cur[slot].Load()
		token := fmt.Sprintf("c%d.%d", c, i)
		r := rng.IntN(100)
		if h.disabled(r) {
			r = 0
		}
		switch {
		case r < 12:
			h.load(c, &seq, slot, mi, key)
		case r < 30:
			h.loadSave(c, &seq, slot, mi, key, token, true)
		case r < 38:
			h.loadSave(c, &seq, slot, mi, key, token, false)
		case r < 58:
			if slot == 0 {
				mi = 0 // queued behind each other in one Manager
			}
			h.update(c, &seq, slot, mi, key, token, rng.IntN(4) != 0)
		case r < 62:
			op, ctx := h.begin(c, &seq, KDelete, slot, mi, key)
			h.end(op, h.mgrs[mi].m.Delete(ctx, key))
		case r < 70:
			h.destroy(c, &seq, slot, mi, key)
		case r < 80:
			h.move(c, &seq, slot, mi, key, token, rng.IntN(3) != 0)
		case r < 83:
			op, ctx := h.begin(c, &seq, KMigrateAll, -1, []int{0, 3, 1}[rng.IntN(3)], "")
			op.Key = ""
			_, err := h.mgrs[op.Mgr].m.MigrateAll(ctx, session.MigrateOptions{})
			h.end(op, err)
		default:
			h.update(c, &seq, slot, mi, key, token, true)
		}
	}
}

// opMix is the share of each kind of operation, in percent: the client
// draws r in [0,100) and runs the first kind whose bound exceeds r.
var opMix = []struct {
	below int
	kind  Kind
	save  string
}{{12, KLoad, ""}, {30, KSave, "changed"}, {38, KSave, "unchanged"}, {58, KUpdate, ""}, {62, KDelete, ""}, {70, KDestroy, ""}, {80, KMove, ""}, {83, KMigrateAll, ""}, {100, KUpdate, ""}}

// disabled reports whether the kind drawn as r is in Config.Disable.
func (h *harness) disabled(r int) bool {
	for _, m := range opMix {
		if r < m.below {
			name := m.kind.String()
			for _, d := range h.cfg.Disable {
				if d == name || m.save != "" && d == name+"-"+m.save {
					return true
				}
			}
			return false
		}
	}
	return false
}

// load records a Load; it returns the session, or nil, and the Load's Op.
func (h *harness) load(c int, seq *uint64, slot, mi int, key string) (*session.Session[Data], *Op) {
	op, ctx := h.begin(c, seq, KLoad, slot, mi, key)
	s, err := h.mgrs[mi].m.Load(ctx, key)
	h.end(op, err)
	if err != nil {
		return nil, op
	}
	op.Ret = s.Data
	return s, op
}

func (h *harness) loadSave(c int, seq *uint64, slot, mi int, key, token string, change bool) {
	s, lop := h.load(c, seq, slot, mi, key)
	if s == nil {
		return
	}
	op, ctx := h.begin(c, seq, KSave, slot, mi, key)
	op.Loaded = h.loadedSeen(lop)
	if change {
		s.Data.Tag, op.Change, op.Token = token, true, token
	}
	op.ExpectWrite = change || s.Version() < h.mgrs[mi].writeVersion && !s.IsNew()
	h.end(op, h.mgrs[mi].m.Save(ctx, s))
}

// loadedSeen is what the session of a Load op was loaded from: nothing
// after a quarantine.
func (h *harness) loadedSeen(lop *Op) Seen {
	if lop.Quarantined {
		return Seen{}
	}
	return lop.Loaded
}

func (h *harness) update(c int, seq *uint64, slot, mi int, key, token string, change bool) {
	op, ctx := h.begin(c, seq, KUpdate, slot, mi, key)
	op.Change, op.Token = change, token
	d, err := h.mgrs[mi].m.Update(ctx, key, func(d *Data) error {
		if change {
			d.Tag = token
			d.Log = append(d.Log, token)
		}
		return nil
	})
	op.Ret = d
	op.RetV = Value{Tag: d.Tag, Log: d.Log, LogH: logHash(d.Log)}
	h.end(op, err)
	h.quarantines(op)
	if change && op.W.Present {
		// The write of this Update is the last new write that carries
		// its token.
		op.W = Seen{}
		for _, c := range op.Calls {
			switch {
			case c.Key == op.Key && c.Fresh:
				if v := Parse(c.Value); v.Tag == token {
					op.W = Seen{true, v}
				}
			}
		}
	}
}

// quarantines records each quarantine that the loads of Update op made
// as an operation of its own: other operations may run between it and
// the Update's write.
func (h *harness) quarantines(op *Op) {
	var q *Op
	flush := func() {
		if q == nil || len(q.Calls) == 0 {
			q = nil
			return
		}
		// Done when the original was removed; open when a call of the
		// move (the copy, the removal, a settling read, the undo) failed;
		// otherwise a conflict (the copy undone).
		q.Class, q.Return = Conflict, q.Calls[len(q.Calls)-1].End
		failed := false
		for _, c := range q.Calls {
			switch {
			case c.Key == q.Key && c.Err == nil && (c.OK && c.Method == "CompareAndDelete" || c.Method == "Delete"):
				q.Class = OK
			case c.Err != nil && !notFound(c.Err):
				failed = true
			}
		}
		if failed && q.Class != OK {
			q.Class = Unknown
		}
		h.mu.Lock()
		h.ops = append(h.ops, q)
		h.mu.Unlock()
		q = nil
	}
	var prev *Call // the previous call of op.Key
	for i := range op.Calls {
		c := op.Calls[i]
		settle := prev != nil && c.Key == op.Key && c.Method == "Get" &&
			(prev.Method == "CompareAndDelete" || isWrite(prev.Method) && prev.Err != nil)
		if c.Key == op.Key {
			prev = &op.Calls[i]
		}
		switch {
		case c.Key == op.Key && isRead(c.Method) && !settle:
			flush() // a load: a quarantine before it is over
			if r := seen(c.Reply); r.Present && r.V.Damaged {
				q = &Op{ID: op.ID, Client: op.Client, Kind: KQuarantine, Slot: op.Slot, Mgr: op.Mgr, Key: op.Key,
					Swapper: op.Swapper, Deleter: op.Deleter, Damaged: r, Call: c.Start}
			}
		case q == nil:
		case strings.HasPrefix(c.Key, session.QuarantinePrefix) && c.Method == "CompareAndSwap" && c.Err == nil && !c.OK:
			q = nil // the copy was not made: nothing moved
		case c.Key == op.Key && isWrite(c.Method) && c.Method != "CompareAndDelete" && c.Method != "Delete":
			flush() // the Update's own write: the quarantine is over
		default:
			q.Calls = append(q.Calls, c) // the move's calls, and reads settling them
		}
	}
	flush()
}

func (h *harness) destroy(c int, seq *uint64, slot, mi int, key string) {
	s, lop := h.load(c, seq, slot, mi, key)
	if s == nil {
		return
	}
	op, ctx := h.begin(c, seq, KDestroy, slot, mi, key)
	op.Loaded = h.loadedSeen(lop)
	s.Destroy()
	h.end(op, h.mgrs[mi].m.Save(ctx, s))
}

func (h *harness) move(c int, seq *uint64, slot, mi int, key, token string, change bool) {
	s, lop := h.load(c, seq, slot, mi, key)
	if s == nil {
		return
	}
	to := fmt.Sprintf("s%d.m%d", slot, h.moves.Add(1))
	op, ctx := h.begin(c, seq, KMove, slot, mi, key)
	op.Key2 = h.storeKey(to)
	op.Loaded = h.loadedSeen(lop)
	if change {
		s.Data.Tag, op.Change, op.Token = token, true, token
	}
	op.ExpectWrite = change || !s.IsNew()
	s.MoveTo(to)
	h.moving.Store(op.Key2, true)
	err := h.mgrs[mi].m.Save(ctx, s)
	h.moving.Delete(op.Key2)
	h.end(op, err)
	if err == nil || op.Class == Unknown {
		h.cur[slot].CompareAndSwap(h.cur[slot].Load(), &to)
	}
}

// observe records the store as it is after the run: per slot, one
// KObserve for each key an operation touched or the store holds (Key set:
// it checks that key only), and one for the quarantined values (Key
// empty). A key's observation is called when the last operation that
// touched the key returned: nothing changes the key after that, so what
// the store holds at the end is what it held then. Observing each key as
// early as that is what keeps the check tractable: on a store without
// compare-and-swap every write may land in any order, and one
// observation of the whole slot at the end is a single constraint that
// the search can only meet by trying every order of every key at once.
func (h *harness) observe(ctx context.Context) error {
	inner := h.st.Inner()
	sc, ok := inner.(store.Scanner)
	if !ok {
		return fmt.Errorf("sim: the store %T cannot list its keys", inner)
	}
	t := h.clock.Tick()
	last := map[string]int64{} // store key -> the last return of an operation that touched it
	touch := func(k string, at int64) {
		if k != "" {
			last[k] = max(last[k], at)
		}
	}
	for _, op := range h.ops {
		if op.Kind == KMigrateAll {
			continue
		}
		touch(op.Key, op.Return)
		touch(op.Key2, op.Return)
	}
	var keys []string
	for _, p := range []string{h.ns + ":", session.QuarantinePrefix} {
		if err := sc.Scan(ctx, p, func(k string) error { keys = append(keys, k); return nil }); err != nil {
			return err
		}
	}
	held := map[string]Value{}
	qs := make([][]string, h.cfg.Slots)
	for _, k := range keys {
		slot := slotOf(h.ns, k)
		if slot < 0 || slot >= h.cfg.Slots {
			continue
		}
		b, err := inner.Get(ctx, k)
		if notFound(err) {
			continue
		}
		if err != nil {
			return err
		}
		v := Parse(b)
		if strings.HasPrefix(k, session.QuarantinePrefix) {
			qs[slot] = append(qs[slot], v.ID)
		} else {
			held[k] = v
			if _, ok := last[k]; !ok {
				last[k] = t
			}
		}
	}
	end := h.clock.Tick()
	for k, at := range last {
		slot := slotOf(h.ns, k)
		if slot < 0 || slot >= h.cfg.Slots || strings.HasPrefix(k, session.QuarantinePrefix) {
			continue
		}
		o := &Op{Client: h.cfg.Clients, Kind: KObserve, Slot: slot, Key: k, Obs: map[string]Value{}, Call: at, Return: end}
		if v, ok := held[k]; ok {
			o.Obs[k] = v
		}
		h.ops = append(h.ops, o)
	}
	for i := range h.cfg.Slots {
		h.ops = append(h.ops, &Op{Client: h.cfg.Clients, Kind: KObserve, Slot: i, Obs: map[string]Value{}, ObsQ: qs[i], Call: t, Return: end})
	}
	return nil
}
