package sim

// The sequential model of the documented contract that every history is
// checked against, one slot (a session and the keys moves take it to) at
// a time. A state is what each key of the slot holds, identified by the
// write identity of its value, plus the damaged values quarantined from
// them. Each operation is one atomic step whose outcome the contract may
// leave open (ErrOutcomeUnknown: it may or may not have landed), so the
// model is nondeterministic (porcupine's power-set construction).
//
//	operation        success                           ErrConflict              open outcome
//	Load             returns what the key holds        -                        -
//	Load quarantine  damaged value moved aside         -                        moved, not, or copied; never lost
//	Save (changed)   key held the loaded write; now W  key held another value   W landed or not
//	Save (unchanged) nothing changes                   nothing changes          nothing changes
//	Destroy          key held the loaded write or       key held another value   deleted or not
//	                 nothing; now absent
//	Move old->new    old held the loaded write and new  old changed or new taken  old only, both, or new only
//	                 nothing; now only new holds W
//	Delete           absent                             -                        deleted or not
//	Update           W built on what the key held       (attempts used up)       W landed or not
//	                 (its log is the base's plus the
//	                 token); an Update that writes
//	                 nothing returns what the key holds
//	MigrateAll key   as Load, then as Save of W
//	quarantine       (an Update's load) as Load quarantine
//	other process    its compare-and-swap, as answered
//	expiry           absent
//	observe (end)    the store holds exactly the state
//
// Without compare-and-swap (a store that is no store.Swapper) a write is
// the last that wins, and without compare-and-delete a delete removes
// whatever is there, as documented.

import (
	"errors"
	"fmt"
	"hash/fnv"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/anishathalye/porcupine"
	session "github.com/typedsession/session"
	"github.com/typedsession/session/store"
)

type entry struct {
	key  string
	v    Value
	logH uint64
}

// state is immutable: every step returns new ones.
type state struct {
	keys []entry // sorted by key
	q    string  // the quarantined damaged identities, sorted, joined by ","
}

func (s state) get(k string) (Value, bool) {
	for _, e := range s.keys {
		if e.key == k {
			return e.v, true
		}
	}
	return Value{}, false
}

func (s state) with(k string, v Value) state {
	out := state{q: s.q, keys: make([]entry, 0, len(s.keys)+1)}
	for _, e := range s.keys {
		if e.key != k {
			out.keys = append(out.keys, e)
		}
	}
	out.keys = append(out.keys, entry{key: k, v: v})
	sort.Slice(out.keys, func(i, j int) bool { return out.keys[i].key < out.keys[j].key })
	return out
}

func (s state) without(k string) state {
	out := state{q: s.q, keys: make([]entry, 0, len(s.keys))}
	for _, e := range s.keys {
		if e.key != k {
			out.keys = append(out.keys, e)
		}
	}
	return out
}

func (s state) quarantine(k, id string) state {
	out := s.without(k)
	q := []string{id}
	if s.q != "" {
		q = append(q, strings.Split(s.q, ",")...)
	}
	slices.Sort(q)
	out.q = strings.Join(q, ",")
	return out
}

// copied is s with the damaged identity id quarantined and k left as it
// is: a quarantine whose outcome is open (its copy made, the removal of
// the original not known to have landed) may leave both.
func (s state) copied(id string) state {
	out := state{keys: s.keys} // states are immutable: sharing keys is safe
	q := []string{id}
	if s.q != "" {
		q = append(q, strings.Split(s.q, ",")...)
	}
	slices.Sort(q)
	out.q = strings.Join(q, ",")
	return out
}

func (s state) equal(o state) bool {
	if s.q != o.q || len(s.keys) != len(o.keys) {
		return false
	}
	for i := range s.keys {
		if s.keys[i].key != o.keys[i].key || s.keys[i].v.ID != o.keys[i].v.ID {
			return false
		}
	}
	return true
}

func (s state) hash() uint64 {
	h := fnv.New64a()
	for _, e := range s.keys {
		h.Write([]byte(e.key))
		h.Write([]byte(e.v.ID))
	}
	h.Write([]byte(s.q))
	return h.Sum64()
}

func (s state) String() string {
	var b strings.Builder
	b.WriteString("{")
	for i, e := range s.keys {
		if i > 0 {
			b.WriteString(" ")
		}
		fmt.Fprintf(&b, "%s=%s", e.key, e.v)
	}
	if s.q != "" {
		fmt.Fprintf(&b, " quarantined=[%s]", s.q)
	}
	b.WriteString("}")
	return b.String()
}

// holds reports whether the key's content in st is x.
func holds(st state, k string, x Seen) bool {
	v, ok := st.get(k)
	if !x.Present {
		return !ok
	}
	return ok && v.ID == x.V.ID
}

