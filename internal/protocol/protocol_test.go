package protocol_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/typedsession/session/internal/errs"
	"github.com/typedsession/session/internal/protocol"
	"github.com/typedsession/session/internal/sim"
	"github.com/typedsession/session/store"
	"github.com/typedsession/session/store/memstore"
)

// faulty returns a memstore behind the simulation's fault wrapper, in
// which the first call of method on key gets fault f, and the protocol over
// it; calls are recorded under operation 1 (ctx).
func faulty(t *testing.T, method, key string, f sim.Fault) (*protocol.Store, *sim.Store, store.Store, context.Context) {
	t.Helper()
	inner, err := memstore.New(memstore.Options{CleanupInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { inner.Close() })
	done := false
	st := sim.New(inner, sim.Options{Plan: func(c sim.CallInfo) sim.Fault {
		if c.Method == method && c.Key == key && !done {
			done = true
			return f
		}
		return sim.None
	}})
	return protocol.New(st.View(sim.CapAll)), st, inner, sim.WithOp(t.Context(), 1)
}

func methods(calls []sim.Call) []string {
	var out []string
	for _, c := range calls {
		out = append(out, c.Method)
	}
	return out
}

// A blind delete whose reply is lost is not sent again (a resend could
// delete a value written after the first attempt landed): a read settles it.
func TestDeleteAnyLostReplySettledByRead(t *testing.T) {
	p, st, inner, ctx := faulty(t, "Delete", "k", sim.LostReply)
	if err := inner.Set(ctx, "k", []byte("v"), 0); err != nil {
		t.Fatal(err)
	}
	if err := p.DeleteAny(ctx, "k"); err != nil {
		t.Fatalf("DeleteAny through a lost reply = %v; want nil (the key is gone)", err)
	}
	if got := methods(st.Take(1)); len(got) != 2 || got[0] != "Delete" || got[1] != "Get" {
		t.Fatalf("calls %v; want one Delete, then a Get", got)
	}
}

// A write "only if absent" whose reply is lost is settled by a read, not
// resent: the read finds the write, so it is done.
func TestCreateLostReplySettledByRead(t *testing.T) {
	p, st, _, ctx := faulty(t, "CompareAndSwap", "k", sim.LostReply)
	if err := p.Write(ctx, "k", protocol.Old{}, protocol.Value{Raw: []byte("v")}); err != nil {
		t.Fatalf("Write through a lost reply = %v; want nil", err)
	}
	if got := methods(st.Take(1)); len(got) != 2 || got[0] != "CompareAndSwap" || got[1] != "Get" {
		t.Fatalf("calls %v; want one CompareAndSwap, then a Get", got)
	}
}

// The same write, when the key was deleted after the first attempt landed:
// the outcome is open, and the key is not created a second time.
func TestCreateLostReplyThenDeletedIsUnknown(t *testing.T) {
	inner, err := memstore.New(memstore.Options{CleanupInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { inner.Close() })
	st := &landedThenDeleted{Store: inner}
	err = protocol.New(st).Write(t.Context(), "k", protocol.Old{}, protocol.Value{Raw: []byte("v")})
	if !errors.Is(err, errs.OutcomeUnknown) {
		t.Fatalf("Write = %v; want ErrOutcomeUnknown", err)
	}
	// The outcome is unknown because of the lost reply: its error stays a
	// cause, whatever the read that settles found (a store's "writes are
	// down" must reach OnError's errors.Is).
	if !errors.Is(err, errConnReset) {
		t.Fatalf("Write = %v; want the lost reply's error among its causes", err)
	}
	if st.swaps != 1 {
		t.Fatalf("%d compare-and-swaps sent; want 1 (never resent)", st.swaps)
	}
	if _, err := inner.Get(t.Context(), "k"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("the key after the write: %v; want absent (deleted by another writer, not created again)", err)
	}
}

// landedThenDeleted is a store whose every compare-and-swap lands, is
// deleted at once by another writer, and loses its reply.
type landedThenDeleted struct {
	*memstore.Store
	swaps int
}

func (l *landedThenDeleted) CompareAndSwap(ctx context.Context, key string, old, value []byte, ttl time.Duration) (bool, error) {
	l.swaps++
	if _, err := l.Store.CompareAndSwap(ctx, key, old, value, ttl); err != nil {
		return false, err
	}
	if err := l.Store.Delete(ctx, key); err != nil {
		return false, err
	}
	return false, errConnReset
}

var errConnReset = errors.New("connection reset by peer")

// A move whose exact delete of the old key finds it deleted by another
// writer (a first answer false, the key absent) is undone: ErrConflict,
// and the new key is empty again.
func TestMoveOldKeyDeletedByAnotherIsUndone(t *testing.T) {
	p, _, inner, ctx := faulty(t, "", "", sim.None)
	if err := inner.Set(ctx, "old", []byte("v1"), 0); err != nil {
		t.Fatal(err)
	}
	old := protocol.Old{Raw: []byte("v1")}
	if err := inner.Delete(ctx, "old"); err != nil { // another writer, after the read
		t.Fatal(err)
	}
	err := p.Move(ctx, "old", old, "new", protocol.Value{Raw: []byte("v2")})
	if !errors.Is(err, errs.Conflict) || errors.Is(err, errs.OutcomeUnknown) || !errors.Is(err, protocol.ErrGone) {
		t.Fatalf("Move = %v; want ErrConflict (ErrGone)", err)
	}
	if _, err := inner.Get(ctx, "new"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("the new key after the undo: %v; want absent", err)
	}
}
