// Package convtest is the conformance suite of package conversation: the
// same cases (steps, back, cancel, sub-conversations, once per update,
// admin, timeouts after a restart and with racing or killed sweepers,
// migrations, removed steps, validation) on any store with
// compare-and-swap. The core runs it on memstore and Redis, store/sqlstore
// on PostgreSQL and SQLite. It also holds the pieces the package's own
// tests and benchmarks share: the sign-up bot (Proc), a fake Clock and a
// store wrapper that counts calls and can be killed (Killable).
package convtest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	session "github.com/typedsession/session"
	"github.com/typedsession/session/conversation"
	"github.com/typedsession/session/migrate"
	"github.com/typedsession/session/store"
)

// Run runs every case on stores from newStore, each case on a fresh one
// (newStore is called once or more per case; the stores must not share
// keys, or be emptied between calls).
func Run(t *testing.T, newStore func(testing.TB) store.Store) {
	for _, c := range []struct {
		name string
		fn   func(*testing.T, func(testing.TB) store.Store)
	}{
		{"Steps", testSteps},
		{"CancelWins", testCancelWins},
		{"SubConversation", testSubConversation},
		{"OncePerUpdate", testOncePerUpdate},
		{"Admin", testAdmin},
		{"TimeoutAfterRestart", testTimeoutAfterRestart},
		{"TimeoutOnNextUpdate", testTimeoutOnNextUpdate},
		{"TimeoutMovedOn", testTimeoutMovedOn},
		{"FlowTimeout", testFlowTimeout},
		{"EarlierDeadlineLater", testEarlierDeadlineLater},
		{"SweepersRace", testSweepersRace},
		{"SweeperKilled", testSweeperKilled},
		{"MigrateStepData", testMigrateStepData},
		{"RemovedStep", testRemovedStep},
		{"StepValidation", testStepValidation},
	} {
		t.Run(c.name, func(t *testing.T) { c.fn(t, newStore) })
	}
}

// Set sets the clock to t.
func (c *Clock) Set(t time.Time) { c.ns.Store(t.UnixNano()) }

// Ops returns the number of store calls made through k.
func (k *Killable) Ops() int64 { return k.ops.Load() }

// Bot is the session type of the tests: a sign-up conversation and what
// it leaves behind.
type Bot struct {
	Conv    conversation.State `json:"conv"`
	Results []Signup           `json:"results,omitempty"`
	// Fired counts the timeouts run and saved: exactly once means 1.
	Fired int `json:"fired,omitempty"`
	// Seen counts the updates applied: once per update means one each.
	Seen int `json:"seen,omitempty"`
}

// Msg is an update: a message's text.
type Msg struct{ Text string }

// Signup is the sign-up flow's result.
type Signup struct {
	Name string
	Age  int
	City string
}

// Address is the address sub-conversation's result.
type Address struct{ City, Street string }

// The steps of the sign-up flow.
type (
	AskName struct{}
	AskAge  struct{ Name string }
	Confirm struct {
		Name string
		Age  int
		City string
	}
)

// The steps of the address flow.
type (
	AskCity   struct{}
	AskStreet struct{ City string }
)

// Clock is a fake Clock shared by the flows of a test.
type Clock struct{ ns atomic.Int64 }

func NewClock() *Clock {
	c := &Clock{}
	c.ns.Store(time.Date(2026, 12, 7, 9, 0, 0, 0, time.UTC).UnixNano())
	return c
}

func (c *Clock) Now() time.Time          { return time.Unix(0, c.ns.Load()).UTC() }
func (c *Clock) Advance(d time.Duration) { c.ns.Add(int64(d)) }

// Counters counts the Do functions run, per key.
type Counters struct {
	mu sync.Mutex
	n  map[string]int
}

func (c *Counters) Inc(key string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.n == nil {
		c.n = map[string]int{}
	}
	c.n[key]++
}

func (c *Counters) Get(key string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n[key]
}

// Proc is one process of a bot: its manager and flows over a store.
type Proc struct {
	M       *session.Manager[Bot]
	Flow    *conversation.Flow[Bot, Msg, Signup]
	Address *conversation.Flow[Bot, Msg, Address]
	Effects *Counters // timeouts' Do functions run
}

const AgeTimeout = time.Minute