// builtOn reports whether k holds the value w was built on (its second
// write identity; none: absent).
func builtOn(st state, k string, w Value) bool {
	v, ok := st.get(k)
	if w.Base == "" {
		return !ok
	}
	return ok && v.ID == w.Base
}

// refusesDelete reports whether op deletes a stored value on a store with
// compare-and-swap but no compare-and-delete, which the contract refuses
// before anything is sent (Session.Destroy, Session.MoveTo): op must then
// have failed with errors.ErrUnsupported and changed nothing. Any other
// outcome is a violation, which the invariant check reports
// ("delete-not-refused"); here such an op changes nothing either.
func refusesDelete(op *Op) bool { return op.Swapper && !op.Deleter }

// step returns the states op may leave st in (none: op cannot happen in
// st).
func step(st state, op *Op) []state {
	if op.Pending {
		return pendingStep(st, op)
	}
	one := []state{st}
	k, R, W := op.Key, op.Loaded, op.W
	cur, present := st.get(k)
	switch op.Kind {
	case KLoad, KMigrate:
		if op.Kind == KMigrate && op.Class == OK && W.Present {
			if op.Swapper && !builtOn(st, k, W.V) {
				return nil
			}
			return []state{st.with(k, W.V)}
		}
		if op.QTried && R.Present {
			if !present || cur.ID != R.V.ID {
				if op.Class == Unknown && op.Damaged.Present {
					// Another quarantine moved it first, and this
					// one's delete has an open outcome: its copy may
					// stay (evidence kept twice, never lost).
					return []state{st, st.copied(op.Damaged.V.ID)}
				}
				return nil
			}
			moved := st.quarantine(k, R.V.ID)
			switch {
			case op.Class == OK && (op.Quarantined || op.Kind == KMigrate):
				return []state{moved}
			case op.Class == OK:
				return one
			case op.Class == Unknown:
				// Moved, not, or copied and not removed: an open
				// outcome of a move may leave both keys holding it
				// (never neither).
				return []state{st, moved, st.copied(R.V.ID)}
			}
			return []state{st, moved}
		}
		if op.ReadKnown && !holds(st, k, R) && (op.Class == OK || op.Class == Corrupt) {
			return nil
		}
		if op.Kind == KMigrate && op.Class != OK && op.Class != Conflict && W.Present && (!op.Swapper || builtOn(st, k, W.V)) {
			return []state{st, st.with(k, W.V)}
		}
		return one
	case KSave:
		if !op.ExpectWrite {
			return one
		}
		switch op.Class {
		case OK:
			if !W.Present {
				return one // reported as an invariant
			}
			if op.Swapper && !holds(st, k, R) {
				return nil
			}
			return []state{st.with(k, W.V)}
		case Conflict:
			if !op.Swapper || holds(st, k, R) {
				return nil
			}
			return one
		}
		if W.Present && (!op.Swapper || holds(st, k, R)) {
			return []state{st, st.with(k, W.V)}
		}
		return one
	case KDestroy:
		if !R.Present {
			return one
		}
		if refusesDelete(op) {
			return one
		}
		gone := st.without(k)
		switch op.Class {
		case OK:
			if op.Deleter && present && cur.ID != R.V.ID {
				return nil
			}
			return []state{gone}
		case Conflict:
			if !op.Deleter || !present || cur.ID == R.V.ID {
				return nil
			}
			return one
		}
		return []state{st, gone}
	case KMove:
		k2 := op.Key2
		_, taken := st.get(k2)
		if !R.Present && !op.ExpectWrite {
			return one
		}
		if R.Present && refusesDelete(op) {
			return one
		}
		switch op.Class {
		case OK:
			if !W.Present {
				return one // reported as an invariant
			}
			if op.Swapper && taken || R.Present && op.Deleter && !holds(st, k, R) {
				return nil
			}
			out := st
			if R.Present {
				out = out.without(k)
			}
			return []state{out.with(k2, W.V)}
		case Conflict:
			if !taken && (!R.Present || holds(st, k, R)) {
				return nil
			}
			return one
		}
		if !W.Present {
			return one
		}
		res := []state{st, st.with(k2, W.V)}
		if R.Present {
			res = append(res, st.without(k).with(k2, W.V))
		}
		return res
	case KMoveWrite:
		if _, taken := st.get(op.Key2); op.Swapper && taken {
			return nil
		}
		return []state{st.with(op.Key2, W.V)}
	case KMoveDelete:
		if op.Deleter && !holds(st, k, R) {
			return nil
		}
		return []state{st.without(k)}
	case KDelete:
		if op.Class == OK {
			return []state{st.without(k)}
		}
		return []state{st, st.without(k)}
	case KUpdate:
		if W.Present {
			fits := !op.Swapper || builtOn(st, k, W.V)
			if fits && op.Change && op.Swapper {
				base := logHash(nil)
				if present {
					base = cur.LogH
				}
				fits = base == W.V.PrevLogH
			}
			switch op.Class {
			case OK:
				if !fits {
					return nil
				}
				return []state{st.with(k, W.V)}
			case Conflict:
				return one
			}
			if fits {
				return []state{st, st.with(k, W.V)}
			}
			return one
		}
		if op.Class == OK && !op.Change {
			// Nothing written: Update returns what the key holds.
			if !present && op.Ret.Tag == "" || present && cur.Tag == op.RetV.Tag && cur.LogH == op.RetV.LogH {
				return one
			}
			return nil
		}
		return one
	case KEnvWrite:
		switch {
		case op.Err != nil:
			return []state{st, st.with(k, W.V)}
		case op.EnvOK:
			if !holds(st, k, R) {
				return nil
			}
			return []state{st.with(k, W.V)}
		case holds(st, k, R):
			return nil
		}
		return one
	case KEnvExpire:
		return []state{st.without(k)}
	case KQuarantine:
		if !holds(st, k, op.Damaged) {
			switch op.Class {
			case OK:
				return nil
			case Unknown:
				return []state{st, st.copied(op.Damaged.V.ID)} // as a Load's quarantine
			}
			return one
		}
		moved := st.quarantine(k, op.Damaged.V.ID)
		switch op.Class {
		case OK:
			return []state{moved}
		case Conflict:
			return one
		case Unknown:
			return []state{st, moved, st.copied(op.Damaged.V.ID)} // as a Load's quarantine
		}
		return []state{st, moved}
	case KObserve:
		// One key's value at the end (Key set), or the values
		// quarantined (Key empty); see harness.observe.
		if k != "" {
			v, ok := op.Obs[k]
			if !holds(st, k, Seen{Present: ok, V: v}) {
				return nil
			}
			return one
		}
		q := slices.Clone(op.ObsQ)
		slices.Sort(q)
		if st.q != strings.Join(q, ",") {
			return nil
		}
		return one
	}
	return one
}

