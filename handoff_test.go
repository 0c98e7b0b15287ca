package session_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	session "github.com/typedsession/session"
)

// TestHandoff: a session handed on after a Save holds what was saved, is
// its own copy, and its Save is one compare-and-swap with no read.
func TestHandoff(t *testing.T) {
	ctx := t.Context()
	cs := newCounting(newMem(t))
	m, err := session.New(session.Config[Quiz]{Store: cs, TTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	s, err := m.Load(ctx, "u")
	if err != nil {
		t.Fatal(err)
	}
	s.Data.Score, s.Data.Answers = 1, []string{"a"}
	if err := m.Save(ctx, s); err != nil {
		t.Fatal(err)
	}
	for i := 2; i <= 10; i++ {
		cs.Reset()
		n, ok := session.Handoff(ctx, s)
		if !ok {
			t.Fatalf("step %d: Handoff declined after a successful Save", i)
		}
		if n.Data.Score != i-1 || n.IsNew() || n.Key() != "u" {
			t.Fatalf("step %d: handed session holds %+v (new %v, key %q)", i, n.Data, n.IsNew(), n.Key())
		}
		n.Data.Answers[0] = fmt.Sprint("changed in session ", i)
		if s.Data.Answers[0] == n.Data.Answers[0] {
			t.Fatalf("step %d: the handed session shares Data with the old one", i)
		}
		n.Data.Score = i
		if err := m.Save(ctx, n); err != nil {
			t.Fatal(err)
		}
		if got := cs.Snapshot(); got["CompareAndSwap"] != 1 || len(got) != 1 {
			t.Fatalf("step %d: store calls %v, want one CompareAndSwap and nothing else", i, got)
		}
		s = n
	}
	got, err := m.Load(ctx, "u")
	if err != nil || got.Data.Score != 10 {
		t.Fatalf("Load after the chain = %+v, %v; want score 10", got, err)
	}
}

// TestHandoffDeclines: Handoff refuses what might not be the stored value.
func TestHandoffDeclines(t *testing.T) {
	ctx := t.Context()
	m, err := session.New(session.Config[Quiz]{Store: newMem(t)})
	if err != nil {
		t.Fatal(err)
	}
	saved := func(t *testing.T, key string) *session.Session[Quiz] {
		t.Helper()
		s, err := m.Load(ctx, key)
		if err != nil {
			t.Fatal(err)
		}
		s.Data.Score++
		if err := m.Save(ctx, s); err != nil {
			t.Fatal(err)
		}
		return s
	}
	t.Run("written since by Update", func(t *testing.T) {
		s := saved(t, "a")
		if _, err := m.Update(ctx, "a", func(q *Quiz) error { q.Score += 10; return nil }); err != nil {
			t.Fatal(err)
		}
		if _, ok := session.Handoff(ctx, s); ok {
			t.Fatal("Handoff accepted a session whose key was written since")
		}
	})
	t.Run("deleted since", func(t *testing.T) {
		s := saved(t, "b")
		if err := m.Delete(ctx, "b"); err != nil {
			t.Fatal(err)
		}
		if _, ok := session.Handoff(ctx, s); ok {
			t.Fatal("Handoff accepted a session whose key was deleted since")
		}
	})
	t.Run("failed save", func(t *testing.T) {
		s, err := m.Load(ctx, "c")
		if err != nil {
			t.Fatal(err)
		}
		s.Data.Question = 1000 // fails validation
		if err := m.Save(ctx, s); !errors.Is(err, session.ErrInvalid) {
			t.Fatalf("Save = %v, want ErrInvalid", err)
		}
		if _, ok := session.Handoff(ctx, s); ok {
			t.Fatal("Handoff accepted a session whose Save failed")
		}
	})
	t.Run("conflict", func(t *testing.T) {
		s1, _ := m.Load(ctx, "d")
		s2, _ := m.Load(ctx, "d")
		s1.Data.Score, s2.Data.Score = 1, 2
		if err := m.Save(ctx, s1); err != nil {
			t.Fatal(err)
		}
		if err := m.Save(ctx, s2); !errors.Is(err, session.ErrConflict) {
			t.Fatalf("second Save = %v, want ErrConflict", err)
		}
		if _, ok := session.Handoff(ctx, s2); ok {
			t.Fatal("Handoff accepted the session whose Save conflicted")
		}
		// Any write attempt of the key through the manager counts, even
		// one that did not land: the winner is not handed on either.
		if _, ok := session.Handoff(ctx, s1); ok {
			t.Fatal("Handoff accepted a session whose key another save tried to write since")
		}
	})
	t.Run("pending destroy or move", func(t *testing.T) {
		s := saved(t, "e")
		s.Destroy()
		if _, ok := session.Handoff(ctx, s); ok {
			t.Fatal("Handoff accepted a session marked for Destroy")
		}
		if err := m.Save(ctx, s); err != nil {
			t.Fatal(err)
		}
		n, ok := session.Handoff(ctx, s)
		if !ok || !n.IsNew() {
			t.Fatalf("Handoff after a saved Destroy = %v, %v; want a new session", n, ok)
		}
		s = saved(t, "f")
		s.MoveTo("g")
		if _, ok := session.Handoff(ctx, s); ok {
			t.Fatal("Handoff accepted a session with a pending MoveTo")
		}
		if err := m.Save(ctx, s); err != nil {
			t.Fatal(err)
		}
		if n, ok := session.Handoff(ctx, s); !ok || n.Key() != "g" || n.Data.Score != 1 {
			t.Fatalf("Handoff after a saved MoveTo = %+v, %v; want key g, score 1", n, ok)
		}
	})
}

// TestHandoffStaleConflicts: a write from another process is not seen by
// Handoff (a write through another Manager of this process is: see
// TestAttackHandoffAfterOtherManagersWrite), and the handed session's Save
// then conflicts instead of losing that write.
func TestHandoffStaleConflicts(t *testing.T) {
	ctx := t.Context()
	st := newMem(t)
	m1, _ := session.New(session.Config[Quiz]{Store: st})
	s, err := m1.Load(ctx, "k")
	if err != nil {
		t.Fatal(err)
	}
	s.Data.Score = 1
	if err := m1.Save(ctx, s); err != nil {
		t.Fatal(err)
	}
	// The other process: a value encoded by a manager of its own, written
	// to the store without going through any manager of this one.
	other := newMem(t)
	m2, _ := session.New(session.Config[Quiz]{Store: other})
	if _, err := m2.Update(ctx, "k2", func(q *Quiz) error { q.Score = 101; return nil }); err != nil {
		t.Fatal(err)
	}
	raw, err := other.Get(ctx, "k2")
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Set(ctx, "k", raw, 0); err != nil {
		t.Fatal(err)
	}
	n, ok := session.Handoff(ctx, s)
	if !ok {
		t.Fatal("Handoff declined; it cannot see another process's writes")
	}
	n.Data.Score++
	if err := m1.Save(ctx, n); !errors.Is(err, session.ErrConflict) {
		t.Fatalf("Save of a stale handed session = %v, want ErrConflict", err)
	}
	got, _ := m1.Load(ctx, "k")
	if got.Data.Score != 101 {
		t.Fatalf("stored score %d, want 101 (the other process's write kept)", got.Data.Score)
	}
}

// TestHandoffExpiry: a handed session knows how fresh the store's expiry
// is, so an unchanged Save extends it only once it is near its end.
func TestHandoffExpiry(t *testing.T) {
	ctx := t.Context()
	cs := newCounting(newMem(t))
	const ttl = 400 * time.Millisecond // slack 40 ms
	m, err := session.New(session.Config[Quiz]{Store: cs, TTL: ttl})
	if err != nil {
		t.Fatal(err)
	}
	s, _ := m.Load(ctx, "k")
	s.Data.Score = 1
	if err := m.Save(ctx, s); err != nil {
		t.Fatal(err)
	}
	n, ok := session.Handoff(ctx, s)
	if !ok {
		t.Fatal("Handoff declined")
	}
	cs.Reset()
	if err := m.Save(ctx, n); err != nil { // unchanged, just written: fresh
		t.Fatal(err)
	}
	if w := cs.Writes(); w != 0 {
		t.Fatalf("an unchanged Save right after a write made %d store writes, want 0", w)
	}
	time.Sleep(2 * m.Slack())
	n2, ok := session.Handoff(ctx, n)
	if !ok {
		t.Fatal("Handoff declined")
	}
	cs.Reset()
	if err := m.Save(ctx, n2); err != nil {
		t.Fatal(err)
	}
	if got := cs.Calls("Touch"); got != 1 {
		t.Fatalf("an unchanged Save past the slack touched %d times, want 1 (calls %v)", got, cs.Snapshot())
	}
}

// TestHandoffHook: the hook hears of a handoff as a load with Handoff set.
func TestHandoffHook(t *testing.T) {
	ctx := t.Context()
	var mu sync.Mutex
	var events []session.Event
	m, _ := session.New(session.Config[Quiz]{Store: newMem(t), Hook: func(_ context.Context, e session.Event) {
		mu.Lock()
		events = append(events, e)
		mu.Unlock()
	}})
	s, _ := m.Load(ctx, "k")
	s.Data.Score = 3
	if err := m.Save(ctx, s); err != nil {
		t.Fatal(err)
	}
	if _, ok := session.Handoff(ctx, s); !ok {
		t.Fatal("Handoff declined")
	}
	last := events[len(events)-1]
	if last.Op != "load" || !last.Handoff || last.Outcome != session.OutcomeFound || last.Bytes == 0 {
		t.Fatalf("last event %+v, want a found load with Handoff", last)
	}
}