// NewProc builds the sign-up flow: /start and /cancel as globals, typed
// steps with back, a one-minute timeout on AskAge, the address
// sub-conversation from AskAge ("address").
func NewProc(t testing.TB, st store.Store, clk *Clock, edit func(*conversation.Config[Bot])) *Proc {
	t.Helper()
	m, err := session.New(session.Config[Bot]{Store: st, Namespace: "bot"})
	if err != nil {
		t.Fatal(err)
	}
	cfg := conversation.Config[Bot]{
		Name:    "signup",
		Manager: m,
		State:   func(b *Bot) *conversation.State { return &b.Conv },
		Store:   st,
		Now:     clk.Now,
	}
	if edit != nil {
		edit(&cfg)
	}
	f, err := conversation.New[Bot, Msg, Signup](cfg)
	if err != nil {
		t.Fatal(err)
	}
	p := &Proc{M: m, Flow: f, Effects: &Counters{}}
	f.Global(func(t *conversation.Turn[Bot, Msg, Signup]) (conversation.Next, bool, error) {
		u, _ := t.Update()
		switch u.Text {
		case "/start":
			return conversation.Goto(AskName{}), true, nil
		case "/cancel":
			return t.Cancel(), true, nil
		}
		return conversation.Next{}, false, nil
	})
	conversation.On(f, func(t *conversation.Turn[Bot, Msg, Signup], d *AskName) (conversation.Next, error) {
		u, _ := t.Update()
		t.Session().Seen++
		return conversation.Goto(AskAge{Name: u.Text}), nil
	})
	conversation.On(f, func(t *conversation.Turn[Bot, Msg, Signup], d *AskAge) (conversation.Next, error) {
		u, _ := t.Update()
		t.Session().Seen++
		switch u.Text {
		case "back":
			return t.Back(), nil
		case "address":
			return conversation.Call(p.Address, AskCity{}), nil
		}
		age, err := strconv.Atoi(u.Text)
		if err != nil {
			return t.Stay(), nil
		}
		return conversation.Goto(Confirm{Name: d.Name, Age: age}), nil
	})
	conversation.OnTimeout(f, AgeTimeout, func(t *conversation.Turn[Bot, Msg, Signup], d *AskAge) (conversation.Next, error) {
		t.Session().Fired++
		key := t.Key()
		t.Do(func(context.Context) error { p.Effects.Inc(key); return nil })
		return t.Cancel(), nil
	})
	conversation.On(f, func(t *conversation.Turn[Bot, Msg, Signup], d *Confirm) (conversation.Next, error) {
		u, _ := t.Update()
		t.Session().Seen++
		switch u.Text {
		case "yes":
			return t.End(Signup{Name: d.Name, Age: d.Age, City: d.City}), nil
		case "no", "back":
			return t.Back(), nil
		}
		return t.Stay(), nil
	})
	f.OnEnd(func(t *conversation.Turn[Bot, Msg, Signup], r Signup) error {
		t.Session().Results = append(t.Session().Results, r)
		return nil
	})

	a, err := conversation.New[Bot, Msg, Address](conversation.Config[Bot]{
		Name:  "address",
		State: func(b *Bot) *conversation.State { return &b.Conv },
		Now:   clk.Now,
	})
	if err != nil {
		t.Fatal(err)
	}
	p.Address = a
	conversation.On(a, func(t *conversation.Turn[Bot, Msg, Address], d *AskCity) (conversation.Next, error) {
		u, _ := t.Update()
		return conversation.Goto(AskStreet{City: u.Text}), nil
	})
	conversation.On(a, func(t *conversation.Turn[Bot, Msg, Address], d *AskStreet) (conversation.Next, error) {
		u, _ := t.Update()
		if u.Text == "back" {
			return t.Back(), nil
		}
		return t.End(Address{City: d.City, Street: u.Text}), nil
	})
	conversation.OnReturn(f, a, func(t *conversation.Turn[Bot, Msg, Signup], d *AskAge, r Address) (conversation.Next, error) {
		return conversation.Goto(Confirm{Name: d.Name, Age: 0, City: r.City}), nil
	})
	return p
}

// send handles text as update id for key, failing the test on an error.
func (p *Proc) Send(t testing.TB, key string, id int64, text string) conversation.Outcome[Signup] {
	t.Helper()
	out, err := p.Flow.Handle(context.Background(), key, id, Msg{Text: text})
	if err != nil {
		t.Fatalf("Handle(%q, %d, %q): %v", key, id, text, err)
	}
	return out
}

func (p *Proc) Load(t testing.TB, key string) Bot {
	t.Helper()
	s, err := p.M.Load(context.Background(), key)
	if err != nil {
		t.Fatal(err)
	}
	return s.Data
}

// ErrKilled is what a killed process's store returns.
var ErrKilled = errors.New("process killed")

// Killable wraps a store, as one process sees it: after limit operations
// every call fails, and the operation at the limit lands but its reply
// is lost (the process died after sending it).
type Killable struct {
	st    store.Store
	sw    store.Swapper
	del   store.Deleter
	ops   atomic.Int64
	limit int64
}

func NewKillable(st store.Store, limit int64) *Killable {
	k := &Killable{st: st, limit: limit}
	k.sw = st.(store.Swapper)
	k.del, _ = st.(store.Deleter)
	return k
}

// step reports whether the call may run, and whether its reply is lost.
func (k *Killable) step() (run, lost bool) {
	n := k.ops.Add(1)
	return n <= k.limit, n == k.limit
}

func (k *Killable) Get(ctx context.Context, key string) ([]byte, error) {
	if run, lost := k.step(); !run || lost {
		return nil, ErrKilled
	}
	return k.st.Get(ctx, key)
}

func (k *Killable) Set(ctx context.Context, key string, v []byte, ttl time.Duration) error {
	run, lost := k.step()
	if !run {
		return ErrKilled
	}
	err := k.st.Set(ctx, key, v, ttl)
	if lost {
		return ErrKilled
	}
	return err
}

func (k *Killable) Delete(ctx context.Context, key string) error {
	run, lost := k.step()
	if !run {
		return ErrKilled
	}
	err := k.st.Delete(ctx, key)
	if lost {
		return ErrKilled
	}
	return err
}

func (k *Killable) CompareAndSwap(ctx context.Context, key string, old, v []byte, ttl time.Duration) (bool, error) {
	run, lost := k.step()
	if !run {
		return false, ErrKilled
	}
	ok, err := k.sw.CompareAndSwap(ctx, key, old, v, ttl)
	if lost {
		return false, ErrKilled
	}
	return ok, err
}

