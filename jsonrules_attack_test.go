package session_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/typedsession/session"
	"github.com/typedsession/session/store/memstore"
)

// Attack tests of the package's own copy of encoding/json's rules (which
// member a stored name decodes into, which map entry a stored key is):
// whatever encoding/json reads as one thing, the unknown-member merge must
// read as that thing too, or a Save loses or doubles stored data.

// updateStored stores raw under key id of m's namespace behind m's back
// (as an older or newer deploy left it), runs m.Update of id with fn and
// returns what Update returned and the bytes the store then holds.
func updateStored[T any](t *testing.T, m *session.Manager[T], st *memstore.Store, id, raw string, fn func(*T) error) (T, []byte) {
	t.Helper()
	ctx := t.Context()
	key := m.Namespace() + ":" + id
	if err := st.Set(ctx, key, []byte(raw), 0); err != nil {
		t.Fatal(err)
	}
	got, err := m.Update(ctx, id, fn)
	if err != nil {
		t.Fatalf("Update of %s: %v", raw, err)
	}
	stored, err := st.Get(ctx, key)
	if err != nil {
		t.Fatal(err)
	}
	return got, stored
}

type keyedItem struct {
	Name string `json:"name"`
}

type byNumber struct {
	Items map[int]keyedItem `json:"items"`
	N     int               `json:"n"`
}

// A map entry whose stored key encoding/json reads as another spelling
// ("01" and "+1" are the int 1, written back as "1") keeps the members its
// value holds that the type does not have.
func TestMergeKeepsUnknownMembersUnderRespelledMapKeys(t *testing.T) {
	st := newMem(t)
	m := newManager(t, session.Config[byNumber]{Store: st, Namespace: "k"})
	for _, key := range []string{`01`, `+1`} {
		stored := `{"typedsession":1,"data":{"items":{"` + key + `":{"name":"a","extra":"keep me"}},"n":1}}`
		_, raw := updateStored(t, m, st, "1", stored, func(v *byNumber) error { v.N++; return nil })
		var got struct {
			Data struct {
				Items map[string]map[string]any `json:"items"`
			} `json:"data"`
		}
		if err := json.Unmarshal(raw, &got); err != nil {
			t.Fatal(err)
		}
		want := map[string]map[string]any{"1": {"name": "a", "extra": "keep me"}}
		if !reflect.DeepEqual(got.Data.Items, want) {
			t.Errorf("stored key %q: after a save the items are %v, want %v (stored %s)", key, got.Data.Items, want, stripWrites(raw))
		}
	}
}

// lowerKey is a map key that reads itself lowercased (UnmarshalText) and
// is written as it is (a string kind).
type lowerKey string

func (k *lowerKey) UnmarshalText(b []byte) error {
	*k = lowerKey(strings.ToLower(string(b)))
	return nil
}

type byLowerKey struct {
	Items map[lowerKey]keyedItem `json:"items"`
	N     int                    `json:"n"`
}

func TestMergeKeepsUnknownMembersUnderKeysReadByUnmarshalText(t *testing.T) {
	st := newMem(t)
	m := newManager(t, session.Config[byLowerKey]{Store: st, Namespace: "k"})
	_, raw := updateStored(t, m, st, "1", `{"typedsession":1,"data":{"items":{"AB":{"name":"a","extra":"keep me"}},"n":1}}`,
		func(v *byLowerKey) error { v.N++; return nil })
	if want := `{"typedsession":1,"data":{"items":{"ab":{"name":"a","extra":"keep me"}},"n":2}}`; stripWrites(raw) != want {
		t.Errorf("stored %s, want %s", stripWrites(raw), want)
	}
}

type withProfile struct {
	Profile struct {
		Nick string `json:"nick"`
	} `json:"profile"`
	N int `json:"n"`
}

// A member stored twice: encoding/json decodes the second occurrence into
// what the first left, so a newer type reads members of both; a save
// keeps them both, and the older type's data as it read it.
func TestSaveKeepsUnknownMembersOfAMemberStoredTwice(t *testing.T) {
	st := newMem(t)
	m := newManager(t, session.Config[withProfile]{Store: st, Namespace: "d"})
	got, raw := updateStored(t, m, st, "1", `{"typedsession":1,"data":{"profile":{"nick":"a","lang":"fr"},"n":1,"Profile":{"nick":"b","tz":"CET"}}}`,
		func(v *withProfile) error { v.N++; return nil })
	if got.Profile.Nick != "b" || got.N != 2 {
		t.Fatalf("Update = %+v", got)
	}
	var newer struct {
		Data struct {
			Profile struct{ Nick, Lang, TZ string } `json:"profile"`
			N       int                             `json:"n"`
		} `json:"data"`
	}
	if err := json.Unmarshal(raw, &newer); err != nil {
		t.Fatal(err)
	}
	if p := newer.Data.Profile; p.Nick != "b" || p.Lang != "fr" || p.TZ != "CET" || newer.Data.N != 2 {
		t.Errorf("a newer type reads %+v from the saved value %s; want nick b, lang fr, tz CET, n 2", newer.Data, stripWrites(raw))
	}
}

