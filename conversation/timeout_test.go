package conversation_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/typedsession/session/conversation"
	"github.com/typedsession/session/store"
	"github.com/typedsession/session/store/memstore"
)

// atAge starts the sign-up of key and answers the name, so that the
// conversation waits at AskAge with its one-minute timeout.
func (p *proc) atAge(t testing.TB, key string) {
	t.Helper()
	p.send(t, key, 1, "/start")
	if out := p.send(t, key, 2, "Ann"); out.Step != "AskAge" || out.Deadline.IsZero() {
		t.Fatalf("at AskAge: %+v", out)
	}
}

func sweep(t testing.TB, p *proc) conversation.SweepReport {
	t.Helper()
	rep, err := p.flow.Sweep(context.Background())
	if err != nil {
		t.Fatalf("Sweep: %v", err)
	}
	if len(rep.Failed) > 0 {
		t.Fatalf("Sweep: failed timeouts: %v", rep.Failed)
	}
	return rep
}

// TestTimeoutAfterRestart: a step's timeout fires with no next update, in
// a process started after the one that set it (a new manager and flow
// over the same store), once.
func TestTimeoutAfterRestart(t *testing.T) {
	stores(t, func(t *testing.T, st store.Store) {
		clk := newClock()
		a := newProc(t, st, clk, nil)
		a.atAge(t, "1")
		a.atAge(t, "2")
		if rep := sweep(t, a); rep.Fired != 0 {
			t.Fatalf("a sweep before the deadline fired: %+v", rep)
		}
		clk.Advance(ageTimeout - time.Millisecond)
		if rep := sweep(t, a); rep.Fired != 0 {
			t.Fatalf("a sweep a millisecond before the deadline fired: %+v", rep)
		}

		clk.Advance(time.Millisecond)
		b := newProc(t, st, clk, nil) // the restart: a is gone
		rep := sweep(t, b)
		if rep.Fired != 2 {
			t.Fatalf("the sweep after the restart: %+v, want 2 fired", rep)
		}
		for _, key := range []string{"1", "2"} {
			got := b.load(t, key)
			if got.Fired != 1 || got.Conv.Active() || b.effects.get(key) != 1 {
				t.Errorf("key %s: Fired %d, effects %d, state %+v; want the timeout run once and the conversation cancelled", key, got.Fired, b.effects.get(key), got.Conv)
			}
		}
		if rep := sweep(t, b); rep.Fired != 0 || rep.Stale != 0 {
			t.Fatalf("a second sweep: %+v", rep)
		}
		// After Lag the cursor moves past the slot: later sweeps no longer
		// read it.
		clk.Advance(3 * time.Minute)
		rep = sweep(t, b)
		if !rep.Cursor.After(clk.Now().Add(-2 * time.Minute)) {
			t.Errorf("the cursor stayed at %v (now %v)", rep.Cursor, clk.Now())
		}
		if rep2 := sweep(t, b); rep2.Reads > 1+2*4 {
			t.Errorf("a sweep of an empty index read %d values, want at most the cursor and two slots", rep2.Reads)
		}
	})
}

// TestTimeoutOnNextUpdate: a deadline that passed is also noticed by the
// next update, which runs the timeout first; the sweeper then finds the
// entry stale.
func TestTimeoutOnNextUpdate(t *testing.T) {
	stores(t, func(t *testing.T, st store.Store) {
		clk := newClock()
		p := newProc(t, st, clk, nil)
		p.atAge(t, "1")
		clk.Advance(ageTimeout)
		out := p.send(t, "1", 3, "33")
		if !out.TimedOut || !out.Canceled || out.Handled {
			t.Fatalf("an update after the deadline: %+v; want the timeout run and the update not handled", out)
		}
		rep := sweep(t, p)
		if rep.Fired != 0 || rep.Stale != 1 {
			t.Fatalf("the sweep after: %+v, want the entry stale", rep)
		}
		if got := p.load(t, "1"); got.Fired != 1 {
			t.Errorf("Fired %d, want 1", got.Fired)
		}
	})
}

// TestTimeoutMovedOn: a conversation that left the step before its
// deadline does not time out; its entry is dropped as stale.
func TestTimeoutMovedOn(t *testing.T) {
	stores(t, func(t *testing.T, st store.Store) {
		clk := newClock()
		p := newProc(t, st, clk, nil)
		p.atAge(t, "1")
		p.send(t, "1", 3, "33")
		clk.Advance(2 * ageTimeout)
		if rep := sweep(t, p); rep.Fired != 0 || rep.Stale != 1 {
			t.Fatalf("sweep: %+v", rep)
		}
		if got := p.load(t, "1"); got.Fired != 0 || got.Conv.Frames[0].Step != "Confirm" {
			t.Fatalf("%+v", got)
		}
	})
}

