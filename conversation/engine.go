package conversation

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"time"
)

// node is a Flow seen without its result type: what the root flow needs of
// the flows on its stack.
type node[T, U any] interface {
	flowName() string
	stepInfo(step string) (typ reflect.Type, timeout time.Duration, ok bool)
	checkStep(step string, data any) error
	runStep(b *base[T, U], fr *Frame) (Next, json.RawMessage, error)
	runStepTimeout(b *base[T, U], fr *Frame) (Next, json.RawMessage, bool, error)
	runFlowTimeout(b *base[T, U]) (Next, error)
	runReturn(b *base[T, U], fr *Frame, child string, result any) (Next, error)
	hasReturn(step, child string) bool
	sub(name string) node[T, U]
	flowTimeout() time.Duration
	maxHistory() int
}

func (f *Flow[T, U, R]) flowName() string           { return f.cfg.Name }
func (f *Flow[T, U, R]) flowTimeout() time.Duration { return f.cfg.Timeout }
func (f *Flow[T, U, R]) maxHistory() int            { return f.cfg.MaxHistory }
func (f *Flow[T, U, R]) sub(name string) node[T, U] { return f.subs[name] }

func (f *Flow[T, U, R]) hasReturn(step, child string) bool {
	_, ok := f.returns[[2]string{step, child}]
	return ok
}

func (f *Flow[T, U, R]) stepInfo(step string) (reflect.Type, time.Duration, bool) {
	d := f.steps[step]
	if d == nil || (d.handle == nil && d.onTimeout == nil && !f.returnsFrom(step)) {
		return nil, 0, false
	}
	return d.typ, d.timeout, true
}

func (f *Flow[T, U, R]) returnsFrom(step string) bool {
	for k := range f.returns {
		if k[0] == step {
			return true
		}
	}
	return false
}

func (f *Flow[T, U, R]) checkStep(step string, data any) error {
	if err := f.steps[step].check(data); err != nil {
		return fmt.Errorf("the data of step %s: %w", step, err)
	}
	return nil
}

func (f *Flow[T, U, R]) runStep(b *base[T, U], fr *Frame) (Next, json.RawMessage, error) {
	d := f.steps[fr.Step]
	if d.handle == nil {
		// A step with only a timeout or return handlers waits.
		return Next{}, nil, nil
	}
	return d.handle(&Turn[T, U, R]{b}, fr.Data)
}

func (f *Flow[T, U, R]) runStepTimeout(b *base[T, U], fr *Frame) (Next, json.RawMessage, bool, error) {
	d := f.steps[fr.Step]
	if d.onTimeout == nil {
		return Next{}, nil, false, nil
	}
	next, raw, err := d.onTimeout(&Turn[T, U, R]{b}, fr.Data)
	return next, raw, true, err
}

func (f *Flow[T, U, R]) runFlowTimeout(b *base[T, U]) (Next, error) {
	if f.timedOut == nil {
		return Next{kind: kindCancel}, nil
	}
	return f.timedOut(&Turn[T, U, R]{b})
}

func (f *Flow[T, U, R]) runReturn(b *base[T, U], fr *Frame, child string, result any) (Next, error) {
	return f.returns[[2]string{fr.Step, child}](&Turn[T, U, R]{b}, fr.Data, result)
}

// Outcome is what a Handle, a Start, a Move, a Cancel or a fired timeout
// did.
type Outcome[R any] struct {
	// Handled: a global or step handler ran for the update.
	Handled bool
	// Duplicate: the update's ID was among the recent ones applied
	// (State.Recent), so nothing ran and nothing was written.
	Duplicate bool
	// TimedOut: a timeout ran out and its handler ran (on Handle: before
	// the update was handled).
	TimedOut bool
	// Canceled: the conversation was cancelled (Cancel, or a flow timeout
	// without a handler).
	Canceled bool
	// Ended: the root flow ended with Result.
	Ended  bool
	Result R
	// Fallback: the stored state named a step or flow this binary does
	// not have, and the OnUnknown handler ran.
	Fallback bool
	// Flow and Step name the current flow and step afterwards ("" when no
	// conversation runs).
	Flow, Step string
	// Deadline is the conversation's next deadline afterwards (zero:
	// none).
	Deadline time.Time
}

