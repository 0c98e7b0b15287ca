package session_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/typedsession/session"
	"github.com/typedsession/session/migrate"
	"github.com/typedsession/session/store"
)

// The schema history of a registration flow, written first by another
// framework (no envelope), then by three versions of our app.
type regV1 struct {
	ChatID int64  `json:"chat_id"`
	Lang   string `json:"lang"`
	Step   string `json:"step"`
}

type regV2 struct {
	ChatID   int64  `json:"chat_id"`
	Language string `json:"language"`
	Step     string `json:"step"`
}

// Registration is version 3, the current one: Step became an enum.
type Registration struct {
	ChatID   int64  `json:"chat_id"`
	Language string `json:"language" validate:"required"`
	Stage    int    `json:"stage" validate:"gte=0,lte=2"`
}

var stages = map[string]int{"ask_name": 0, "ask_age": 1, "done": 2}

func registrationPlan(t testing.TB) *migrate.Plan {
	p, err := migrate.New(
		// 0→1: adopt the other framework's plain JSON; it called the
		// language "lang" too, but had no default.
		migrate.Raw(0, func(doc map[string]any) error {
			if _, ok := doc["lang"]; !ok {
				doc["lang"] = "en"
			}
			return nil
		}),
		// 1→2: a renamed field, type-checked on both sides.
		migrate.TypedReversible(1,
			func(o regV1) (regV2, error) { return regV2{ChatID: o.ChatID, Language: o.Lang, Step: o.Step}, nil },
			func(n regV2) (regV1, error) { return regV1{ChatID: n.ChatID, Lang: n.Language, Step: n.Step}, nil },
		),
		// 2→3: a string turned into an enum.
		migrate.RawReversible(2,
			func(doc map[string]any) error {
				step, _ := doc["step"].(string)
				stage, ok := stages[step]
				if !ok {
					return fmt.Errorf("unknown step %q", step)
				}
				delete(doc, "step")
				doc["stage"] = stage
				return nil
			},
			func(doc map[string]any) error {
				for name, n := range stages {
					if fmt.Sprint(doc["stage"]) == fmt.Sprint(n) {
						doc["step"] = name
					}
				}
				delete(doc, "stage")
				return nil
			},
		),
	)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func regManager(t testing.TB, st store.Store, writeVersion int) *session.Manager[Registration] {
	return newManager(t, session.Config[Registration]{
		Store: st, Namespace: "reg", Migrations: registrationPlan(t), WriteVersion: writeVersion,
	})
}

func TestMigrationChain(t *testing.T) {
	ctx := t.Context()
	tests := []struct {
		name   string
		stored string
	}{
		{"legacy JSON, version 0", `{"chat_id":9007199254740993,"step":"ask_age"}`},
		{"version 1", `{"typedsession":1,"data":{"chat_id":9007199254740993,"lang":"en","step":"ask_age"}}`},
		{"version 2", `{"typedsession":2,"data":{"chat_id":9007199254740993,"language":"en","step":"ask_age"}}`},
		{"version 3", `{"typedsession":3,"data":{"chat_id":9007199254740993,"language":"en","stage":1}}`},
	}
	want := Registration{ChatID: 9007199254740993, Language: "en", Stage: 1}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			st := newCounting(newMem(t))
			st.Set(ctx, "reg:u", []byte(tc.stored), 0)
			m := regManager(t, st, 0)
			s, err := m.Load(ctx, "u")
			if err != nil {
				t.Fatal(err)
			}
			if s.Data != want {
				t.Fatalf("Load = %+v, want %+v", s.Data, want)
			}
			// Written back on the next Save although the handler changed
			// nothing, unless it was current already.
			st.Reset()
			loadedVersion := s.Version()
			if err := m.Save(ctx, s); err != nil {
				t.Fatal(err)
			}
			raw, _ := st.Get(ctx, "reg:u")
			if wantRaw := `{"typedsession":3,"data":{"chat_id":9007199254740993,"language":"en","stage":1}}`; stripWrites(raw) != wantRaw {
				t.Fatalf("stored after Save:\n got %s\nwant %s", raw, wantRaw)
			}
			wantWrites := 1
			if loadedVersion == 3 {
				wantWrites = 0
			}
			if st.Writes() != wantWrites {
				t.Fatalf("Save wrote %d times, want %d", st.Writes(), wantWrites)
			}
		})
	}
}

