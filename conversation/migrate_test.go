package conversation_test

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	session "github.com/typedsession/session"
	"github.com/typedsession/session/conversation"
	"github.com/typedsession/session/migrate"
	"github.com/typedsession/session/store"
)

// Hello is a first step both binaries of these tests have.
type Hello struct{}

// flowOf returns a manager (with plan) and a flow of Bot over st.
func flowOf(t *testing.T, st store.Store, clk *clock, plan *migrate.Plan) (*session.Manager[Bot], *conversation.Flow[Bot, Msg, Signup]) {
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

// TestMigrateStepData: a deploy changes a step's data (a name becomes a
// first and a last name) while conversations are in that step, one with
// the step in its history; the new binary's plan migrates them, its
// handlers and its sweeper get the new shape, and the old shape is gone
// from the store after the next save.
func TestMigrateStepData(t *testing.T) {
	stores(t, func(t *testing.T, st store.Store) {
		clk := newClock()
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
	})
}

// TestRemovedStep: a deploy removes a step while a conversation is in
// it. Without a fallback, every Handle, sweep and Move fails with
// ErrUnknownStep and the stored value stays byte for byte (never a silent
// reset); Read and Cancel still work. With OnUnknown, the fallback gets
// the stored frame and moves the conversation on.
func TestRemovedStep(t *testing.T) {
	stores(t, func(t *testing.T, st store.Store) {
		clk := newClock()
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
	})
}