// pendingStep is step for an operation that had not returned when the
// history was cut (see prefix): it may or may not have taken effect, and
// what it returned is not known yet.
func pendingStep(st state, op *Op) []state {
	p := *op
	p.Pending, p.Class, p.ReadKnown, p.Quarantined, p.EnvOK = false, Unknown, false, false, false
	if p.Err == nil {
		p.Err = errPending
	}
	out := []state{st}
	if op.QTried && op.Loaded.Present && holds(st, op.Key, op.Loaded) {
		out = append(out, st.quarantine(op.Key, op.Loaded.V.ID))
	}
	if op.QTried && op.Damaged.Present {
		out = append(out, st.copied(op.Damaged.V.ID))
	}
	switch op.Kind {
	case KLoad, KObserve:
		return out
	case KEnvWrite:
		return append(out, st.with(op.Key, op.W.V))
	case KUpdate:
		if !op.W.Present {
			return out
		}
	}
	for _, s := range step(st, &p) {
		if !slices.ContainsFunc(out, s.equal) {
			out = append(out, s)
		}
	}
	return out
}

var errPending = errors.New("sim: pending when the history was cut")

// model is the porcupine model of one slot's history.
func model() porcupine.Model {
	nm := porcupine.NondeterministicModel{
		Init: func() []any { return []any{state{}} },
		Step: func(s, in, _ any) []any {
			next := step(s.(state), in.(*Op))
			out := make([]any, len(next))
			for i, n := range next {
				out[i] = n
			}
			return out
		},
		Equal:             func(a, b any) bool { return a.(state).equal(b.(state)) },
		Hash:              func(s any) uint64 { return s.(state).hash() },
		DescribeOperation: func(in, _ any) string { return in.(*Op).String() },
		DescribeState:     func(s any) string { return s.(state).String() },
	}
	return nm.ToModel()
}

// CheckTimeout bounds each check of (a prefix of) one slot's history; a
// check that runs out is reported, not passed.
var CheckTimeout = 4 * time.Second

// CheckBudget bounds the search for the shortest failing prefix of one
// slot's history: when it runs out, the shortest found is reported.
var CheckBudget = 12 * time.Second

