package session_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/typedsession/session"
	"github.com/typedsession/session/migrate"
)

// benchQuiz is a session of about 380 bytes of JSON, the size the
// performance issue measures.
func benchQuiz() Quiz {
	q := Quiz{Active: true, Question: 7, Score: 5}
	for i := range 12 {
		q.Answers = append(q.Answers, "answer "+strings.Repeat("x", i+10))
	}
	return q
}

// BenchmarkJSONBaseline is the work a hand-written handler does per update
// on top of its store calls: decode, change a field, encode.
func BenchmarkJSONBaseline(b *testing.B) {
	data, _ := json.Marshal(benchQuiz())
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		var q Quiz
		if err := json.Unmarshal(data, &q); err != nil {
			b.Fatal(err)
		}
		q.Score++
		out, err := json.Marshal(q)
		if err != nil {
			b.Fatal(err)
		}
		_ = out
	}
}

// BenchmarkLoadSave is Load, a change and Save on memstore: envelope,
// validation, encoding once and compare-and-swap included.
func BenchmarkLoadSave(b *testing.B) { benchLoadSave(b, true) }

// BenchmarkLoadSaveUnchanged is Load and Save of a session nobody changed:
// no write at all.
func BenchmarkLoadSaveUnchanged(b *testing.B) { benchLoadSave(b, false) }

func benchLoadSave(b *testing.B, change bool) {
	ctx := b.Context()
	m := newManager(b, session.Config[Quiz]{Store: newMem(b), Namespace: "quiz"})
	if _, err := m.Update(ctx, "u", func(q *Quiz) error { *q = benchQuiz(); return nil }); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		s, err := m.Load(ctx, "u")
		if err != nil {
			b.Fatal(err)
		}
		if change {
			s.Data.Score++
		}
		if err := m.Save(ctx, s); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkUpdate is Manager.Update without contention.
func BenchmarkUpdate(b *testing.B) {
	ctx := b.Context()
	m := newManager(b, session.Config[Quiz]{Store: newMem(b), Namespace: "quiz"})
	m.Update(ctx, "u", func(q *Quiz) error { *q = benchQuiz(); return nil })
	b.ReportAllocs()
	for b.Loop() {
		if _, err := m.Update(ctx, "u", func(q *Quiz) error { q.Score++; return nil }); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkLoadMigrated loads a version-1 value through a two-step plan,
// next to BenchmarkLoadCurrent, the same value already at the latest version.
func BenchmarkLoadMigrated(b *testing.B) {
	benchLoad(b, 1)
}

func BenchmarkLoadCurrent(b *testing.B) {
	benchLoad(b, 3)
}

func benchLoad(b *testing.B, storedVersion int) {
	ctx := b.Context()
	st := newMem(b)
	plan := migrate.MustNew(
		migrate.Raw(1, func(doc map[string]any) error { doc["active"] = true; return nil }),
		migrate.Typed(2, func(q Quiz) (Quiz, error) { q.Question++; return q, nil }),
	)
	payload, _ := json.Marshal(benchQuiz())
	raw := `{"typedsession":` + string(rune('0'+storedVersion)) + `,"data":` + string(payload) + `}`
	st.Set(ctx, "u", []byte(raw), 0)
	m := newManager(b, session.Config[Quiz]{Store: st, Migrations: plan})
	b.ReportAllocs()
	for b.Loop() {
		if _, err := m.Load(ctx, "u"); err != nil {
			b.Fatal(err)
		}
	}
}
