package conversation

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/go-playground/validator/v10"

	session "github.com/typedsession/session"
	"github.com/typedsession/session/store"
)

// Config configures a [Flow]. Name and State are required; every other
// field's zero value means its documented default.
type Config[T any] struct {
	// Name names the flow in the stored state (Frame.Flow). Required; it
	// may not be changed once conversations are stored, as a step's name
	// may not (see "Steps a binary no longer has" in the package doc).
	Name string

	// Manager keeps the sessions that hold the conversation state.
	// Required for a flow that is handled (Handle, Start, the sweeper);
	// a flow used only as a sub-conversation of another may leave it nil:
	// its parent's manager keeps its state. The promises that hold across
	// replicas (an update applied once by its ID, a timeout run once) rest
	// on the compare-and-swap of its store: with a Store (a due-index),
	// New refuses a Manager whose store has none (errors.ErrUnsupported);
	// without, on such a store only the Updates of one Manager are kept
	// apart (see session.Manager.Update), and replicas may each apply an
	// update.
	Manager *session.Manager[T]

	// State returns the conversation state inside a session's data, for
	// instance func(s *Bot) *conversation.State { return &s.Conv }.
	// Required.
	State func(*T) *State

	// Store keeps the due-index of deadlines, which the sweeper reads
	// (give it the store of Manager). It needs compare-and-swap
	// ([store.Swapper]); New refuses a store without it. On a store
	// without compare-and-delete ([store.Deleter]) a slot value the
	// sweeper empties is written empty and stays, instead of deleted,
	// so that a deadline listed meanwhile is never erased. Nil: the flow
	// has no index, and a step or flow with a timeout makes Handle,
	// Start and Move fail with ErrNoIndex. A sub-conversation's flow
	// needs none: the root flow's index lists its deadlines.
	Store store.Store

	// IndexNamespace is the session namespace of the due-index's values.
	// Default: "due-" + Name. Give it a namespace no Manager uses. A
	// deploy that renames the flow keeps the old one ("due-" + the old
	// Name): the deadlines pending then are listed there.
	IndexNamespace string

	// Timeout ends the flow this long after it began (a Start, or the
	// Call of a sub-conversation) by running the handler set with
	// OnFlowTimeout (default: Cancel). Zero: no timeout.
	Timeout time.Duration

	// MaxHistory bounds how many steps Back can go back. Zero means 10;
	// negative means no history (Back stays).
	MaxHistory int

	// MaxDepth bounds the nesting of sub-conversations: the root flow
	// and its running sub-conversations count. Zero means 4. A Call
	// beyond it fails with ErrTooDeep.
	MaxDepth int

	// Granularity is the width of the due-index's time slots: every
	// deadline in one slot is listed in one of Shards values. Zero means
	// one minute; New refuses one under a millisecond or over 24 hours.
	Granularity time.Duration

	// Shards is the number of index values per slot: writers of deadlines
	// in the same slot spread over them. Zero means 4; at most 1024 (a
	// sweep reads each of them).
	Shards int

	// Lag is how long after a slot's end the sweeper still reads it
	// before moving its cursor past it. Clocks of the replicas must agree
	// within Lag/2; a writer that lists a deadline later than Lag/2 after
	// its slot's end (it paused) moves the cursor back, at the cost of a
	// round trip. Zero means one minute. It may be at most 720 times
	// Granularity (New refuses more): a sweep reads at most 1440 slots
	// from its cursor, which stays Lag behind now.
	Lag time.Duration

	// Validator checks the validate tags of each step's data (a step's
	// type may also have a Validate method, session.Validatable): when
	// the data is read from the store, after its handler ran, and in a
	// Goto or Call, as a session's data is checked on Load and Save. A
	// step whose data fails gets session.ErrInvalid naming the field, and
	// nothing is written. Nil means the validator session uses by default.
	Validator *validator.Validate

	// Reentry says what Start and a Goto from a global handler do while
	// a conversation runs. Zero means Restart.
	Reentry Reentry

	// Now is the clock. Nil means time.Now. Tests give a fake clock.
	Now func() time.Time
}

