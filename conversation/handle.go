package conversation

import (
	"context"
	"errors"

	session "github.com/typedsession/session"
)

// Handle applies one update to the conversation of the session under
// key, atomically (Manager.Update: compare-and-swap, retried on
// conflict). In order: an update whose id was applied already (one of
// State.Recent, the last 16) is a duplicate and changes nothing (id 0 or negative: no
// check, nothing recorded; the id is recorded when a handler took the
// update while a conversation ran, before or after it, so that a command
// a global handler answers with none running writes nothing);
// a timeout that has run out fires first; the global handlers run; then
// the current step's handler. An update that no handler took (no
// conversation runs and no global handler took it) writes nothing.
//
// Handlers may run more than once (a conflict runs them again on fresh
// data); their Do functions run once, after the save, in this process,
// and Handle returns their errors joined. Errors of handlers, and
// ErrUnknownStep, ErrNotRegistered, ErrTooDeep and ErrNoIndex, come back
// wrapped in a *session.Error, and nothing is written.
//
// A timeout that has run out but fails (its step removed by a deploy, its
// data no longer valid, its handler's error) does not hold the global
// handlers back: the update is then given to them alone, on fresh data,
// so that a /cancel still wins; if none takes it, Handle returns the
// timeout's error and writes nothing.
func (f *Flow[T, U, R]) Handle(ctx context.Context, key string, id int64, u U) (Outcome[R], error) {
	var out Outcome[R]
	err := f.updateCancelWins(id, u, func(op func(*run[T, U, R]) error) error {
		o, err := f.do(ctx, key, op)
		if err == nil {
			out = o
		}
		return err
	}, nil, func() bool {
		// The failed run wrote nothing (Manager.Update discards fn's
		// changes on an error), so the second starts from the stored
		// state.
		return true
	})
	return out, err
}

// updateCancelWins applies update id, u through exec (one Manager.Update,
// or a run on a session the caller holds), so that a global handler's
// /cancel wins over a timeout that has run out and fails: when the first
// run failed in that timeout and global handlers exist, restore puts the
// data back as it was before the run (reporting false when it cannot) and
// exec runs the update again for the global handlers alone. If none of
// them takes it, the timeout's error is returned. before, when not nil,
// runs inside the first run before the update (Apply copies the data
// there, by the run's own reading of whether a timeout is due).
func (f *Flow[T, U, R]) updateCancelWins(id int64, u U, exec func(op func(*run[T, U, R]) error) error, before func(*run[T, U, R]), restore func() bool) error {
	failed := false
	err := exec(func(r *run[T, U, R]) error {
		if before != nil {
			before(r)
		}
		err := r.update(id, u)
		failed = r.timeoutFailed
		return err
	})
	if err == nil || !failed || len(f.globals) == 0 || !restore() {
		return err
	}
	err2 := exec(func(r *run[T, U, R]) error {
		r.skipTimeout = true
		return r.update(id, u)
	})
	if errors.Is(err2, errNotTaken) {
		return err
	}
	return err2
}

// Start starts the root flow at step S with data first for the session
// under key; a running conversation is replaced (Config.Reentry: Restart)
// or left, with ErrActive (KeepRunning).
func Start[S, T, U, R any](ctx context.Context, f *Flow[T, U, R], key string, first S) (Outcome[R], error) {
	return f.do(ctx, key, func(r *run[T, U, R]) error {
		if r.st.Active() && f.cfg.Reentry == KeepRunning {
			return ErrActive
		}
		return r.start(Goto(first))
	})
}

// Move moves the running conversation of the session under key to step
// S of its current flow, with data s, as if its step handler had
// returned Goto(s): for admin code and support tools. It returns
// ErrNoConversation when none runs, and ErrUnknownStep when the stored
// state is in a step this binary does not have (unless OnUnknown handles
// it).
func Move[S, T, U, R any](ctx context.Context, f *Flow[T, U, R], key string, s S) (Outcome[R], error) {
	return f.do(ctx, key, func(r *run[T, U, R]) error {
		if !r.st.Active() {
			return ErrNoConversation
		}
		if ok, err := r.ready(); !ok || err != nil {
			return err
		}
		return r.apply(Goto(s), nil)
	})
}

// Cancel cancels the conversation of the session under key, if one runs
// (Outcome.Canceled reports whether one did): for admin code. It works
// whatever the stored step, known to this binary or not.
func (f *Flow[T, U, R]) Cancel(ctx context.Context, key string) (Outcome[R], error) {
	return f.do(ctx, key, func(r *run[T, U, R]) error {
		if r.st.Active() {
			r.st.Frames = nil
			r.out.Canceled = true
		}
		return nil
	})
}

