package session_test

// Attacks on Session.Handoff and Update's queue (issue 18): each lines
// Updates of one key up on the in-process lock, then writes the key from
// outside the queue between the save of the one and the handoff to the
// next, where a Load would have seen the write.

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/typedsession/session"
	"github.com/typedsession/session/store"
)

// lineUp waits until n Updates of key through m hold or wait for the key's
// lock.
func lineUp(t *testing.T, m *session.Manager[Quiz], key string, n int) {
	t.Helper()
	for session.UpdateRefs(m, key) != n {
		time.Sleep(50 * time.Microsecond)
	}
}

// queuedPair runs two Updates of key through m, the second queued behind
// the first, and calls between once the first has saved and before the
// second starts (from m's hook, which hears of the first's end while it
// still holds the key). It returns the two Updates' errors.
func queuedPair(t *testing.T, m *session.Manager[Quiz], between *func()) (error, error) {
	t.Helper()
	release := make(chan struct{})
	in := make(chan struct{})
	var first, second error
	var wg sync.WaitGroup
	wg.Go(func() {
		_, first = m.Update(t.Context(), "k", func(q *Quiz) error {
			close(in)
			<-release
			q.Score++
			return nil
		})
	})
	<-in
	wg.Go(func() {
		_, second = m.Update(t.Context(), "k", func(q *Quiz) error { q.Score++; return nil })
	})
	lineUp(t, m, "k", 2)
	close(release)
	wg.Wait()
	return first, second
}

// hookOnce returns a hook that calls *f at the first "update" event.
func hookOnce(f *func()) func(context.Context, session.Event) {
	var done atomic.Bool
	return func(_ context.Context, e session.Event) {
		if e.Op == "update" && done.CompareAndSwap(false, true) {
			(*f)()
		}
	}
}

// TestAttackHandoffAfterOtherManagersWrite: a write through another
// Manager of the same namespace in the same process, between two queued
// Updates, must make the handoff decline (the second loads and sees it),
// not hand on a stale session whose save conflicts: with MaxAttempts 1
// that conflict failed an Update that a Load would have let succeed.
func TestAttackHandoffAfterOtherManagersWrite(t *testing.T) {
	st := newMem(t)
	var between func()
	m1, err := session.New(session.Config[Quiz]{Store: st, Namespace: "q", MaxAttempts: 1, Hook: hookOnce(&between)})
	if err != nil {
		t.Fatal(err)
	}
	m2, err := session.New(session.Config[Quiz]{Store: st, Namespace: "q"})
	if err != nil {
		t.Fatal(err)
	}
	between = func() {
		if _, err := m2.Update(context.Background(), "k", func(q *Quiz) error { q.Score += 10; return nil }); err != nil {
			t.Error(err)
		}
	}
	e1, e2 := queuedPair(t, m1, &between)
	if e1 != nil || e2 != nil {
		t.Fatalf("Updates: %v, %v; want both nil", e1, e2)
	}
	s, err := m1.Load(t.Context(), "k")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(12, s.Data.Score); diff != "" {
		t.Errorf("score (-want +got):\n%s", diff)
	}
}

// TestAttackHandoffAfterOutsideDelete: another process deletes the key
// between two queued Updates (a logout). The handed session is stale; its
// conflict must not use up the Update's attempts (MaxAttempts 1 here):
// a Load would have found the key absent and succeeded.
func TestAttackHandoffAfterOutsideDelete(t *testing.T) {
	st := newMem(t)
	var between func()
	m, err := session.New(session.Config[Quiz]{Store: st, MaxAttempts: 1, Hook: hookOnce(&between)})
	if err != nil {
		t.Fatal(err)
	}
	between = func() {
		if err := st.Delete(context.Background(), "k"); err != nil { // not through m
			t.Error(err)
		}
	}
	e1, e2 := queuedPair(t, m, &between)
	if e1 != nil || e2 != nil {
		t.Fatalf("Updates: %v, %v; want both nil", e1, e2)
	}
	s, err := m.Load(t.Context(), "k")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(1, s.Data.Score); diff != "" {
		t.Errorf("score after the delete and one Update (-want +got):\n%s", diff)
	}
}

