package session_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	session "github.com/typedsession/session"
	"github.com/typedsession/session/internal/sim"
	"github.com/typedsession/session/migrate"
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
