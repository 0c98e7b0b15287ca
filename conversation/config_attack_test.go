package conversation_test

import (
	"context"
	"strings"
	"testing"
	"time"

	session "github.com/typedsession/session"
	"github.com/typedsession/session/conversation"
	"github.com/typedsession/session/store/memstore"
)

type Atk4Ask struct{}

// TestAttack4ConfigErrorsNameTheField: New refused a negative Timeout,
// Granularity, Lag, Shards or MaxDepth with "a Config duration or count is
// negative", naming neither the field nor the value; it accepted a
// Reentry that is neither Restart nor KeepRunning (Start took it for
// Restart, a global Goto for KeepRunning), a Name that is not valid UTF-8
// (stored in every frame, so every Save failed with ErrInvalid), and a
// Granularity so wide that the current slot is slot 0, which the cursor
// takes for "nothing was ever listed": no timeout ever fired. Each is
// refused, naming the field and the value.
func TestAttack4ConfigErrorsNameTheField(t *testing.T) {
	state := func(b *atkBot) *conversation.State { return &b.Conv }
	st, err := memstore.New(memstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	cases := map[string]struct {
		cfg  conversation.Config[atkBot]
		want []string
	}{
		"Timeout":     {conversation.Config[atkBot]{Timeout: -time.Second}, []string{"Config.Timeout", "-1s"}},
		"Granularity": {conversation.Config[atkBot]{Granularity: -time.Minute}, []string{"Config.Granularity", "-1m0s"}},
		"Lag":         {conversation.Config[atkBot]{Lag: -time.Minute}, []string{"Config.Lag", "-1m0s"}},
		"Shards":      {conversation.Config[atkBot]{Shards: -2}, []string{"Config.Shards", "-2"}},
		"MaxDepth":    {conversation.Config[atkBot]{MaxDepth: -3}, []string{"Config.MaxDepth", "-3"}},
		"Reentry":     {conversation.Config[atkBot]{Reentry: 7}, []string{"Config.Reentry", "7"}},
		"Name UTF-8":  {conversation.Config[atkBot]{Name: "quiz\xff"}, []string{"Config.Name", `quiz\xff`}},
		"wide slots":  {conversation.Config[atkBot]{Granularity: 100 * 365 * 24 * time.Hour, Store: st}, []string{"Config.Granularity", "876000h"}},
		"wide, no ix": {conversation.Config[atkBot]{Granularity: 100 * 365 * 24 * time.Hour}, []string{"Config.Granularity", "876000h"}},
		// A sweep reads at most 1440 slots from its cursor, which stays
		// Lag behind now: with 10 ms slots and the default Lag of a
		// minute, the sweeps never reached a deadline until about 46 s
		// after it (TestAttack4FineGranularityFiresOnTime).
		"lag over the window": {conversation.Config[atkBot]{Granularity: 10 * time.Millisecond, Store: st}, []string{"Config.Lag", "1m0s", "Config.Granularity", "10ms"}},
		// Every sweep reads every shard of each slot: a million shards is
		// a million reads a sweep, a sweeper that never ends one.
		"many shards": {conversation.Config[atkBot]{Shards: 1 << 20, Store: st}, []string{"Config.Shards", "1048576"}},
	}
	for name, tc := range cases {
		cfg := tc.cfg
		if cfg.Name == "" {
			cfg.Name = "atk4"
		}
		cfg.State = state
		_, err := conversation.New[atkBot, string, int](cfg)
		if err == nil {
			t.Errorf("%s: New accepted %+v", name, tc.cfg)
			continue
		}
		for _, w := range tc.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: err = %q, want it to name %q", name, err, w)
			}
		}
	}
}

// TestAttack4WidestGranularityFires: the widest Granularity New accepts
// still fires a timeout.
func TestAttack4WidestGranularityFires(t *testing.T) {
	st, err := memstore.New(memstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	clk := &atkClock{t: time.Date(2026, 12, 7, 9, 0, 0, 0, time.UTC)}
	m, err := session.New(session.Config[atkBot]{Store: st, Namespace: "atk4"})
	if err != nil {
		t.Fatal(err)
	}
	f, err := conversation.New[atkBot, string, int](conversation.Config[atkBot]{
		Name: "atk4", Manager: m, Store: st, Now: clk.now, Granularity: 24 * time.Hour,
		State: func(b *atkBot) *conversation.State { return &b.Conv },
	})
	if err != nil {
		t.Fatal(err)
	}
	conversation.On(f, func(tt *atkTurn, d *Atk4Ask) (conversation.Next, error) { return tt.Stay(), nil })
	conversation.OnTimeout(f, time.Minute, func(tt *atkTurn, d *Atk4Ask) (conversation.Next, error) { return tt.Cancel(), nil })
	ctx := context.Background()
	if _, err := conversation.Start(ctx, f, "k", Atk4Ask{}); err != nil {
		t.Fatal(err)
	}
	clk.t = clk.t.Add(2 * time.Minute)
	rep, err := f.Sweep(ctx)
	if err != nil || rep.Fired != 1 {
		t.Fatalf("Sweep = %+v, %v; want one timeout fired", rep, err)
	}
}

// TestAttack4FineGranularityFiresOnTime: with slots of 10 ms and a Lag New
// accepts for them, a sweeper that runs every second fires a step's
// timeout within two seconds of its deadline. With the default Lag (a
// minute), which New now refuses for such slots, it fired 46 s late: a
// sweep reads at most 1440 slots (14.4 s) from its cursor, and the cursor
// stays Lag behind now.
func TestAttack4FineGranularityFiresOnTime(t *testing.T) {
	st, err := memstore.New(memstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	start := time.Date(2026, 12, 7, 9, 0, 0, 0, time.UTC)
	clk := &atkClock{t: start}
	m, err := session.New(session.Config[atkBot]{Store: st, Namespace: "atk4f"})
	if err != nil {
		t.Fatal(err)
	}
	f, err := conversation.New[atkBot, string, int](conversation.Config[atkBot]{
		Name: "atk4f", Manager: m, Store: st, Now: clk.now, Granularity: 10 * time.Millisecond, Lag: 5 * time.Second, Shards: 1,
		State: func(b *atkBot) *conversation.State { return &b.Conv },
	})
	if err != nil {
		t.Fatal(err)
	}
	conversation.On(f, func(tt *atkTurn, d *Atk4Ask) (conversation.Next, error) { return tt.Stay(), nil })
	conversation.OnTimeout(f, time.Minute, func(tt *atkTurn, d *Atk4Ask) (conversation.Next, error) { return tt.Cancel(), nil })
	ctx := context.Background()
	if _, err := conversation.Start(ctx, f, "k", Atk4Ask{}); err != nil {
		t.Fatal(err)
	}
	for s := 1; s <= 120; s++ {
		clk.t = start.Add(time.Duration(s) * time.Second)
		rep, err := f.Sweep(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if rep.Fired == 1 {
			if late := clk.t.Sub(start.Add(time.Minute)); late > 2*time.Second {
				t.Fatalf("the timeout fired %v after its deadline", late)
			}
			return
		}
	}
	t.Fatal("the timeout never fired in two minutes of sweeps every second")
}