// run is one atomic change of a session's conversation: it runs inside
// Manager.Update's fn, so it may run more than once; everything it does
// besides changing *t goes through b.effects and the index (idempotent).
type run[T, U, R any] struct {
	f     *Flow[T, U, R]
	b     *base[T, U]
	st    *State
	nodes []node[T, U]
	out   Outcome[R]

	// skipTimeout: this run gives the update to the global handlers only,
	// leaving a timeout that has run out as it is (Handle's second run
	// after that timeout failed); timeoutFailed: the timeout that had run
	// out returned an error.
	skipTimeout, timeoutFailed bool
}

// errNotTaken: in a run with skipTimeout, no global handler took the
// update.
var errNotTaken = errors.New("conversation: no global handler took the update")

func (f *Flow[T, U, R]) newRun(ctx context.Context, key string, t *T) *run[T, U, R] {
	b := &base[T, U]{ctx: ctx, key: key, data: t, now: f.now()}
	return &run[T, U, R]{f: f, b: b, st: f.cfg.State(t)}
}

// resolve finds the flow of every frame and checks its step. It returns
// the index of the first frame it cannot resolve, or -1.
func (r *run[T, U, R]) resolve() int {
	r.nodes = r.nodes[:0]
	for i, fr := range r.st.Frames {
		var n node[T, U]
		switch {
		case i == 0 && fr.Flow == r.f.cfg.Name:
			n = r.f
		case i > 0:
			n = r.nodes[i-1].sub(fr.Flow)
		}
		if n == nil {
			return i
		}
		if _, _, ok := n.stepInfo(fr.Step); !ok {
			return i
		}
		if i > 0 && !r.nodes[i-1].hasReturn(r.st.Frames[i-1].Step, fr.Flow) {
			return i - 1
		}
		r.nodes = append(r.nodes, n)
	}
	return -1
}

// ready resolves the stack, running the OnUnknown fallback when a frame
// cannot be resolved; it reports false when the fallback ended the
// conversation (nothing more to run).
func (r *run[T, U, R]) ready() (bool, error) {
	bad := r.resolve()
	if bad < 0 {
		return true, nil
	}
	fr := r.st.Frames[bad]
	if r.f.unknown == nil {
		return false, fmt.Errorf("%w: the stored conversation is in flow %q, step %q, which this binary does not have (set OnUnknown, or add a migration step)", ErrUnknownStep, fr.Flow, fr.Step)
	}
	r.b.step = fr.Step
	next, err := r.f.unknown(&Turn[T, U, R]{r.b}, fr)
	if err != nil {
		return false, err
	}
	r.out.Fallback = true
	switch next.kind {
	case kindGoto:
		r.st.Frames = r.st.Frames[:1]
		r.st.Frames[0].Flow = r.f.cfg.Name
		r.nodes = append(r.nodes[:0], r.f)
		if err := r.enter(&r.st.Frames[0], next, false); err != nil {
			return false, err
		}
	case kindCancel:
		r.st.Frames = nil
		r.out.Canceled = true
	case kindEnd:
		r.st.Frames = r.st.Frames[:1]
		if err := r.end(next.result); err != nil {
			return false, err
		}
	default:
		return false, fmt.Errorf("%w: OnUnknown must return Goto, Cancel or End (flow %q, step %q)", ErrUnknownStep, fr.Flow, fr.Step)
	}
	if !r.st.Active() {
		return false, nil
	}
	return r.resolve() < 0, nil
}

// enter makes fr's step next's step (a Goto), remembering the step it
// leaves when remember is true.
func (r *run[T, U, R]) enter(fr *Frame, next Next, remember bool) error {
	n := r.nodes[len(r.nodes)-1]
	typ, timeout, ok := n.stepInfo(next.step)
	if !ok || typ != next.typ {
		return fmt.Errorf("%w: step %s in flow %q", ErrNotRegistered, next.step, n.flowName())
	}
	if err := n.checkStep(next.step, next.data); err != nil {
		return err
	}
	enc, err := json.Marshal(next.data)
	if err != nil {
		return fmt.Errorf("conversation: the data of step %s does not encode: %w", next.step, err)
	}
	if remember && n.maxHistory() > 0 {
		fr.History = append(fr.History, Past{Step: fr.Step, Data: fr.Data})
		if over := len(fr.History) - n.maxHistory(); over > 0 {
			fr.History = append(fr.History[:0], fr.History[over:]...)
		}
	}
	fr.Step, fr.Data = next.step, enc
	fr.StepDeadline = at(r.b.now, timeout)
	return nil
}

// start puts a new conversation in the state at next's step (a Goto),
// replacing any that runs.
func (r *run[T, U, R]) start(next Next) error {
	if next.kind != kindGoto {
		return errors.New("conversation: a conversation starts with a Goto")
	}
	r.st.Frames = []Frame{{Flow: r.f.cfg.Name, Started: ms(r.b.now), Deadline: at(r.b.now, r.f.cfg.Timeout)}}
	r.nodes = append(r.nodes[:0], r.f)
	return r.enter(&r.st.Frames[0], next, false)
}

