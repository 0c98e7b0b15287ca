package session_test

import (
	"errors"
	"testing"

	"github.com/typedsession/session"
	"github.com/typedsession/session/store/memstore"
)

// FuzzLoad feeds arbitrary stored bytes to Load through the envelope and a
// three-step plan. Load must never panic, every error must match one of the
// contract's sentinels, and whatever loads must save and load back equal.
func FuzzLoad(f *testing.F) {
	for _, seed := range []string{
		``,
		`{}`,
		`null`,
		`[]`,
		`{"chat_id":9007199254740993,"step":"ask_age"}`,
		`{"typedsession":1,"data":{"chat_id":1,"lang":"en","step":"done"}}`,
		`{"typedsession":2,"data":{"chat_id":1,"language":"en","step":"ask_name"}}`,
		`{"typedsession":3,"data":{"chat_id":1,"language":"en","stage":2}}`,
		`{"typedsession":3,"data":{"chat_id":1,"language":"","stage":2}}`,
		`{"typedsession":4,"data":{}}`,
		`{"typedsession":0,"data":{}}`,
		`{"typedsession":99999999999999999999,"data":{}}`,
		`{"typedsession":3,"data":`,
		`{"typedsession":3 , "data" : {"stage":1,"language":"en"} }`,
		`{"typedsession":3,"data":{"stage":1,"language":"en"}}trailing}`,
		`{"typedsession":2,"data":{"step":"unknown"}}`,
		`{"typedsession":1,"data":[1,2,3]}`,
		"\x00TS\x01\x03{}",
		"\xff\xfe\x00",
	} {
		f.Add([]byte(seed))
	}
	st, err := memstore.New(memstore.Options{CleanupInterval: -1})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { st.Close() })
	m := regManager(f, st, 0)
	sentinels := []error{session.ErrCorrupt, session.ErrInvalid, session.ErrFutureVersion, session.ErrMigration, session.ErrTooLarge, session.ErrUnsupportedCodec, session.ErrNoSealingKey}

	f.Fuzz(func(t *testing.T, stored []byte) {
		ctx := t.Context()
		if err := st.Set(ctx, "reg:k", stored, 0); err != nil {
			t.Fatal(err)
		}
		s, err := m.Load(ctx, "k")
		if err != nil {
			matched := false
			for _, s := range sentinels {
				matched = matched || errors.Is(err, s)
			}
			if !matched {
				t.Fatalf("Load(%q) = %v, which matches no sentinel", stored, err)
			}
			return
		}
		if err := m.Save(ctx, s); err != nil {
			t.Fatalf("Load(%q) succeeded but Save failed: %v", stored, err)
		}
		again, err := m.Load(ctx, "k")
		if err != nil {
			t.Fatalf("the value saved from %q does not load: %v", stored, err)
		}
		if again.Data != s.Data {
			t.Fatalf("round trip of %q: %+v, then %+v", stored, s.Data, again.Data)
		}
	})
}