func (k *Killable) CompareAndDelete(ctx context.Context, key string, old []byte) (bool, error) {
	run, lost := k.step()
	if !run {
		return false, ErrKilled
	}
	ok, err := k.del.CompareAndDelete(ctx, key, old)
	if lost {
		return false, ErrKilled
	}
	return ok, err
}

// testSteps walks the sign-up flow: typed steps, stay, back, a global
// /start that (re)enters it, and the typed result at the end.
func testSteps(t *testing.T, newStore func(testing.TB) store.Store) {
	st := newStore(t)
	{
		p := NewProc(t, st, NewClock(), nil)
		const key = "42"
		if out := p.Send(t, key, 1, "hello"); out.Handled {
			t.Fatalf("an update with no conversation and no global for it was handled: %+v", out)
		}
		// A global that takes an update with no conversation running and
		// changes nothing writes nothing (its ID is not recorded).
		if out := p.Send(t, key, 2, "/cancel"); !out.Handled || out.Canceled {
			t.Fatalf("/cancel with none running: %+v", out)
		}
		if s, err := p.M.Load(context.Background(), key); err != nil || !s.IsNew() {
			t.Fatalf("/cancel with none running wrote the session: %+v, %v", s, err)
		}
		if out := p.Send(t, key, 2, "/start"); !out.Handled || out.Step != "AskName" || out.Flow != "signup" {
			t.Fatalf("/start: %+v", out)
		}
		p.Send(t, key, 3, "Ann")
		if out := p.Send(t, key, 4, "not a number"); out.Step != "AskAge" {
			t.Fatalf("a bad age does not stay: %+v", out)
		}
		if out := p.Send(t, key, 5, "back"); out.Step != "AskName" {
			t.Fatalf("back from AskAge: %+v", out)
		}
		p.Send(t, key, 6, "Bob")
		if out := p.Send(t, key, 7, "33"); out.Step != "Confirm" {
			t.Fatalf("age: %+v", out)
		}
		if out := p.Send(t, key, 8, "no"); out.Step != "AskAge" {
			t.Fatalf("no at Confirm goes back: %+v", out)
		}
		p.Send(t, key, 9, "34")
		out := p.Send(t, key, 10, "yes")
		if !out.Ended || out.Step != "" {
			t.Fatalf("yes at Confirm ends: %+v", out)
		}
		want := Signup{Name: "Bob", Age: 34}
		if out.Result != want {
			t.Errorf("Outcome.Result = %+v, want %+v", out.Result, want)
		}
		b := p.Load(t, key)
		if len(b.Results) != 1 || b.Results[0] != want {
			t.Errorf("OnEnd's results in the session = %+v, want [%+v]", b.Results, want)
		}
		if b.Conv.Active() || b.Conv.LastUpdate != 10 {
			t.Errorf("state after the end: %+v", b.Conv)
		}
	}
}

// testCancelWins: a global /cancel runs before the step's handler, in a
// sub-conversation too, and ends the whole conversation.
func testCancelWins(t *testing.T, newStore func(testing.TB) store.Store) {
	st := newStore(t)
	{
		p := NewProc(t, st, NewClock(), nil)
		const key = "7"
		p.Send(t, key, 1, "/start")
		p.Send(t, key, 2, "Ann")
		if out := p.Send(t, key, 3, "address"); out.Flow != "address" || out.Step != "AskCity" {
			t.Fatalf("Call: %+v", out)
		}
		out := p.Send(t, key, 4, "/cancel")
		if !out.Canceled || out.Step != "" {
			t.Fatalf("/cancel: %+v", out)
		}
		b := p.Load(t, key)
		if b.Conv.Active() || b.Seen != 2 {
			t.Errorf("after /cancel: %+v (the steps' handlers ran %d times, want 2)", b.Conv, b.Seen)
		}
	}
}

// testSubConversation: a sub-conversation returns its typed result to the
// step that called it; back works inside it; the depth is bounded.
func testSubConversation(t *testing.T, newStore func(testing.TB) store.Store) {
	st := newStore(t)
	{
		p := NewProc(t, st, NewClock(), nil)
		const key = "9"
		p.Send(t, key, 1, "/start")
		p.Send(t, key, 2, "Ann")
		p.Send(t, key, 3, "address")
		p.Send(t, key, 4, "Paris")
		if out := p.Send(t, key, 5, "back"); out.Flow != "address" || out.Step != "AskCity" {
			t.Fatalf("back inside the sub-conversation: %+v", out)
		}
		p.Send(t, key, 6, "Lyon")
		out := p.Send(t, key, 7, "Rue Neuve")
		if out.Flow != "signup" || out.Step != "Confirm" {
			t.Fatalf("the end of the sub-conversation: %+v", out)
		}
		b := p.Load(t, key)
		if len(b.Conv.Frames) != 1 {
			t.Fatalf("frames after the return: %+v", b.Conv.Frames)
		}
		out = p.Send(t, key, 8, "yes")
		if want := (Signup{Name: "Ann", City: "Lyon"}); out.Result != want {
			t.Errorf("result = %+v, want %+v", out.Result, want)
		}

		// MaxDepth 1: the root alone, so a Call fails and writes nothing.
		q := NewProc(t, st, NewClock(), func(c *conversation.Config[Bot]) { c.MaxDepth = 1 })
		q.Send(t, "10", 1, "/start")
		q.Send(t, "10", 2, "Ann")
		_, err := q.Flow.Handle(context.Background(), "10", 3, Msg{Text: "address"})
		if !errors.Is(err, conversation.ErrTooDeep) {
			t.Fatalf("a Call beyond MaxDepth: %v, want ErrTooDeep", err)
		}
		if b := q.Load(t, "10"); b.Conv.LastUpdate != 2 || b.Conv.Frames[0].Step != "AskAge" {
			t.Errorf("a failed Handle wrote: %+v", b.Conv)
		}
	}
}

