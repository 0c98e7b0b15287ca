package session_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	session "github.com/typedsession/session"
	"github.com/typedsession/session/internal/sim"
	"github.com/typedsession/session/migrate"
	"github.com/typedsession/session/store"
	"github.com/typedsession/session/store/memstore"
)

// TestAttackValidateMeasuresWhatSaveStores: Manager.Validate reports what
// Save would refuse in v itself. With Config.WriteVersion below the
// latest, Save stores (and measures against MaxBytes) the payload at the
// write version, after the step down and its round-trip check; Validate
// measured the payload at the latest version and ran no step, so it
// passed values Save refuses (ErrTooLarge, ErrMigration) and refused
// values Save stores.
func TestAttackValidateMeasuresWhatSaveStores(t *testing.T) {
	ctx := t.Context()
	rename := func(from, to string) func(map[string]any) error {
		return func(doc map[string]any) error {
			doc[to] = doc[from]
			delete(doc, from)
			return nil
		}
	}
	const long = "cents_in_the_old_version_of_this_session_type"
	// v1 names the member long, v2 (Money) "cents": the payload as
	// stored at v1 is longer than at v2.
	plan := migrate.MustNew(migrate.RawReversible(1, rename(long, "cents"), rename("cents", long)))
	for _, tc := range []struct {
		name     string
		maxBytes int
	}{
		// {"cents_in_...":350} is 53 bytes, {"cents":350} 13.
		{"stored payload over the limit", 30},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st := newMem(t)
			m := newManager(t, session.Config[Money]{Store: st, Namespace: "w", Migrations: plan, WriteVersion: 1, MaxBytes: tc.maxBytes})
			v := Money{Cents: 350}
			verr := m.Validate(v)
			_, serr := m.Update(ctx, "k", func(d *Money) error { *d = v; return nil })
			if !errors.Is(serr, session.ErrTooLarge) {
				t.Fatalf("Save = %v, want ErrTooLarge (the test's premise)", serr)
			}
			if !errors.Is(verr, session.ErrTooLarge) {
				t.Fatalf("Validate = %v; Save refuses the same value with %v", verr, serr)
			}
		})
	}

	// The other way: v1 short, v2 long; the limit lies between.
	type Long struct {
		Cents int `json:"cents_in_the_new_version_of_this_session_type"`
	}
	plan2 := migrate.MustNew(migrate.RawReversible(1, rename("c", "cents_in_the_new_version_of_this_session_type"), rename("cents_in_the_new_version_of_this_session_type", "c")))
	st := newMem(t)
	m2 := newManager(t, session.Config[Long]{Store: st, Namespace: "w2", Migrations: plan2, WriteVersion: 1, MaxBytes: 30})
	if _, err := m2.Update(ctx, "k", func(d *Long) error { d.Cents = 350; return nil }); err != nil {
		t.Fatalf("Save = %v, want it stored (its payload at the write version is 9 bytes; the test's premise)", err)
	}
	if err := m2.Validate(Long{Cents: 350}); err != nil {
		t.Fatalf("Validate = %v; Save stores the same value", err)
	}

	// A step down that does not invert its step up: Save refuses it.
	up := func(doc map[string]any) error {
		n, _ := doc["euros"].(json.Number).Int64()
		doc["cents"] = json.Number(jsonInt(n * 100))
		delete(doc, "euros")
		return nil
	}
	forgot := migrate.MustNew(migrate.RawReversible(1, up, rename("cents", "euros")))
	m3 := newManager(t, session.Config[Money]{Store: newMem(t), Namespace: "w3", Migrations: forgot, WriteVersion: 1})
	if err := m3.Validate(Money{Cents: 350}); !errors.Is(err, session.ErrMigration) || !strings.Contains(err.Error(), "down") {
		t.Fatalf("Validate through a down step that does not invert up = %v; Save refuses it with ErrMigration", err)
	}
}

