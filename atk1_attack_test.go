package session_test

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	session "github.com/typedsession/session"
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
