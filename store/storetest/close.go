package storetest

import (
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/typedsession/session/store"
)

// closer is a store with a Close method, as the store contract describes.
type closer interface {
	Close() error
}

func testClose(t *testing.T, s store.Store) {
	c, ok := s.(closer)
	if !ok {
		t.Skipf("%T has no Close() error method", s)
	}
	mustSet(t, s, "k", []byte("v"), 0)
	if err := c.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	check := func(op string, err error) {
		t.Helper()
		if !errors.Is(err, store.ErrClosed) {
			t.Errorf("%s after Close = %v, want an error matching store.ErrClosed", op, err)
		}
	}
	_, err := s.Get(ctx(t), "k")
	check("Get", err)
	_, err = s.Get(ctx(t), "absent")
	check("Get of an absent key", err)
	check("Set", s.Set(ctx(t), "k", []byte("w"), 0))
	check("Set of a new key", s.Set(ctx(t), "new", []byte("w"), longTTL))
	check("Delete", s.Delete(ctx(t), "k"))
	if sw, ok := s.(store.Swapper); ok {
		ok, err := sw.CompareAndSwap(ctx(t), "k", []byte("v"), []byte("w"), 0)
		check("CompareAndSwap", err)
		if ok {
			t.Errorf("CompareAndSwap after Close reported true")
		}
	}
	if d, ok := s.(store.Deleter); ok {
		ok, err := d.CompareAndDelete(ctx(t), "k", []byte("v"))
		check("CompareAndDelete", err)
		if ok {
			t.Errorf("CompareAndDelete after Close reported true")
		}
	}
	if to, ok := s.(store.Toucher); ok {
		check("Touch", to.Touch(ctx(t), "k", longTTL))
	}
	if r, ok := s.(store.Refresher); ok {
		_, err := r.GetAndTouch(ctx(t), "k", longTTL)
		check("GetAndTouch", err)
	}
	if g, ok := s.(store.TTLGetter); ok {
		_, _, err := g.GetWithTTL(ctx(t), "k")
		check("GetWithTTL", err)
	}
	if sc, ok := s.(store.Scanner); ok {
		called := false
		check("Scan", sc.Scan(ctx(t), "", func(string) error { called = true; return nil }))
		if called {
			t.Errorf("Scan after Close called fn")
		}
	}
	check("a second Close", c.Close())
}

func testCloseRacingWrites(t *testing.T, s store.Store) {
	c, ok := s.(closer)
	if !ok {
		t.Skipf("%T has no Close() error method", s)
	}
	const writers = 8
	var wg, started sync.WaitGroup
	started.Add(writers)
	errs := make(chan error, writers)
	for w := range writers {
		wg.Go(func() {
			for i := 0; ; i++ {
				err := s.Set(ctx(t), fmt.Sprintf("w%d:%d", w, i), []byte("v"), longTTL)
				if i == 10 {
					started.Done()
				}
				if err != nil {
					if !errors.Is(err, store.ErrClosed) {
						errs <- fmt.Errorf("Set racing with Close = %v, want nil or an error matching store.ErrClosed", err)
					}
					if i < 10 {
						started.Done()
					}
					return
				}
			}
		})
	}
	started.Wait()
	if err := c.Close(); err != nil {
		t.Errorf("Close while writers run: %v", err)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if _, err := s.Get(ctx(t), "w0:0"); !errors.Is(err, store.ErrClosed) {
		t.Errorf("Get after Close = %v, want an error matching store.ErrClosed", err)
	}
}