// testOncePerUpdate: an update applied again (a webhook retry, another
// replica) changes nothing; two managers (two replicas) handling the same
// updates at once apply each once.
func testOncePerUpdate(t *testing.T, newStore func(testing.TB) store.Store) {
	st := newStore(t)
	{
		clk := NewClock()
		a, b := NewProc(t, st, clk, nil), NewProc(t, st, clk, nil)
		const key = "5"
		a.Send(t, key, 100, "/start")
		a.Send(t, key, 101, "Ann")
		out := b.Send(t, key, 101, "Ann")
		if !out.Duplicate || out.Handled {
			t.Fatalf("a retried update: %+v", out)
		}
		if got := a.Load(t, key); got.Seen != 1 || got.Conv.Frames[0].Step != "AskAge" {
			t.Fatalf("after the retry: %+v", got)
		}
		// Both replicas get updates 102..111 (stays at AskAge), at once.
		done := make(chan error, 2)
		for _, p := range []*Proc{a, b} {
			go func() {
				for id := int64(102); id <= 111; id++ {
					if _, err := p.Flow.Handle(context.Background(), key, id, Msg{Text: "?"}); err != nil {
						done <- err
						return
					}
				}
				done <- nil
			}()
		}
		for range 2 {
			if err := <-done; err != nil {
				t.Fatal(err)
			}
		}
		if got := a.Load(t, key); got.Seen != 11 || got.Conv.LastUpdate != 111 {
			t.Errorf("10 updates sent by two replicas: Seen %d (want 11), LastUpdate %d", got.Seen, got.Conv.LastUpdate)
		}
		// Updates out of order (workers) are each applied once; one
		// older than the 16 last is taken for a duplicate.
		for _, id := range []int64{114, 112, 113, 112, 114} {
			a.Send(t, key, id, "?")
		}
		if got := a.Load(t, key); got.Seen != 14 || got.Conv.LastUpdate != 114 {
			t.Errorf("updates 114, 112, 113, 112, 114: Seen %d (want 14), LastUpdate %d", got.Seen, got.Conv.LastUpdate)
		}
		a.Send(t, key, 115, "?") // the 16th: the window is full
		if out := a.Send(t, key, 99, "?"); !out.Duplicate {
			t.Errorf("an update older than the 16 last: %+v, want it taken for a duplicate", out)
		}
	}
}

// testAdmin reads, moves and cancels a user's conversation from code.
func testAdmin(t *testing.T, newStore func(testing.TB) store.Store) {
	st := newStore(t)
	{
		p := NewProc(t, st, NewClock(), nil)
		ctx := context.Background()
		const key = "11"
		if _, err := conversation.Move(ctx, p.Flow, key, Confirm{}); !errors.Is(err, conversation.ErrNoConversation) {
			t.Fatalf("Move with no conversation: %v", err)
		}
		if _, err := conversation.Start(ctx, p.Flow, key, AskAge{Name: "Zoe"}); err != nil {
			t.Fatal(err)
		}
		s, err := p.Flow.Read(ctx, key)
		if err != nil || s.Frames[0].Step != "AskAge" || string(s.Frames[0].Data) != `{"Name":"Zoe"}` {
			t.Fatalf("Read: %+v, %v", s, err)
		}
		out, err := conversation.Move(ctx, p.Flow, key, Confirm{Name: "Zoe", Age: 9})
		if err != nil || out.Step != "Confirm" {
			t.Fatalf("Move: %+v, %v", out, err)
		}
		if _, err := conversation.Move(ctx, p.Flow, key, AskCity{}); !errors.Is(err, conversation.ErrNotRegistered) {
			t.Fatalf("Move to another flow's step: %v", err)
		}
		if out, err := p.Flow.Cancel(ctx, key); err != nil || !out.Canceled {
			t.Fatalf("Cancel: %+v, %v", out, err)
		}
		if s, _ := p.Flow.Read(ctx, key); s.Active() {
			t.Fatalf("after Cancel: %+v", s)
		}
	}
}

// atAge starts the sign-up of key and answers the name, so that the
// conversation waits at AskAge with its one-minute timeout.
func (p *Proc) AtAge(t testing.TB, key string) {
	t.Helper()
	p.Send(t, key, 1, "/start")
	if out := p.Send(t, key, 2, "Ann"); out.Step != "AskAge" || out.Deadline.IsZero() {
		t.Fatalf("at AskAge: %+v", out)
	}
}

func Sweep(t testing.TB, p *Proc) conversation.SweepReport {
	t.Helper()
	rep, err := p.Flow.Sweep(context.Background())
	if err != nil {
		t.Fatalf("Sweep: %v", err)
	}
	if len(rep.Failed) > 0 {
		t.Fatalf("Sweep: failed timeouts: %v", rep.Failed)
	}
	return rep
}