// Errors of the package, matched with errors.Is.
var (
	// ErrUnknownStep: the stored state names a flow or a step that this
	// binary does not have, and no Config fallback (OnUnknown) handles it.
	// Nothing is written; the stored state stays as it is.
	ErrUnknownStep = errors.New("conversation: unknown step")
	// ErrNotRegistered: a Goto, Call or Move names a step type that the
	// flow did not register with On.
	ErrNotRegistered = errors.New("conversation: step not registered")
	// ErrTooDeep: a Call beyond Config.MaxDepth.
	ErrTooDeep = errors.New("conversation: sub-conversations nested too deep")
	// ErrNoIndex: a deadline was set on a flow whose root has no
	// Config.Store for the due-index.
	ErrNoIndex = errors.New("conversation: a timeout needs Config.Store for the due-index")
	// ErrActive: Start found a conversation running and was told not to
	// replace it.
	ErrActive = errors.New("conversation: a conversation is running")
	// ErrNoConversation: Move found no conversation running.
	ErrNoConversation = errors.New("conversation: no conversation is running")
)

// Flow is a conversation's definition: its steps (registered with [On]),
// their timeouts ([OnTimeout]), global handlers ([Flow.Global]),
// sub-conversations ([OnReturn]) and what happens at its end. T is the
// session type that holds the [State], U the type of an update (a
// Telegram update, a message text) and R the type of the result the
// flow ends with. Register everything before the first Handle; after
// that a Flow is safe for concurrent use.
type Flow[T, U, R any] struct {
	cfg      Config[T]
	now      func() time.Time
	steps    map[string]*stepDef[T, U, R]
	subs     map[string]node[T, U]
	returns  map[[2]string]func(*Turn[T, U, R], json.RawMessage, any) (Next, error)
	globals  []func(*Turn[T, U, R]) (Next, bool, error)
	timedOut func(*Turn[T, U, R]) (Next, error)
	ended    func(*Turn[T, U, R], R) error
	unknown  func(*Turn[T, U, R], Frame) (Next, error)
	ix       *index
}

type stepDef[T, U, R any] struct {
	name      string
	typ       reflect.Type
	check     func(data any) error // the data's validation; data is an S
	handle    func(*Turn[T, U, R], json.RawMessage) (Next, json.RawMessage, error)
	timeout   time.Duration
	onTimeout func(*Turn[T, U, R], json.RawMessage) (Next, json.RawMessage, error)
}