// undoMet reports whether op is a move whose undo met another writer's
// value under the new key (its compare-and-delete there answered false
// without a fault): a move that met a conflict under the old key and
// could not take its copy back, so both keys may hold a value. The
// library then reports ErrOutcomeUnknown although no call failed (a
// MigrateAll that rewrote the copy while the move ran is the other
// writer), and must: ErrConflict would say nothing changed.
func undoMet(op *Op) bool {
	if op.Kind != KMove {
		return false
	}
	for _, c := range op.Calls {
		if c.Key == op.Key2 && c.Method == "CompareAndDelete" && c.Err == nil && !c.OK {
			return true
		}
	}
	return false
}

// transient reports whether op is a read of MigrateAll that saw the new
// key of a move, or its old key, while the move ran (a scan that read the
// new key's copy may then still read the old key, before the move's
// delete): a move writes its new key, then
// deletes the old one (or, after a conflict, deletes its copy again), so
// for a moment both keys hold the session, or the new key a copy that
// goes again. Only a scan can see that moment (no one else knows the new
// key before the move returns), and the model, which takes each
// operation as one atomic step, cannot express it. Such reads are left
// out of the check; a MigrateAll that wrote the new key is not (a move
// then reports ErrOutcomeUnknown if it met it, which the model
// expresses).
func transient(op *Op, moves []*Op) bool {
	if op.Kind != KMigrate || op.W.Present {
		return false
	}
	for _, mv := range moves {
		if (mv.Key2 == op.Key || mv.Key == op.Key) && op.Call < mv.Return && op.Return > mv.Call {
			return true
		}
	}
	return false
}

// splitMove returns a move that succeeded as its two steps, each an
// operation of its own: the write of the new key, from the move's call
// to the start of its delete of the old key, and that delete, from there
// to the move's return. A move is two steps in the library too (the
// protocol writes the new key "only if absent", then deletes the old key
// "only if unchanged"), and between them a MigrateAll's scan can read or
// migrate the new copy while the old key still holds the session; the
// one-step model could place no such history (the soak, memstore seed
// 2012: a migration of the new key before the delete of the old one).
// Ticks are doubled as in check, so the delete's call follows the write's
// return.
func splitMove(op *Op) (w, d porcupine.Operation, ok bool) {
	if op.Kind != KMove || op.Pending || op.Class != OK || !op.W.Present || !op.Loaded.Present {
		return w, d, false
	}
	at := int64(-1)
	for _, c := range op.Calls {
		if c.Key == op.Key && (c.Method == "CompareAndDelete" || c.Method == "Delete") {
			at = c.Start
			break
		}
	}
	if at < op.Call || at > op.Return {
		return w, d, false
	}
	wo, do := *op, *op
	wo.Kind, do.Kind = KMoveWrite, KMoveDelete
	w = porcupine.Operation{ClientId: op.Client, Input: &wo, Output: &wo, Call: 2 * op.Call, Return: 2 * at}
	d = porcupine.Operation{ClientId: op.Client, Input: &do, Output: &do, Call: 2*at + 1, Return: 2 * op.Return}
	return w, d, true
}

// check checks each slot's history for linearizability.
func (h *harness) check(r *Result) []Finding {
	parts := make([][]porcupine.Operation, h.cfg.Slots)
	var moves []*Op
	for _, op := range h.ops {
		if op.Kind == KMove && op.W.Present {
			moves = append(moves, op)
		}
	}
	for _, op := range h.ops {
		if op.Slot < 0 || op.Slot >= h.cfg.Slots || op.Kind == KMigrateAll || transient(op, moves) {
			continue
		}
		if w, d, ok := splitMove(op); ok {
			parts[op.Slot] = append(parts[op.Slot], w, d)
			continue
		}
		// Ticks are doubled so that an observation can be called just
		// after the return it follows (see harness.observe): at equal
		// times porcupine orders calls before returns.
		call := 2 * op.Call
		if op.Kind == KObserve {
			call++
		}
		parts[op.Slot] = append(parts[op.Slot], porcupine.Operation{ClientId: op.Client, Input: op, Output: op, Call: call, Return: 2 * op.Return})
	}
	var out []Finding
	m := model()
	for slot, ops := range parts {
		r.Parts++
		sort.Slice(ops, func(i, j int) bool { return ops[i].Call < ops[j].Call })
		// Without compare-and-swap the whole history's search may not end
		// in its bound (see Run): it gets a short one, and what it does
		// not decide goes to the check key by key, which takes
		// milliseconds. Which of the two decided depends on the machine's
		// speed; that either passes or fails does not.
		bound := CheckTimeout
		if h.cfg.Caps&CapSwapper == 0 {
			bound = min(bound, 500*time.Millisecond)
		}
		n, res, info := firstIllegal(m, ops, bound)
		switch res {
		case porcupine.Ok:
			continue
		case porcupine.Unknown:
			// The whole history's check ran out of time: check it
			// without the observations of the end, then with each one
			// alone (see perKey).
			switch o, res, info := perKey(m, ops); res {
			case porcupine.Ok:
				r.PerKey++
				continue
			case porcupine.Illegal:
				hist, stuck := shorten(m, o, info)
				what := fmt.Sprintf("the history of slot %d (%d operations) without the observations of the end is not linearizable", slot, len(ops))
				if last := o[len(o)-1].Input.(*Op); last.Kind == KObserve {
					what = fmt.Sprintf("the history of slot %d (%d operations) is not linearizable with the observation of the end %s", slot, len(ops), last)
				}
				if stuck != nil {
					what += "; no linearization places " + stuck.String()
				}
				out = append(out, Finding{Kind: "linearizability", Slot: slot, Detail: what, History: hist, ops: ops})
				continue
			}
			out = append(out, Finding{Kind: "check-timeout", Slot: slot, Detail: fmt.Sprintf("the check of %d operations ran out of %v", len(ops), CheckTimeout), ops: ops})
			continue
		}
		cut := prefix(ops, n)
		what := fmt.Sprintf("the history of slot %d (%d operations) is not linearizable", slot, len(ops))
		if n < len(ops) {
			what = fmt.Sprintf("the first %d of the %d operations of slot %d are not linearizable (those that had not returned by the %d-th call taken as pending)", n, len(ops), slot, n)
		}
		hist, stuck := shorten(m, cut, info)
		if stuck != nil {
			what += "; no linearization places " + stuck.String()
		}
		out = append(out, Finding{Kind: "linearizability", Slot: slot, Detail: what, History: hist, ops: ops})
	}
	return out
}

