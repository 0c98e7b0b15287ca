package conversation_test

import (
	"context"
	"errors"
	"testing"

	session "github.com/typedsession/session"
	"github.com/typedsession/session/conversation"
	"github.com/typedsession/session/store"
)

// Qty is a step whose data has a validate tag.
type Qty struct {
	N int `validate:"gte=1,lte=10"`
}

// TestStepValidation: a step's data is checked as a session's is: a Goto
// with invalid data, a handler that leaves it invalid and stored data that
// fails are session.ErrInvalid, and nothing is written.
func TestStepValidation(t *testing.T) {
	stores(t, func(t *testing.T, st store.Store) {
		ctx := context.Background()
		m, f := flowOf(t, st, newClock(), nil)
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
	})
}
