package session_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"testing"

	"github.com/typedsession/session"
	"github.com/typedsession/session/codec"
	"github.com/typedsession/session/store"
)

// binCodec is a named codec with a binary envelope, standing in for CBOR
// or MessagePack.
type binCodec struct{ name string }

func (binCodec) Marshal(v any) ([]byte, error)      { return json.Marshal(v) }
func (binCodec) Unmarshal(data []byte, v any) error { return json.Unmarshal(data, v) }
func (c binCodec) Name() string                     { return c.name }

func TestCodecChangeIsADeploy(t *testing.T) {
	eachStore(t, func(t *testing.T, st store.Store) {
		ctx := t.Context()
		bin := binCodec{"bin"}
		jsonM := newManager(t, session.Config[Quiz]{Store: st, Namespace: "c"})
		if _, err := jsonM.Update(ctx, "old", func(q *Quiz) error { q.Score = 3; return nil }); err != nil {
			t.Fatal(err)
		}
		// A binary codec without ReadCodecs cannot read the JSON value...
		plain := newManager(t, session.Config[Quiz]{Store: st, Namespace: "c", Codec: bin})
		if _, err := plain.Load(ctx, "old"); err == nil {
			t.Fatal("a binary codec read a JSON value it was not told about")
		}
		// ...with it, it reads it and writes it back in its own codec.
		binM := newManager(t, session.Config[Quiz]{Store: st, Namespace: "c", Codec: bin, ReadCodecs: []codec.Codec{codec.JSON{}}})
		got, err := binM.Update(ctx, "old", func(q *Quiz) error { q.Score++; return nil })
		if err != nil || got.Score != 4 {
			t.Fatalf("Update = %+v, %v", got, err)
		}
		raw, _ := st.Get(ctx, "c:old")
		if !bytes.HasPrefix(raw, []byte("\x00TS\x02")) || !bytes.Contains(raw, []byte("bin")) {
			t.Fatalf("stored %q: want a binary frame naming codec bin", raw)
		}
		// The other direction, and MigrateAll converts what is left.
		jsonM.Update(ctx, "two", func(q *Quiz) error { q.Score = 1; return nil })
		back := newManager(t, session.Config[Quiz]{Store: st, Namespace: "c", ReadCodecs: []codec.Codec{bin}})
		if s, err := back.Load(ctx, "old"); err != nil || s.Data.Score != 4 {
			t.Fatalf("JSON manager reading the binary value: %v, %v", s, err)
		}
		r, err := binM.MigrateAll(ctx, session.MigrateOptions{})
		if err != nil || r.Migrated != 1 || r.Current != 1 {
			t.Fatalf("MigrateAll = %+v, %v; want the JSON value converted", r, err)
		}
		// A codec nobody listed is a clear error.
		other := newManager(t, session.Config[Quiz]{Store: st, Namespace: "c", ReadCodecs: []codec.Codec{binCodec{"cbor"}}})
		if _, err := other.Load(ctx, "old"); !errors.Is(err, session.ErrUnsupportedCodec) {
			t.Fatalf("an unlisted codec: %v, want ErrUnsupportedCodec", err)
		}
		// A codec change without ReadCodecs, with quarantine on, moves
		// nothing aside: the values are intact, the configuration is not.
		for _, mm := range []*session.Manager[Quiz]{
			newManager(t, session.Config[Quiz]{Store: st, Namespace: "c", Quarantine: true}),
			newManager(t, session.Config[Quiz]{Store: st, Namespace: "c", Codec: bin, Quarantine: true}),
		} {
			for _, key := range []string{"old", "legacy"} {
				if key == "legacy" {
					st.Set(ctx, "c:legacy", []byte(`{"typedsession":1,"data":{"score":1}}`), 0)
				}
				before, _ := st.Get(ctx, "c:"+key)
				_, err := mm.Load(ctx, key)
				after, _ := st.Get(ctx, "c:"+key)
				if !bytes.Equal(before, after) {
					t.Fatalf("Load of %q (%v) moved the value aside", key, err)
				}
			}
		}
	})
}