// perKey is the check of a slot whose whole history could not be checked
// in time: the history without the observations of the end, then the
// history with each observation alone. Each key's value at the end is
// then one that some linearization of the whole history leaves, but not
// necessarily the same linearization for every key; linearizability is
// local (a history of independent objects is linearizable if each
// object's is), so this is the whole check for keys that no move links,
// and weaker only in the combinations that moves make. It is needed on
// stores without compare-and-swap, where every write fits anywhere, and
// one linearization for all of a slot's keys at once is a search that
// does not end in minutes. It returns the operations of the first check
// that did not pass, its result and information.
func perKey(m porcupine.Model, ops []porcupine.Operation) ([]porcupine.Operation, porcupine.CheckResult, porcupine.LinearizationInfo) {
	var base, obs []porcupine.Operation
	for _, o := range ops {
		if o.Input.(*Op).Kind == KObserve {
			obs = append(obs, o)
		} else {
			base = append(base, o)
		}
	}
	if res, info := porcupine.CheckOperationsVerbose(m, base, CheckTimeout); res != porcupine.Ok {
		return base, res, info
	}
	for _, o := range obs {
		h := append(slices.Clone(base), o)
		if res, info := porcupine.CheckOperationsVerbose(m, h, CheckTimeout); res != porcupine.Ok {
			return h, res, info
		}
	}
	return nil, porcupine.Ok, porcupine.LinearizationInfo{}
}

// firstIllegal finds the shortest prefix (in call order) of ops that is
// not linearizable, by doubling and then halving its length; an illegal
// history is expensive to prove so, a short prefix cheap. It returns the
// length, porcupine.Ok when the whole history is linearizable, and the
// check's information for the prefix.
func firstIllegal(m porcupine.Model, ops []porcupine.Operation, bound time.Duration) (int, porcupine.CheckResult, porcupine.LinearizationInfo) {
	start := time.Now()
	check := func(n int) (porcupine.CheckResult, porcupine.LinearizationInfo) {
		return porcupine.CheckOperationsVerbose(m, prefix(ops, n), bound)
	}
	// lo: the longest prefix known linearizable; hi: the shortest known
	// not to be (illegal true) or whose check ran out of time.
	lo, hi, illegal := 0, 0, false
	var info porcupine.LinearizationInfo
	for n := min(32, len(ops)); ; n = min(2*n, len(ops)) {
		res, i := check(n)
		if res == porcupine.Ok {
			if n == len(ops) {
				return n, res, i
			}
			lo = n
			continue
		}
		hi, illegal, info = n, res == porcupine.Illegal, i
		break
	}
	for hi-lo > 1 && time.Since(start) < CheckBudget {
		mid := (lo + hi) / 2
		switch res, i := check(mid); res {
		case porcupine.Ok:
			lo = mid
		case porcupine.Illegal:
			hi, illegal, info = mid, true, i
		default:
			if !illegal {
				hi = mid
			} else {
				lo = mid // a longer prefix is known illegal: look no shorter
			}
		}
	}
	if !illegal {
		return hi, porcupine.Unknown, info
	}
	return hi, porcupine.Illegal, info
}