// New returns a Flow for cfg, or an error naming what is wrong with it:
// no Name or State, a Name with ':' or NUL or not valid UTF-8, a negative
// duration or count, a Granularity out of its bounds, an unknown Reentry,
// a Store without compare-and-swap, or, with a Store, a Manager whose
// store has none.
func New[T, U, R any](cfg Config[T]) (*Flow[T, U, R], error) {
	switch {
	case cfg.Name == "":
		return nil, errors.New("conversation: Config.Name is empty; name the flow (it is stored)")
	case strings.ContainsAny(cfg.Name, ":\x00") || !utf8.ValidString(cfg.Name):
		return nil, fmt.Errorf("conversation: Config.Name %q contains ':' or NUL, or is not valid UTF-8 (it is stored in every frame)", cfg.Name)
	case cfg.State == nil:
		return nil, errors.New("conversation: Config.State is nil; give the way to the State field of your session type")
	case cfg.Reentry != Restart && cfg.Reentry != KeepRunning:
		return nil, fmt.Errorf("conversation: Config.Reentry %d is not Restart or KeepRunning", cfg.Reentry)
	case cfg.Granularity > maxGranularity:
		return nil, fmt.Errorf("conversation: Config.Granularity (%v) is over %v", cfg.Granularity, maxGranularity)
	case cfg.Shards > maxShards:
		return nil, fmt.Errorf("conversation: Config.Shards (%d) is over %d; every sweep reads each shard of each slot", cfg.Shards, maxShards)
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{{"Timeout", cfg.Timeout}, {"Granularity", cfg.Granularity}, {"Lag", cfg.Lag}} {
		if d.v < 0 {
			return nil, fmt.Errorf("conversation: Config.%s is negative (%v)", d.name, d.v)
		}
	}
	for _, c := range []struct {
		name string
		v    int
	}{{"Shards", cfg.Shards}, {"MaxDepth", cfg.MaxDepth}} {
		if c.v < 0 {
			return nil, fmt.Errorf("conversation: Config.%s is negative (%d)", c.name, c.v)
		}
	}
	if cfg.MaxHistory == 0 {
		cfg.MaxHistory = 10
	}
	if cfg.MaxDepth == 0 {
		cfg.MaxDepth = 4
	}
	if cfg.Granularity == 0 {
		cfg.Granularity = time.Minute
	}
	if cfg.Granularity < time.Millisecond {
		return nil, errors.New("conversation: Config.Granularity is under a millisecond")
	}
	if cfg.Shards == 0 {
		cfg.Shards = 4
	}
	if cfg.Lag == 0 {
		cfg.Lag = time.Minute
	}
	if window := maxSlotsPerSweep / 2 * cfg.Granularity; cfg.Lag > window {
		// The cursor stays Lag behind now and a sweep reads at most
		// maxSlotsPerSweep slots from it: a longer Lag keeps the
		// sweeps from the recent slots, and timeouts fire about Lag late.
		return nil, fmt.Errorf("conversation: Config.Lag (%v) is over %d × Config.Granularity (%v): a sweep reads at most %d slots from its cursor, which stays Lag behind now, so timeouts would fire up to Lag late; widen Granularity or shorten Lag", cfg.Lag, maxSlotsPerSweep/2, cfg.Granularity, maxSlotsPerSweep)
	}
	if cfg.IndexNamespace == "" {
		cfg.IndexNamespace = "due-" + cfg.Name
	}
	if cfg.Manager != nil && cfg.IndexNamespace == cfg.Manager.Namespace() {
		return nil, fmt.Errorf("conversation: Config.IndexNamespace %q is the namespace of Config.Manager's sessions; the due-index's values would be taken for sessions: give it one of its own", cfg.IndexNamespace)
	}
	f := &Flow[T, U, R]{
		cfg:     cfg,
		now:     cfg.Now,
		steps:   map[string]*stepDef[T, U, R]{},
		subs:    map[string]node[T, U]{},
		returns: map[[2]string]func(*Turn[T, U, R], json.RawMessage, any) (Next, error){},
	}
	if f.now == nil {
		f.now = time.Now
	}
	if cfg.Store != nil {
		ix, err := newIndex(cfg)
		if err != nil {
			return nil, err
		}
		f.ix = ix
	}
	return f, nil
}

// maxGranularity is the widest Config.Granularity. The index's cursor
// takes slot 0 for "nothing was ever listed", so the current slot must
// never be 0, as a slot wider than the time since 1970 would be; a day is
// far below that and wider than any use of a slot.
const maxGranularity = 24 * time.Hour

// maxShards is the most Config.Shards: a sweep reads every shard of each
// slot it visits, so each shard costs every sweep a read.
const maxShards = 1024

// StepName returns the name under which a step of type S is stored: the
// name of its Go type, without the package. It panics for a type without
// a name (a struct literal type, a pointer).
func StepName[S any]() string {
	t := reflect.TypeFor[S]()
	if t.Name() == "" {
		panic(fmt.Sprintf("session: conversation step type %v has no name; declare it as a named type (type AskName struct{...})", t))
	}
	return t.Name()
}

// defOf returns the definition of step S in f, made on first use.
func defOf[S, T, U, R any](f *Flow[T, U, R]) *stepDef[T, U, R] {
	name, typ := StepName[S](), reflect.TypeFor[S]()
	d := f.steps[name]
	if d == nil {
		check := session.ValidateFunc[S](f.cfg.Validator)
		d = &stepDef[T, U, R]{name: name, typ: typ, check: func(v any) error {
			s := v.(S)
			return check(&s)
		}}
		f.steps[name] = d
	} else if d.typ != typ {
		panic(fmt.Sprintf("session: conversation flow %q has two step types named %s (%v and %v); rename one", f.cfg.Name, name, d.typ, typ))
	}
	return d
}

// On registers h as the handler of step S in flow f: h gets the step's
// data and returns what comes next (Goto, Stay, Back, Cancel, End or
// Call). Changes h makes to the data are kept when it stays, and with the
// step in the history when it goes on. It panics if h is nil or S already
// has a handler in f.
func On[S, T, U, R any](f *Flow[T, U, R], h func(t *Turn[T, U, R], data *S) (Next, error)) {
	if h == nil {
		panic(fmt.Sprintf("session: conversation.On: nil handler for step %s in flow %q", StepName[S](), f.cfg.Name))
	}
	d := defOf[S](f)
	if d.handle != nil {
		panic(fmt.Sprintf("session: conversation step %s registered twice in flow %q", d.name, f.cfg.Name))
	}
	d.handle = typed(h, session.ValidateFunc[S](f.cfg.Validator))
}

// OnTimeout gives step S of flow f a timeout: when the step has been
// current for d (from the Goto, Back or Call that entered it) with no
// step change, h runs once, as a step handler does, with t.TimedOut()
// true and the zero update. It panics if d is not positive, h is nil, or
// S already has a timeout in f.
func OnTimeout[S, T, U, R any](f *Flow[T, U, R], d time.Duration, h func(t *Turn[T, U, R], data *S) (Next, error)) {
	if d <= 0 {
		panic("session: conversation.OnTimeout needs a positive duration")
	}
	if h == nil {
		panic(fmt.Sprintf("session: conversation.OnTimeout: nil handler for step %s in flow %q", StepName[S](), f.cfg.Name))
	}
	def := defOf[S](f)
	if def.onTimeout != nil {
		panic(fmt.Sprintf("session: conversation step %s given a timeout twice in flow %q", def.name, f.cfg.Name))
	}
	def.timeout, def.onTimeout = d, typed(h, session.ValidateFunc[S](f.cfg.Validator))
}

// typed turns a step handler on *S into one on the step's encoded data:
// it decodes and checks the data, runs h, and returns h's Next and the
// data after h, checked and encoded.
func typed[S, T, U, R any](h func(*Turn[T, U, R], *S) (Next, error), check func(*S) error) func(*Turn[T, U, R], json.RawMessage) (Next, json.RawMessage, error) {
	return func(t *Turn[T, U, R], raw json.RawMessage) (Next, json.RawMessage, error) {
		s, err := decodeStep(raw, check)
		if err != nil {
			return Next{}, nil, err
		}
		next, err := h(t, &s)
		if err != nil {
			return Next{}, nil, err
		}
		out, err := encodeStep(&s, check)
		return next, out, err
	}
}

// decodeStep decodes a step's stored data and checks it.
func decodeStep[S any](raw json.RawMessage, check func(*S) error) (S, error) {
	var s S
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, &s); err != nil {
			return s, fmt.Errorf("%w: the data of step %s does not decode: %v", session.ErrCorrupt, StepName[S](), err)
		}
	}
	if err := check(&s); err != nil {
		return s, fmt.Errorf("the stored data of step %s: %w", StepName[S](), err)
	}
	return s, nil
}

