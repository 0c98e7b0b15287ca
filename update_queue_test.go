package session_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	session "github.com/typedsession/session"
)

// TestConcurrentUpdatesQueue: Updates of one key through one manager run
// one after the other, so none conflicts, and the queued ones start from
// the session the one before saved instead of reading the store.
func TestConcurrentUpdatesQueue(t *testing.T) {
	cs := newCounting(newMem(t))
	var conflicts, handed atomic.Int64
	m, err := session.New(session.Config[Quiz]{Store: cs, TTL: time.Hour, LogKeys: true, Hook: func(_ context.Context, e session.Event) {
		switch {
		case e.Op == "update":
			conflicts.Add(int64(e.Conflicts))
		case e.Op == "load" && e.Handoff:
			handed.Add(1)
		}
	}})
	if err != nil {
		t.Fatal(err)
	}
	const workers, each = 8, 50
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for range each {
				if _, err := m.Update(t.Context(), "k", func(q *Quiz) error {
					q.Score++
					time.Sleep(50 * time.Microsecond) // let the others queue
					return nil
				}); err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	reads := cs.Calls("Get", "GetWithTTL", "GetAndTouch")
	s, _ := m.Load(t.Context(), "k")
	if s.Data.Score != workers*each {
		t.Fatalf("score %d, want %d", s.Data.Score, workers*each)
	}
	if c := conflicts.Load(); c != 0 {
		t.Errorf("%d conflicts among Updates of one manager, want 0", c)
	}
	if int64(reads)+handed.Load() != workers*each {
		t.Errorf("%d reads + %d handoffs for %d Updates, want them to add up", reads, handed.Load(), workers*each)
	}
	if reads > workers*each/2 {
		t.Errorf("%d of %d queued Updates read the store", reads, workers*each)
	}
}

// TestUpdateQueueWithOutsideWriters: writes through another manager make
// handed sessions stale; Update retries them, and nothing is lost.
func TestUpdateQueueWithOutsideWriters(t *testing.T) {
	st := newMem(t)
	m1, _ := session.New(session.Config[Quiz]{Store: st})
	m2, _ := session.New(session.Config[Quiz]{Store: st})
	var wg sync.WaitGroup
	for i := range 8 {
		m := m1
		if i%4 == 0 {
			m = m2
		}
		wg.Go(func() {
			for range 100 {
				if _, err := m.Update(t.Context(), "k", func(q *Quiz) error { q.Score++; return nil }); err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	s, _ := m1.Load(t.Context(), "k")
	if s.Data.Score != 800 {
		t.Fatalf("score %d, want 800", s.Data.Score)
	}
}

// TestUpdateWaitEnds: an Update that waits for another of the same key
// gives up waiting when ctx ends (without running fn), and a nested Update
// of the same key, which would wait for its caller, goes on after
// UpdateWait instead of deadlocking.
func TestUpdateWaitEnds(t *testing.T) {
	m, _ := session.New(session.Config[Quiz]{Store: newMem(t)})
	release := make(chan struct{})
	started := make(chan struct{})
	go func() {
		_, _ = m.Update(context.Background(), "k", func(q *Quiz) error {
			close(started)
			<-release
			q.Score++
			return nil
		})
	}()
	<-started
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Millisecond)
	defer cancel()
	ran := false
	_, err := m.Update(ctx, "k", func(q *Quiz) error { ran = true; return nil })
	if !errors.Is(err, context.DeadlineExceeded) || ran {
		t.Fatalf("Update waiting past its deadline = %v (fn ran: %v), want DeadlineExceeded, fn not run", err, ran)
	}
	close(release)

	start := time.Now()
	nested := false
	_, err = m.Update(t.Context(), "n", func(q *Quiz) error {
		q.Score++
		if nested {
			return nil
		}
		// Only in the first attempt: a nested Update always makes its
		// caller's save conflict, so one in every attempt never ends.
		nested = true
		_, err := m.Update(t.Context(), "n", func(q *Quiz) error { q.Score += 10; return nil })
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d < session.UpdateWait {
		t.Errorf("nested Update returned after %v, before UpdateWait", d)
	}
	s, _ := m.Load(t.Context(), "n")
	if s.Data.Score != 11 {
		t.Fatalf("score %d, want 11 (the outer Update retried over the inner one)", s.Data.Score)
	}
}

// TestUpdatePanicReleasesTheKey: a panic in fn leaves the key free.
func TestUpdatePanicReleasesTheKey(t *testing.T) {
	m, _ := session.New(session.Config[Quiz]{Store: newMem(t)})
	func() {
		defer func() { _ = recover() }()
		_, _ = m.Update(t.Context(), "k", func(q *Quiz) error { panic("boom") })
	}()
	ctx, cancel := context.WithTimeout(t.Context(), time.Second)
	defer cancel()
	if _, err := m.Update(ctx, "k", func(q *Quiz) error { q.Score++; return nil }); err != nil {
		t.Fatalf("Update after a panicking one = %v", err)
	}
}