// prefix returns the first n operations of ops (sorted by call); those
// that return after the n-th call become pending: they may or may not
// have taken effect, at any time after their call.
func prefix(ops []porcupine.Operation, n int) []porcupine.Operation {
	if n >= len(ops) {
		return ops
	}
	cut := ops[n-1].Call
	end := cut
	for _, o := range ops[:n] {
		end = max(end, o.Return)
	}
	out := slices.Clone(ops[:n])
	for i, o := range out {
		if o.Return > cut {
			p := *o.Input.(*Op)
			p.Pending = true
			out[i].Input, out[i].Output, out[i].Return = &p, &p, end+1
		}
	}
	return out
}

// shorten prints the operations around the point where the longest
// linearization found stops: the last operations it placed, the one it
// could not place (and those running at the same time), and the end.
func shorten(m porcupine.Model, ops []porcupine.Operation, info porcupine.LinearizationInfo) (string, *Op) {
	placed := map[*Op]bool{}
	var longest []porcupine.Operation
	for _, part := range info.PartialLinearizationsOperations() {
		for _, lin := range part {
			if len(lin) > len(longest) {
				longest = lin
			}
		}
	}
	for _, o := range longest {
		placed[o.Input.(*Op)] = true
	}
	sorted := slices.Clone(ops)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].Call < sorted[j].Call })
	// Every operation takes effect before it returns: the unplaced one
	// that returns first is where every linearization stops.
	stuck := -1
	for i, o := range sorted {
		if !placed[o.Input.(*Op)] && (stuck < 0 || o.Return < sorted[stuck].Return) {
			stuck = i
		}
	}
	var b strings.Builder
	// The state after the linearization found.
	states := []state{{}}
	for _, o := range longest {
		var next []state
		for _, s := range states {
			next = append(next, step(s, o.Input.(*Op))...)
		}
		states = next
	}
	if stuckOp := unplacedFirst(sorted, placed); stuckOp != nil && stuckOp.Kind == KObserve {
		// The end state does not match: say how, against the model's
		// nearest state.
		best := ""
		for _, s := range states {
			if d := diff(s, stuckOp); best == "" || len(d) < len(best) {
				best = d
			}
		}
		fmt.Fprintf(&b, "    the store at the end differs from every state the model allows; from the nearest: %s\n", best)
	}
	fmt.Fprintf(&b, "    %d of %d operations linearize; the model's states then: ", len(longest), len(ops))
	for i, s := range states {
		if i > 0 {
			b.WriteString(" or ")
		}
		b.WriteString(s.String())
	}
	b.WriteString("\n    operations in call order (* = the first to return of those no linearization could place; [call,return] on one clock):\n")
	if stuck < 0 {
		stuck = len(sorted) - 1
	}
	lo, hi := max(0, stuck-12), min(len(sorted), stuck+8)
	if lo > 0 {
		fmt.Fprintf(&b, "      ... %d earlier operations\n", lo)
	}
	for i := lo; i < hi; i++ {
		mark := " "
		if i == stuck {
			mark = "*"
		}
		fmt.Fprintf(&b, "    %s %s\n", mark, sorted[i].Input.(*Op).Describe())
	}
	if hi < len(sorted) {
		if hi < len(sorted)-1 {
			fmt.Fprintf(&b, "      ... %d later operations\n", len(sorted)-1-hi)
		}
		fmt.Fprintf(&b, "      %s\n", sorted[len(sorted)-1].Input.(*Op).Describe())
	}
	return b.String(), sorted[stuck].Input.(*Op)
}

// unplacedFirst returns the operation no linearization placed that
// returns first, or nil.
func unplacedFirst(sorted []porcupine.Operation, placed map[*Op]bool) *Op {
	var first *Op
	for _, o := range sorted {
		if op := o.Input.(*Op); !placed[op] && (first == nil || op.Return < first.Return) {
			first = op
		}
	}
	return first
}

// diff describes how the observation obs differs from the model's state st.
func diff(st state, obs *Op) string {
	if obs.Key != "" {
		// A key's observation: that key only.
		only := state{}
		if v, ok := st.get(obs.Key); ok {
			only = only.with(obs.Key, v)
		}
		return diffKeys(only, &Op{Obs: obs.Obs})
	}
	return diffKeys(state{q: st.q}, &Op{ObsQ: obs.ObsQ})
}