// token is stored by its own MarshalText: bytes as they are.
type token []byte

func (t token) MarshalText() ([]byte, error)  { return []byte(t), nil }
func (t *token) UnmarshalText(b []byte) error { *t = append(token(nil), b...); return nil }

// tokenKey is a map key stored by its MarshalText.
type tokenKey struct{ s string }

func (k tokenKey) MarshalText() ([]byte, error)  { return []byte(k.s), nil }
func (k *tokenKey) UnmarshalText(b []byte) error { k.s = string(b); return nil }

type withTokens struct {
	Tok  token            `json:"tok"`
	Keys map[tokenKey]int `json:"keys"`
}

// encoding/json writes what MarshalText returns as a JSON string, invalid
// UTF-8 replaced by U+FFFD: such a value would read back different, and
// Save refuses it as it refuses an invalid string field.
func TestSaveRefusesInvalidUTF8FromMarshalText(t *testing.T) {
	ctx := t.Context()
	st := newMem(t)
	m := newManager(t, session.Config[withTokens]{Store: st, Namespace: "t"})
	for _, tc := range []struct {
		name string
		fn   func(*withTokens)
		want string
	}{
		{"a field", func(v *withTokens) { v.Tok = token("a\xffb") }, "Tok"},
		{"a map key", func(v *withTokens) { v.Keys = map[tokenKey]int{{"a\xffb"}: 1} }, "map key"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := m.Update(ctx, tc.name, func(v *withTokens) error { tc.fn(v); return nil })
			if err == nil {
				s, lerr := m.Load(ctx, tc.name)
				t.Fatalf("Update saved; Load reads back %q, %v, %v", s.Data.Tok, s.Data.Keys, lerr)
			}
			if !errors.Is(err, session.ErrInvalid) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Update = %v, want ErrInvalid naming %q", err, tc.want)
			}
		})
	}
	if got, err := m.Update(ctx, "ok", func(v *withTokens) error { v.Tok = token("a\ufffdb"); return nil }); err != nil || string(got.Tok) != "a\ufffdb" {
		t.Fatalf("Update with U+FFFD = %q, %v", got.Tok, err)
	}
}

// meters is stored by pointer methods: "3m".
type meters struct{ N int }

func (m *meters) MarshalJSON() ([]byte, error) { return []byte(fmt.Sprintf(`"%dm"`, m.N)), nil }
func (m *meters) UnmarshalJSON(b []byte) error {
	_, err := fmt.Sscanf(string(b), `"%dm"`, &m.N)
	return err
}

// label is stored by pointer methods too, as text.
type label struct{ S string }

func (l *label) MarshalText() ([]byte, error) { return []byte(l.S), nil }
func (l *label) UnmarshalText(b []byte) error { l.S = string(b); return nil }

type (
	metersByName struct {
		M map[string]meters `json:"m"`
	}
	metersInMapStruct struct {
		M map[string]struct{ D [1]meters } `json:"m"`
	}
	labelsByName struct {
		M map[string]label `json:"m"`
	}
	// Behind a pointer or in a slice, a map value's parts are addressable
	// again: encoding/json uses the pointer methods.
	metersByNamePtr struct {
		M map[string]*meters `json:"m"`
	}
	metersByNameSlice struct {
		M map[string][]meters `json:"m"`
	}
)