// encodeStep checks a step's data and encodes it.
func encodeStep[S any](s *S, check func(*S) error) (json.RawMessage, error) {
	if err := check(s); err != nil {
		return nil, fmt.Errorf("the data of step %s: %w", StepName[S](), err)
	}
	out, err := json.Marshal(s)
	if err != nil {
		return nil, fmt.Errorf("%w: the data of step %s does not encode: %v", session.ErrInvalid, StepName[S](), err)
	}
	return out, nil
}

// Global adds a handler that runs before the step handler on every
// update, and also when no conversation is running: the place for
// "/cancel" (return t.Cancel(), true) and for entry commands (return
// Goto(FirstStep{}), true: a Goto from a global handler starts the flow at
// that step, or restarts it when one is running: the re-entry rule).
// A global End (t.End(r), with the root flow's result type) ends the root
// flow, sub-conversations included; Back, Stay and Call apply to the
// current step. Returning false passes the update on (to the next
// global handler, then to the step). Globals run in the order added. It
// panics if h is nil.
func (f *Flow[T, U, R]) Global(h func(t *Turn[T, U, R]) (next Next, handled bool, err error)) {
	if h == nil {
		panic(fmt.Sprintf("session: conversation flow %q: Global with a nil handler", f.cfg.Name))
	}
	f.globals = append(f.globals, h)
}