// testTimeoutAfterRestart: a step's timeout fires with no next update, in
// a process started after the one that set it (a new manager and flow
// over the same store), once.
func testTimeoutAfterRestart(t *testing.T, newStore func(testing.TB) store.Store) {
	st := newStore(t)
	{
		clk := NewClock()
		a := NewProc(t, st, clk, nil)
		a.AtAge(t, "1")
		a.AtAge(t, "2")
		if rep := Sweep(t, a); rep.Fired != 0 {
			t.Fatalf("a sweep before the deadline fired: %+v", rep)
		}
		clk.Advance(AgeTimeout - time.Millisecond)
		if rep := Sweep(t, a); rep.Fired != 0 {
			t.Fatalf("a sweep a millisecond before the deadline fired: %+v", rep)
		}

		clk.Advance(time.Millisecond)
		b := NewProc(t, st, clk, nil) // the restart: a is gone
		rep := Sweep(t, b)
		if rep.Fired != 2 {
			t.Fatalf("the sweep after the restart: %+v, want 2 fired", rep)
		}
		for _, key := range []string{"1", "2"} {
			got := b.Load(t, key)
			if got.Fired != 1 || got.Conv.Active() || b.Effects.Get(key) != 1 {
				t.Errorf("key %s: Fired %d, effects %d, state %+v; want the timeout run once and the conversation cancelled", key, got.Fired, b.Effects.Get(key), got.Conv)
			}
		}
		if rep := Sweep(t, b); rep.Fired != 0 || rep.Stale != 0 {
			t.Fatalf("a second sweep: %+v", rep)
		}
		// After Lag the cursor moves past the slot: later sweeps no longer
		// read it.
		clk.Advance(3 * time.Minute)
		rep = Sweep(t, b)
		if !rep.Cursor.After(clk.Now().Add(-2 * time.Minute)) {
			t.Errorf("the cursor stayed at %v (now %v)", rep.Cursor, clk.Now())
		}
		if rep2 := Sweep(t, b); rep2.Reads > 1+2*4 {
			t.Errorf("a sweep of an empty index read %d values, want at most the cursor and two slots", rep2.Reads)
		}
	}
}

// testTimeoutOnNextUpdate: a deadline that passed is also noticed by the
// next update, which runs the timeout first; the sweeper then finds the
// entry stale.
func testTimeoutOnNextUpdate(t *testing.T, newStore func(testing.TB) store.Store) {
	st := newStore(t)
	{
		clk := NewClock()
		p := NewProc(t, st, clk, nil)
		p.AtAge(t, "1")
		clk.Advance(AgeTimeout)
		out := p.Send(t, "1", 3, "33")
		if !out.TimedOut || !out.Canceled || out.Handled {
			t.Fatalf("an update after the deadline: %+v; want the timeout run and the update not handled", out)
		}
		rep := Sweep(t, p)
		if rep.Fired != 0 || rep.Stale != 1 {
			t.Fatalf("the sweep after: %+v, want the entry stale", rep)
		}
		if got := p.Load(t, "1"); got.Fired != 1 {
			t.Errorf("Fired %d, want 1", got.Fired)
		}
	}
}

// testTimeoutMovedOn: a conversation that left the step before its
// deadline does not time out; its entry is dropped as stale.
func testTimeoutMovedOn(t *testing.T, newStore func(testing.TB) store.Store) {
	st := newStore(t)
	{
		clk := NewClock()
		p := NewProc(t, st, clk, nil)
		p.AtAge(t, "1")
		p.Send(t, "1", 3, "33")
		clk.Advance(2 * AgeTimeout)
		if rep := Sweep(t, p); rep.Fired != 0 || rep.Stale != 1 {
			t.Fatalf("sweep: %+v", rep)
		}
		if got := p.Load(t, "1"); got.Fired != 0 || got.Conv.Frames[0].Step != "Confirm" {
			t.Fatalf("%+v", got)
		}
	}
}

// testFlowTimeout: the flow's own timeout ends it from inside a
// sub-conversation, with the flow's handler.
func testFlowTimeout(t *testing.T, newStore func(testing.TB) store.Store) {
	st := newStore(t)
	{
		clk := NewClock()
		p := NewProc(t, st, clk, func(c *conversation.Config[Bot]) { c.Timeout = 10 * time.Minute })
		p.Flow.OnFlowTimeout(func(t *conversation.Turn[Bot, Msg, Signup]) (conversation.Next, error) {
			t.Session().Fired += 100
			return t.End(Signup{Name: "timed out in " + t.Step()}), nil
		})
		p.AtAge(t, "1")
		p.Send(t, "1", 3, "address") // the step's Clock stops in the sub-conversation
		clk.Advance(10 * time.Minute)
		if rep := Sweep(t, p); rep.Fired != 1 {
			t.Fatalf("sweep: %+v", rep)
		}
		got := p.Load(t, "1")
		if got.Fired != 100 || got.Conv.Active() || len(got.Results) != 1 || got.Results[0].Name != "timed out in AskAge" {
			t.Fatalf("after the flow's timeout: %+v", got)
		}
	}
}

// testEarlierDeadlineLater: a deadline listed after a later one (the
// flow's ten minutes, then the step's one) still fires on time: the index
// never starts its sweeps after an entry.
func testEarlierDeadlineLater(t *testing.T, newStore func(testing.TB) store.Store) {
	clk := NewClock()
	p := NewProc(t, newStore(t), clk, func(c *conversation.Config[Bot]) { c.Timeout = 10 * time.Minute })
	p.Send(t, "1", 1, "/start") // the flow's deadline, in ten minutes, is the first listed
	p.Send(t, "1", 2, "Ann")    // AskAge's, in one minute
	clk.Advance(AgeTimeout)
	if rep := Sweep(t, p); rep.Fired != 1 {
		t.Fatalf("the sweep at the step's deadline: %+v, want it fired", rep)
	}
	if got := p.Load(t, "1"); got.Fired != 1 || got.Conv.Active() {
		t.Fatalf("%+v", got)
	}
}

