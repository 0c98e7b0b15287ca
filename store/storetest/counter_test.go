package storetest_test

import (
	"errors"
	"path/filepath"
	"testing"

	"github.com/typedsession/session/store"
	"github.com/typedsession/session/store/memstore"
	"github.com/typedsession/session/store/storetest"
)

// A Counter is itself a store: it must pass the suite it belongs to.
func TestCounterConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store {
		ms, err := memstore.New(memstore.Options{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { ms.Close() })
		return storetest.NewCounter(ms)
	})
}

type getSetDelete struct{ store.Store }

func TestCounterCounts(t *testing.T) {
	ms, _ := memstore.New(memstore.Options{})
	defer ms.Close()
	c := storetest.NewCounter(ms)
	ctx := t.Context()
	c.Set(ctx, "k", []byte("v"), 0)
	c.Get(ctx, "k")
	c.Get(ctx, "k")
	c.CompareAndSwap(ctx, "k", []byte("v"), []byte("w"), 0)
	c.GetWithTTL(ctx, "k")
	c.CompareAndDelete(ctx, "k", []byte("w"))
	if c.Calls("Get") != 2 || c.Calls("GetWithTTL") != 1 || c.Calls("CompareAndDelete") != 1 || c.Writes() != 3 || c.Calls() != 6 {
		t.Fatalf("counts %v, want Get 2, GetWithTTL 1, CompareAndDelete 1, writes 3, total 6", c.Snapshot())
	}
	if _, err := ms.Get(ctx, "k"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("CompareAndDelete through the Counter left the key: %v", err)
	}
	c.Reset()
	if c.Calls() != 0 {
		t.Fatal("Reset left counts")
	}
	bare := storetest.NewCounter(getSetDelete{ms})
	if _, err := bare.CompareAndSwap(ctx, "k", nil, nil, 0); err == nil || errors.Is(err, store.ErrNotFound) {
		t.Fatalf("CompareAndSwap on a store without it = %v, want an error saying so", err)
	}
	if _, err := bare.CompareAndDelete(ctx, "k", nil); err == nil || errors.Is(err, store.ErrNotFound) {
		t.Fatalf("CompareAndDelete on a store without it = %v, want an error saying so", err)
	}
	if _, _, err := bare.GetWithTTL(ctx, "k"); err == nil || errors.Is(err, store.ErrNotFound) {
		t.Fatalf("GetWithTTL on a store without it = %v, want an error saying so", err)
	}
}

// A store with only the three required methods runs the suite too: every
// case of a capability it lacks is skipped, the rest pass.
func TestMinimalStoreConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store {
		ms, err := memstore.New(memstore.Options{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { ms.Close() })
		return getSetDelete{ms}
	})
}

func TestMinimalStorePersistent(t *testing.T) {
	storetest.RunPersistent(t, func(t *testing.T, dir string) (store.Store, func() error) {
		ms, err := memstore.New(memstore.Options{BackupPath: filepath.Join(dir, "sessions.snap"), BackupInterval: -1})
		if err != nil {
			t.Fatal(err)
		}
		return getSetDelete{ms}, ms.Close
	})
}