// apply carries out next, returned by a handler of the top frame; raw is
// the top step's data after the handler (nil: unchanged).
func (r *run[T, U, R]) apply(next Next, raw json.RawMessage) error {
	i := len(r.st.Frames) - 1
	fr := &r.st.Frames[i]
	if raw != nil {
		fr.Data = raw
	}
	switch next.kind {
	case kindStay:
		if next.raw != nil {
			fr.Data = next.raw
		}
	case kindGoto:
		return r.enter(fr, next, true)
	case kindBack:
		if len(fr.History) == 0 {
			return nil
		}
		p := fr.History[len(fr.History)-1]
		fr.History = fr.History[:len(fr.History)-1]
		_, timeout, ok := r.nodes[i].stepInfo(p.Step)
		fr.Step, fr.Data = p.Step, p.Data
		fr.StepDeadline = at(r.b.now, timeout)
		if !ok {
			// A step this binary does not have (a deploy removed it):
			// OnUnknown's fallback, or ErrUnknownStep and nothing written.
			_, err := r.ready()
			return err
		}
	case kindCancel:
		r.st.Frames = nil
		r.out.Canceled = true
	case kindEnd:
		if i == 0 {
			return r.end(next.result)
		}
		child := fr.Flow
		r.st.Frames, r.nodes = r.st.Frames[:i], r.nodes[:i]
		parent := &r.st.Frames[i-1]
		_, timeout, _ := r.nodes[i-1].stepInfo(parent.Step)
		parent.StepDeadline = at(r.b.now, timeout) // the parent's step resumes with a new clock
		r.b.step, r.b.timedOut = parent.Step, false
		next, err := r.nodes[i-1].runReturn(r.b, parent, child, next.result)
		if err != nil {
			return err
		}
		return r.apply(next, nil)
	case kindCall:
		child, _ := next.child.(node[T, U])
		if child == nil || r.nodes[i].sub(child.flowName()) != child || !r.nodes[i].hasReturn(fr.Step, child.flowName()) {
			return fmt.Errorf("%w: step %s of flow %q has no OnReturn for the sub-conversation it calls", ErrNotRegistered, fr.Step, fr.Flow)
		}
		if len(r.st.Frames) >= r.f.cfg.MaxDepth {
			return fmt.Errorf("%w: %d flows deep (Config.MaxDepth)", ErrTooDeep, len(r.st.Frames)+1)
		}
		fr.StepDeadline = time.Time{} // the calling step waits without a clock
		r.st.Frames = append(r.st.Frames, Frame{Flow: child.flowName(), Started: ms(r.b.now), Deadline: at(r.b.now, child.flowTimeout())})
		r.nodes = append(r.nodes, child)
		return r.enter(&r.st.Frames[i+1], next, false)
	}
	return nil
}

// end ends the root flow with result.
func (r *run[T, U, R]) end(result any) error {
	res, ok := result.(R)
	if !ok {
		return fmt.Errorf("conversation: flow %q ended with a %T, not its result type", r.f.cfg.Name, result)
	}
	r.st.Frames = nil
	r.out.Ended, r.out.Result = true, res
	if r.f.ended != nil {
		return r.f.ended(&Turn[T, U, R]{r.b}, res)
	}
	return nil
}

// timeout runs the timeout that has run out, if any: the outermost flow
// whose Config.Timeout ran out (its sub-conversations are dropped), else
// the current step's.
// timeoutDue reports whether a deadline of the run's state has run out
// by the run's clock reading: whether timeout would fire one.
func (r *run[T, U, R]) timeoutDue() bool {
	d := r.st.due()
	return !d.IsZero() && !r.b.now.Before(d)
}

func (r *run[T, U, R]) timeout() error {
	// Several deadlines may have run out by now (a flow's and a step's):
	// each fires, outermost first, at most once per frame and step.
	for range r.f.cfg.MaxDepth + 1 {
		r.st.recompute()
		if r.st.Deadline.IsZero() || r.b.now.Before(r.st.Deadline) {
			return nil
		}
		if err := r.timeoutOne(); err != nil {
			return err
		}
	}
	return nil
}