// OnFlowTimeout sets what runs when Config.Timeout runs out: h gets a
// Turn on the flow's current step (t.Step() names it) and returns what
// comes next. Without it, the flow is cancelled. When the flow is a
// sub-conversation, its frames above it have been dropped by then.
func (f *Flow[T, U, R]) OnFlowTimeout(h func(t *Turn[T, U, R]) (Next, error)) { f.timedOut = h }

// OnEnd sets what runs when the flow, as the root flow, ends with a
// result: inside the same atomic update, so it may write the result into
// t.Session(). Handle's Outcome also carries the result.
func (f *Flow[T, U, R]) OnEnd(h func(t *Turn[T, U, R], result R) error) { f.ended = h }

// OnUnknown sets the fallback for a stored state that names a flow or a
// step this binary does not have (a step removed or renamed by a deploy):
// h gets the stored frame as it is (its Flow, Step and raw Data) and
// returns what comes next for the root flow: Goto a step of the root
// flow, Cancel or End. The frames above the root are dropped. Without
// it, every Handle, timeout and Move of such a key fails with
// ErrUnknownStep and writes nothing: the state is never reset silently.
func (f *Flow[T, U, R]) OnUnknown(h func(t *Turn[T, U, R], stored Frame) (Next, error)) {
	f.unknown = h
}

// OnReturn registers child as a sub-conversation of parent and h as what
// runs in parent's step S when child, called from S, ends with its
// result: h gets S's data and the result and returns what comes next for
// parent. Call(child, first) from any step of parent starts the child; a
// child called from a step without a return handler for it fails the
// Call with ErrNotRegistered. Child flows need distinct Names. It panics
// if child or h is nil, or S already has a return handler for child.
func OnReturn[S, T, U, R, R2 any](parent *Flow[T, U, R], child *Flow[T, U, R2], h func(t *Turn[T, U, R], data *S, result R2) (Next, error)) {
	if child == nil || h == nil {
		panic(fmt.Sprintf("session: conversation.OnReturn: nil child flow or handler for step %s in flow %q", StepName[S](), parent.cfg.Name))
	}
	if _, ok := parent.returns[[2]string{StepName[S](), child.cfg.Name}]; ok {
		panic(fmt.Sprintf("session: conversation step %s of flow %q given two return handlers for %q", StepName[S](), parent.cfg.Name, child.cfg.Name))
	}
	if other, ok := parent.subs[child.cfg.Name]; ok && other != node[T, U](child) {
		panic(fmt.Sprintf("session: conversation flow %q has two sub-conversations named %q", parent.cfg.Name, child.cfg.Name))
	}
	parent.subs[child.cfg.Name] = child
	name := StepName[S]()
	defOf[S](parent)
	check := session.ValidateFunc[S](parent.cfg.Validator)
	parent.returns[[2]string{name, child.cfg.Name}] = func(t *Turn[T, U, R], raw json.RawMessage, result any) (Next, error) {
		s, err := decodeStep(raw, check)
		if err != nil {
			return Next{}, err
		}
		next, err := h(t, &s, result.(R2))
		if err == nil && next.kind == kindStay {
			// Staying keeps the data as h left it.
			next.raw, err = encodeStep(&s, check)
		}
		return next, err
	}
}

