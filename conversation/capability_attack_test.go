package conversation_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	session "github.com/typedsession/session"
	"github.com/typedsession/session/conversation"
	"github.com/typedsession/session/store"
	"github.com/typedsession/session/store/memstore"
)

type Cap1Wait struct{}

// blindView is a view of a memstore with Get, Set and Delete only: a
// store of the user's own, or a wrapper (metrics, tracing) that forwards
// the three methods of store.Store and none of the optional capabilities.
// When meet is set, each Get of key waits (at most a few seconds) until
// meet readers have read it: replicas at work at once.
type blindView struct {
	mem *memstore.Store
	key string

	mu      sync.Mutex
	meet    int
	arrived int
	all     chan struct{}
}

func (b *blindView) arm(n int) {
	b.mu.Lock()
	b.meet, b.arrived, b.all = n, 0, make(chan struct{})
	b.mu.Unlock()
}

func (b *blindView) Get(ctx context.Context, k string) ([]byte, error) {
	v, err := b.mem.Get(ctx, k)
	b.mu.Lock()
	wait := b.all
	if k != b.key || b.meet == 0 {
		wait = nil
	} else if b.arrived++; b.arrived == b.meet {
		b.meet = 0
		close(b.all)
	}
	b.mu.Unlock()
	if wait != nil {
		select {
		case <-wait:
		case <-time.After(5 * time.Second): // the other replica never came: go on
		}
	}
	return v, err
}

func (b *blindView) Set(ctx context.Context, k string, v []byte, ttl time.Duration) error {
	return b.mem.Set(ctx, k, v, ttl)
}
func (b *blindView) Delete(ctx context.Context, k string) error { return b.mem.Delete(ctx, k) }

// swapView is blindView with compare-and-swap: the control.
type swapView struct{ *blindView }

func (s swapView) CompareAndSwap(ctx context.Context, k string, old, v []byte, ttl time.Duration) (bool, error) {
	return s.mem.CompareAndSwap(ctx, k, old, v, ttl)
}

// TestAttackTimeoutFiresOnceNeedsTheSessionsCompareAndSwap: a timeout's
// claim is the compare-and-swap of the Manager.Update that runs it (the
// package documentation: "each in one Manager.Update whose
// compare-and-swap is the claim"), so that a timeout runs once whichever
// replicas sweep. New checked only Config.Store, the due-index's store,
// for compare-and-swap; a Manager whose store has none (a wrapper that
// forwards Get, Set and Delete only) was accepted, and two replicas that
// swept at once both ran the timeout and its Do function, each saving
// over the other. New must refuse such a Manager (or the timeout must run
// once).
func TestAttackTimeoutFiresOnceNeedsTheSessionsCompareAndSwap(t *testing.T) {
	t.Run("the sessions' store has compare-and-swap", func(t *testing.T) { timeoutFiresOnce(t, true) })
	t.Run("the sessions' store has none", func(t *testing.T) { timeoutFiresOnce(t, false) })
}

func timeoutFiresOnce(t *testing.T, swaps bool) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	mem, err := memstore.New(memstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { mem.Close() })
	blind := &blindView{mem: mem, key: "cap:a"}
	var sessions store.Store = blind
	if swaps {
		sessions = swapView{blind}
	}
	if _, ok := sessions.(store.Swapper); ok != swaps {
		t.Fatalf("the view's compare-and-swap: %v, want %v (the premise)", ok, swaps)
	}
	t0 := time.Date(2026, 12, 7, 9, 0, 0, 0, time.UTC)
	clk := &atkClock{t: t0}
	var did atomic.Int32
	replica := func() (*conversation.Flow[atkBot, string, int], error) {
		// Each replica has its own Manager over the shared store; the
		// due-index gets the memstore itself, which has compare-and-swap.
		m, err := session.New(session.Config[atkBot]{Store: sessions, Namespace: "cap"})
		if err != nil {
			t.Fatal(err)
		}
		f, err := conversation.New[atkBot, string, int](conversation.Config[atkBot]{Name: "root", Manager: m, Store: mem,
			State: func(b *atkBot) *conversation.State { return &b.Conv }, Now: clk.now, Shards: 1})
		if err != nil {
			return nil, err
		}
		conversation.On(f, func(tt *atkTurn, d *Cap1Wait) (conversation.Next, error) { return tt.Stay(), nil })
		conversation.OnTimeout(f, time.Minute, func(tt *atkTurn, d *Cap1Wait) (conversation.Next, error) {
			tt.Do(func(context.Context) error { did.Add(1); return nil })
			return tt.End(0), nil
		})
		return f, nil
	}
	a, errA := replica()
	b, errB := replica()
	if !swaps && (errA != nil || errB != nil) {
		// Refused: the promise is not made on such a store. The error
		// must say why.
		for _, err := range []error{errA, errB} {
			if err == nil || !errors.Is(err, errors.ErrUnsupported) {
				t.Fatalf("New: %v; want an error matching errors.ErrUnsupported (the Manager's store has no compare-and-swap)", err)
			}
		}
		return
	}
	if errA != nil || errB != nil {
		t.Fatal(errA, errB)
	}
	if _, err := conversation.Start(ctx, a, "a", Cap1Wait{}); err != nil { // due 9:01:00
		t.Fatal(err)
	}
	clk.t = t0.Add(2 * time.Minute)
	blind.arm(2)
	var wg sync.WaitGroup
	for _, f := range []*conversation.Flow[atkBot, string, int]{a, b} {
		wg.Go(func() {
			if _, err := f.Sweep(ctx); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if n := did.Load(); n != 1 {
		t.Fatalf("the timeout's Do ran %d times across two replicas that swept at once; want once", n)
	}
}
