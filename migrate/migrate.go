// Package migrate carries stored sessions forward when the session type
// changes between deploys.
//
// A [Plan] is an ordered chain of [Step]s, each from version N to N+1. The
// version of the session type T is [Plan.Latest]. A session is stored with
// the version that wrote it; on load, the steps from that version to Latest
// run in order before the data is decoded into T.
//
// Steps come in two kinds:
//
//   - [Raw] edits the decoded document, a map[string]any. With the JSON codec
//     numbers are json.Number, so a 64-bit chat ID such as 9007199254740993
//     keeps its exact value.
//   - [Typed] converts between two Go structs, so old schemas stay
//     type-checked. Both are decoded and encoded with the manager's codec.
//
// Version 0 is a value stored without an envelope: JSON written by an older
// app or another framework. A step from 0 adopts it.
//
// A step may also have a way back ([RawReversible], [TypedReversible]), which
// lets a new binary keep writing the previous version during a rolling
// deploy (see the Config.WriteVersion field of the session package).
package migrate

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"runtime/debug"
	"slices"
	"strings"

	"github.com/typedsession/session/codec"
)

// Step converts a stored payload from version From() to From()+1, and
// optionally back. Make one with Raw, Typed, RawReversible or
// TypedReversible.
type Step struct {
	from int
	kind string
	up   func(c codec.Codec, payload []byte) ([]byte, error)
	down func(c codec.Codec, payload []byte) ([]byte, error)
}

// From returns the version the step starts from.
func (s Step) From() int { return s.from }

// Reversible reports whether the step has a way back.
func (s Step) Reversible() bool { return s.down != nil }

// String describes the step, e.g. "raw step 1→2".
func (s Step) String() string { return fmt.Sprintf("%s step %d→%d", s.kind, s.from, s.from+1) }

// Raw returns a step from version from to from+1 that edits the decoded
// document in place. The payload must decode to an object.
func Raw(from int, up func(doc map[string]any) error) Step {
	return Step{from: from, kind: "raw", up: rawFunc(up)}
}

// RawReversible is Raw with a down function that turns a from+1 document
// back into a from document.
func RawReversible(from int, up, down func(doc map[string]any) error) Step {
	s := Raw(from, up)
	if down != nil {
		s.down = rawFunc(down)
	}
	return s
}

// Typed returns a step from version from to from+1 that converts the Old
// struct into the New one.
func Typed[Old, New any](from int, up func(Old) (New, error)) Step {
	return Step{from: from, kind: "typed", up: typedFunc(up)}
}

// TypedReversible is Typed with a down function that turns a New value
// back into an Old one.
func TypedReversible[Old, New any](from int, up func(Old) (New, error), down func(New) (Old, error)) Step {
	s := Typed(from, up)
	if down != nil {
		s.down = typedFunc(down)
	}
	return s
}

func rawFunc(fn func(doc map[string]any) error) func(codec.Codec, []byte) ([]byte, error) {
	if fn == nil {
		return nil
	}
	return func(c codec.Codec, payload []byte) ([]byte, error) {
		var doc map[string]any
		if j, ok := c.(codec.JSONPayload); ok && j.PayloadIsJSON() {
			dec := json.NewDecoder(bytes.NewReader(payload))
			dec.UseNumber()
			if err := dec.Decode(&doc); err != nil {
				return nil, fmt.Errorf("decode document: %w", err)
			}
			if dec.More() {
				return nil, errors.New("decode document: data after the JSON value")
			}
		} else if err := c.Unmarshal(payload, &doc); err != nil {
			return nil, fmt.Errorf("decode document: %w", err)
		}
		if doc == nil {
			return nil, errors.New("document is not an object")
		}
		if err := fn(doc); err != nil {
			return nil, err
		}
		return c.Marshal(doc)
	}
}

func typedFunc[A, B any](fn func(A) (B, error)) func(codec.Codec, []byte) ([]byte, error) {
	if fn == nil {
		return nil
	}
	return func(c codec.Codec, payload []byte) ([]byte, error) {
		var a A
		if err := c.Unmarshal(payload, &a); err != nil {
			return nil, fmt.Errorf("decode %T: %w", a, err)
		}
		b, err := fn(a)
		if err != nil {
			return nil, err
		}
		return c.Marshal(b)
	}
}

// Plan is a validated chain of steps. A nil *Plan is valid and means
// schema version 1 with no steps. A Plan is immutable and safe for
// concurrent use.
type Plan struct {
	steps []Step // steps[i].from == first+i
}

// New returns a plan of the given steps, in any order. It rejects a step
// with a negative version or no function, two steps from one version, and
// gaps in the chain, with an error that names them.
func New(steps ...Step) (*Plan, error) {
	steps = slices.Clone(steps)
	slices.SortFunc(steps, func(a, b Step) int { return a.from - b.from })
	var problems []string
	for i, s := range steps {
		switch {
		case s.up == nil:
			problems = append(problems, fmt.Sprintf("step from version %d has no function", s.from))
		case s.from < 0:
			problems = append(problems, fmt.Sprintf("step from version %d: versions cannot be negative", s.from))
		}
		if i == 0 {
			continue
		}
		switch prev := steps[i-1].from; {
		case s.from == prev:
			problems = append(problems, fmt.Sprintf("two steps from version %d", s.from))
		case s.from > prev+1:
			problems = append(problems, fmt.Sprintf("gap: no step from version %d to %d", prev+1, prev+2))
		}
	}
	if len(problems) > 0 {
		return nil, fmt.Errorf("migrate: invalid plan: %s", strings.Join(problems, "; "))
	}
	return &Plan{steps: steps}, nil
}

