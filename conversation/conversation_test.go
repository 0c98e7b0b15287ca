package conversation_test

import (
	"context"
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/typedsession/session/conversation"
	"github.com/typedsession/session/store"
)

// TestSteps walks the sign-up flow: typed steps, stay, back, a global
// /start that (re)enters it, and the typed result at the end.
func TestSteps(t *testing.T) {
	stores(t, func(t *testing.T, st store.Store) {
		p := newProc(t, st, newClock(), nil)
		const key = "42"
		if out := p.send(t, key, 1, "hello"); out.Handled {
			t.Fatalf("an update with no conversation and no global for it was handled: %+v", out)
		}
		if out := p.send(t, key, 2, "/start"); !out.Handled || out.Step != "AskName" || out.Flow != "signup" {
			t.Fatalf("/start: %+v", out)
		}
		p.send(t, key, 3, "Ann")
		if out := p.send(t, key, 4, "not a number"); out.Step != "AskAge" {
			t.Fatalf("a bad age does not stay: %+v", out)
		}
		if out := p.send(t, key, 5, "back"); out.Step != "AskName" {
			t.Fatalf("back from AskAge: %+v", out)
		}
		p.send(t, key, 6, "Bob")
		if out := p.send(t, key, 7, "33"); out.Step != "Confirm" {
			t.Fatalf("age: %+v", out)
		}
		if out := p.send(t, key, 8, "no"); out.Step != "AskAge" {
			t.Fatalf("no at Confirm goes back: %+v", out)
		}
		p.send(t, key, 9, "34")
		out := p.send(t, key, 10, "yes")
		if !out.Ended || out.Step != "" {
			t.Fatalf("yes at Confirm ends: %+v", out)
		}
		want := Signup{Name: "Bob", Age: 34}
		if diff := cmp.Diff(want, out.Result); diff != "" {
			t.Errorf("Outcome.Result mismatch (-want +got):\n%s", diff)
		}
		b := p.load(t, key)
		if diff := cmp.Diff([]Signup{want}, b.Results); diff != "" {
			t.Errorf("OnEnd's result in the session mismatch (-want +got):\n%s", diff)
		}
		if b.Conv.Active() || b.Conv.LastUpdate != 10 {
			t.Errorf("state after the end: %+v", b.Conv)
		}
	})
}

// TestCancelWins: a global /cancel runs before the step's handler, in a
// sub-conversation too, and ends the whole conversation.
func TestCancelWins(t *testing.T) {
	stores(t, func(t *testing.T, st store.Store) {
		p := newProc(t, st, newClock(), nil)
		const key = "7"
		p.send(t, key, 1, "/start")
		p.send(t, key, 2, "Ann")
		if out := p.send(t, key, 3, "address"); out.Flow != "address" || out.Step != "AskCity" {
			t.Fatalf("Call: %+v", out)
		}
		out := p.send(t, key, 4, "/cancel")
		if !out.Canceled || out.Step != "" {
			t.Fatalf("/cancel: %+v", out)
		}
		b := p.load(t, key)
		if b.Conv.Active() || b.Seen != 2 {
			t.Errorf("after /cancel: %+v (the steps' handlers ran %d times, want 2)", b.Conv, b.Seen)
		}
	})
}