// Next is what a handler returns: made by Goto, Call, or a Turn's Stay,
// Back, Cancel and End. The zero Next stays.
type Next struct {
	kind   nextKind
	step   string          // Goto, Call: the step's name
	typ    reflect.Type    // Goto, Call: the step's type
	data   any             // Goto, Call: the step's data
	raw    json.RawMessage // Stay from a return handler: the data to keep
	result any             // End: the result
	child  any             // Call: the child's node[T, U]
}

type nextKind uint8

const (
	kindStay nextKind = iota
	kindGoto
	kindBack
	kindCancel
	kindEnd
	kindCall
)

// Goto goes on to step S with data s: the current step is remembered for
// Back. S must be a step of the flow whose handler returns it (else the
// Handle fails with ErrNotRegistered and writes nothing).
func Goto[S any](s S) Next {
	return Next{kind: kindGoto, step: StepName[S](), typ: reflect.TypeFor[S](), data: s}
}

// Call starts the sub-conversation child at its step S with data first;
// when child ends with a result, the return handler registered with
// OnReturn for the calling step runs. The calling step stays where it is,
// with its data as the handler left it. It panics if child is nil.
func Call[S, T, U, R2 any](child *Flow[T, U, R2], first S) Next {
	if child == nil {
		panic(fmt.Sprintf("session: conversation.Call of a nil flow (first step %s)", StepName[S]()))
	}
	return Next{kind: kindCall, step: StepName[S](), typ: reflect.TypeFor[S](), data: first, child: node[T, U](child)}
}

// Turn is what a handler gets besides its step's data: the update, the
// session data, the clock, and the ways to say what comes next. A Turn
// is valid only during the handler call.
type Turn[T, U, R any] struct {
	*base[T, U]
}

// Stay keeps the current step, with its data as the handler left it.
func (t *Turn[T, U, R]) Stay() Next { return Next{kind: kindStay} }

// Back returns to the step before the current one, with its data as it
// was left; at the first step of a flow (or with no history) it stays.
func (t *Turn[T, U, R]) Back() Next { return Next{kind: kindBack} }

// Cancel ends the whole conversation, sub-conversations and root alike,
// without a result.
func (t *Turn[T, U, R]) Cancel() Next { return Next{kind: kindCancel} }

// End ends the flow with result: a sub-conversation returns it to its
// parent's OnReturn handler; the root flow's OnEnd handler gets it and
// the conversation is over.
func (t *Turn[T, U, R]) End(result R) Next { return Next{kind: kindEnd, result: result} }

// base is the part of a Turn that does not depend on R.
type base[T, U any] struct {
	ctx      context.Context
	key      string
	data     *T
	update   U
	hasUp    bool
	now      time.Time
	timedOut bool
	step     string
	effects  []func(context.Context) error
}

// Context returns the context of the Handle (or sweep) that runs the
// handler.
func (b *base[T, U]) Context() context.Context { return b.ctx }

// Key returns the session key.
func (b *base[T, U]) Key() string { return b.key }

// Session returns the whole session data: a handler may change it, and
// the change is saved atomically with the conversation's state.
func (b *base[T, U]) Session() *T { return b.data }

// Update returns the update being handled, and false in a timeout
// handler (which runs with no update).
func (b *base[T, U]) Update() (U, bool) { return b.update, b.hasUp }

// Now returns the flow's clock reading for this turn.
func (b *base[T, U]) Now() time.Time { return b.now }

// TimedOut reports whether the handler runs because a timeout ran out.
func (b *base[T, U]) TimedOut() bool { return b.timedOut }

// Step returns the name of the current step.
func (b *base[T, U]) Step() string { return b.step }

// Do schedules fn to run after the session is saved, once, by the
// process that saved it: the place for side effects such as sending a
// message. Handlers can run more than once (a compare-and-swap conflict
// runs them again on fresh data) and their Do calls of a run that did not
// save are dropped. fn does not run when the save failed, and is lost if
// the process dies between the save and fn: side effects are at most
// once, the state change exactly once. Handle returns fn's error.
func (b *base[T, U]) Do(fn func(ctx context.Context) error) { b.effects = append(b.effects, fn) }