// testSweepersRace: two processes sweep at once; each timeout runs and is
// saved once, and its Do function runs once, in one of them.
// Run with -count=300.
func testSweepersRace(t *testing.T, newStore func(testing.TB) store.Store) {
	st := newStore(t)
	{
		clk := NewClock()
		a, b := NewProc(t, st, clk, nil), NewProc(t, st, clk, nil)
		const n = 12
		for i := range n {
			a.AtAge(t, fmt.Sprint(i))
		}
		clk.Advance(AgeTimeout)
		var wg sync.WaitGroup
		reps := make([]conversation.SweepReport, 2)
		for i, p := range []*Proc{a, b} {
			wg.Go(func() { reps[i] = Sweep(t, p) })
		}
		wg.Wait()
		if fired := reps[0].Fired + reps[1].Fired; fired != n {
			t.Errorf("the two sweeps fired %d and %d, want %d in all", reps[0].Fired, reps[1].Fired, n)
		}
		for i := range n {
			key := fmt.Sprint(i)
			if got := a.Load(t, key); got.Fired != 1 || a.Effects.Get(key)+b.Effects.Get(key) != 1 {
				t.Errorf("key %s: Fired %d, effects %d+%d; want 1", key, got.Fired, a.Effects.Get(key), b.Effects.Get(key))
			}
		}
	}
}

// testSweeperKilled: a sweeper process dies at each point of its sweep in
// turn (the operation at that point lands, its reply is lost, and every
// later one fails); another process's sweep then runs every timeout the
// dead one had not saved, and none twice.
func testSweeperKilled(t *testing.T, fresh func(testing.TB) store.Store) {
	{
		{
			const n = 4
			// Count the operations of a whole sweep first.
			total := func() int64 {
				st := fresh(t)
				clk := NewClock()
				NewProc(t, st, clk, nil).AtAgeAll(t, n)
				clk.Advance(AgeTimeout)
				k := NewKillable(st, 1<<62)
				Sweep(t, NewProc(t, k, clk, nil))
				return k.Ops()
			}()
			for limit := int64(1); limit <= total; limit++ {
				st := fresh(t)
				clk := NewClock()
				NewProc(t, st, clk, nil).AtAgeAll(t, n)
				clk.Advance(AgeTimeout)
				dead := NewProc(t, NewKillable(st, limit), clk, nil)
				if _, err := dead.Flow.Sweep(context.Background()); err != nil && !errors.Is(err, ErrKilled) {
					t.Fatalf("limit %d: the killed sweep: %v", limit, err)
				}
				live := NewProc(t, st, clk, nil)
				Sweep(t, live)
				if rep := Sweep(t, live); rep.Fired != 0 {
					t.Fatalf("limit %d: a third sweep fired %d", limit, rep.Fired)
				}
				for i := range n {
					key := fmt.Sprint(i)
					got := live.Load(t, key)
					if got.Fired != 1 || got.Conv.Active() {
						t.Fatalf("limit %d of %d: key %s: Fired %d, state %+v; want the timeout saved once", limit, total, key, got.Fired, got.Conv)
					}
					if e := dead.Effects.Get(key) + live.Effects.Get(key); e > 1 {
						t.Fatalf("limit %d: key %s: the Do function ran %d times", limit, key, e)
					}
				}
			}
			t.Logf("killed at each of the %d operations of a sweep of %d timeouts", total, n)
		}
	}
}

func (p *Proc) AtAgeAll(t testing.TB, n int) {
	for i := range n {
		p.AtAge(t, fmt.Sprint(i))
	}
}

// Hello is a first step both binaries of these tests have.
type Hello struct{}

// flowOf returns a manager (with plan) and a flow of Bot over st.
func flowOf(t *testing.T, st store.Store, clk *Clock, plan *migrate.Plan) (*session.Manager[Bot], *conversation.Flow[Bot, Msg, Signup]) {
	t.Helper()
	m, err := session.New(session.Config[Bot]{Store: st, Namespace: "bot", Migrations: plan})
	if err != nil {
		t.Fatal(err)
	}
	f, err := conversation.New[Bot, Msg, Signup](conversation.Config[Bot]{
		Name: "signup", Manager: m, Store: st, Now: clk.Now,
		State: func(b *Bot) *conversation.State { return &b.Conv },
	})
	if err != nil {
		t.Fatal(err)
	}
	return m, f
}