// Read returns the conversation state of the session under key, as
// stored (the zero State when none runs or the key holds nothing). It
// only reads.
func (f *Flow[T, U, R]) Read(ctx context.Context, key string) (State, error) {
	if f.cfg.Manager == nil {
		return State{}, errNoManager
	}
	s, err := f.cfg.Manager.Load(ctx, key)
	if err != nil {
		return State{}, err
	}
	return *f.cfg.State(&s.Data), nil
}

// fire runs the timeout of the session under key that the index lists at
// deadline (Unix milliseconds), if the state still has that deadline and
// it has run out: the compare-and-swap of the save is the claim, so one
// process alone runs it.
func (f *Flow[T, U, R]) fire(ctx context.Context, key string, deadline int64) (Outcome[R], error) {
	return f.do(ctx, key, func(r *run[T, U, R]) error {
		if r.st.Deadline.IsZero() || r.st.Deadline.UnixMilli() != deadline {
			return nil // moved on: a step change, an earlier fire, an update
		}
		return r.timeout()
	})
}

var errNoManager = errors.New("conversation: Config.Manager is nil; a flow that is handled needs the manager of its sessions")

// Apply applies one update to the conversation in s, as Handle does,
// for a session the caller holds and saves: the one a session middleware
// bound for the update (session.From[T](ctx) in a handler behind the
// go-telegram/bot, telebot or telego middleware). It changes s.Data and
// writes nothing but the due-index; the middleware's save after the
// handler stores the state with compare-and-swap (an update a second
// replica applies too is then a conflict, or, run again, a duplicate),
// and discards it when the handler returns an error: return Apply's
// error from the handler, since a failed Apply may have changed s.Data
// half way. Its Do functions run when Apply returns, before that save (as
// any handler code under a middleware): a side effect may then go out
// for a state whose save fails.
//
// A timeout that has run out but fails does not hold the global handlers
// back here either: Apply then puts back the copy of s.Data it took
// before (Manager.Copy, so fields the codec does not store are zero in
// it) and gives the update to the global handlers alone. The copy is
// taken only when a deadline has run out and global handlers exist, and
// needs Config.Manager; without it the timeout's error is returned.
func (f *Flow[T, U, R]) Apply(ctx context.Context, s *session.Session[T], id int64, u U) (Outcome[R], error) {
	var copied *T
	var r *run[T, U, R]
	err := f.updateCancelWins(id, u, func(op func(*run[T, U, R]) error) error {
		var err error
		r, err = f.runOn(ctx, s.Key(), &s.Data, op)
		return err
	}, func(r *run[T, U, R]) {
		// Whether a timeout has run out is the run's own decision (its
		// clock reading, the deadline of its frames): a copy decided by
		// another reading missed a deadline that passed in between.
		if len(f.globals) > 0 && f.cfg.Manager != nil && r.timeoutDue() {
			if c, err := f.cfg.Manager.Copy(&s.Data); err == nil {
				copied = &c
			}
		}
	}, func() bool {
		if copied == nil {
			return false
		}
		s.Data = *copied
		return true
	})
	if err != nil {
		return Outcome[R]{}, err
	}
	return r.out, r.effects(ctx)
}

// do runs op as one Manager.Update of key and runs the Do functions of
// the saved run.
func (f *Flow[T, U, R]) do(ctx context.Context, key string, op func(*run[T, U, R]) error) (Outcome[R], error) {
	if f.cfg.Manager == nil {
		return Outcome[R]{}, errNoManager
	}
	var r *run[T, U, R]
	_, err := f.cfg.Manager.Update(ctx, key, func(t *T) error {
		var err error
		r, err = f.runOn(ctx, key, t, op)
		return err
	})
	if err != nil {
		return Outcome[R]{}, err
	}
	return r.out, r.effects(ctx)
}

// runOn runs op on the session data t of key and lists a new deadline in
// the index (before the caller saves t).
func (f *Flow[T, U, R]) runOn(ctx context.Context, key string, t *T, op func(*run[T, U, R]) error) (*run[T, U, R], error) {
	r := f.newRun(ctx, key, t)
	before := r.st.Deadline
	if err := op(r); err != nil {
		return nil, err
	}
	if err := r.finish(before); err != nil {
		return nil, err
	}
	return r, nil
}

// effects runs the Do functions of r and returns their errors joined.
func (r *run[T, U, R]) effects(ctx context.Context) error {
	var errs []error
	for _, fn := range r.b.effects {
		if err := fn(ctx); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