// TestFlowTimeout: the flow's own timeout ends it from inside a
// sub-conversation, with the flow's handler.
func TestFlowTimeout(t *testing.T) {
	stores(t, func(t *testing.T, st store.Store) {
		clk := newClock()
		p := newProc(t, st, clk, func(c *conversation.Config[Bot]) { c.Timeout = 10 * time.Minute })
		p.flow.OnFlowTimeout(func(t *conversation.Turn[Bot, Msg, Signup]) (conversation.Next, error) {
			t.Session().Fired += 100
			return t.End(Signup{Name: "timed out in " + t.Step()}), nil
		})
		p.atAge(t, "1")
		p.send(t, "1", 3, "address") // the step's clock stops in the sub-conversation
		clk.Advance(10 * time.Minute)
		if rep := sweep(t, p); rep.Fired != 1 {
			t.Fatalf("sweep: %+v", rep)
		}
		got := p.load(t, "1")
		if got.Fired != 100 || got.Conv.Active() || len(got.Results) != 1 || got.Results[0].Name != "timed out in AskAge" {
			t.Fatalf("after the flow's timeout: %+v", got)
		}
	})
}

// TestSweepersRace: two processes sweep at once; each timeout runs and is
// saved once, and its Do function runs once, in one of them.
// Run with -count=300.
func TestSweepersRace(t *testing.T) {
	stores(t, func(t *testing.T, st store.Store) {
		clk := newClock()
		a, b := newProc(t, st, clk, nil), newProc(t, st, clk, nil)
		const n = 12
		for i := range n {
			a.atAge(t, fmt.Sprint(i))
		}
		clk.Advance(ageTimeout)
		var wg sync.WaitGroup
		reps := make([]conversation.SweepReport, 2)
		for i, p := range []*proc{a, b} {
			wg.Go(func() { reps[i] = sweep(t, p) })
		}
		wg.Wait()
		if fired := reps[0].Fired + reps[1].Fired; fired != n {
			t.Errorf("the two sweeps fired %d and %d, want %d in all", reps[0].Fired, reps[1].Fired, n)
		}
		for i := range n {
			key := fmt.Sprint(i)
			if got := a.load(t, key); got.Fired != 1 || a.effects.get(key)+b.effects.get(key) != 1 {
				t.Errorf("key %s: Fired %d, effects %d+%d; want 1", key, got.Fired, a.effects.get(key), b.effects.get(key))
			}
		}
	})
}

// TestSweeperKilled: a sweeper process dies at each point of its sweep in
// turn (the operation at that point lands, its reply is lost, and every
// later one fails); another process's sweep then runs every timeout the
// dead one had not saved, and none twice.
func TestSweeperKilled(t *testing.T) {
	for _, kind := range []string{"memstore", "redis"} {
		t.Run(kind, func(t *testing.T) {
			fresh := func(t *testing.T) store.Store {
				if kind == "redis" {
					return redisStore(t)
				}
				st, err := memstore.New(memstore.Options{})
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { st.Close() })
				return st
			}
			const n = 4
			// Count the operations of a whole sweep first.
			total := func() int64 {
				st := fresh(t)
				clk := newClock()
				newProc(t, st, clk, nil).atAgeAll(t, n)
				clk.Advance(ageTimeout)
				k := newKillable(st, 1<<62)
				sweep(t, newProc(t, k, clk, nil))
				return k.ops.Load()
			}()
			for limit := int64(1); limit <= total; limit++ {
				st := fresh(t)
				clk := newClock()
				newProc(t, st, clk, nil).atAgeAll(t, n)
				clk.Advance(ageTimeout)
				dead := newProc(t, newKillable(st, limit), clk, nil)
				if _, err := dead.flow.Sweep(context.Background()); err != nil && !errors.Is(err, errKilled) {
					t.Fatalf("limit %d: the killed sweep: %v", limit, err)
				}
				live := newProc(t, st, clk, nil)
				sweep(t, live)
				if rep := sweep(t, live); rep.Fired != 0 {
					t.Fatalf("limit %d: a third sweep fired %d", limit, rep.Fired)
				}
				for i := range n {
					key := fmt.Sprint(i)
					got := live.load(t, key)
					if got.Fired != 1 || got.Conv.Active() {
						t.Fatalf("limit %d of %d: key %s: Fired %d, state %+v; want the timeout saved once", limit, total, key, got.Fired, got.Conv)
					}
					if e := dead.effects.get(key) + live.effects.get(key); e > 1 {
						t.Fatalf("limit %d: key %s: the Do function ran %d times", limit, key, e)
					}
				}
			}
			t.Logf("killed at each of the %d operations of a sweep of %d timeouts", total, n)
		})
	}
}

func (p *proc) atAgeAll(t testing.TB, n int) {
	for i := range n {
		p.atAge(t, fmt.Sprint(i))
	}
}