// testMigrateStepData: a deploy changes a step's data (a name becomes a
// first and a last name) while conversations are in that step, one with
// the step in its history; the new binary's plan migrates them, its
// handlers and its sweeper get the new shape, and the old shape is gone
// from the store after the next save.
func testMigrateStepData(t *testing.T, newStore func(testing.TB) store.Store) {
	st := newStore(t)
	{
		clk := NewClock()
		ctx := context.Background()
		{ // The old binary: AskAge{Name}, with a timeout.
			type AskAge struct{ Name string }
			_, f := flowOf(t, st, clk, nil)
			conversation.On(f, func(t *conversation.Turn[Bot, Msg, Signup], d *Hello) (conversation.Next, error) {
				u, _ := t.Update()
				return conversation.Goto(AskAge{Name: u.Text}), nil
			})
			conversation.On(f, func(t *conversation.Turn[Bot, Msg, Signup], d *AskAge) (conversation.Next, error) {
				return conversation.Goto(Hello{}), nil
			})
			conversation.OnTimeout(f, time.Minute, func(t *conversation.Turn[Bot, Msg, Signup], d *AskAge) (conversation.Next, error) {
				return t.Cancel(), nil
			})
			for _, key := range []string{"waits", "times-out", "in-history"} {
				if _, err := conversation.Start(ctx, f, key, Hello{}); err != nil {
					t.Fatal(err)
				}
				if _, err := f.Handle(ctx, key, 1, Msg{Text: "Ann Lee"}); err != nil {
					t.Fatal(err)
				}
			}
			if _, err := f.Handle(ctx, "in-history", 2, Msg{Text: "next"}); err != nil {
				t.Fatal(err)
			}
		}

		// The new binary: AskAge{First, Last}, schema version 2.
		type AskAge struct{ First, Last string }
		type askAgeV1 struct{ Name string }
		plan := migrate.MustNew(conversation.MigrateStep(1, "conv", func(o askAgeV1) (AskAge, error) {
			first, last, _ := strings.Cut(o.Name, " ")
			return AskAge{First: first, Last: last}, nil
		}))
		m, f := flowOf(t, st, clk, plan)
		conversation.On(f, func(t *conversation.Turn[Bot, Msg, Signup], d *Hello) (conversation.Next, error) {
			return t.Back(), nil
		})
		conversation.On(f, func(t *conversation.Turn[Bot, Msg, Signup], d *AskAge) (conversation.Next, error) {
			return t.End(Signup{Name: d.Last + ", " + d.First}), nil
		})
		conversation.OnTimeout(f, time.Minute, func(t *conversation.Turn[Bot, Msg, Signup], d *AskAge) (conversation.Next, error) {
			return t.End(Signup{Name: "timed out: " + d.Last + ", " + d.First}), nil
		})
		f.OnEnd(func(t *conversation.Turn[Bot, Msg, Signup], r Signup) error {
			t.Session().Results = append(t.Session().Results, r)
			return nil
		})

		out, err := f.Handle(ctx, "waits", 2, Msg{Text: "33"})
		if err != nil || out.Result.Name != "Lee, Ann" {
			t.Fatalf("the step handler of the new binary: %+v, %v", out, err)
		}
		if _, err := f.Handle(ctx, "in-history", 3, Msg{Text: "back"}); err != nil {
			t.Fatal(err)
		}
		out, err = f.Handle(ctx, "in-history", 4, Msg{Text: "x"})
		if err != nil || out.Result.Name != "Lee, Ann" {
			t.Fatalf("back to a migrated step from the history: %+v, %v", out, err)
		}
		clk.Advance(time.Minute)
		rep, err := f.Sweep(ctx)
		if err != nil || rep.Fired != 1 || len(rep.Failed) > 0 {
			t.Fatalf("the new binary's sweep: %+v, %v", rep, err)
		}
		s, err := m.Load(ctx, "times-out")
		if err != nil || len(s.Data.Results) != 1 || s.Data.Results[0].Name != "timed out: Lee, Ann" {
			t.Fatalf("the timeout with migrated data: %+v, %v", s, err)
		}
		if v := s.Version(); v != 2 {
			t.Errorf("stored version %d after the save, want 2", v)
		}
	}
}