func (r *run[T, U, R]) timeoutOne() error {
	if ok, err := r.ready(); !ok || err != nil {
		return err
	}
	r.b.timedOut = true
	defer func() { r.b.timedOut = false }()
	for i := range r.st.Frames {
		fr := &r.st.Frames[i]
		if fr.Deadline.IsZero() || r.b.now.Before(fr.Deadline) {
			continue
		}
		fr.Deadline = time.Time{} // it fires once
		r.st.Frames, r.nodes = r.st.Frames[:i+1], r.nodes[:i+1]
		r.b.step = fr.Step
		next, err := r.nodes[i].runFlowTimeout(r.b)
		if err != nil {
			return err
		}
		r.out.TimedOut = true
		return r.apply(next, nil)
	}
	i := len(r.st.Frames) - 1
	fr := &r.st.Frames[i]
	if fr.StepDeadline.IsZero() || r.b.now.Before(fr.StepDeadline) {
		return nil
	}
	fr.StepDeadline = time.Time{} // it fires once
	r.b.step = fr.Step
	next, raw, ok, err := r.nodes[i].runStepTimeout(r.b, fr)
	if err != nil || !ok {
		return err
	}
	r.out.TimedOut = true
	return r.apply(next, raw)
}

// update handles one update: the duplicate check, a timeout that ran out,
// the global handlers, then the step's handler.
func (r *run[T, U, R]) update(id int64, u U) error {
	if id > 0 && r.st.seen(id) {
		r.out.Duplicate = true
		return nil
	}
	// The ID is recorded when a handler took the update while a
	// conversation ran, before or after it; an update a global handler
	// took with none running (a /help) is not, so that it writes nothing.
	was := r.st.Active()
	err := r.handle(u)
	if err == nil && r.out.Handled && (was || r.st.Active()) && id > 0 {
		r.st.record(id)
	}
	return err
}

// handle runs a timeout that has run out, the global handlers, then the
// step's handler.
func (r *run[T, U, R]) handle(u U) error {
	if !r.skipTimeout {
		if err := r.timeout(); err != nil {
			r.timeoutFailed = true
			return err
		}
	}
	r.b.update, r.b.hasUp = u, true
	for _, g := range r.f.globals {
		r.b.step = ""
		if top := r.st.top(); top != nil {
			r.b.step = top.Step
		}
		next, handled, err := g(&Turn[T, U, R]{r.b})
		if err != nil {
			return err
		}
		if !handled {
			continue
		}
		r.out.Handled = true
		switch {
		case next.kind == kindGoto && (!r.st.Active() || r.f.cfg.Reentry == Restart):
			return r.start(next)
		case next.kind == kindGoto:
			return nil // Reentry: KeepRunning
		case next.kind == kindCancel && r.st.Active():
			r.st.Frames = nil
			r.out.Canceled = true
			return nil
		case !r.st.Active():
			return nil
		case next.kind == kindEnd:
			// A global handler's End carries the root flow's result:
			// it ends the root flow, sub-conversations included.
			r.st.Frames = r.st.Frames[:1]
			return r.end(next.result)
		}
		if ok, err := r.ready(); !ok || err != nil {
			return err
		}
		return r.apply(next, nil)
	}
	if r.skipTimeout {
		return errNotTaken
	}
	if !r.st.Active() {
		return nil
	}
	if ok, err := r.ready(); !ok || err != nil {
		r.out.Handled = err == nil // the fallback took it
		return err
	}
	top := &r.st.Frames[len(r.st.Frames)-1]
	r.b.step = top.Step
	next, raw, err := r.nodes[len(r.nodes)-1].runStep(r.b, top)
	if err != nil {
		return err
	}
	r.out.Handled = true
	return r.apply(next, raw)
}

// finish recomputes the deadline, lists a new one in the index (before
// the session is saved, so that no stored deadline is missing from it)
// and fills in the outcome.
func (r *run[T, U, R]) finish(before time.Time) error {
	r.st.recompute()
	if d := r.st.Deadline; !d.IsZero() && !d.Equal(before) {
		if r.f.ix == nil {
			return ErrNoIndex
		}
		if err := r.f.ix.add(r.b.ctx, r.b.key, d); err != nil {
			return err
		}
	}
	if top := r.st.top(); top != nil {
		r.out.Flow, r.out.Step = top.Flow, top.Step
	}
	r.out.Deadline = r.st.Deadline
	return nil
}

// Reentry says what a Start (or a Goto from a global handler) does when a
// conversation is running.
type Reentry int

const (
	// Restart (the default) replaces the running conversation.
	Restart Reentry = iota
	// KeepRunning leaves it: Start returns ErrActive, a global Goto is
	// ignored.
	KeepRunning
)
