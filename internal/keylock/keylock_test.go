package keylock

import (
	"context"
	"errors"
	"runtime"
	"sync"
	"testing"
	"time"
)

// waitRefs waits, without sleeping, until key has refs holders and
// waiters.
func waitRefs(t *Table[int], key string, refs int) {
	for {
		t.mu.Lock()
		e := t.m[key]
		n := 0
		if e != nil {
			n = e.refs
		}
		t.mu.Unlock()
		if n == refs {
			return
		}
		runtime.Gosched()
	}
}

func TestRefcount(t *testing.T) {
	tb := New[int]()
	ctx := context.Background()
	a, err := tb.Lock(ctx, "k", 0)
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan Held[int])
	go func() {
		h, err := tb.Lock(ctx, "k", 0)
		if err != nil {
			t.Error(err)
		}
		got <- h
	}()
	waitRefs(tb, "k", 2)
	a.Unlock()
	b := <-got
	if tb.Len() != 1 {
		t.Errorf("Len = %d while held, want 1", tb.Len())
	}
	b.Unlock()
	if tb.Len() != 0 {
		t.Errorf("Len = %d after release, want 0", tb.Len())
	}
}

func TestGiveUp(t *testing.T) {
	tb := New[int]()
	a, _ := tb.Lock(context.Background(), "k", 0)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() {
		_, err := tb.Lock(ctx, "k", 0)
		done <- err
	}()
	waitRefs(tb, "k", 2)
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("Lock = %v, want context.Canceled", err)
	}
	if _, err := tb.Lock(context.Background(), "k", time.Millisecond); !errors.Is(err, ErrTimeout) {
		t.Fatalf("Lock with a wait limit = %v, want ErrTimeout", err)
	}
	a.UnlockWith(7) // nobody waits: dropped
	if tb.Len() != 0 {
		t.Fatalf("Len = %d, want 0", tb.Len())
	}
	// A free lock is taken even with an ended ctx, and holds no value.
	h, err := tb.Lock(ctx, "k", 0)
	if err != nil || h.HasPrev || h.e == nil {
		t.Fatalf("Lock = %+v, %v; want the lock, no value", h, err)
	}
	h.Unlock()
}

// TestValuePassesToTheNextHolderOnly: a value left with UnlockWith reaches
// the next holder, once, and never a later one.
func TestValuePassesToTheNextHolderOnly(t *testing.T) {
	tb := New[int]()
	const n = 1000
	var wg sync.WaitGroup
	var mu sync.Mutex
	last, seen := 0, 0
	for range 8 {
		wg.Go(func() {
			for range n / 8 {
				h, err := tb.Lock(context.Background(), "k", 0)
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				if h.HasPrev {
					if h.Prev != last {
						t.Errorf("got %d, the previous holder left %d", h.Prev, last)
					}
					seen++
				}
				last++
				v := last
				mu.Unlock()
				h.UnlockWith(v)
			}
		})
	}
	wg.Wait()
	if tb.Len() != 0 {
		t.Fatalf("Len = %d, want 0", tb.Len())
	}
	t.Logf("%d of %d holders got the previous holder's value", seen, n)
}