// TestAttackHandoffWithoutCompareAndSwap: on a store without
// compare-and-swap nothing catches a stale start, so a handed session
// would overwrite what another process wrote since the previous save,
// which a Load would have read. Handoff must decline there.
func TestAttackHandoffWithoutCompareAndSwap(t *testing.T) {
	mem := newMem(t)
	st := basic{mem}
	var between func()
	m, err := session.New(session.Config[Quiz]{Store: st, Hook: hookOnce(&between)})
	if err != nil {
		t.Fatal(err)
	}
	// The other process's value: 100, encoded by a manager of its own.
	other := newMem(t)
	om, err := session.New(session.Config[Quiz]{Store: other})
	if err != nil {
		t.Fatal(err)
	}
	// (Another key: this process's write counters see the key whatever
	// the store, which would make even the first handoff decline.)
	if _, err := om.Update(t.Context(), "o", func(q *Quiz) error { q.Score = 100; return nil }); err != nil {
		t.Fatal(err)
	}
	raw, err := other.Get(t.Context(), "o")
	if err != nil {
		t.Fatal(err)
	}
	between = func() {
		if err := mem.Set(context.Background(), "k", raw, 0); err != nil {
			t.Error(err)
		}
	}
	e1, e2 := queuedPair(t, m, &between)
	if e1 != nil || e2 != nil {
		t.Fatalf("Updates: %v, %v; want both nil", e1, e2)
	}
	s, err := m.Load(t.Context(), "k")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(101, s.Data.Score); diff != "" {
		t.Errorf("score: the other process's write was lost (-want +got):\n%s", diff)
	}
	// Session.Handoff itself declines on such a store.
	if _, ok := session.Handoff(t.Context(), s); ok {
		t.Error("Handoff on a store without compare-and-swap: true, want false")
	}
}

// TestAttackUpdateQueueLeavesNoLock: Updates over many keys whose fn
// panics, fails, or whose ctx ends while they wait, leave Update's lock
// table empty and every key usable.
func TestAttackUpdateQueueLeavesNoLock(t *testing.T) {
	m, err := session.New(session.Config[Quiz]{Store: newMem(t)})
	if err != nil {
		t.Fatal(err)
	}
	errFn := errors.New("fn failed")
	var wg sync.WaitGroup
	var ok atomic.Int64
	for i := range 400 {
		key := fmt.Sprintf("k%d", i%40)
		wg.Go(func() {
			ctx := t.Context()
			switch i % 4 {
			case 0:
				defer func() { _ = recover() }()
				_, _ = m.Update(ctx, key, func(q *Quiz) error { q.Score++; panic("fn panics") })
			case 1:
				_, err := m.Update(ctx, key, func(q *Quiz) error { q.Score++; return errFn })
				if !errors.Is(err, errFn) {
					t.Errorf("Update: %v, want %v", err, errFn)
				}
			case 2:
				c, cancel := context.WithCancel(ctx)
				cancel()
				_, _ = m.Update(c, key, func(q *Quiz) error { q.Score++; return nil })
			default:
				if _, err := m.Update(ctx, key, func(q *Quiz) error { q.Score++; return nil }); err != nil {
					t.Error(err)
				} else {
					ok.Add(1)
				}
			}
		})
	}
	wg.Wait()
	if n := session.UpdateLocks(m); n != 0 {
		t.Errorf("%d keys still in Update's lock table, want 0", n)
	}
	total := 0
	for i := range 40 {
		s, err := m.Load(t.Context(), fmt.Sprintf("k%d", i))
		if err != nil {
			t.Fatal(err)
		}
		total += s.Data.Score
	}
	// A cancelled ctx may still run (a free lock is taken, memstore
	// ignores ctx): count only what must be there, and at most what ran.
	if int64(total) < ok.Load() || total > 200 {
		t.Errorf("total score %d, want between %d and 200", total, ok.Load())
	}
}

// TestAttackUpdateQueueTwoManagersExact: Updates through two managers of
// one namespace, Load+Save through a third and Deletes of other keys,
// all at once on a few keys: every increment lands exactly once.
func TestAttackUpdateQueueTwoManagersExact(t *testing.T) {
	st := newMem(t)
	var ms []*session.Manager[Quiz]
	for range 3 {
		m, err := session.New(session.Config[Quiz]{Store: st, Namespace: "q", TTL: time.Hour})
		if err != nil {
			t.Fatal(err)
		}
		ms = append(ms, m)
	}
	const keys, each = 3, 40
	var wg sync.WaitGroup
	for w := range 12 {
		m := ms[w%3]
		key := fmt.Sprintf("k%d", w%keys)
		wg.Go(func() {
			for range each {
				if w%3 == 2 {
					// Load + change + Save, retried on conflict.
					err := m.Retry(t.Context(), func() error {
						s, err := m.Load(t.Context(), key)
						if err != nil {
							return err
						}
						s.Data.Score++
						return m.Save(t.Context(), s)
					})
					if err != nil {
						t.Error(err)
					}
					_ = m.Delete(t.Context(), "gone"+key)
					continue
				}
				if _, err := m.Update(t.Context(), key, func(q *Quiz) error { q.Score++; return nil }); err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	for k := range keys {
		s, err := ms[0].Load(t.Context(), fmt.Sprintf("k%d", k))
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(4*each, s.Data.Score); diff != "" {
			t.Errorf("k%d score (-want +got):\n%s", k, diff)
		}
	}
	for _, m := range ms {
		if n := session.UpdateLocks(m); n != 0 {
			t.Errorf("%d keys left in an Update lock table", n)
		}
	}
}

var _ store.Store = basic{}