func diffKeys(st state, obs *Op) string {
	var parts []string
	for _, e := range st.keys {
		v, ok := obs.Obs[e.key]
		switch {
		case !ok:
			parts = append(parts, fmt.Sprintf("%s should hold %s but is absent", short(e.key), e.v))
		case v.ID != e.v.ID:
			parts = append(parts, fmt.Sprintf("%s should hold %s but holds %s", short(e.key), e.v, v))
		}
	}
	for k, v := range obs.Obs {
		if _, ok := st.get(k); !ok {
			parts = append(parts, fmt.Sprintf("%s should be absent but holds %s", short(k), v))
		}
	}
	want := map[string]int{}
	if st.q != "" {
		for _, id := range strings.Split(st.q, ",") {
			want[id]++
		}
	}
	got := map[string]int{}
	for _, id := range obs.ObsQ {
		got[id]++
	}
	for id, n := range want {
		if got[id] < n {
			parts = append(parts, fmt.Sprintf("damaged value %s should be quarantined %d time(s), is %d", id, n, got[id]))
		}
	}
	for id, n := range got {
		if want[id] < n {
			parts = append(parts, fmt.Sprintf("damaged value %s is quarantined %d time(s), should be %d", id, n, want[id]))
		}
	}
	slices.Sort(parts)
	return strings.Join(parts, "; ")
}

// String describes op in one line.
func (op *Op) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s", op.Kind, short(op.Key))
	if op.Key2 != "" {
		fmt.Fprintf(&b, "->%s", short(op.Key2))
	}
	switch op.Kind {
	case KSave, KDestroy, KMove:
		fmt.Fprintf(&b, " loaded=%s", op.Loaded)
		if op.Change {
			fmt.Fprintf(&b, " changed(tag=%s)", op.Token)
		} else if op.Kind != KDestroy {
			b.WriteString(" unchanged")
		}
	case KUpdate:
		if op.Change {
			fmt.Fprintf(&b, " fn appends %s", op.Token)
		} else {
			b.WriteString(" fn changes nothing")
		}
	case KEnvWrite:
		fmt.Fprintf(&b, " CAS %s -> %s: %v", op.Loaded, op.W, op.EnvOK)
		return b.String()
	case KEnvExpire:
		return b.String()
	case KObserve:
		keys := make([]string, 0, len(op.Obs))
		for k, v := range op.Obs {
			keys = append(keys, short(k)+"="+v.String())
		}
		slices.Sort(keys)
		fmt.Fprintf(&b, " {%s} quarantined=%v", strings.Join(keys, " "), op.ObsQ)
		return b.String()
	}
	fmt.Fprintf(&b, " -> %s", op.Class)
	if op.Kind == KLoad || op.Kind == KMigrate {
		if op.ReadKnown {
			fmt.Fprintf(&b, " read=%s", op.Loaded)
		}
		if op.Quarantined {
			b.WriteString(" quarantined")
		}
	}
	if op.W.Present {
		fmt.Fprintf(&b, " wrote=%s(on %s)", op.W.V, op.W.V.Base)
	}
	if op.Kind == KUpdate && op.Class == OK {
		fmt.Fprintf(&b, " returned tag=%s log=%d", op.Ret.Tag, len(op.Ret.Log))
	}
	return b.String()
}

// Describe is String with the client, the interval, the manager and the
// faults of op's calls.
func (op *Op) Describe() string {
	who := fmt.Sprintf("c%d", op.Client)
	switch op.Kind {
	case KEnvWrite, KEnvExpire, KObserve:
		who = "env"
	default:
		who += fmt.Sprintf(" m%d", op.Mgr)
	}
	s := fmt.Sprintf("[%d,%d] %s %s", op.Call, op.Return, who, op)
	var faults []string
	for _, c := range op.Calls {
		if c.Fault != None {
			faults = append(faults, fmt.Sprintf("%s(%s):%s", c.Method, short(c.Key), c.Fault))
		}
	}
	if len(faults) > 0 {
		s += " faults: " + strings.Join(faults, " ")
	}
	if op.Err != nil && op.Class != OK {
		s += fmt.Sprintf(" (%.160s)", op.Err.Error())
	}
	return s
}

func short(key string) string {
	if strings.HasPrefix(key, session.QuarantinePrefix) {
		return "quarantine:" + key[strings.LastIndexByte(key, ':')+1:]
	}
	if i := strings.IndexByte(key, ':'); i >= 0 {
		return key[i+1:]
	}
	return key
}

