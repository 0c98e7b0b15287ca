package middleware_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"

	session "github.com/typedsession/session"
	"github.com/typedsession/session/middleware"
	"github.com/typedsession/session/store/memstore"
)

type tally struct {
	N int `json:"n"`
}

// TestRepeatOnConflict: two middleware values (two processes, as far as
// their lock tables go) update one key at once. Without RepeatOnConflict
// some saves fail with ErrConflict; with it, every update counts and no
// error reaches the caller or OnError.
func TestRepeatOnConflict(t *testing.T) {
	for _, repeat := range []bool{false, true} {
		st, err := memstore.New(memstore.Options{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		m, err := session.New(session.Config[tally]{Store: st, Namespace: "t"})
		if err != nil {
			t.Fatal(err)
		}
		var reported atomic.Int64
		opts := middleware.Options{RepeatOnConflict: repeat, OnError: func(context.Context, string, string, error) { reported.Add(1) }}
		key := func(context.Context, int) (string, error) { return "k", nil }
		handler := func(ctx context.Context, _ int) error {
			s, err := session.From[tally](ctx)
			if err != nil {
				return err
			}
			s.Data.N++
			return nil
		}
		a := middleware.New(m, key, opts).Wrap(handler)
		b := middleware.New(m, key, opts).Wrap(handler)
		var wg sync.WaitGroup
		var failed atomic.Int64
		const each = 25
		for g := range 16 {
			h := a
			if g%2 == 1 {
				h = b
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				for range each {
					if err := h(t.Context(), 0); err != nil {
						if !errors.Is(err, session.ErrConflict) {
							t.Error(err)
						}
						failed.Add(1)
					}
				}
			}()
		}
		wg.Wait()
		s, err := m.Load(t.Context(), "k")
		if err != nil {
			t.Fatal(err)
		}
		if want := 16*each - int(failed.Load()); s.Data.N != want {
			t.Fatalf("repeat=%v: N = %d, want %d (%d refused)", repeat, s.Data.N, want, failed.Load())
		}
		if repeat && (failed.Load() != 0 || reported.Load() != 0) {
			t.Fatalf("with RepeatOnConflict: %d updates failed, %d errors reported; want 0 and 0", failed.Load(), reported.Load())
		}
		t.Logf("repeat=%v: %d of %d updates refused with ErrConflict", repeat, failed.Load(), 16*each)
	}
}