func TestFailingStepLeavesBytes(t *testing.T) {
	ctx := t.Context()
	st := newMem(t)
	stored := []byte(`{"typedsession":2,"data":{"chat_id":1,"language":"en","step":"teleported"}}`)
	st.Set(ctx, "reg:u", stored, 0)
	m := regManager(t, st, 0)
	_, err := m.Load(ctx, "u")
	if !errors.Is(err, session.ErrMigration) {
		t.Fatalf("Load = %v, want ErrMigration", err)
	}
	var se *migrate.StepError
	if !errors.As(err, &se) || se.From != 2 || se.To != 3 {
		t.Fatalf("error %v does not name the step 2→3", err)
	}
	for _, w := range []string{`"u"`, "2→3", "teleported"} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error %q does not mention %s", err, w)
		}
	}
	if _, err := m.Update(ctx, "u", func(r *Registration) error { r.Stage = 2; return nil }); !errors.Is(err, session.ErrMigration) {
		t.Fatalf("Update = %v, want ErrMigration", err)
	}
	got, _ := st.Get(ctx, "reg:u")
	if !bytes.Equal(got, stored) {
		t.Fatalf("a failed migration changed the stored bytes to %s", got)
	}
}

func TestFutureVersionIsNeverWritten(t *testing.T) {
	ctx := t.Context()
	st := newMem(t)
	old := newManager(t, session.Config[Quiz]{Store: st, Namespace: "quiz"}) // knows version 1
	// The old binary loads a key before the new binary writes version 2.
	s, err := old.Load(ctx, "u")
	if err != nil {
		t.Fatal(err)
	}
	future := []byte(`{"typedsession":2,"data":{"score":3,"streak":9}}`)
	st.Set(ctx, "quiz:u", future, 0)

	if _, err := old.Load(ctx, "u"); !errors.Is(err, session.ErrFutureVersion) {
		t.Fatalf("Load = %v, want ErrFutureVersion", err)
	}
	called := false
	if _, err := old.Update(ctx, "u", func(q *Quiz) error { called = true; return nil }); !errors.Is(err, session.ErrFutureVersion) {
		t.Fatalf("Update = %v, want ErrFutureVersion", err)
	}
	if called {
		t.Fatal("Update ran fn on a future version")
	}
	s.Data.Score = 1
	if err := old.Save(ctx, s); err == nil {
		t.Fatal("Save over a future version succeeded")
	}
	if _, err := old.MigrateAll(ctx, session.MigrateOptions{}); err != nil {
		t.Fatal(err)
	}
	got, _ := st.Get(ctx, "quiz:u")
	if !bytes.Equal(got, future) {
		t.Fatalf("the future version was overwritten with %s", got)
	}
}