// TestSubConversation: a sub-conversation returns its typed result to the
// step that called it; back works inside it; the depth is bounded.
func TestSubConversation(t *testing.T) {
	stores(t, func(t *testing.T, st store.Store) {
		p := newProc(t, st, newClock(), nil)
		const key = "9"
		p.send(t, key, 1, "/start")
		p.send(t, key, 2, "Ann")
		p.send(t, key, 3, "address")
		p.send(t, key, 4, "Paris")
		if out := p.send(t, key, 5, "back"); out.Flow != "address" || out.Step != "AskCity" {
			t.Fatalf("back inside the sub-conversation: %+v", out)
		}
		p.send(t, key, 6, "Lyon")
		out := p.send(t, key, 7, "Rue Neuve")
		if out.Flow != "signup" || out.Step != "Confirm" {
			t.Fatalf("the end of the sub-conversation: %+v", out)
		}
		b := p.load(t, key)
		if len(b.Conv.Frames) != 1 {
			t.Fatalf("frames after the return: %+v", b.Conv.Frames)
		}
		out = p.send(t, key, 8, "yes")
		if diff := cmp.Diff(Signup{Name: "Ann", City: "Lyon"}, out.Result); diff != "" {
			t.Errorf("result mismatch (-want +got):\n%s", diff)
		}

		// MaxDepth 1: the root alone, so a Call fails and writes nothing.
		q := newProc(t, st, newClock(), func(c *conversation.Config[Bot]) { c.MaxDepth = 1 })
		q.send(t, "10", 1, "/start")
		q.send(t, "10", 2, "Ann")
		_, err := q.flow.Handle(context.Background(), "10", 3, Msg{Text: "address"})
		if !errors.Is(err, conversation.ErrTooDeep) {
			t.Fatalf("a Call beyond MaxDepth: %v, want ErrTooDeep", err)
		}
		if b := q.load(t, "10"); b.Conv.LastUpdate != 2 || b.Conv.Frames[0].Step != "AskAge" {
			t.Errorf("a failed Handle wrote: %+v", b.Conv)
		}
	})
}

// TestOncePerUpdate: an update applied again (a webhook retry, another
// replica) changes nothing; two managers (two replicas) handling the same
// updates at once apply each once.
func TestOncePerUpdate(t *testing.T) {
	stores(t, func(t *testing.T, st store.Store) {
		clk := newClock()
		a, b := newProc(t, st, clk, nil), newProc(t, st, clk, nil)
		const key = "5"
		a.send(t, key, 100, "/start")
		a.send(t, key, 101, "Ann")
		out := b.send(t, key, 101, "Ann")
		if !out.Duplicate || out.Handled {
			t.Fatalf("a retried update: %+v", out)
		}
		if got := a.load(t, key); got.Seen != 1 || got.Conv.Frames[0].Step != "AskAge" {
			t.Fatalf("after the retry: %+v", got)
		}
		// Both replicas get updates 102..111 (stays at AskAge), at once.
		done := make(chan error, 2)
		for _, p := range []*proc{a, b} {
			go func() {
				for id := int64(102); id <= 111; id++ {
					if _, err := p.flow.Handle(context.Background(), key, id, Msg{Text: "?"}); err != nil {
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
		if got := a.load(t, key); got.Seen != 11 || got.Conv.LastUpdate != 111 {
			t.Errorf("10 updates sent by two replicas: Seen %d (want 11), LastUpdate %d", got.Seen, got.Conv.LastUpdate)
		}
	})
}

// TestAdmin reads, moves and cancels a user's conversation from code.
func TestAdmin(t *testing.T) {
	stores(t, func(t *testing.T, st store.Store) {
		p := newProc(t, st, newClock(), nil)
		ctx := context.Background()
		const key = "11"
		if _, err := conversation.Move(ctx, p.flow, key, Confirm{}); !errors.Is(err, conversation.ErrNoConversation) {
			t.Fatalf("Move with no conversation: %v", err)
		}
		if _, err := conversation.Start(ctx, p.flow, key, AskAge{Name: "Zoe"}); err != nil {
			t.Fatal(err)
		}
		s, err := p.flow.Read(ctx, key)
		if err != nil || s.Frames[0].Step != "AskAge" || string(s.Frames[0].Data) != `{"Name":"Zoe"}` {
			t.Fatalf("Read: %+v, %v", s, err)
		}
		out, err := conversation.Move(ctx, p.flow, key, Confirm{Name: "Zoe", Age: 9})
		if err != nil || out.Step != "Confirm" {
			t.Fatalf("Move: %+v, %v", out, err)
		}
		if _, err := conversation.Move(ctx, p.flow, key, AskCity{}); !errors.Is(err, conversation.ErrNotRegistered) {
			t.Fatalf("Move to another flow's step: %v", err)
		}
		if out, err := p.flow.Cancel(ctx, key); err != nil || !out.Canceled {
			t.Fatalf("Cancel: %+v, %v", out, err)
		}
		if s, _ := p.flow.Read(ctx, key); s.Active() {
			t.Fatalf("after Cancel: %+v", s)
		}
	})
}
