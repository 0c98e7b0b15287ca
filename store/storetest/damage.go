package storetest

import (
	"errors"
	"slices"
	"testing"

	"github.com/typedsession/session/store"
)

// A Damage damages what a store holds under key the way a failing disk, a
// crash or another program would, so that the store can no longer read it
// back whole: Get of key must then return an error matching
// [store.ErrCorrupt]. Only the backend's own test knows how (a file's
// header overwritten, a message header replaced, a Redis hash written over
// the key), so each backend passes its own to [RunDamage].
type Damage func(t *testing.T, s store.Store, key string)

// RunDamage checks what a store does with damaged entries, once for each
// named way of damaging one: every read reports the damage as
// [store.ErrCorrupt] for that key and leaves the entry in place (Get,
// GetWithTTL, GetAndTouch, and the batch reads, which fail as a whole
// rather than report the key absent), Scan reports the key among the live
// ones (a listing never hides what a read reports, so that bulk work meets
// the damage), and Delete removes it. Each case gets a fresh, empty store
// from newStore, as in [Run]. Call it next to Run:
//
//	storetest.RunDamage(t, newStore, map[string]storetest.Damage{
//		"header": damageHeader,
//	})
func RunDamage(t *testing.T, newStore func(t *testing.T) store.Store, damages map[string]Damage) {
	t.Helper()
	names := make([]string, 0, len(damages))
	for name := range damages {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		damage := damages[name]
		t.Run(name, func(t *testing.T) {
			runCases(t, []testCase{
				{"ReadsReportCorrupt", "every read of a damaged key reports ErrCorrupt for that key and leaves it in place; no read reports it absent", func(t *testing.T, s store.Store) { testDamagedReads(t, s, damage) }},
				{"ScanReportsDamaged", "Scan reports a damaged key next to the live ones (not the expired or deleted ones): a listing never hides what a read reports", func(t *testing.T, s store.Store) { testDamagedScan(t, s, damage) }},
				{"DeleteRemovesDamaged", "Delete removes a damaged key: Get then reports it absent, Scan no longer lists it", func(t *testing.T, s store.Store) { testDamagedDelete(t, s, damage) }},
			}, newStore)
		})
	}
}

// damaged writes key and damages it.
func damaged(t *testing.T, s store.Store, damage Damage, key string) {
	t.Helper()
	mustSet(t, s, key, []byte(`{"typedsession":1,"data":{}}`), longTTL)
	damage(t, s, key)
}

// wantCorrupt checks that err matches store.ErrCorrupt.
func wantCorrupt(t *testing.T, op string, err error) {
	t.Helper()
	if !errors.Is(err, store.ErrCorrupt) {
		t.Errorf("%s of a damaged key = %v, want an error matching store.ErrCorrupt", op, err)
	}
}

func testDamagedReads(t *testing.T, s store.Store, damage Damage) {
	damaged(t, s, damage, "bad")
	mustSet(t, s, "good", []byte("v"), longTTL)
	for range 2 { // the entry stays: a second read says the same
		_, err := s.Get(ctx(t), "bad")
		wantCorrupt(t, "Get", err)
	}
	if g, ok := s.(store.TTLGetter); ok {
		_, _, err := g.GetWithTTL(ctx(t), "bad")
		wantCorrupt(t, "GetWithTTL", err)
	}
	if r, ok := s.(store.Refresher); ok {
		_, err := r.GetAndTouch(ctx(t), "bad", longTTL)
		wantCorrupt(t, "GetAndTouch", err)
	}
	if b, ok := s.(store.BatchGetter); ok {
		v, err := b.GetMany(ctx(t), []string{"good", "bad"})
		if err == nil {
			t.Errorf("GetMany(good, bad) = %q, nil; want an error matching store.ErrCorrupt for the whole call, not the damaged key reported absent", v)
		} else {
			wantCorrupt(t, "GetMany", err)
		}
	}
	if b, ok := s.(store.BatchTTLGetter); ok {
		v, _, err := b.GetManyWithTTL(ctx(t), []string{"good", "bad"})
		if err == nil {
			t.Errorf("GetManyWithTTL(good, bad) = %q, nil; want an error matching store.ErrCorrupt for the whole call, not the damaged key reported absent", v)
		} else {
			wantCorrupt(t, "GetManyWithTTL", err)
		}
	}
	_, err := s.Get(ctx(t), "bad")
	wantCorrupt(t, "Get after the other reads", err)
	wantValue(t, s, "good", []byte("v"))
}

func testDamagedScan(t *testing.T, s store.Store, damage Damage) {
	sc := scanner(t, s)
	damaged(t, s, damage, "d:bad")
	mustSet(t, s, "d:live", []byte("v"), longTTL)
	mustSet(t, s, "d:gone", []byte("v"), longTTL)
	if err := s.Delete(ctx(t), "d:gone"); err != nil {
		t.Fatal(err)
	}
	mustSet(t, s, "other", []byte("v"), longTTL)
	wantKeys(t, sc, "d:", "d:bad", "d:live")
	wantKeys(t, sc, "d:b", "d:bad")
	wantKeys(t, sc, "", "d:bad", "d:live", "other")
}

func testDamagedDelete(t *testing.T, s store.Store, damage Damage) {
	damaged(t, s, damage, "bad")
	if err := s.Delete(ctx(t), "bad"); err != nil {
		t.Fatalf("Delete of a damaged key: %v", err)
	}
	wantAbsent(t, s, "bad")
	if sc, ok := s.(store.Scanner); ok {
		wantKeys(t, sc, "")
	}
}
