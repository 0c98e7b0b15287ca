package conversation_test

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	session "github.com/typedsession/session"
	"github.com/typedsession/session/conversation"
	"github.com/typedsession/session/store/memstore"
)

type Atk1Wait struct{}

// swapNoDelete is a store with compare-and-swap but no compare-and-delete
// (no store.Deleter): what conversation.New asks for. Before its first
// write of a due-index slot value it runs before: another process at work.
type swapNoDelete struct {
	mem    *memstore.Store
	before func()
}

func (s *swapNoDelete) Get(ctx context.Context, k string) ([]byte, error) { return s.mem.Get(ctx, k) }
func (s *swapNoDelete) Set(ctx context.Context, k string, v []byte, ttl time.Duration) error {
	return s.mem.Set(ctx, k, v, ttl)
}
func (s *swapNoDelete) CompareAndSwap(ctx context.Context, k string, old, v []byte, ttl time.Duration) (bool, error) {
	s.hook(k)
	return s.mem.CompareAndSwap(ctx, k, old, v, ttl)
}
func (s *swapNoDelete) Delete(ctx context.Context, k string) error {
	s.hook(k)
	return s.mem.Delete(ctx, k)
}

// hook runs before once, before the first write of a due-index slot
// value (not the cursor) after it is set: the sweep's write of the slot
// it emptied.
func (s *swapNoDelete) hook(k string) {
	if b := s.before; b != nil && strings.HasPrefix(k, "due-root:") && k != "due-root:cursor" {
		s.before = nil
		b()
	}
}

// TestAttackSweepNeverErasesADeadlineListedMeanwhile: the due-index
// needs only compare-and-swap (New refuses a store without it), but a
// sweep that emptied a slot value deleted it with Destroy, which on a
// store without compare-and-delete deletes whatever is there: a deadline
// another process listed in that slot since the sweep read it was
// erased, and its timeout never fired. Without a store.Deleter the
// emptied value is written empty (by compare-and-swap) instead.
func TestAttackSweepNeverErasesADeadlineListedMeanwhile(t *testing.T) {
	ctx := context.Background()
	mem, err := memstore.New(memstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { mem.Close() })
	st := &swapNoDelete{mem: mem}
	t0 := time.Date(2026, 12, 7, 9, 0, 0, 0, time.UTC)
	clk := &atkClock{t: t0}
	m, err := session.New(session.Config[atkBot]{Store: st, Namespace: "atk"})
	if err != nil {
		t.Fatal(err)
	}
	state := func(b *atkBot) *conversation.State { return &b.Conv }
	root, err := conversation.New[atkBot, string, int](conversation.Config[atkBot]{Name: "root", Manager: m, Store: st, State: state, Now: clk.now, Shards: 1})
	if err != nil {
		t.Fatal(err)
	}
	var fired atomic.Int32
	conversation.On(root, func(tt *atkTurn, d *Atk1Wait) (conversation.Next, error) { return tt.Stay(), nil })
	conversation.OnTimeout(root, time.Minute, func(tt *atkTurn, d *Atk1Wait) (conversation.Next, error) {
		fired.Add(1)
		return tt.End(0), nil
	})
	if _, err := conversation.Start(ctx, root, "a", Atk1Wait{}); err != nil { // due 9:01:00
		t.Fatal(err)
	}
	clk.t = t0.Add(2 * time.Minute)
	st.before = func() {
		// Another process (its clock half a minute behind) starts a
		// conversation due in the slot the sweep is emptying.
		clk.t = t0.Add(30 * time.Second)
		defer func() { clk.t = t0.Add(2 * time.Minute) }()
		if _, err := conversation.Start(ctx, root, "b", Atk1Wait{}); err != nil { // due 9:01:30
			t.Error(err)
		}
	}
	for range 3 {
		if _, err := root.Sweep(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if st.before != nil {
		t.Fatal("the sweep wrote no due-index slot value (the premise)")
	}
	if n := fired.Load(); n != 2 {
		t.Fatalf("%d timeouts fired; want 2 (b's deadline was listed while the sweep emptied its slot)", n)
	}
}
