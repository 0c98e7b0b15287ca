package session_test

import (
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/typedsession/session"
	"github.com/typedsession/session/internal/format"
	"github.com/typedsession/session/migrate"
	"github.com/typedsession/session/store"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// plainCodec is JSON that does not declare its payload JSON, so the manager
// uses the binary envelope, as it would for gob or protobuf.
type plainCodec struct{}

func (plainCodec) Marshal(v any) ([]byte, error)      { return json.Marshal(v) }
func (plainCodec) Unmarshal(data []byte, v any) error { return json.Unmarshal(data, v) }

// TestStoreFormat pins the bytes a session is stored as. The store format is
// a public contract (README: "Store format"): a change here must be
// deliberate, with `go test -run TestStoreFormat -update` and a note.
func TestStoreFormat(t *testing.T) {
	quiz := Quiz{Active: true, Question: 2, Score: 1, Answers: []string{"Paris", "<b>&</b>"}}
	v3 := migrate.MustNew(
		migrate.Raw(1, func(map[string]any) error { return nil }),
		migrate.Raw(2, func(map[string]any) error { return nil }),
	)
	tests := []struct {
		golden string
		cfg    func(store.Store) session.Config[Quiz]
		data   Quiz
	}{
		{"quiz.json", func(st store.Store) session.Config[Quiz] { return session.Config[Quiz]{Store: st} }, quiz},
		{"minimal.json", func(st store.Store) session.Config[Quiz] { return session.Config[Quiz]{Store: st} }, Quiz{Score: 1}},
		{"quiz_v3.json", func(st store.Store) session.Config[Quiz] {
			return session.Config[Quiz]{Store: st, Migrations: v3}
		}, quiz},
		{"quiz_binary.golden", func(st store.Store) session.Config[Quiz] {
			return session.Config[Quiz]{Store: st, Codec: plainCodec{}}
		}, quiz},
	}
	// Write identities are random; pin one so the golden bytes are stable.
	defer func(f func() string) { format.NewWriteID = f }(format.NewWriteID)
	format.NewWriteID = func() string { return "WRITEid00001" }
	for _, tc := range tests {
		t.Run(tc.golden, func(t *testing.T) {
			st := newMem(t)
			m := newManager(t, tc.cfg(st))
			if _, err := m.Update(t.Context(), "k", func(q *Quiz) error { *q = tc.data; return nil }); err != nil {
				t.Fatal(err)
			}
			got, err := st.Get(t.Context(), "k")
			if err != nil {
				t.Fatal(err)
			}
			path := filepath.Join("testdata", tc.golden)
			if *update {
				if err := os.WriteFile(path, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run go test -run TestStoreFormat -update to create it)", err)
			}
			if diff := cmp.Diff(string(want), string(got)); diff != "" {
				t.Fatalf("stored format changed (-want +got):\n%s\nIf this is deliberate, run with -update and document it.", diff)
			}
			// And the golden bytes load back.
			s, err := m.Load(t.Context(), "k")
			if err != nil {
				t.Fatal(err)
			}
			if s.Data.Score != tc.data.Score || len(s.Data.Answers) != len(tc.data.Answers) {
				t.Fatalf("golden value loads as %+v", s.Data)
			}
		})
	}
}

// TestReleaseOneValuesLoad keeps the values written by the first release
// (envelope without write identities, binary frame 1) loading: they are
// fixtures, never refreshed with -update.
func TestReleaseOneValuesLoad(t *testing.T) {
	want := Quiz{Active: true, Question: 2, Score: 1, Answers: []string{"Paris", "<b>&</b>"}}
	v3 := migrate.MustNew(
		migrate.Raw(1, func(map[string]any) error { return nil }),
		migrate.Raw(2, func(map[string]any) error { return nil }),
	)
	for _, tc := range []struct {
		file string
		cfg  session.Config[Quiz]
		want Quiz
	}{
		{"quiz.json", session.Config[Quiz]{}, want},
		{"minimal.json", session.Config[Quiz]{}, Quiz{Score: 1}},
		{"quiz_v3.json", session.Config[Quiz]{Migrations: v3}, want},
		{"quiz_binary.golden", session.Config[Quiz]{Codec: plainCodec{}}, want},
	} {
		t.Run(tc.file, func(t *testing.T) {
			raw, err := os.ReadFile(filepath.Join("testdata", "release1", tc.file))
			if err != nil {
				t.Fatal(err)
			}
			st := newMem(t)
			if err := st.Set(t.Context(), "k", raw, 0); err != nil {
				t.Fatal(err)
			}
			tc.cfg.Store = st
			m := newManager(t, tc.cfg)
			s, err := m.Load(t.Context(), "k")
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, s.Data); diff != "" {
				t.Fatalf("Load mismatch (-want +got):\n%s", diff)
			}
			// An unchanged Save of a value of the first release writes
			// nothing: the data, not the framing, decides.
			if err := m.Save(t.Context(), s); err != nil {
				t.Fatal(err)
			}
			if got, _ := st.Get(t.Context(), "k"); string(got) != string(raw) {
				t.Fatalf("unchanged Save rewrote the value:\n got %q\nwant %q", got, raw)
			}
		})
	}
}
