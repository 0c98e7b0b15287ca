package conversation_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/typedsession/session/conversation"
	"github.com/typedsession/session/internal/convtest"
)

// Apply decided whether to copy the data (so that /cancel can win over a
// timeout that has run out and fails) by a clock reading and a deadline of
// its own, before the run read the clock again and recomputed the
// deadline: a deadline that passed between the two readings made the run
// fire the failing timeout with no copy to put back, and /cancel got the
// timeout's error. The decision is the run's own: one reading, one
// deadline.
func TestAttackApplyCancelWhenDeadlinePassesDuringApply(t *testing.T) {
	clk := convtest.NewClock()
	var ticking atomic.Bool
	now := func() time.Time {
		n := clk.Now()
		if ticking.Load() {
			clk.Advance(time.Second) // every reading is a second after the last
		}
		return n
	}
	p := convtest.NewProc(t, memStore(t), clk, func(c *conversation.Config[convtest.Bot]) { c.Now = now })
	ctx := context.Background()
	p.AtAge(t, "k")
	if _, err := p.M.Update(ctx, "k", func(b *convtest.Bot) error {
		b.Conv.Frames[0].Step = "Gone" // a deploy removed AskAge
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	clk.Advance(convtest.AgeTimeout - time.Millisecond) // due within a second
	s, err := p.M.Load(ctx, "k")
	if err != nil {
		t.Fatal(err)
	}
	ticking.Store(true)
	out, err := p.Flow.Apply(ctx, s, 10, convtest.Msg{Text: "/cancel"})
	ticking.Store(false)
	if err != nil || !out.Canceled {
		t.Fatalf("/cancel as the timeout of a removed step falls due: %+v, %v; want canceled", out, err)
	}
}
