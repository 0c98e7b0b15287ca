package convtest

import (
	"context"
	"testing"

	"github.com/typedsession/session/store"
)

// Sender delivers one update of the test's chat to a bot behind a
// Telegram library's session middleware: a text message with update ID
// id, whose handler calls Proc.Flow.Apply with the session the middleware
// bound and Msg{Text: text}, and returns Apply's error to the middleware.
// It returns when the handler and the middleware's save are done.
type Sender func(id int64, text string)

// RunAdapter runs the conversation cases through a Telegram library's
// session middleware (Flow.Apply on the session it binds): newBot returns
// the Sender of a bot whose middleware keeps sessions with p.M, and the
// session key its key function gives the test's chat.
func RunAdapter(t *testing.T, newStore func(testing.TB) store.Store, newBot func(t *testing.T, p *Proc) (Sender, string)) {
	t.Run("Dialogue", func(t *testing.T) {
		p := NewProc(t, newStore(t), NewClock(), nil)
		send, key := newBot(t, p)
		for i, text := range []string{"/start", "Ann", "back", "Bob", "x", "33", "yes"} {
			send(int64(i+1), text)
		}
		b := p.Load(t, key)
		if b.Conv.Active() || len(b.Results) != 1 || b.Results[0] != (Signup{Name: "Bob", Age: 33}) || b.Seen != 6 {
			t.Fatalf("after the dialogue through the middleware: %+v", b)
		}
	})
	t.Run("OncePerUpdate", func(t *testing.T) {
		p := NewProc(t, newStore(t), NewClock(), nil)
		send, key := newBot(t, p)
		send(1, "/start")
		send(2, "Ann")
		send(2, "Ann") // a webhook retry
		send(3, "?")
		send(3, "?")
		if b := p.Load(t, key); b.Seen != 2 || b.Conv.LastUpdate != 3 {
			t.Fatalf("retried updates through the middleware: Seen %d (want 2), LastUpdate %d", b.Seen, b.Conv.LastUpdate)
		}
	})
	t.Run("Timeout", func(t *testing.T) {
		clk := NewClock()
		st := newStore(t)
		p := NewProc(t, st, clk, nil)
		send, key := newBot(t, p)
		send(1, "/start")
		send(2, "Ann")
		clk.Advance(AgeTimeout)
		// The sweeper of another process (a restart) fires it.
		if rep := Sweep(t, NewProc(t, st, clk, nil)); rep.Fired != 1 {
			t.Fatalf("the sweep: %+v", rep)
		}
		send(3, "33") // no conversation runs any more
		b := p.Load(t, key)
		if b.Fired != 1 || b.Conv.Active() || len(b.Results) != 0 || b.Seen != 1 {
			t.Fatalf("after the timeout: %+v", b)
		}
		// The next update notices a deadline no sweeper ran.
		send(4, "/start")
		send(5, "Ann")
		clk.Advance(AgeTimeout)
		send(6, "33")
		if b := p.Load(t, key); b.Fired != 2 || b.Conv.Active() {
			t.Fatalf("a deadline noticed by the next update: %+v", b)
		}
		if s, err := p.Flow.Read(context.Background(), key); err != nil || s.Active() {
			t.Fatalf("Read: %+v, %v", s, err)
		}
	})
}
