package session_test

import (
	"context"
	"errors"
	"sync"
	"testing"

	"github.com/typedsession/session"
	"github.com/typedsession/session/internal/binding"
)

// TestBindingEnd: after End, From reports ErrNoSession whether or not the
// session was loaded, End returns the loaded session, and a load never
// starts after End.
func TestBindingEnd(t *testing.T) {
	ctx := t.Context()
	m := newManager(t, session.Config[Quiz]{Store: newMem(t)})
	loads := 0
	load := func(ctx context.Context) (*session.Session[Quiz], error) {
		loads++
		return m.Load(ctx, "u")
	}

	ctx1, b := binding.Bind(ctx, load)
	if s, ok := b.End(); ok || s != nil {
		t.Fatal("End of a binding nobody asked for returned a session")
	}
	if _, err := session.From[Quiz](ctx1); !errors.Is(err, session.ErrNoSession) {
		t.Errorf("From after End = %v, want ErrNoSession", err)
	}
	if loads != 0 {
		t.Errorf("%d loads after End, want 0", loads)
	}

	ctx2, b := binding.Bind(ctx, load)
	s1, err := session.From[Quiz](ctx2)
	if err != nil {
		t.Fatal(err)
	}
	if s, ok := b.End(); !ok || s != s1 {
		t.Error("End did not return the loaded session")
	}
	if s, ok := b.End(); !ok || s != s1 {
		t.Error("a second End did not return the same")
	}
	if _, err := session.From[Quiz](ctx2); !errors.Is(err, session.ErrNoSession) {
		t.Errorf("From after End of a loaded binding = %v, want ErrNoSession", err)
	}
}

func TestBindNil(t *testing.T) {
	ctx := t.Context()
	m := newManager(t, session.Config[Quiz]{Store: newMem(t)})
	outer, _ := binding.Bind(ctx, func(ctx context.Context) (*session.Session[Quiz], error) { return m.Load(ctx, "u") })
	inner, b := binding.Bind[*session.Session[Quiz]](outer, nil)
	if _, err := session.From[Quiz](inner); !errors.Is(err, session.ErrNoSession) {
		t.Errorf("From in Bind(ctx, nil) = %v, want ErrNoSession", err)
	}
	if _, ok := b.End(); ok {
		t.Error("End of a nil binding returned a session")
	}
}

// TestBindingLoaderPanics: a loader that panics lets the panic through
// once, and the binding then reports an error instead of a nil session.
func TestBindingLoaderPanics(t *testing.T) {
	ctx, b := binding.Bind(t.Context(), func(context.Context) (*session.Session[Quiz], error) { panic("loader bug") })
	func() {
		defer func() {
			if recover() == nil {
				t.Error("the loader's panic did not propagate")
			}
		}()
		session.From[Quiz](ctx)
	}()
	if s, err := session.From[Quiz](ctx); s != nil || err == nil {
		t.Errorf("From after the loader panicked = %v, %v; want an error", s, err)
	}
	if _, ok := b.End(); ok {
		t.Error("End after a panicked load returned a session")
	}
}

// TestBindingEndWaitsForALoad: End called while a load runs waits for it,
// so whatever the loader acquired can be released after End returns.
func TestBindingEndWaitsForALoad(t *testing.T) {
	m := newManager(t, session.Config[Quiz]{Store: newMem(t)})
	inside, release := make(chan struct{}), make(chan struct{})
	var acquired bool
	ctx, b := binding.Bind(t.Context(), func(ctx context.Context) (*session.Session[Quiz], error) {
		acquired = true
		close(inside)
		<-release
		return m.Load(ctx, "u")
	})
	var wg sync.WaitGroup
	wg.Go(func() { session.From[Quiz](ctx) })
	<-inside
	ended := make(chan bool)
	go func() {
		_, ok := b.End()
		ended <- ok
	}()
	close(release)
	if ok := <-ended; !ok || !acquired {
		t.Errorf("End during a load returned ok=%v, want the session the load made", ok)
	}
	wg.Wait()
}