// encoding/json writes a value by a pointer method only where the value is
// addressable; a map value is not, so it writes it by its kind, and Load
// reads that with the pointer method: New refuses such a type rather than
// let Save write what Load refuses.
func TestNewRefusesPointerMethodsOnMapValues(t *testing.T) {
	st := newMem(t)
	for _, err := range []error{
		newErr(session.Config[metersByName]{Store: st}),
		newErr(session.Config[metersInMapStruct]{Store: st}),
		newErr(session.Config[labelsByName]{Store: st}),
	} {
		if err == nil || !strings.Contains(err.Error(), "map value") {
			t.Errorf("New = %v, want an error about a map value", err)
		}
	}
	ctx := t.Context()
	mp := newManager(t, session.Config[metersByNamePtr]{Store: st, Namespace: "p"})
	if _, err := mp.Update(ctx, "1", func(v *metersByNamePtr) error { v.M = map[string]*meters{"a": {5}}; return nil }); err != nil {
		t.Fatal(err)
	}
	if s, err := mp.Load(ctx, "1"); err != nil || s.Data.M["a"].N != 5 {
		t.Fatalf("Load = %+v, %v", s, err)
	}
	ms := newManager(t, session.Config[metersByNameSlice]{Store: st, Namespace: "s"})
	if _, err := ms.Update(ctx, "1", func(v *metersByNameSlice) error { v.M = map[string][]meters{"a": {{5}}}; return nil }); err != nil {
		t.Fatal(err)
	}
	if s, err := ms.Load(ctx, "1"); err != nil || s.Data.M["a"][0].N != 5 {
		t.Fatalf("Load = %+v, %v", s, err)
	}
}

func newErr[T any](cfg session.Config[T]) error {
	_, err := session.New(cfg)
	return err
}

// Reached through an embedded pointer, a map value's field is addressable.
type (
	MetersHolder     struct{ D meters }
	metersViaPointer struct {
		M map[string]struct{ *MetersHolder } `json:"m"`
	}
)

func TestPointerMethodsThroughAnEmbeddedPointerInAMapValue(t *testing.T) {
	ctx := t.Context()
	m := newManager(t, session.Config[metersViaPointer]{Store: newMem(t), Namespace: "e"})
	if _, err := m.Update(ctx, "1", func(v *metersViaPointer) error {
		v.M = map[string]struct{ *MetersHolder }{"a": {&MetersHolder{meters{5}}}}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if s, err := m.Load(ctx, "1"); err != nil || s.Data.M["a"].D.N != 5 {
		t.Fatalf("Load = %+v, %v", s, err)
	}
}

type byName struct {
	Items map[string]keyedItem `json:"items"`
	N     int                  `json:"n"`
}

// A stored map key with invalid UTF-8 is read by encoding/json with U+FFFD
// in its place, and written so: the entry keeps its members the type does
// not have.
func TestMergeKeepsUnknownMembersUnderAKeyWithInvalidUTF8(t *testing.T) {
	st := newMem(t)
	m := newManager(t, session.Config[byName]{Store: st, Namespace: "u"})
	_, raw := updateStored(t, m, st, "1", "{\"typedsession\":1,\"data\":{\"items\":{\"a\xffb\":{\"name\":\"a\",\"extra\":\"keep me\"}},\"n\":1}}",
		func(v *byName) error { v.N++; return nil })
	if want := `{"typedsession":1,"data":{"items":{"a` + "\ufffd" + `b":{"name":"a","extra":"keep me"}},"n":2}}`; stripWrites(raw) != want {
		t.Errorf("stored %s, want %s", stripWrites(raw), want)
	}
}

type withOptional struct {
	Prefs struct {
		Theme string `json:"theme"`
	} `json:"prefs,omitzero"`
	N int `json:"n"`
}

// A member that the type reads as a value it leaves out (omitzero) was
// dropped with the members it holds that the type does not have, though
// the handler never touched it; one the handler emptied goes.
func TestSaveKeepsUnknownMembersOfAnOmittedMember(t *testing.T) {
	st := newMem(t)
	m := newManager(t, session.Config[withOptional]{Store: st, Namespace: "o"})
	_, raw := updateStored(t, m, st, "1", `{"typedsession":1,"data":{"prefs":{"lang":"fr"},"n":1}}`,
		func(v *withOptional) error { v.N++; return nil })
	if want := `{"typedsession":1,"data":{"prefs":{"lang":"fr"},"n":2}}`; stripWrites(raw) != want {
		t.Errorf("untouched: stored %s, want %s", stripWrites(raw), want)
	}
	_, raw = updateStored(t, m, st, "2", `{"typedsession":1,"data":{"prefs":{"theme":"dark","lang":"fr"},"n":1}}`,
		func(v *withOptional) error { v.Prefs.Theme = ""; return nil })
	if want := `{"typedsession":1,"data":{"n":1}}`; stripWrites(raw) != want {
		t.Errorf("emptied: stored %s, want %s", stripWrites(raw), want)
	}
}
