package session_test

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/typedsession/session"
	"github.com/typedsession/session/codec"
)

// shoutingJSON embeds codec.JSON but overrides Marshal; it inherits JSON's
// AppendMarshal, which the manager must not use in place of this Marshal.
type shoutingJSON struct{ codec.JSON }

func (shoutingJSON) Marshal(v any) ([]byte, error) {
	b, err := json.Marshal(v)
	return bytes.ToUpper(b), err
}

// appendingCodec is a non-JSON codec with its own AppendMarshal; it counts
// the calls so the test can see which path the manager took.
type appendingCodec struct{ appends, marshals *int }

func (c appendingCodec) Marshal(v any) ([]byte, error) {
	*c.marshals++
	return json.Marshal(v)
}

func (c appendingCodec) AppendMarshal(dst []byte, v any) ([]byte, error) {
	*c.appends++
	b, err := json.Marshal(v)
	return append(dst, b...), err
}

func (appendingCodec) Unmarshal(data []byte, v any) error { return json.Unmarshal(data, v) }

func TestEncodeUsesOverriddenMarshalOfEmbeddedJSON(t *testing.T) {
	st := newMem(t)
	m := newManager(t, session.Config[Quiz]{Store: st, Codec: shoutingJSON{}})
	if _, err := m.Update(t.Context(), "k", func(q *Quiz) error { q.Answers = []string{"paris"}; return nil }); err != nil {
		t.Fatal(err)
	}
	got, err := st.Get(t.Context(), "k")
	if err != nil {
		t.Fatal(err)
	}
	// shoutingJSON declares its payload JSON (promoted PayloadIsJSON), so
	// the JSON envelope frames the upper-cased payload.
	want := `{"typedsession":1,"data":{"ACTIVE":FALSE,"QUESTION":0,"SCORE":0,"ANSWERS":["PARIS"]}}`
	if string(got) != want {
		t.Errorf("stored %s, want %s: the codec's own Marshal was bypassed", got, want)
	}
}

func TestEncodeAppenderMatchesMarshal(t *testing.T) {
	var appends, marshals int
	c := appendingCodec{&appends, &marshals}
	stA, stM := newMem(t), newMem(t)
	mA := newManager(t, session.Config[Quiz]{Store: stA, Codec: c})
	mM := newManager(t, session.Config[Quiz]{Store: stM, Codec: plainCodec{}})
	set := func(q *Quiz) error { q.Score = 3; q.Answers = []string{"a", "b"}; return nil }
	for _, m := range []*session.Manager[Quiz]{mA, mM} {
		if _, err := m.Update(t.Context(), "k", set); err != nil {
			t.Fatal(err)
		}
	}
	a, _ := stA.Get(t.Context(), "k")
	b, _ := stM.Get(t.Context(), "k")
	if !bytes.Equal(a, b) {
		t.Errorf("AppendMarshal path stored %q, Marshal path stored %q", a, b)
	}
	if appends == 0 || marshals != 0 {
		t.Errorf("AppendMarshal called %d times, Marshal %d times; want the append path only", appends, marshals)
	}
	// An unchanged session loaded from what the append path wrote is
	// recognised as unchanged: no write.
	cnt := newCounting(stA)
	mC := newManager(t, session.Config[Quiz]{Store: cnt, Codec: c})
	s, err := mC.Load(t.Context(), "k")
	if err != nil {
		t.Fatal(err)
	}
	if err := mC.Save(t.Context(), s); err != nil {
		t.Fatal(err)
	}
	if w := cnt.Writes(); w != 0 {
		t.Errorf("unchanged Save wrote %d times, want 0", w)
	}
}

func TestNewSessionsShareNoStateThroughTheCachedInitialEncoding(t *testing.T) {
	cnt := newCounting(newMem(t))
	m := newManager(t, session.Config[Quiz]{Store: cnt})
	a, err := m.Load(t.Context(), "a")
	if err != nil {
		t.Fatal(err)
	}
	b, err := m.Load(t.Context(), "b")
	if err != nil {
		t.Fatal(err)
	}
	a.Data.Score = 1
	if err := m.Save(t.Context(), a); err != nil {
		t.Fatal(err)
	}
	if err := m.Save(t.Context(), b); err != nil { // still the zero value
		t.Fatal(err)
	}
	if w := cnt.Writes(); w != 1 {
		t.Errorf("%d writes, want 1 (only the changed new session)", w)
	}
	c, err := m.Load(t.Context(), "c")
	if err != nil {
		t.Fatal(err)
	}
	c.Data.Answers = []string{}
	if err := m.Save(t.Context(), c); err != nil {
		t.Fatal(err)
	}
	if w := cnt.Writes(); w != 2 {
		t.Errorf("%d writes, want 2: [] differs from the zero value's null and must be stored", w)
	}
}