// invariants checks what needs no linearization.
func (h *harness) invariants() []Finding {
	var out []Finding
	add := func(kind string, op *Op, format string, args ...any) {
		out = append(out, Finding{Kind: kind, Slot: op.Slot, Detail: fmt.Sprintf(format, args...) + "\n      " + op.Describe()})
	}
	for _, op := range h.ops {
		faulted, writeFaulted := false, false
		var prev *Call // the previous call of op.Key
		for i, c := range op.Calls {
			settle := prev != nil && c.Key == op.Key && c.Method == "Get" &&
				(prev.Method == "CompareAndDelete" || isWrite(prev.Method) && prev.Err != nil)
			if c.Key == op.Key {
				prev = &op.Calls[i]
			}
			if c.Key == op.Key && isRead(c.Method) && !settle {
				// A load (an Update's retry) after a write: that write
				// was settled as a conflict, or it would not retry.
				writeFaulted = false
			}
			if c.Fault.FailsCall() {
				faulted = true
				if isWrite(c.Method) {
					writeFaulted = true
				}
			}
			if c.Value != nil {
				if d := Parse(c.Value).Dup(); d != "" {
					add("applied-twice", op, "a value written holds the token %s twice", d)
				}
			}
		}
		if op.Kind == KObserve {
			for k, v := range op.Obs {
				if d := v.Dup(); d != "" {
					add("applied-twice", op, "%s holds the token %s twice at the end", k, d)
				}
			}
		}
		if op.Class == Unknown && !faulted && !undoMet(op) {
			add("unknown-without-fault", op, "ErrOutcomeUnknown, but no call of the operation failed")
		}
		switch op.Kind {
		case KSave, KDestroy, KMove, KDelete, KUpdate:
			if op.Class == Other && writeFaulted {
				add("open-outcome-not-reported", op, "a write whose reply was lost or failed returned an error that is neither ErrOutcomeUnknown nor ErrConflict")
			}
		}
		if (op.Kind == KDestroy || op.Kind == KMove) && op.Loaded.Present && refusesDelete(op) {
			if !errors.Is(op.Err, errors.ErrUnsupported) {
				add("delete-not-refused", op, "a delete of a stored value on a store with compare-and-swap but no compare-and-delete returned %v, not errors.ErrUnsupported", op.Err)
			}
			for _, c := range op.Calls {
				if isWrite(c.Method) {
					add("delete-not-refused", op, "a refused delete sent %s", c.Method)
					break
				}
			}
		}
		switch op.Kind {
		case KSave:
			if op.ExpectWrite && op.Class == OK && !op.W.Present {
				add("acknowledged-without-write", op, "Save returned nil but sent no write")
			}
			if !op.ExpectWrite {
				for _, c := range op.Calls {
					if c.Method == "Set" || c.Method == "Delete" || c.Method == "CompareAndDelete" ||
						(c.Method == "CompareAndSwap" || c.Method == "CompareAndSwapMany") && string(c.Old) != string(c.Value) {
						add("unchanged-save-wrote", op, "a Save of an unchanged session sent %s of %s, which can undo another writer's write", c.Method, short(c.Key))
						break
					}
				}
			}
			if op.W.Present && op.Swapper && op.Loaded.Present && op.W.V.Base != op.Loaded.V.ID {
				add("write-not-built-on-loaded", op, "Save wrote %s on %s, not on the loaded %s", op.W.V.ID, op.W.V.Base, op.Loaded.V.ID)
			}
		case KLoad:
			for _, c := range op.Calls {
				if c.Key == op.Key && (c.Method == "Set" || c.Method == "Delete" || c.Method == "CompareAndSwap" || c.Method == "CompareAndDelete" && !op.QTried) {
					add("load-wrote", op, "a Load sent %s of its key", c.Method)
					break
				}
			}
			if op.Class == OK && !op.Quarantined && op.Loaded.Present && op.Ret.Tag != op.Loaded.V.Tag {
				add("load-returned-other-data", op, "Load returned tag %s, read %s", op.Ret.Tag, op.Loaded.V.Tag)
			}
			if h.cfg.TTL > 0 {
				limit := min(h.cfg.TTL, time.Until(store.MaxExpiry)) - min(h.cfg.TTL/10, time.Hour)
				touched, fresh := false, false
				for _, c := range op.Calls {
					if c.Method == "Touch" {
						touched = true
					}
					if c.Method == "GetWithTTL" && c.Err == nil && c.Left != store.NoExpiry && c.Left >= limit {
						fresh = true
					}
				}
				if touched && fresh {
					add("load-touched-fresh", op, "a Load touched a session whose time left (reported by GetWithTTL) is within the slack of the longest expiry the store keeps")
				}
			}
		case KUpdate:
			if op.Class == OK && op.Change && (op.Ret.Tag != op.Token || !op.W.Present) {
				add("update-result", op, "Update returned tag %s (want %s) with write %v", op.Ret.Tag, op.Token, op.W)
			}
			if op.Class == OK && op.W.Present && op.RetV.LogH != op.W.V.LogH {
				add("update-result", op, "Update returned other data than it wrote")
			}
		}
	}
	return out
}