func TestConcurrentMigrationOfOneKey(t *testing.T) {
	ctx := t.Context()
	st := newMem(t)
	st.Set(ctx, "reg:u", []byte(`{"chat_id":42,"step":"ask_name"}`), 0)
	managers := []*session.Manager[Registration]{regManager(t, st, 0), regManager(t, st, 0)}
	var wg sync.WaitGroup
	errs := make(chan error, 20)
	for i := range 20 {
		wg.Go(func() {
			_, err := managers[i%2].Update(ctx, "u", func(r *Registration) error {
				r.Stage++
				if r.Stage > 2 {
					r.Stage = 0
				}
				return nil
			})
			if err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	s, err := managers[0].Load(ctx, "u")
	if err != nil {
		t.Fatal(err)
	}
	// 20 increments mod 3 from stage 0: every update applied to the
	// migrated value exactly once.
	if want := (Registration{ChatID: 42, Language: "en", Stage: 20 % 3}); s.Data != want || s.Version() != 3 {
		t.Fatalf("after concurrent migration: %+v at version %d, want %+v at 3", s.Data, s.Version(), want)
	}
}

func TestWriteOlderVersion(t *testing.T) {
	ctx := t.Context()
	st := newMem(t)
	// The new binary reads version 3 but writes version 2 while binaries
	// that know only version 2 still run.
	newBin := regManager(t, st, 2)
	type v2Only = regV2
	oldBin := newManager(t, session.Config[v2Only]{Store: st, Namespace: "reg", Migrations: migrate.MustNew(
		migrate.Raw(0, func(map[string]any) error { return nil }),
		migrate.Raw(1, func(map[string]any) error { return nil }),
	)})
	if _, err := newBin.Update(ctx, "u", func(r *Registration) error {
		*r = Registration{ChatID: 7, Language: "de", Stage: 1}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	raw, _ := st.Get(ctx, "reg:u")
	if want := `{"typedsession":2,"data":{"chat_id":7,"language":"de","step":"ask_age"}}`; stripWrites(raw) != want {
		t.Fatalf("write-older-version stored\n got %s\nwant %s", raw, want)
	}
	// The old binary reads and updates it ...
	got, err := oldBin.Update(ctx, "u", func(r *v2Only) error { r.Step = "done"; return nil })
	if err != nil {
		t.Fatal(err)
	}
	if got.Language != "de" || got.ChatID != 7 {
		t.Fatalf("old binary read %+v", got)
	}
	// ... and the new one sees the change.
	s, err := newBin.Load(ctx, "u")
	if err != nil {
		t.Fatal(err)
	}
	if want := (Registration{ChatID: 7, Language: "de", Stage: 2}); s.Data != want {
		t.Fatalf("new binary read %+v, want %+v", s.Data, want)
	}
	// An unchanged Save by the new binary does not rewrite it: down(up(x)) == x.
	c := newCounting(st)
	newBinCounted := regManager(t, c, 2)
	s2, _ := newBinCounted.Load(ctx, "u")
	if err := newBinCounted.Save(ctx, s2); err != nil || c.Writes() != 0 {
		t.Fatalf("unchanged Save in write-older mode: %v, %d writes", err, c.Writes())
	}
}

func TestMigrateAll(t *testing.T) {
	ctx := t.Context()
	st := newMem(t)
	const n = 10000
	var wantMigrated, wantCurrent int
	var wantFailed []string
	for i := range n {
		key := fmt.Sprintf("reg:%05d", i)
		var v string
		switch i % 5 {
		case 0:
			v = fmt.Sprintf(`{"chat_id":%d,"step":"ask_name"}`, 9007199254740993+int64(i))
			wantMigrated++
		case 1:
			v = fmt.Sprintf(`{"typedsession":1,"data":{"chat_id":%d,"lang":"fr","step":"done"}}`, i)
			wantMigrated++
		case 2:
			v = fmt.Sprintf(`{"typedsession":2,"data":{"chat_id":%d,"language":"de","step":"ask_age"}}`, i)
			wantMigrated++
		case 3:
			v = fmt.Sprintf(`{"typedsession":3,"data":{"chat_id":%d,"language":"en","stage":2}}`, i)
			wantCurrent++
		case 4:
			if i%100 == 4 {
				v = `{"typedsession":2,"data":{"chat_id":1,"language":"en","step":"lost"}}`
				wantFailed = append(wantFailed, key[len("reg:"):])
			} else {
				v = fmt.Sprintf(`{"typedsession":3,"data":{"chat_id":%d,"language":"en","stage":0}}`, i)
				wantCurrent++
			}
		}
		st.Set(ctx, key, []byte(v), 0)
	}
	st.Set(ctx, "other:1", []byte(`not ours`), 0)
	m := regManager(t, st, 0)

	// Stop after 3000 keys, then run again.
	stopCtx, stop := context.WithCancel(ctx)
	progressCalls := 0
	first, err := m.MigrateAll(stopCtx, session.MigrateOptions{Progress: func(r session.MigrateReport) {
		progressCalls++
		if r.Scanned == 3000 {
			stop()
		}
	}})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled MigrateAll = %v, want context.Canceled", err)
	}
	if first.Scanned != 3000 || progressCalls != 3000 {
		t.Fatalf("cancelled run scanned %d keys with %d progress calls, want 3000", first.Scanned, progressCalls)
	}
	second, err := m.MigrateAll(ctx, session.MigrateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if second.Scanned != n {
		t.Fatalf("second run scanned %d, want %d", second.Scanned, n)
	}
	if got := first.Migrated + second.Migrated; got != wantMigrated {
		t.Errorf("migrated %d + %d = %d, want %d", first.Migrated, second.Migrated, got, wantMigrated)
	}
	if second.Current != wantCurrent+first.Migrated {
		t.Errorf("second run: current %d, want %d", second.Current, wantCurrent+first.Migrated)
	}
	if len(second.Failed) != len(wantFailed) {
		t.Fatalf("second run: %d failed, want %d", len(second.Failed), len(wantFailed))
	}
	for _, f := range second.Failed {
		if !errors.Is(f.Err, session.ErrMigration) || !strings.Contains(f.Err.Error(), "lost") {
			t.Errorf("failure %s: %v, want ErrMigration naming the bad step", f.Key, f.Err)
		}
	}
	// A third run has nothing left to do.
	third, err := m.MigrateAll(ctx, session.MigrateOptions{})
	if err != nil || third.Migrated != 0 || third.Current != n-len(wantFailed) || len(third.Failed) != len(wantFailed) {
		t.Fatalf("third run = %+v, %v; want everything current but the failures", third, err)
	}
	raw, _ := st.Get(ctx, "reg:00000")
	if want := `{"typedsession":3,"data":{"chat_id":9007199254740993,"language":"en","stage":0}}`; stripWrites(raw) != want {
		t.Fatalf("migrated legacy value\n got %s\nwant %s", raw, want)
	}
	if raw, _ := st.Get(ctx, "other:1"); string(raw) != "not ours" {
		t.Fatal("MigrateAll touched a key outside its namespace")
	}
}

// scanOnly is a store with Scan but no compare-and-swap.
type scanOnly struct {
	store.Store
	store.Scanner
}

// TestMigrateAllWithoutSwapNeedsOverwrite: on a store without
// compare-and-swap, MigrateAll could overwrite a session changed while it
// runs, so it refuses unless MigrateOptions.Overwrite says nothing else
// writes (a promise that depends on an optional capability is never made
// silently).
func TestMigrateAllWithoutSwapNeedsOverwrite(t *testing.T) {
	ctx := t.Context()
	mem := newMem(t)
	mem.Set(ctx, "q:a", []byte(`{"typedsession":1,"data":{"score":1}}`), 0)
	st := scanOnly{mem, mem}
	m := newManager(t, session.Config[Quiz]{Store: st, Namespace: "q", Migrations: migrate.MustNew(migrate.Raw(1, func(map[string]any) error { return nil }))})
	if _, err := m.MigrateAll(ctx, session.MigrateOptions{}); err == nil || !strings.Contains(err.Error(), "Overwrite") {
		t.Fatalf("MigrateAll on a store without compare-and-swap = %v, want a refusal naming MigrateOptions.Overwrite", err)
	}
	if raw, _ := mem.Get(ctx, "q:a"); !bytes.Contains(raw, []byte(`"typedsession":1,`)) {
		t.Fatalf("the refusal wrote %s", raw)
	}
	r, err := m.MigrateAll(ctx, session.MigrateOptions{Overwrite: true})
	if err != nil || r.Migrated != 1 {
		t.Fatalf("MigrateAll with Overwrite = %+v, %v; want 1 migrated", r, err)
	}
}
