package conversation_test

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	session "github.com/typedsession/session"
	"github.com/typedsession/session/conversation"
	"github.com/typedsession/session/internal/convtest"
	"github.com/typedsession/session/store"
	"github.com/typedsession/session/store/memstore"
)

type atkBot struct {
	Conv conversation.State `json:"conv"`
	Log  []string           `json:"log,omitempty"`
}

type (
	AtkRoot  struct{ N int }
	AtkRoot2 struct{}
	AtkSub   struct{}
	AtkSub2  struct{}
)

type atkTurn = conversation.Turn[atkBot, string, int]
type atkSubTurn = conversation.Turn[atkBot, string, string]

type atkClock struct{ t time.Time }

func (c *atkClock) now() time.Time { return c.t }

// atkFlows builds a root flow (result int) calling a sub-flow (result
// string) on memstore.
func atkFlows(t *testing.T, subTimeout time.Duration) (*conversation.Flow[atkBot, string, int], *conversation.Flow[atkBot, string, string], *atkClock) {
	t.Helper()
	root, sub, clk, _ := atkFlowsStore(t, subTimeout)
	return root, sub, clk
}

func atkFlowsStore(t *testing.T, subTimeout time.Duration) (*conversation.Flow[atkBot, string, int], *conversation.Flow[atkBot, string, string], *atkClock, *session.Manager[atkBot]) {
	t.Helper()
	st, err := memstore.New(memstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	clk := &atkClock{t: time.Date(2026, 12, 7, 9, 0, 0, 0, time.UTC)}
	m, err := session.New(session.Config[atkBot]{Store: st, Namespace: "atk"})
	if err != nil {
		t.Fatal(err)
	}
	state := func(b *atkBot) *conversation.State { return &b.Conv }
	root, err := conversation.New[atkBot, string, int](conversation.Config[atkBot]{Name: "root", Manager: m, Store: st, State: state, Now: clk.now})
	if err != nil {
		t.Fatal(err)
	}
	sub, err := conversation.New[atkBot, string, string](conversation.Config[atkBot]{Name: "sub", State: state, Timeout: subTimeout, Now: clk.now})
	if err != nil {
		t.Fatal(err)
	}
	root.Global(func(tt *atkTurn) (conversation.Next, bool, error) {
		switch u, _ := tt.Update(); u {
		case "/start":
			return conversation.Goto(AtkRoot{}), true, nil
		case "/cancel":
			return tt.Cancel(), true, nil
		case "/end":
			return tt.End(42), true, nil
		case "/back":
			return tt.Back(), true, nil
		}
		return conversation.Next{}, false, nil
	})
	conversation.On(root, func(tt *atkTurn, d *AtkRoot) (conversation.Next, error) {
		switch u, _ := tt.Update(); u {
		case "call":
			return conversation.Call(sub, AtkSub{}), nil
		case "next":
			return conversation.Goto(AtkRoot2{}), nil
		}
		return tt.Stay(), nil
	})
	conversation.On(root, func(tt *atkTurn, d *AtkRoot2) (conversation.Next, error) {
		switch u, _ := tt.Update(); u {
		case "back":
			return tt.Back(), nil
		case "call":
			return conversation.Call(sub, AtkSub{}), nil
		}
		return tt.Stay(), nil
	})
	conversation.OnReturn(root, sub, func(tt *atkTurn, d *AtkRoot, r string) (conversation.Next, error) {
		tt.Session().Log = append(tt.Session().Log, "ret:"+r)
		return conversation.Goto(AtkRoot2{}), nil
	})
	conversation.OnReturn(root, sub, func(tt *atkTurn, d *AtkRoot2, r string) (conversation.Next, error) {
		tt.Session().Log = append(tt.Session().Log, "ret2:"+r)
		return tt.Stay(), nil
	})
	conversation.On(sub, func(tt *atkSubTurn, d *AtkSub) (conversation.Next, error) {
		switch u, _ := tt.Update(); u {
		case "cancel":
			return tt.Cancel(), nil
		case "back":
			return tt.Back(), nil
		case "next":
			return conversation.Goto(AtkSub2{}), nil
		}
		return tt.End("done"), nil
	})
	conversation.On(sub, func(tt *atkSubTurn, d *AtkSub2) (conversation.Next, error) {
		if u, _ := tt.Update(); u == "back" {
			return tt.Back(), nil
		}
		return tt.End("done2"), nil
	})
	return root, sub, clk, m
}

func atkSend(t *testing.T, f *conversation.Flow[atkBot, string, int], id int64, u string) (conversation.Outcome[int], error) {
	t.Helper()
	var out conversation.Outcome[int]
	var err error
	func() {
		defer func() {
			if p := recover(); p != nil {
				err = errors.New("panic: " + strings.TrimSpace(strings.SplitN(toStr(p), "\n", 2)[0]))
			}
		}()
		out, err = f.Handle(context.Background(), "k", id, u)
	}()
	return out, err
}

func toStr(p any) string {
	switch v := p.(type) {
	case error:
		return v.Error()
	case string:
		return v
	}
	return "?"
}

func mustSend(t *testing.T, f *conversation.Flow[atkBot, string, int], id int64, u string) conversation.Outcome[int] {
	t.Helper()
	out, err := atkSend(t, f, id, u)
	if err != nil {
		t.Fatalf("update %d %q: %v", id, u, err)
	}
	return out
}

// A global handler's End while a sub-conversation runs: the root's result
// type is not the sub-conversation's.
func TestAttackGlobalEndInSub(t *testing.T) {
	root, _, _ := atkFlows(t, 0)
	mustSend(t, root, 1, "/start")
	mustSend(t, root, 2, "call")
	out, err := atkSend(t, root, 3, "/end")
	if err != nil {
		t.Fatalf("a global End while a sub-conversation runs: %v", err)
	}
	if !out.Ended || out.Result != 42 {
		t.Fatalf("outcome %+v", out)
	}
	if st, _ := root.Read(context.Background(), "k"); st.Active() {
		t.Fatalf("still running: %+v", st)
	}
}

// Back after a Call and its return.
func TestAttackBackAfterReturn(t *testing.T) {
	root, _, _ := atkFlows(t, 0)
	mustSend(t, root, 1, "/start")
	mustSend(t, root, 2, "call")
	mustSend(t, root, 3, "next") // sub: AtkSub -> AtkSub2
	out := mustSend(t, root, 4, "back")
	if out.Step != "AtkSub" || out.Flow != "sub" {
		t.Fatalf("back in sub: %+v", out)
	}
	out = mustSend(t, root, 5, "x") // sub ends, root AtkRoot -> Goto AtkRoot2
	if out.Step != "AtkRoot2" || out.Flow != "root" {
		t.Fatalf("after return: %+v", out)
	}
	out = mustSend(t, root, 6, "back")
	if out.Step != "AtkRoot" {
		t.Fatalf("back after return: %+v", out)
	}
}

// Cancel inside a sub-conversation ends everything.
func TestAttackCancelInSub(t *testing.T) {
	root, _, _ := atkFlows(t, 0)
	mustSend(t, root, 1, "/start")
	mustSend(t, root, 2, "call")
	out := mustSend(t, root, 3, "cancel")
	if !out.Canceled || out.Step != "" {
		t.Fatalf("cancel in sub: %+v", out)
	}
	st, _ := root.Read(context.Background(), "k")
	if st.Active() || !st.Deadline.IsZero() {
		t.Fatalf("state after cancel: %+v", st)
	}
}

// A sub-conversation's Config.Timeout without OnFlowTimeout cancels the
// whole conversation (docs/conversations.md said it ended "it (and only
// it)"; the docs now say what the code does).
func TestAttackSubFlowTimeoutDefaultCancels(t *testing.T) {
	root, _, clk := atkFlows(t, time.Minute)
	mustSend(t, root, 1, "/start")
	mustSend(t, root, 2, "call")
	clk.t = clk.t.Add(2 * time.Minute)
	rep, err := root.Sweep(context.Background())
	if err != nil || rep.Fired != 1 {
		t.Fatalf("sweep %+v, %v", rep, err)
	}
	if st, _ := root.Read(context.Background(), "k"); st.Active() {
		t.Fatalf("state after the default flow timeout: %+v", st)
	}
}

// A sub-conversation whose OnFlowTimeout ends it with a result returns
// to its parent: the way to end it and only it.
func TestAttackSubFlowTimeoutReturns(t *testing.T) {
	root, sub, clk := atkFlows(t, time.Minute)
	sub.OnFlowTimeout(func(tt *atkSubTurn) (conversation.Next, error) { return tt.End("late"), nil })
	mustSend(t, root, 1, "/start")
	mustSend(t, root, 2, "call")
	clk.t = clk.t.Add(2 * time.Minute)
	if rep, err := root.Sweep(context.Background()); err != nil || rep.Fired != 1 {
		t.Fatalf("sweep %+v, %v", rep, err)
	}
	st, _ := root.Read(context.Background(), "k")
	if len(st.Frames) != 1 || st.Frames[0].Step != "AtkRoot2" {
		t.Fatalf("state after the sub's timeout: %+v", st)
	}
}

func panics(fn func()) (msg string) {
	defer func() {
		if p := recover(); p != nil {
			msg = toStr(p)
			if msg == "?" {
				msg = "panic"
			}
		}
	}()
	fn()
	return ""
}

// Nil handlers are refused when registered, not when they would run (a
// nil OnTimeout handler would panic in the sweeper).
func TestAttackNilHandlers(t *testing.T) {
	root, _, _ := atkFlows(t, 0)
	type AtkNil struct{}
	cases := map[string]func(){
		"On":        func() { conversation.On[AtkNil](root, nil) },
		"OnTimeout": func() { conversation.OnTimeout[AtkNil](root, time.Minute, nil) },
		"Global":    func() { root.Global(nil) },
	}
	for name, fn := range cases {
		if panics(fn) == "" {
			t.Errorf("%s(nil) accepted", name)
		}
	}
}

// Duplicate, out-of-order, zero and negative update IDs.
func TestAttackUpdateIDs(t *testing.T) {
	root, _, _ := atkFlows(t, 0)
	mustSend(t, root, 100, "/start")
	if out := mustSend(t, root, 100, "next"); !out.Duplicate {
		t.Fatalf("a retry was applied: %+v", out)
	}
	if out := mustSend(t, root, 99, "next"); out.Duplicate || out.Step != "AtkRoot2" {
		t.Fatalf("an out-of-order older update: %+v", out)
	}
	if out := mustSend(t, root, 0, "x"); out.Duplicate || !out.Handled {
		t.Fatalf("id 0: %+v", out)
	}
	if out := mustSend(t, root, 0, "x"); out.Duplicate || !out.Handled {
		t.Fatalf("id 0 twice: %+v", out)
	}
	for i := int64(200); i < 200+conversation.RecentUpdates; i++ {
		mustSend(t, root, i, "x")
	}
	if out := mustSend(t, root, 150, "x"); !out.Duplicate {
		t.Fatalf("an update older than the window: %+v", out)
	}
	st, _ := root.Read(context.Background(), "k")
	if len(st.Recent) != conversation.RecentUpdates || st.LastUpdate != 215 {
		t.Fatalf("recent %v last %d", st.Recent, st.LastUpdate)
	}
}

// Registering a step twice panics; OnTimeout twice for one step.
func TestAttackRegisterTwice(t *testing.T) {
	root, _, _ := atkFlows(t, 0)
	if panics(func() {
		conversation.On(root, func(tt *atkTurn, d *AtkRoot) (conversation.Next, error) { return tt.Stay(), nil })
	}) == "" {
		t.Error("On twice accepted")
	}
	h := func(tt *atkTurn, d *AtkRoot) (conversation.Next, error) { return tt.Stay(), nil }
	conversation.OnTimeout(root, time.Minute, h)
	if panics(func() { conversation.OnTimeout(root, time.Hour, h) }) == "" {
		t.Error("OnTimeout twice for one step accepted (the second silently replaces the first)")
	}
}

// Flow names and step names.
func TestAttackBadNames(t *testing.T) {
	state := func(b *atkBot) *conversation.State { return &b.Conv }
	for _, name := range []string{"a:b", "", "x\x00"} {
		if _, err := conversation.New[atkBot, string, int](conversation.Config[atkBot]{Name: name, State: state}); err == nil {
			t.Errorf("Name %q accepted", name)
		}
	}
	st, err := memstore.New(memstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	m, err := session.New(session.Config[atkBot]{Store: st, Namespace: "atk"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conversation.New[atkBot, string, int](conversation.Config[atkBot]{Name: "root", Manager: m, Store: st, State: state, IndexNamespace: "atk"}); err == nil {
		t.Error("an IndexNamespace equal to the sessions' namespace accepted (the index's values would be scanned as sessions)")
	}
	if panics(func() { conversation.StepName[*AtkRoot]() }) == "" {
		t.Error("StepName of a pointer type accepted")
	}
}

// A timeout on one replica's sweeper races the next update on another
// replica (which runs the due timeout first): the timeout runs and is
// saved once, and its Do function runs once.
func TestAttackTimeoutRacesUpdate(t *testing.T) {
	for name, newStore := range map[string]func(testing.TB) store.Store{"memstore": memStore, "redis": redisStore} {
		t.Run(name, func(t *testing.T) {
			st := newStore(t)
			clk := convtest.NewClock()
			a := convtest.NewProc(t, st, clk, nil)
			b := convtest.NewProc(t, st, clk, nil)
			a.AtAge(t, "k")
			clk.Advance(convtest.AgeTimeout + time.Second)
			var wg sync.WaitGroup
			var sweepErr, handleErr error
			var out conversation.Outcome[convtest.Signup]
			wg.Go(func() { _, sweepErr = a.Flow.Sweep(context.Background()) })
			wg.Go(func() { out, handleErr = b.Flow.Handle(context.Background(), "k", 50, convtest.Msg{Text: "30"}) })
			wg.Wait()
			if sweepErr != nil || handleErr != nil {
				t.Fatalf("sweep: %v; handle: %v", sweepErr, handleErr)
			}
			got := a.Load(t, "k")
			if got.Fired != 1 || a.Effects.Get("k")+b.Effects.Get("k") != 1 {
				t.Fatalf("fired %d, Do ran %d+%d; outcome %+v", got.Fired, a.Effects.Get("k"), b.Effects.Get("k"), out)
			}
			if got.Conv.Active() || len(got.Results) != 0 {
				t.Fatalf("the update was applied to a timed-out step: %+v", got)
			}
		})
	}
}

// Many conversations enter a timed step at once, from many goroutines
// (replicas): their deadlines share a slot's few index values, so the
// index writes conflict. Every Handle must succeed and every timeout fire.
func TestAttackManyPendingConcurrent(t *testing.T) {
	for name, newStore := range map[string]func(testing.TB) store.Store{"memstore": memStore, "redis": redisStore} {
		t.Run(name, func(t *testing.T) {
			st := newStore(t)
			clk := convtest.NewClock()
			const n, workers = 400, 32
			procs := make([]*convtest.Proc, 4)
			for i := range procs {
				procs[i] = convtest.NewProc(t, st, clk, nil)
			}
			errs := make(chan error, n)
			var wg sync.WaitGroup
			keys := make(chan string)
			for w := range workers {
				p := procs[w%len(procs)]
				wg.Go(func() {
					for key := range keys {
						ctx := context.Background()
						if _, err := p.Flow.Handle(ctx, key, 1, convtest.Msg{Text: "/start"}); err != nil {
							errs <- err
							continue
						}
						if _, err := p.Flow.Handle(ctx, key, 2, convtest.Msg{Text: "Ann"}); err != nil {
							errs <- err
						}
					}
				})
			}
			for i := range n {
				keys <- "k" + strconv.Itoa(i)
			}
			close(keys)
			wg.Wait()
			close(errs)
			failed := 0
			for err := range errs {
				if failed == 0 {
					t.Errorf("first error: %v", err)
				}
				failed++
			}
			if failed > 0 {
				t.Fatalf("%d of %d Handles failed", failed, 2*n)
			}
			clk.Advance(convtest.AgeTimeout + 2*time.Minute)
			fired := 0
			for range 3 {
				rep, err := procs[0].Flow.Sweep(context.Background())
				if err != nil {
					t.Fatal(err)
				}
				fired += rep.Fired
			}
			if fired != n {
				t.Fatalf("%d of %d timeouts fired", fired, n)
			}
		})
	}
}

type AtkBoom struct{}

// A timeout handler that panics fails its timeout in the sweep report;
// it does not end the process from the sweeper's goroutine (where the
// caller cannot recover it), and the next sweep tries it again.
func TestAttackTimeoutHandlerPanics(t *testing.T) {
	root, _, clk := atkFlows(t, 0)
	conversation.On(root, func(tt *atkTurn, d *AtkBoom) (conversation.Next, error) { return tt.Stay(), nil })
	conversation.OnTimeout(root, time.Minute, func(tt *atkTurn, d *AtkBoom) (conversation.Next, error) {
		panic("boom")
	})
	if _, err := conversation.Start(context.Background(), root, "k", AtkBoom{}); err != nil {
		t.Fatal(err)
	}
	clk.t = clk.t.Add(2 * time.Minute)
	for range 2 {
		rep, err := root.Sweep(context.Background())
		if err != nil || rep.Fired != 0 || len(rep.Failed) != 1 || !strings.Contains(rep.Failed[0].Error(), "boom") {
			t.Fatalf("sweep: %+v, %v", rep, err)
		}
	}
	if st, _ := root.Read(context.Background(), "k"); !st.Active() || st.Frames[0].Step != "AtkBoom" {
		t.Fatalf("state: %+v", st)
	}
}

// A conversation whose history holds a step the new binary no longer has
// (a deploy removed it), in a step it does have: Back into the removed
// step must not save a state in a step this binary cannot run (after
// which every update fails with ErrUnknownStep); with no OnUnknown it
// fails with ErrUnknownStep and writes nothing.
func TestAttackBackIntoRemovedStep(t *testing.T) {
	root, _, _, m := atkFlowsStore(t, 0)
	ctx := context.Background()
	// What the old binary left: AtkRoot2, coming from the removed AtkGone.
	if _, err := m.Update(ctx, "k", func(b *atkBot) error {
		b.Conv = conversation.State{Frames: []conversation.Frame{{
			Flow: "root", Step: "AtkRoot2", Data: []byte("{}"),
			History: []conversation.Past{{Step: "AtkGone", Data: []byte("{}")}},
		}}}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	out, err := atkSend(t, root, 1, "back")
	if !errors.Is(err, conversation.ErrUnknownStep) {
		t.Errorf("Back into a removed step: %+v, %v; want ErrUnknownStep", out, err)
	}
	st, _ := root.Read(ctx, "k")
	if len(st.Frames) != 1 || st.Frames[0].Step != "AtkRoot2" || len(st.Frames[0].History) != 1 {
		t.Fatalf("stored: %+v", st)
	}
	// With OnUnknown, its fallback decides.
	root.OnUnknown(func(tt *atkTurn, fr conversation.Frame) (conversation.Next, error) {
		return conversation.Goto(AtkRoot{N: 7}), nil
	})
	out, err = atkSend(t, root, 2, "back")
	if err != nil || !out.Fallback || out.Step != "AtkRoot" {
		t.Fatalf("Back into a removed step with OnUnknown: %+v, %v", out, err)
	}
}

// A key whose stored step the binary does not have keeps failing in every
// sweep (never silently dropped) while the other keys' timeouts fire once
// and the cursor moves on.
func TestAttackUnknownStepInSweeps(t *testing.T) {
	for name, newStore := range map[string]func(testing.TB) store.Store{"memstore": memStore, "redis": redisStore} {
		t.Run(name, func(t *testing.T) {
			st := newStore(t)
			clk := convtest.NewClock()
			p := convtest.NewProc(t, st, clk, nil)
			ctx := context.Background()
			p.AtAge(t, "bad")
			p.AtAge(t, "good")
			if _, err := p.M.Update(ctx, "bad", func(b *convtest.Bot) error {
				b.Conv.Frames[0].Step = "Gone" // a deploy renamed AskAge
				return nil
			}); err != nil {
				t.Fatal(err)
			}
			fired, failed := 0, 0
			var cursor time.Time
			for range 8 {
				clk.Advance(time.Minute)
				rep, err := p.Flow.Sweep(ctx)
				if err != nil {
					t.Fatal(err)
				}
				fired += rep.Fired
				failed += len(rep.Failed)
				for _, e := range rep.Failed {
					if !errors.Is(e, conversation.ErrUnknownStep) {
						t.Fatalf("failed with %v", e)
					}
				}
				cursor = rep.Cursor
			}
			if fired != 1 || failed != 8 {
				t.Fatalf("fired %d, failed %d", fired, failed)
			}
			if !cursor.After(convtest.NewClock().Now().Add(4 * time.Minute)) {
				t.Fatalf("the cursor stayed at %v", cursor)
			}
			if b := p.Load(t, "bad"); b.Conv.Frames[0].Step != "Gone" || b.Fired != 0 {
				t.Fatalf("bad: %+v", b)
			}
		})
	}
}

var atkStrict bool

// AtkValid fails validation once atkStrict is set: a deploy that tightens
// a step's rules while conversations wait in it.
type AtkValid struct{ N int }

func (v *AtkValid) Validate() error {
	if atkStrict && v.N < 10 {
		return errors.New("N under 10")
	}
	return nil
}

func TestAttackStepValidation(t *testing.T) {
	t.Cleanup(func() { atkStrict = false })
	root, _, clk := atkFlows(t, 0)
	ctx := context.Background()
	conversation.On(root, func(tt *atkTurn, d *AtkValid) (conversation.Next, error) {
		if u, _ := tt.Update(); u == "bad" {
			d.N = -1
		}
		return tt.Stay(), nil
	})
	conversation.OnTimeout(root, time.Minute, func(tt *atkTurn, d *AtkValid) (conversation.Next, error) {
		return tt.Stay(), nil
	})
	atkStrict = true
	if _, err := conversation.Start(ctx, root, "k", AtkValid{N: 1}); !errors.Is(err, session.ErrInvalid) {
		t.Fatalf("Start with invalid data: %v", err)
	}
	atkStrict = false
	if _, err := conversation.Start(ctx, root, "k", AtkValid{N: 1}); err != nil {
		t.Fatal(err)
	}
	atkStrict = true
	if _, err := atkSend(t, root, 1, "x"); !errors.Is(err, session.ErrInvalid) {
		t.Fatalf("stored data that fails: %v", err)
	}
	clk.t = clk.t.Add(2 * time.Minute)
	rep, err := root.Sweep(ctx)
	if err != nil || len(rep.Failed) != 1 || !errors.Is(rep.Failed[0], session.ErrInvalid) {
		t.Fatalf("sweep: %+v %v", rep, err)
	}
	if out, err := root.Cancel(ctx, "k"); err != nil || !out.Canceled {
		t.Fatalf("admin Cancel: %+v, %v", out, err)
	}
	atkStrict = false
	if _, err := conversation.Start(ctx, root, "k", AtkValid{N: 20}); err != nil {
		t.Fatal(err)
	}
	atkStrict = true
	if _, err := atkSend(t, root, 3, "bad"); !errors.Is(err, session.ErrInvalid) {
		t.Fatalf("a handler leaving invalid data: %v", err)
	}
	if st, _ := root.Read(ctx, "k"); !strings.Contains(string(st.Frames[0].Data), "20") {
		t.Fatalf("written: %s", st.Frames[0].Data)
	}
}

// dueInRemovedStep returns a process whose session "k" waits in a step a
// deploy removed, with its timeout run out.
func dueInRemovedStep(t *testing.T, st store.Store) *convtest.Proc {
	t.Helper()
	clk := convtest.NewClock()
	p := convtest.NewProc(t, st, clk, nil)
	p.AtAge(t, "k")
	if _, err := p.M.Update(context.Background(), "k", func(b *convtest.Bot) error {
		b.Conv.Frames[0].Step = "Gone" // a deploy removed AskAge
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	clk.Advance(convtest.AgeTimeout + time.Second)
	return p
}

// "/cancel always wins" (docs/conversations.md): a global handler's
// Cancel, with a timeout that is due and cannot run (its step was removed
// by a deploy, its stored data no longer validates, its handler fails).
// The due timeout runs before the global handlers, and its error fails
// the whole Handle: the user cannot cancel, and the sweeper retries it
// forever; only the admin Flow.Cancel gets the key out.
func TestAttackCancelWhileTimeoutFails(t *testing.T) {
	for name, newStore := range map[string]func(testing.TB) store.Store{"memstore": memStore, "redis": redisStore} {
		t.Run(name, func(t *testing.T) {
			p := dueInRemovedStep(t, newStore(t))
			ctx := context.Background()
			// An update no global handler takes gets the timeout's error.
			if _, err := p.Flow.Handle(ctx, "k", 9, convtest.Msg{Text: "42"}); !errors.Is(err, conversation.ErrUnknownStep) {
				t.Fatalf("an answer with a due timeout in a removed step: %v, want ErrUnknownStep", err)
			}
			out, err := p.Flow.Handle(ctx, "k", 10, convtest.Msg{Text: "/cancel"})
			if err != nil || !out.Canceled {
				t.Fatalf("/cancel with a due timeout in a removed step: %+v, %v", out, err)
			}
		})
	}
}

// The same through Apply, on a session a middleware holds and saves: the
// timeout's failed run changed s.Data half way, so Apply puts back the
// data it copied and gives /cancel to the global handlers alone.
func TestAttackCancelWhileTimeoutFailsApply(t *testing.T) {
	for name, newStore := range map[string]func(testing.TB) store.Store{"memstore": memStore, "redis": redisStore} {
		t.Run(name, func(t *testing.T) {
			p := dueInRemovedStep(t, newStore(t))
			ctx := context.Background()
			s, err := p.M.Load(ctx, "k")
			if err != nil {
				t.Fatal(err)
			}
			if _, err := p.Flow.Apply(ctx, s, 9, convtest.Msg{Text: "42"}); !errors.Is(err, conversation.ErrUnknownStep) {
				t.Fatalf("an answer with a due timeout in a removed step: %v, want ErrUnknownStep", err)
			}
			// The middleware discards the failed handler's session.
			if s, err = p.M.Load(ctx, "k"); err != nil {
				t.Fatal(err)
			}
			s.Data.Seen = 77 // the handler's own change
			out, err := p.Flow.Apply(ctx, s, 10, convtest.Msg{Text: "/cancel"})
			if err != nil || !out.Canceled {
				t.Fatalf("/cancel with a due timeout in a removed step: %+v, %v", out, err)
			}
			if s.Data.Seen != 77 {
				t.Fatalf("Seen = %d: the handler's change before Apply was lost", s.Data.Seen)
			}
			if err := p.M.Save(ctx, s); err != nil {
				t.Fatal(err)
			}
			if got, err := p.Flow.Read(ctx, "k"); err != nil || got.Active() {
				t.Fatalf("after /cancel saved: %+v, %v", got, err)
			}
		})
	}
}

// A session that expired (its TTL shorter than its timeout) or was
// deleted before its deadline: the sweep drops its entry as stale and
// writes no empty session back under its key.
func TestAttackExpiredBeforeTimeout(t *testing.T) {
	st, err := memstore.New(memstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	clk := convtest.NewClock()
	p := convtest.NewProc(t, st, clk, nil)
	ctx := context.Background()
	p.AtAge(t, "k")
	if err := p.M.Delete(ctx, "k"); err != nil {
		t.Fatal(err)
	}
	before := st.Len()
	clk.Advance(convtest.AgeTimeout + 2*time.Minute)
	rep, err := p.Flow.Sweep(ctx)
	if err != nil || rep.Stale != 1 || rep.Fired != 0 {
		t.Fatalf("sweep: %+v, %v", rep, err)
	}
	if n := st.Len(); n > before {
		t.Fatalf("the sweep wrote %d values (an empty session for the expired key?)", n-before)
	}
	// /help-like: a global that takes an update with no conversation
	// writes nothing.
	p.Flow.Global(func(tt *conversation.Turn[convtest.Bot, convtest.Msg, convtest.Signup]) (conversation.Next, bool, error) {
		u, _ := tt.Update()
		return conversation.Next{}, u.Text == "/help", nil
	})
	before = st.Len()
	if out, err := p.Flow.Handle(ctx, "new", 5, convtest.Msg{Text: "/help"}); err != nil || !out.Handled {
		t.Fatalf("/help: %+v, %v", out, err)
	}
	if n := st.Len(); n != before {
		t.Fatalf("/help with no conversation wrote %d values", n-before)
	}
}

// A deploy renames the flow (Config.Name) while a conversation waits with
// a timeout. Its deadline is listed under the old name's index namespace
// ("due-" + Name): the new binary's sweeper must be given it
// (Config.IndexNamespace) or the timeout never fires without an update.
func TestAttackFlowRenamedKeepsIndex(t *testing.T) {
	for _, keep := range []bool{false, true} {
		st, err := memstore.New(memstore.Options{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		clk := convtest.NewClock()
		ctx := context.Background()
		old := convtest.NewProc(t, st, clk, nil)
		old.AtAge(t, "k")
		p := convtest.NewProc(t, st, clk, func(c *conversation.Config[convtest.Bot]) {
			c.Name = "signup2"
			if keep {
				c.IndexNamespace = "due-signup"
			}
		})
		p.Flow.OnUnknown(func(tt *conversation.Turn[convtest.Bot, convtest.Msg, convtest.Signup], fr conversation.Frame) (conversation.Next, error) {
			return tt.Cancel(), nil
		})
		clk.Advance(convtest.AgeTimeout + 2*time.Minute)
		rep, err := p.Flow.Sweep(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if got := rep.Fired == 1; got != keep {
			t.Errorf("IndexNamespace of the old name %v: sweep %+v", keep, rep)
		}
	}
}

// Call of a nil flow (a sub-flow variable not yet set) panics with a
// message naming it, not with a nil dereference deep in Handle.
func TestAttackCallNilFlow(t *testing.T) {
	var child *conversation.Flow[atkBot, string, string]
	msg := panics(func() { conversation.Call(child, AtkSub{}) })
	if !strings.Contains(msg, "nil flow") {
		t.Fatalf("Call(nil): %q", msg)
	}
}

// The sub-conversation snippet of docs/conversations.md: the order flow's
// return handler goes to Pay, which the snippet did not register (the
// street then failed with ErrNotRegistered); it now does.
type shopBot struct {
	Conv conversation.State `json:"conv"`
}
type shopAddress struct{ City, Street string }
type (
	ShopAskCity   struct{}
	ShopAskStreet struct{ City string }
	ShopCheckout  struct{ Items []string }
	ShopPay       struct {
		Items []string
		City  string
	}
)

func TestAttackDocOrderSnippet(t *testing.T) {
	st, err := memstore.New(memstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	m, err := session.New(session.Config[shopBot]{Store: st, Namespace: "shop"})
	if err != nil {
		t.Fatal(err)
	}
	state := func(b *shopBot) *conversation.State { return &b.Conv }
	order, err := conversation.New[shopBot, string, int](conversation.Config[shopBot]{Name: "order", Manager: m, Store: st, State: state})
	if err != nil {
		t.Fatal(err)
	}
	address, err := conversation.New[shopBot, string, shopAddress](conversation.Config[shopBot]{Name: "address", State: state})
	if err != nil {
		t.Fatal(err)
	}
	conversation.On(address, func(t *conversation.Turn[shopBot, string, shopAddress], d *ShopAskCity) (conversation.Next, error) {
		city, _ := t.Update()
		return conversation.Goto(ShopAskStreet{City: city}), nil
	})
	conversation.On(address, func(t *conversation.Turn[shopBot, string, shopAddress], d *ShopAskStreet) (conversation.Next, error) {
		street, _ := t.Update()
		return t.End(shopAddress{City: d.City, Street: street}), nil
	})
	conversation.On(order, func(t *conversation.Turn[shopBot, string, int], d *ShopCheckout) (conversation.Next, error) {
		return conversation.Call(address, ShopAskCity{}), nil
	})
	conversation.OnReturn(order, address, func(t *conversation.Turn[shopBot, string, int], d *ShopCheckout, a shopAddress) (conversation.Next, error) {
		return conversation.Goto(ShopPay{Items: d.Items, City: a.City}), nil
	})
	conversation.On(order, func(t *conversation.Turn[shopBot, string, int], d *ShopPay) (conversation.Next, error) {
		return t.End(len(d.Items)), nil
	})
	ctx := context.Background()
	if _, err := conversation.Start(ctx, order, "k", ShopCheckout{Items: []string{"pizza"}}); err != nil {
		t.Fatal(err)
	}
	for i, u := range []string{"go", "Rome", "Via Roma"} {
		out, err := order.Handle(ctx, "k", int64(i+1), u)
		if err != nil {
			t.Fatalf("%q: %v", u, err)
		}
		if want := []string{"address/ShopAskCity", "address/ShopAskStreet", "order/ShopPay"}[i]; out.Flow+"/"+out.Step != want {
			t.Fatalf("%q: at %s/%s, want %s", u, out.Flow, out.Step, want)
		}
	}
	if out, err := order.Handle(ctx, "k", 4, "pay"); err != nil || !out.Ended || out.Result != 1 {
		t.Fatalf("pay: %+v, %v", out, err)
	}
}

// Negative update IDs turn the check off, as 0 does.
func TestAttackNegativeUpdateID(t *testing.T) {
	root, _, _ := atkFlows(t, 0)
	mustSend(t, root, 1, "/start")
	for range 2 {
		if out := mustSend(t, root, -5, "x"); out.Duplicate || !out.Handled {
			t.Fatalf("id -5: %+v", out)
		}
	}
	if st, _ := root.Read(context.Background(), "k"); len(st.Recent) != 1 {
		t.Fatalf("recent %v", st.Recent)
	}
}