// MustNew is like New but panics on an invalid plan. It is meant for
// package-level plans whose steps are fixed at compile time.
func MustNew(steps ...Step) *Plan {
	p, err := New(steps...)
	if err != nil {
		panic(err.Error() + " (fix the steps passed to migrate.MustNew)")
	}
	return p
}

// Latest returns the version the plan migrates to: one past its last
// step, or 1 for a nil or empty plan.
func (p *Plan) Latest() int {
	if p == nil || len(p.steps) == 0 {
		return 1
	}
	return p.steps[len(p.steps)-1].from + 1
}

// Oldest returns the oldest version the plan can read: the version of its
// first step, or 1 for a nil or empty plan.
func (p *Plan) Oldest() int {
	if p == nil || len(p.steps) == 0 {
		return 1
	}
	return p.steps[0].from
}

// StepError reports a step that failed or is missing. From and To are the
// versions of the step.
type StepError struct {
	From, To int
	Kind     string // "raw", "typed", or "" when no step exists
	Down     bool   // the step was run backwards
	Err      error
}

// ErrNoStep is wrapped by a StepError when the plan has no step for a
// version it was asked to cross.
var ErrNoStep = errors.New("no such step")

func (e *StepError) Error() string {
	dir := "→"
	if e.Down {
		dir = "←"
	}
	if e.Kind == "" {
		return fmt.Sprintf("no step %d%s%d: %v", e.From, dir, e.To, e.Err)
	}
	return fmt.Sprintf("%s step %d%s%d: %v", e.Kind, e.From, dir, e.To, e.Err)
}

func (e *StepError) Unwrap() error { return e.Err }

func (p *Plan) step(from int) (Step, bool) {
	if p == nil || len(p.steps) == 0 {
		return Step{}, false
	}
	i := from - p.steps[0].from
	if i < 0 || i >= len(p.steps) {
		return Step{}, false
	}
	return p.steps[i], true
}

// Up runs the steps from version from up to version to on payload, with c
// decoding and encoding. It returns a *StepError naming the first step
// that is missing or fails.
func (p *Plan) Up(c codec.Codec, from, to int, payload []byte) ([]byte, error) {
	for v := from; v < to; v++ {
		s, ok := p.step(v)
		if !ok {
			return nil, &StepError{From: v, To: v + 1, Err: ErrNoStep}
		}
		out, err := run(s.up, c, payload)
		if err != nil {
			return nil, &StepError{From: v, To: v + 1, Kind: s.kind, Err: err}
		}
		payload = out
	}
	return payload, nil
}

// ErrNotInverse is wrapped by the error of a session manager that writes an
// older version when its steps' down functions do not give back what their
// up functions were given.
var ErrNotInverse = errors.New("the down function does not invert the up function")

// run calls a step function, turning a panic into an error that carries
// the panic value and the stack.
func run(fn func(codec.Codec, []byte) ([]byte, error), c codec.Codec, payload []byte) (out []byte, err error) {
	defer func() {
		if p := recover(); p != nil {
			out, err = nil, &PanicError{Value: p, Stack: debug.Stack()}
		}
	}()
	return fn(c, payload)
}

// PanicError is the error of a step function that panicked: a Raw step's
// type assertion on a legacy document of an unexpected shape, say.
type PanicError struct {
	Value any    // what the step panicked with
	Stack []byte // the goroutine's stack at the panic
}

// Error returns the panic value; the stack is in Stack.
func (e *PanicError) Error() string { return fmt.Sprintf("panic: %v", e.Value) }

// Down runs the steps from version from back down to version to, using
// each step's down function. A step without one is an error.
func (p *Plan) Down(c codec.Codec, from, to int, payload []byte) ([]byte, error) {
	for v := from; v > to; v-- {
		s, ok := p.step(v - 1)
		if !ok {
			return nil, &StepError{From: v, To: v - 1, Down: true, Err: ErrNoStep}
		}
		if s.down == nil {
			return nil, &StepError{From: v, To: v - 1, Kind: s.kind, Down: true, Err: errors.New("step has no down function")}
		}
		out, err := run(s.down, c, payload)
		if err != nil {
			return nil, &StepError{From: v, To: v - 1, Kind: s.kind, Down: true, Err: err}
		}
		payload = out
	}
	return payload, nil
}

// CanWrite reports whether a manager at Latest can write version v: v is
// between Oldest and Latest and every step from v up has a down function.
func (p *Plan) CanWrite(v int) error {
	latest := p.Latest()
	if v > latest {
		return fmt.Errorf("migrate: version %d is newer than the latest version %d", v, latest)
	}
	if v < 1 {
		return fmt.Errorf("migrate: cannot write version %d; versions written start at 1", v)
	}
	for x := v; x < latest; x++ {
		s, ok := p.step(x)
		if !ok {
			return fmt.Errorf("migrate: cannot write version %d: no step %d→%d", v, x, x+1)
		}
		if s.down == nil {
			return fmt.Errorf("migrate: cannot write version %d: %s has no down function", v, s)
		}
	}
	return nil
}