// TestAttackMigrateAllReportsQuarantine: MigrateAll loads each key as Load
// does, so with Config.Quarantine a damaged value is moved aside (the
// simulation's model expects that move). The report counted such a key
// as Gone ("deleted or expired between the scan and the read") and its
// hook event said nothing of the move, while Load's event says
// OutcomeQuarantined with the cause: the operator never learned that a
// session was damaged and moved. Key by key and in batches alike.
func TestAttackMigrateAllReportsQuarantine(t *testing.T) {
	for _, caps := range []sim.Caps{sim.CapAll, sim.CapSwapper | sim.CapDeleter | sim.CapScanner} {
		t.Run(caps.String(), func(t *testing.T) {
			ctx := t.Context()
			mem := newMem(t)
			st := sim.New(mem, sim.Options{}).View(caps)
			mem.Set(ctx, "q:good", []byte(`{"typedsession":1,"data":{"score":1}}`), 0)
			mem.Set(ctx, "q:bad", []byte("\x00\xffgarbage"), 0)
			var events []session.Event
			m := newManager(t, session.Config[Quiz]{Store: st, Namespace: "q", Migrations: twoVersions(), Quarantine: true, LogKeys: true,
				Hook: func(_ context.Context, e session.Event) { events = append(events, e) }})
			r, err := m.MigrateAll(ctx, session.MigrateOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if got := quarantinedKeys(t, mem); len(got) != 1 {
				t.Fatalf("quarantined %v, want the damaged value (the premise)", got)
			}
			if r.Gone != 0 || r.Quarantined != 1 || r.Migrated != 1 || len(r.Failed) != 0 {
				t.Errorf("report %+v; want Migrated 1, Quarantined 1, Gone 0, no failure", r)
			}
			for _, e := range events {
				if e.Key == "bad" && (e.Outcome != session.OutcomeQuarantined || !errors.Is(e.Err, session.ErrCorrupt)) {
					t.Errorf("the damaged key's event: outcome %q, err %v; want %q with the damage (as Load's)", e.Outcome, e.Err, session.OutcomeQuarantined)
				}
			}
		})
	}
}

// TestAttackUpdateReportsQuarantine: Config.Quarantine promises that
// Config.Hook sees every move (OutcomeQuarantined, with the error). Load's
// event does; an Update whose load moved a damaged value aside reported
// only its write, since the save reset what the load had found.
func TestAttackUpdateReportsQuarantine(t *testing.T) {
	ctx := t.Context()
	mem := newMem(t)
	mem.Set(ctx, "q:bad", []byte("\x00\xffgarbage"), 0)
	var events []session.Event
	m := newManager(t, session.Config[Quiz]{Store: mem, Namespace: "q", Quarantine: true,
		Hook: func(_ context.Context, e session.Event) { events = append(events, e) }})
	if _, err := m.Update(ctx, "bad", func(d *Quiz) error { d.Score = 1; return nil }); err != nil {
		t.Fatal(err)
	}
	if got := quarantinedKeys(t, mem); len(got) != 1 {
		t.Fatalf("quarantined %v, want the damaged value (the premise)", got)
	}
	seen := false
	for _, e := range events {
		if e.Outcome == session.OutcomeQuarantined && errors.Is(e.Err, session.ErrCorrupt) {
			seen = true
		}
	}
	if !seen {
		t.Fatalf("events %+v: none says the damaged value was quarantined", events)
	}
}

// resendClosed is a store whose first compare-and-swap and
// compare-and-delete land and lose their reply; the store is then closed:
// every later write returns store.ErrClosed.
type resendClosed struct {
	*memstore.Store
	calls int
}

func (r *resendClosed) CompareAndSwap(ctx context.Context, key string, old, value []byte, ttl time.Duration) (bool, error) {
	if r.calls++; r.calls > 1 {
		return false, fmt.Errorf("closed: %w", store.ErrClosed)
	}
	r.Store.CompareAndSwap(ctx, key, old, value, ttl)
	return false, errors.New("connection reset by peer")
}

func (r *resendClosed) CompareAndDelete(ctx context.Context, key string, old []byte) (bool, error) {
	if r.calls++; r.calls > 1 {
		return false, fmt.Errorf("closed: %w", store.ErrClosed)
	}
	r.Store.CompareAndDelete(ctx, key, old)
	return false, errors.New("connection reset by peer")
}

// TestAttackResentWriteMeetingClosedIsUnknown: a write whose first
// attempt lost its reply may have landed, whatever its resend meets. A
// resend that met a closed store ended the write with store.ErrClosed,
// which says nothing was written (the store contract), while the first
// attempt had landed: the error was decided by the resend that noticed
// it, not by the lost reply that caused it.
func TestAttackResentWriteMeetingClosedIsUnknown(t *testing.T) {
	ctx := t.Context()
	t.Run("save", func(t *testing.T) {
		mem := newMem(t)
		m0 := newManager(t, session.Config[Quiz]{Store: mem, Namespace: "q"})
		if _, err := m0.Update(ctx, "k", func(d *Quiz) error { d.Score = 1; return nil }); err != nil {
			t.Fatal(err)
		}
		m := newManager(t, session.Config[Quiz]{Store: &resendClosed{Store: mem}, Namespace: "q"})
		s, err := m.Load(ctx, "k")
		if err != nil {
			t.Fatal(err)
		}
		s.Data.Score = 2
		err = m.Save(ctx, s)
		if got, _ := m0.Load(ctx, "k"); got.Data.Score != 2 {
			t.Fatalf("the first attempt did not land (the premise): score %d", got.Data.Score)
		}
		if !errors.Is(err, session.ErrOutcomeUnknown) {
			t.Fatalf("Save = %v; want ErrOutcomeUnknown (the first attempt landed)", err)
		}
	})
	t.Run("destroy", func(t *testing.T) {
		mem := newMem(t)
		m0 := newManager(t, session.Config[Quiz]{Store: mem, Namespace: "q"})
		if _, err := m0.Update(ctx, "k", func(d *Quiz) error { d.Score = 1; return nil }); err != nil {
			t.Fatal(err)
		}
		m := newManager(t, session.Config[Quiz]{Store: &resendClosed{Store: mem}, Namespace: "q"})
		s, err := m.Load(ctx, "k")
		if err != nil {
			t.Fatal(err)
		}
		s.Destroy()
		err = m.Save(ctx, s)
		if _, gerr := mem.Get(ctx, "q:k"); !errors.Is(gerr, store.ErrNotFound) {
			t.Fatalf("the first attempt did not land (the premise): %v", gerr)
		}
		if !errors.Is(err, session.ErrOutcomeUnknown) {
			t.Fatalf("Save of a destroyed session = %v; want ErrOutcomeUnknown (the first attempt landed)", err)
		}
	})
}

// damagedWrites is a store whose stored value under every key became
// unreadable after the load: every conditional write and read reports
// store.ErrCorrupt and leaves the value in place (the store contract).
type damagedWrites struct {
	*memstore.Store
	writes int
}

func (d *damagedWrites) CompareAndSwap(context.Context, string, []byte, []byte, time.Duration) (bool, error) {
	d.writes++
	return false, fmt.Errorf("checksum mismatch: %w", store.ErrCorrupt)
}

func (d *damagedWrites) CompareAndDelete(context.Context, string, []byte) (bool, error) {
	d.writes++
	return false, fmt.Errorf("checksum mismatch: %w", store.ErrCorrupt)
}

// TestAttackWriteOverStoreDamageIsCorrupt: a conditional write that the
// store refuses because the value it holds cannot be read back whole
// (store.ErrCorrupt: the value is left in place) wrote nothing, for sure.
// The write protocol took it for a lost reply, resent it five times and
// reported ErrOutcomeUnknown ("may or may not have been stored"): decided
// by the protocol that noticed a failure, not by its cause.
func TestAttackWriteOverStoreDamageIsCorrupt(t *testing.T) {
	ctx := t.Context()
	mem := newMem(t)
	m0 := newManager(t, session.Config[Quiz]{Store: mem, Namespace: "q"})
	if _, err := m0.Update(ctx, "k", func(d *Quiz) error { d.Score = 1; return nil }); err != nil {
		t.Fatal(err)
	}
	for _, op := range []string{"save", "destroy"} {
		t.Run(op, func(t *testing.T) {
			st := &damagedWrites{Store: mem}
			m := newManager(t, session.Config[Quiz]{Store: st, Namespace: "q"})
			s, err := m.Load(ctx, "k")
			if err != nil {
				t.Fatal(err)
			}
			if op == "save" {
				s.Data.Score = 2
			} else {
				s.Destroy()
			}
			err = m.Save(ctx, s)
			if !errors.Is(err, session.ErrCorrupt) || errors.Is(err, session.ErrOutcomeUnknown) {
				t.Fatalf("Save = %v; want ErrCorrupt (the store refused for sure), not ErrOutcomeUnknown", err)
			}
			if st.writes != 1 {
				t.Errorf("%d attempts; want 1 (nothing to resend after a definite refusal)", st.writes)
			}
		})
	}
}

// TestAttackQuarantineOfLongKeyIsNotInvalidKey: a key near
// store.MaxKeyLen is valid, but its quarantine key (QuarantinePrefix,
// the time and the store key) is longer than any store takes, so the
// damaged value cannot be moved aside. Load then returned an error that
// matched store.ErrInvalidKey, which says the caller's key is refused:
// decided by the quarantine that noticed it, not by the cause (the value
// is damaged and stays where it is, as without Quarantine).
func TestAttackQuarantineOfLongKeyIsNotInvalidKey(t *testing.T) {
	ctx := t.Context()
	mem := newMem(t)
	key := strings.Repeat("k", store.MaxKeyLen-len("q:"))
	mem.Set(ctx, "q:"+key, []byte("\x00\xffgarbage"), 0)
	m := newManager(t, session.Config[Quiz]{Store: mem, Namespace: "q", Quarantine: true})
	_, err := m.Load(ctx, key)
	if !errors.Is(err, session.ErrCorrupt) || errors.Is(err, store.ErrInvalidKey) {
		t.Fatalf("Load = %v; want ErrCorrupt (the damage, left in place), not store.ErrInvalidKey (the key is valid)", err)
	}
	if _, gerr := mem.Get(ctx, "q:"+key); gerr != nil {
		t.Errorf("the damaged value did not stay: %v", gerr)
	}
}

// TestAttackUpdatesOfOneManagerNeverLostWithoutSwap: Update's doc says
// that on a store without compare-and-swap the Updates of one Manager
// are kept from losing each other's writes. They wait for each other on
// the Manager's key lock, but for at most a second, after which an Update
// went on without waiting, counting on the compare-and-swap that such a
// store does not have: an fn that ran longer than a second lost the
// write of the Update that waited for it, or had its own write lost.
func TestAttackUpdatesOfOneManagerNeverLostWithoutSwap(t *testing.T) {
	ctx := t.Context()
	m := newManager(t, session.Config[Quiz]{Store: basic{newMem(t)}, Namespace: "q"})
	started := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		_, err := m.Update(ctx, "k", func(d *Quiz) error {
			close(started)
			time.Sleep(1200 * time.Millisecond) // a slow handler
			d.Score++
			return nil
		})
		done <- err
	}()
	<-started
	if _, err := m.Update(ctx, "k", func(d *Quiz) error { d.Score++; return nil }); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	s, err := m.Load(ctx, "k")
	if err != nil {
		t.Fatal(err)
	}
	if s.Data.Score != 2 {
		t.Fatalf("score %d after two Updates through one Manager; want 2 (one write lost)", s.Data.Score)
	}
}

// TestAttackRetryNeverRetriesAnUnknownOutcome: a move whose undo met
// another writer's value reports ErrOutcomeUnknown caused by that
// conflict, so the error matches ErrConflict too. Retry (and Update,
// MigrateAll: one retry policy) retried every error matching
// ErrConflict, so it ran again an attempt whose write may have landed,
// which its doc says it never does.
func TestAttackRetryNeverRetriesAnUnknownOutcome(t *testing.T) {
	m := newManager(t, session.Config[Quiz]{Store: newMem(t), Namespace: "q"})
	both := fmt.Errorf("%w: undoing the write under the new key failed: %w", session.ErrOutcomeUnknown, session.ErrConflict)
	n := 0
	err := m.Retry(t.Context(), func() error { n++; return both })
	if n != 1 || !errors.Is(err, session.ErrOutcomeUnknown) {
		t.Fatalf("%d attempts, error %v; want 1 attempt and the unknown outcome", n, err)
	}
}