// testRemovedStep: a deploy removes a step while a conversation is in
// it. Without a fallback, every Handle, sweep and Move fails with
// ErrUnknownStep and the stored value stays byte for byte (never a silent
// reset); Read and Cancel still work. With OnUnknown, the fallback gets
// the stored frame and moves the conversation on.
func testRemovedStep(t *testing.T, newStore func(testing.TB) store.Store) {
	st := newStore(t)
	{
		clk := NewClock()
		ctx := context.Background()
		type Legacy struct{ X int }
		{ // The old binary has Legacy, with a timeout.
			_, f := flowOf(t, st, clk, nil)
			conversation.On(f, func(t *conversation.Turn[Bot, Msg, Signup], d *Hello) (conversation.Next, error) {
				return conversation.Goto(Legacy{X: 7}), nil
			})
			conversation.OnTimeout(f, time.Minute, func(t *conversation.Turn[Bot, Msg, Signup], d *Legacy) (conversation.Next, error) {
				return t.Cancel(), nil
			})
			for _, key := range []string{"a", "b"} {
				if _, err := conversation.Start(ctx, f, key, Hello{}); err != nil {
					t.Fatal(err)
				}
				if out, err := f.Handle(ctx, key, 1, Msg{}); err != nil || out.Step != "Legacy" {
					t.Fatalf("%+v, %v", out, err)
				}
			}
		}
		raw := func(key string) []byte {
			b, err := st.Get(ctx, "bot:"+key)
			if err != nil {
				t.Fatal(err)
			}
			return b
		}
		before := raw("a")

		// The new binary has no Legacy and no fallback.
		_, f := flowOf(t, st, clk, nil)
		conversation.On(f, func(t *conversation.Turn[Bot, Msg, Signup], d *Hello) (conversation.Next, error) {
			return t.Stay(), nil
		})
		if _, err := f.Handle(ctx, "a", 2, Msg{}); !errors.Is(err, conversation.ErrUnknownStep) {
			t.Fatalf("Handle in a removed step: %v, want ErrUnknownStep", err)
		}
		if _, err := conversation.Move(ctx, f, "a", Hello{}); !errors.Is(err, conversation.ErrUnknownStep) {
			t.Fatalf("Move from a removed step: %v, want ErrUnknownStep", err)
		}
		clk.Advance(time.Minute)
		for range 2 {
			rep, err := f.Sweep(ctx)
			if err != nil || rep.Fired != 0 || len(rep.Failed) != 2 || !errors.Is(rep.Failed[0], conversation.ErrUnknownStep) {
				t.Fatalf("a sweep over removed steps: %+v, %v; want both failed, and kept for the next sweep", rep, err)
			}
		}
		// Later, the failing entries move to the current slot, so that the
		// cursor moves on, and every sweep still tries them.
		clk.Advance(3 * time.Minute)
		for range 2 {
			rep, err := f.Sweep(ctx)
			if err != nil || len(rep.Failed) != 2 || !rep.Cursor.After(clk.Now().Add(-2*time.Minute)) {
				t.Fatalf("a later sweep over removed steps: %+v, %v; want both failed, and the cursor moved on", rep, err)
			}
		}
		if after := raw("a"); !bytes.Equal(before, after) {
			t.Fatalf("the stored value changed:\n%s\n%s", before, after)
		}
		if s, err := f.Read(ctx, "a"); err != nil || s.Frames[0].Step != "Legacy" {
			t.Fatalf("Read: %+v, %v", s, err)
		}

		// The fallback: back to Hello, with what Legacy held.
		var seen conversation.Frame
		f.OnUnknown(func(t *conversation.Turn[Bot, Msg, Signup], stored conversation.Frame) (conversation.Next, error) {
			seen = stored
			return conversation.Goto(Hello{}), nil
		})
		out, err := f.Handle(ctx, "a", 2, Msg{})
		if err != nil || !out.Fallback || out.Step != "Hello" {
			t.Fatalf("Handle with OnUnknown: %+v, %v", out, err)
		}
		if seen.Step != "Legacy" || string(seen.Data) != `{"X":7}` {
			t.Errorf("OnUnknown got %+v", seen)
		}
		rep, err := f.Sweep(ctx) // b fires through the fallback; a is stale now
		if err != nil || len(rep.Failed) != 0 || rep.Stale != 1 || rep.Fired != 1 {
			t.Fatalf("a sweep with OnUnknown: %+v, %v", rep, err)
		}
		if s, _ := f.Read(ctx, "b"); s.Frames[0].Step != "Hello" {
			t.Fatalf("b after the sweep: %+v", s)
		}
		if out, err := f.Cancel(ctx, "b"); err != nil || !out.Canceled {
			t.Fatalf("Cancel: %+v, %v", out, err)
		}
	}
}

// Qty is a step whose data has a validate tag.
type Qty struct {
	N int `validate:"gte=1,lte=10"`
}

// testStepValidation: a step's data is checked as a session's is: a Goto
// with invalid data, a handler that leaves it invalid and stored data that
// fails are session.ErrInvalid, and nothing is written.
func testStepValidation(t *testing.T, newStore func(testing.TB) store.Store) {
	st := newStore(t)
	{
		ctx := context.Background()
		m, f := flowOf(t, st, NewClock(), nil)
		conversation.On(f, func(t *conversation.Turn[Bot, Msg, Signup], d *Hello) (conversation.Next, error) {
			u, _ := t.Update()
			if u.Text == "big" {
				return conversation.Goto(Qty{N: 11}), nil
			}
			return conversation.Goto(Qty{N: 1}), nil
		})
		conversation.On(f, func(t *conversation.Turn[Bot, Msg, Signup], d *Qty) (conversation.Next, error) {
			d.N += 5
			return t.Stay(), nil
		})
		if _, err := conversation.Start(ctx, f, "1", Hello{}); err != nil {
			t.Fatal(err)
		}
		if _, err := f.Handle(ctx, "1", 1, Msg{Text: "big"}); !errors.Is(err, session.ErrInvalid) {
			t.Fatalf("Goto with invalid data: %v, want ErrInvalid", err)
		}
		if s, _ := f.Read(ctx, "1"); s.Frames[0].Step != "Hello" || s.LastUpdate != 0 {
			t.Fatalf("a refused Goto wrote: %+v", s)
		}
		if out, err := f.Handle(ctx, "1", 2, Msg{}); err != nil || out.Step != "Qty" {
			t.Fatalf("%+v, %v", out, err)
		}
		if _, err := f.Handle(ctx, "1", 3, Msg{}); err != nil { // N: 1 → 6
			t.Fatal(err)
		}
		if _, err := f.Handle(ctx, "1", 4, Msg{}); !errors.Is(err, session.ErrInvalid) { // 6 → 11
			t.Fatalf("a handler that leaves its data invalid: %v, want ErrInvalid", err)
		}
		// Stored data that fails (written by a binary without the rule).
		if _, err := m.Update(ctx, "1", func(b *Bot) error { b.Conv.Frames[0].Data = []byte(`{"N":50}`); return nil }); err != nil {
			t.Fatal(err)
		}
		if _, err := f.Handle(ctx, "1", 5, Msg{}); !errors.Is(err, session.ErrInvalid) {
			t.Fatalf("invalid stored step data: %v, want ErrInvalid", err)
		}
		if s, _ := f.Read(ctx, "1"); string(s.Frames[0].Data) != `{"N":50}` || s.LastUpdate != 3 {
			t.Fatalf("the stored state changed: %+v", s)
		}
	}
}
