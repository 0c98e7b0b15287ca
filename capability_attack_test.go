package session_test

import (
	"context"
	"errors"
	"testing"
	"time"

	session "github.com/typedsession/session"
	"github.com/typedsession/session/store"
	"github.com/typedsession/session/store/memstore"
)

type capCounter struct {
	N int `json:"n"`
}

// deleteNoSwap is a store with compare-and-delete but no compare-and-swap:
// every write is a blind Set. Its first CompareAndDelete lands, then runs
// meanwhile (another process at work), then loses its reply.
type deleteNoSwap struct {
	mem       *memstore.Store
	meanwhile func()
}

func (d *deleteNoSwap) Get(ctx context.Context, k string) ([]byte, error) { return d.mem.Get(ctx, k) }
func (d *deleteNoSwap) Set(ctx context.Context, k string, v []byte, ttl time.Duration) error {
	return d.mem.Set(ctx, k, v, ttl)
}
func (d *deleteNoSwap) Delete(ctx context.Context, k string) error { return d.mem.Delete(ctx, k) }
func (d *deleteNoSwap) CompareAndDelete(ctx context.Context, k string, old []byte) (bool, error) {
	ok, err := d.mem.CompareAndDelete(ctx, k, old)
	if f := d.meanwhile; f != nil && ok && err == nil {
		d.meanwhile = nil
		f()
		return false, errors.New("connection reset by peer (the reply was lost)")
	}
	return ok, err
}

// TestAttackDestroyOnStoreWithoutSwapIsUnknownWhenItLanded: a Destroy
// whose compare-and-delete landed and lost its reply is resent; the resend
// finds another value, and the write protocol settled it by reading the
// key: a value built on the one the Destroy loaded was taken as proof that
// the delete had not landed (ErrConflict: "the session changed since it
// was loaded", a promise that nothing was deleted). That proof holds only
// where every write is a compare-and-swap, which can replace the loaded
// value only while it is there. On a store without compare-and-swap
// another process that loaded the same value writes it blindly after the
// delete: the delete landed, and the outcome is unknown to the caller,
// never a conflict. (Found by the simulation with the capability profile
// Deleter+Scanner, which the quick run does not go through.)
func TestAttackDestroyOnStoreWithoutSwapIsUnknownWhenItLanded(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	mem, err := memstore.New(memstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { mem.Close() })
	st := &deleteNoSwap{mem: mem}
	if _, ok := any(st).(store.Swapper); ok {
		t.Fatal("the store has compare-and-swap (the premise)")
	}
	newManager := func() *session.Manager[capCounter] {
		m, err := session.New(session.Config[capCounter]{Store: st, Namespace: "cap"})
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	a, b := newManager(), newManager() // two processes
	if _, err := a.Update(ctx, "k", func(c *capCounter) error { c.N = 1; return nil }); err != nil {
		t.Fatal(err)
	}
	sa, err := a.Load(ctx, "k")
	if err != nil {
		t.Fatal(err)
	}
	sb, err := b.Load(ctx, "k")
	if err != nil {
		t.Fatal(err)
	}
	sb.Data.N = 2
	st.meanwhile = func() {
		// After the delete landed: the other process saves the value it
		// loaded before, blindly (the store has no compare-and-swap).
		if err := b.Save(ctx, sb); err != nil {
			t.Error(err)
		}
	}
	sa.Destroy()
	err = a.Save(ctx, sa)
	if st.meanwhile != nil {
		t.Fatal("the compare-and-delete never landed (the premise)")
	}
	if errors.Is(err, session.ErrConflict) || !errors.Is(err, session.ErrOutcomeUnknown) {
		t.Fatalf("Destroy whose delete landed: %v; want ErrOutcomeUnknown, not ErrConflict (which says nothing was deleted)", err)
	}
}
