// Package codectest is the conformance suite of a session codec, run
// through the session package's public API on memstore and Redis (the
// latter found as internal/testenv says: REDIS_URL, skipped when none
// answers, a failure under CI=true): a round trip of a struct with every
// kind of field under each layer, unchanged saves that write nothing,
// migration documents, a codec change in both directions, damaged values,
// values too deep to read back, and session types New must refuse (stored
// as {}, or not read back) or accept. Every codec module runs it:
//
//	func TestConformance(t *testing.T) { codectest.Run(t, cbor.Codec{}) }
package codectest

import (
	"bytes"
	"encoding/json"
	"errors"
	"math"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/typedsession/session"
	"github.com/typedsession/session/codec"
	"github.com/typedsession/session/internal/testenv"
	"github.com/typedsession/session/migrate"
	"github.com/typedsession/session/seal"
	"github.com/typedsession/session/store"
	"github.com/typedsession/session/store/memstore"
	"github.com/typedsession/session/store/redisstore"
	"github.com/typedsession/session/store/storetest"
)

// Every has a field of every kind a session holds (the root package's
// value round-trip type).
type Every struct {
	I8    int8                     `json:"i8"`
	I64   int64                    `json:"i64"`
	U64   uint64                   `json:"u64"`
	F32   float32                  `json:"f32"`
	F64   float64                  `json:"f64"`
	S     string                   `json:"s"`
	B     []byte                   `json:"b"`
	Bool  bool                     `json:"bool"`
	P     *int64                   `json:"p"`
	M     map[string]int64         `json:"m"`
	Sl    []string                 `json:"sl"`
	Arr   [2]uint64                `json:"arr"`
	T     time.Time                `json:"t"`
	E     session.Expiring[string] `json:"e"`
	Inner *Every                   `json:"inner,omitempty"`
	// The untyped fields: value-exact after a round trip, not type-exact.
	A  any            `json:"a"`
	MA map[string]any `json:"ma"`
}

func deepAny(depth int, leaf any) any {
	v := leaf
	for i := range depth {
		if i%2 == 0 {
			v = []any{v}
		} else {
			v = map[string]any{"k": v}
		}
	}
	return v
}

// eachStore runs fn on a memstore and on Redis (under a prefix of its own,
// removed afterwards), each wrapped in a storetest.Counter.
func (su suite) eachStore(t *testing.T, fn func(t *testing.T, c *storetest.Counter)) {
	t.Run("memstore", func(t *testing.T) {
		st, err := memstore.New(memstore.Options{CleanupInterval: -1})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		fn(t, storetest.NewCounter(st))
	})
	t.Run("redis", func(t *testing.T) {
		client := testenv.Redis(t)
		prefix := testenv.Prefix(t, "codec-"+su.c.Name())
		testenv.CleanupPrefix(t, client, prefix)
		fn(t, storetest.NewCounter(redisstore.New(client, redisstore.Options{Prefix: prefix})))
	})
}

func newManager[T any](t *testing.T, cfg session.Config[T]) *session.Manager[T] {
	t.Helper()
	m, err := session.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// SampleEvery returns an Every with a value in every field, at the edges
// of their ranges: a seed for a codec's own tests and fuzz targets.
func SampleEvery() Every {
	p := int64(-7)
	in := Every{
		I8: -128, I64: math.MinInt64, U64: math.MaxUint64, F32: 1.5, F64: 1e308, S: "a\u2028<&>\x00ü",
		B: []byte{0, 1, 0xff}, Bool: true, P: &p, M: map[string]int64{"z": 1, "a": math.MaxInt64, "m": -1},
		Sl: []string{"x", ""}, Arr: [2]uint64{1 << 63, 1},
		T: time.Date(2026, 11, 30, 13, 14, 15, 123456789, time.FixedZone("", 3600)),
		A: deepAny(7, int64(1265476890672672808)),
		MA: map[string]any{"i": int64(-3), "u": uint64(math.MaxUint64), "f": 0.1, "s": "s", "n": nil,
			"l": []any{2.5, "x"}, "big": int64(9007199254740993)},
		Inner: &Every{S: "inner", A: "x", M: map[string]int64{}},
	}
	in.E.Set("code", time.Hour)
	return in
}

// typed clears the untyped fields, which come back with the codec's own
// types (compared through JSON instead).
func typed(e Every) Every {
	e.A, e.MA = nil, nil
	if e.Inner != nil {
		inner := *e.Inner
		inner.A = nil
		e.Inner = &inner
	}
	return e
}

func jsonOf(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// layerConfigs are the layer combinations every conformance test runs
// under: none, compression (deflate, from the root), sealing, and both.
func layerConfigs(t *testing.T) map[string]func(*session.Config[Every]) {
	ring, err := seal.New(seal.Key{ID: "k1", Secret: bytes.Repeat([]byte{7}, seal.KeySize)})
	if err != nil {
		t.Fatal(err)
	}
	return map[string]func(*session.Config[Every]){
		"plain":   func(*session.Config[Every]) {},
		"deflate": func(c *session.Config[Every]) { c.Compressor, c.CompressAbove = codec.Deflate{}, 16 },
		"sealed":  func(c *session.Config[Every]) { c.Keyring = ring },
		"deflate+sealed": func(c *session.Config[Every]) {
			c.Compressor, c.CompressAbove, c.Keyring = codec.Deflate{}, 16, ring
		},
	}
}

func (su suite) testRoundTrip(t *testing.T) {
	su.eachStore(t, func(t *testing.T, c *storetest.Counter) {
		for name, layer := range layerConfigs(t) {
			t.Run(name, func(t *testing.T) {
				ctx := t.Context()
				cfg := session.Config[Every]{Store: c, Namespace: "rt" + su.c.Name(), Codec: su.c}
				layer(&cfg)
				m := newManager(t, cfg)
				key := "k-" + name
				in := SampleEvery()
				saved, err := m.Update(ctx, key, func(e *Every) error { *e = in; return nil })
				if err != nil {
					t.Fatalf("Update: %v", err)
				}
				raw, err := c.Unwrap().Get(ctx, cfg.Namespace+":"+key)
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.HasPrefix(raw, []byte("\x00TS")) {
					t.Fatalf("stored %q: want the binary envelope", raw)
				}
				loaded, err := m.Load(ctx, key)
				if err != nil {
					t.Fatalf("Load: %v", err)
				}
				// Typed fields come back exactly (times by Equal: the
				// codec keeps the instant, not the zone).
				if diff := cmp.Diff(typed(saved), typed(loaded.Data)); diff != "" {
					t.Fatalf("typed fields changed through the store (-saved +loaded):\n%s", diff)
				}
				if got, want := jsonOf(t, loaded.Data.A), jsonOf(t, saved.A); got != want {
					t.Fatalf("A = %s, want %s", got, want)
				}
				if got, want := jsonOf(t, loaded.Data.MA), jsonOf(t, saved.MA); got != want {
					t.Fatalf("MA = %s, want %s", got, want)
				}
				// An unchanged Save writes nothing; a Load of what Load
				// returned is equal.
				c.Reset()
				if err := m.Save(ctx, loaded); err != nil {
					t.Fatal(err)
				}
				if n := c.Writes(); n != 0 {
					t.Fatalf("an unchanged Save wrote %d times: %v", n, c.Snapshot())
				}
				again, err := m.Load(ctx, key)
				if err != nil {
					t.Fatal(err)
				}
				if diff := cmp.Diff(loaded.Data, again.Data); diff != "" {
					t.Fatalf("second round trip differs (-first +second):\n%s", diff)
				}
				// A change is one write.
				c.Reset()
				again.Data.I64++
				if err := m.Save(ctx, again); err != nil {
					t.Fatal(err)
				}
				if n := c.Writes(); n != 1 {
					t.Fatalf("a changed Save wrote %d times, want 1", n)
				}
			})
		}
	})
}

// testUnchangedSaveMaps: map iteration order must not leak into the
// encoding, or every Save of an unchanged session would be a write.
func (su suite) testUnchangedSaveMaps(t *testing.T) {
	type Maps struct {
		ByName map[string]int64  `json:"by_name"`
		ByID   map[int64]string  `json:"by_id"`
		Flags  map[string]bool   `json:"flags"`
		Nested map[string][]any  `json:"nested"`
		Any    map[string]any    `json:"any"`
		Floats map[float64]uint8 `json:"floats"`
	}
	su.eachStore(t, func(t *testing.T, c *storetest.Counter) {
		ctx := t.Context()
		m := newManager(t, session.Config[Maps]{Store: c, Namespace: "maps", Codec: su.c})
		fill := func(x *Maps) error {
			x.ByName, x.ByID, x.Flags = map[string]int64{}, map[int64]string{}, map[string]bool{}
			x.Nested, x.Any, x.Floats = map[string][]any{}, map[string]any{}, map[float64]uint8{}
			for i := range 40 {
				s := string(rune('a'+i%26)) + string(rune('A'+i))
				x.ByName[s] = int64(i)
				x.ByID[int64(i*i-300)] = s
				x.Flags[s] = i%2 == 0
				x.Nested[s] = []any{map[string]any{s: int64(i), "z": s}}
				x.Any[s] = map[string]any{"x": int64(i), "y": []any{s}}
				x.Floats[float64(i)/3] = uint8(i)
			}
			return nil
		}
		if _, err := m.Update(ctx, "k", fill); err != nil {
			t.Fatal(err)
		}
		for i := range 20 {
			s, err := m.Load(ctx, "k")
			if err != nil {
				t.Fatal(err)
			}
			c.Reset()
			if err := m.Save(ctx, s); err != nil {
				t.Fatal(err)
			}
			// Setting the same content again (new maps, new iteration
			// order) is no change either.
			fill(&s.Data)
			if err := m.Save(ctx, s); err != nil {
				t.Fatal(err)
			}
			if n := c.Writes(); n != 0 {
				t.Fatalf("round %d: an unchanged Save wrote %d times", i, n)
			}
		}
	})
}

// Quiz is version 2 of a session type whose version 1 had "points".
type Quiz struct {
	Score int64  `json:"score"`
	Name  string `json:"name"`
}

// scoreStep is a Raw step from version 1 to 2 that renames points to score
// and doubles it. It takes the number in the form either codec gives: an
// int64 for this codec, a json.Number for JSON.
var scoreStep = migrate.Raw(1, func(doc map[string]any) error {
	switch p := doc["points"].(type) {
	case int64:
		doc["score"] = 2 * p
	case json.Number:
		n, err := p.Int64()
		if err != nil {
			return err
		}
		doc["score"] = 2 * n
	default:
		return errors.New("points is not an integer")
	}
	delete(doc, "points")
	return nil
})

type quizV1 struct {
	Points int64  `json:"points"`
	Name   string `json:"name"`
}

func (su suite) testRawStep(t *testing.T) {
	su.eachStore(t, func(t *testing.T, c *storetest.Counter) {
		ctx := t.Context()
		plan, err := migrate.New(scoreStep)
		if err != nil {
			t.Fatal(err)
		}
		old := newManager(t, session.Config[quizV1]{Store: c, Namespace: "raw", Codec: su.c})
		for i, p := range []int64{5, -5, 1 << 40} {
			if _, err := old.Update(ctx, string(rune('a'+i)), func(q *quizV1) error { q.Points, q.Name = p, "n"; return nil }); err != nil {
				t.Fatal(err)
			}
		}
		m := newManager(t, session.Config[Quiz]{Store: c, Namespace: "raw", Codec: su.c, Migrations: plan})
		for i, p := range []int64{5, -5, 1 << 40} {
			s, err := m.Load(ctx, string(rune('a'+i)))
			if err != nil {
				t.Fatalf("Load after a Raw step: %v", err)
			}
			if want := (Quiz{Score: 2 * p, Name: "n"}); s.Data != want {
				t.Fatalf("migrated %d to %+v, want %+v", p, s.Data, want)
			}
		}
	})
}

// testRawDocumentTypes pins the types a Raw step's document holds.
func (su suite) testRawDocumentTypes(t *testing.T) {
	type Doc struct {
		Small int8           `json:"small"`
		Neg   int64          `json:"neg"`
		Big   uint64         `json:"big"`
		Huge  uint64         `json:"huge"`
		F     float64        `json:"f"`
		S     string         `json:"s"`
		B     []byte         `json:"b"`
		L     []int          `json:"l"`
		M     map[string]int `json:"m"`
	}
	in := Doc{Small: 3, Neg: -300, Big: 70000, Huge: math.MaxUint64, F: 0.25, S: "s", B: []byte{1}, L: []int{1, 200}, M: map[string]int{"x": 1}}
	b, err := su.c.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := su.c.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"small": int64(3), "neg": int64(-300), "big": int64(70000), "huge": uint64(math.MaxUint64),
		"f": 0.25, "s": "s", "b": []byte{1}, "l": []any{int64(1), int64(200)}, "m": map[string]any{"x": int64(1)},
	}
	if diff := cmp.Diff(want, doc); diff != "" {
		t.Fatalf("Raw document (-want +got):\n%s", diff)
	}
	// A step that leaves the numbers alone leaves the encoding alone.
	again, err := su.c.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	var back Doc
	if err := su.c.Unmarshal(again, &back); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(in, back); diff != "" {
		t.Fatalf("document re-encoded (-want +got):\n%s", diff)
	}
}

// testCodecChange: sessions written in JSON are read by an app that now
// writes this codec (Config.ReadCodecs), rewritten in it at their next Save
// or by MigrateAll; and back, for a rollback.
func (su suite) testCodecChange(t *testing.T) {
	su.eachStore(t, func(t *testing.T, c *storetest.Counter) {
		ctx := t.Context()
		ns := "change"
		plan, err := migrate.New(scoreStep)
		if err != nil {
			t.Fatal(err)
		}
		// Version 1 in JSON, before the deploy.
		v1 := newManager(t, session.Config[quizV1]{Store: c, Namespace: ns})
		for _, k := range []string{"a", "b", "c"} {
			if _, err := v1.Update(ctx, k, func(q *quizV1) error { q.Points, q.Name = 21, k; return nil }); err != nil {
				t.Fatal(err)
			}
		}
		jsonM := newManager(t, session.Config[Quiz]{Store: c, Namespace: ns, Migrations: plan})
		if _, err := jsonM.Update(ctx, "d", func(q *Quiz) error { q.Score, q.Name = 5, "d"; return nil }); err != nil {
			t.Fatal(err)
		}
		// Without ReadCodecs the new codec does not read JSON values
		// (the manager takes them for version 0, unenveloped data, with no
		// step from it) and leaves them alone.
		plain := newManager(t, session.Config[Quiz]{Store: c, Namespace: ns, Codec: su.c, Migrations: plan})
		c.Reset()
		if _, err := plain.Load(ctx, "d"); err == nil {
			t.Fatal("Load of a JSON value without ReadCodecs succeeded")
		}
		if n := c.Writes(); n != 0 {
			t.Fatalf("a failed Load wrote %d times", n)
		}
		// With it: a JSON v1 value migrates (the Raw step sees
		// json.Number) and is written back in the new codec.
		m := newManager(t, session.Config[Quiz]{Store: c, Namespace: ns, Codec: su.c, Migrations: plan, ReadCodecs: []codec.Codec{codec.JSON{}}})
		got, err := m.Update(ctx, "a", func(q *Quiz) error { q.Score++; return nil })
		if err != nil || got != (Quiz{Score: 43, Name: "a"}) {
			t.Fatalf("Update of a JSON v1 value = %+v, %v", got, err)
		}
		raw, _ := c.Unwrap().Get(ctx, ns+":a")
		if !bytes.HasPrefix(raw, []byte("\x00TS")) || !bytes.Contains(raw, []byte(su.c.Name())) {
			t.Fatalf("stored %q: want a binary frame naming %s", raw, su.c.Name())
		}
		// A JSON value at the current version loads, and an unchanged
		// Save of it converts nothing (no write): conversion happens at
		// the next change or by MigrateAll.
		s, err := m.Load(ctx, "d")
		if err != nil || s.Data != (Quiz{Score: 5, Name: "d"}) {
			t.Fatalf("Load of a JSON v2 value = %+v, %v", s, err)
		}
		// MigrateAll converts what is left.
		r, err := m.MigrateAll(ctx, session.MigrateOptions{})
		if err != nil || len(r.Failed) != 0 {
			t.Fatalf("MigrateAll = %+v, %v", r, err)
		}
		for _, k := range []string{"a", "b", "c", "d"} {
			raw, _ := c.Unwrap().Get(ctx, ns+":"+k)
			if !bytes.HasPrefix(raw, []byte("\x00TS")) {
				t.Fatalf("%s after MigrateAll: %q, want the new codec", k, raw)
			}
		}
		c.Reset()
		if r, err := m.MigrateAll(ctx, session.MigrateOptions{}); err != nil || r.Migrated != 0 || c.Writes() != 0 {
			t.Fatalf("second MigrateAll = %+v, %v, %d writes; want nothing to do", r, err, c.Writes())
		}
		// The other direction: a rollback to JSON reads them all and
		// writes JSON again.
		back := newManager(t, session.Config[Quiz]{Store: c, Namespace: ns, Migrations: plan, ReadCodecs: []codec.Codec{su.c}})
		want := map[string]Quiz{"a": {43, "a"}, "b": {42, "b"}, "c": {42, "c"}, "d": {5, "d"}}
		for k, w := range want {
			s, err := back.Load(ctx, k)
			if err != nil || s.Data != w {
				t.Fatalf("JSON manager loading %s = %+v, %v; want %+v", k, s, err, w)
			}
		}
		if _, err := back.Update(ctx, "b", func(q *Quiz) error { q.Score = 1; return nil }); err != nil {
			t.Fatal(err)
		}
		raw, _ = c.Unwrap().Get(ctx, ns+":b")
		if !json.Valid(raw) {
			t.Fatalf("after the rollback's Update: %q, want JSON", raw)
		}
		if r, err := back.MigrateAll(ctx, session.MigrateOptions{}); err != nil || r.Migrated != 3 {
			t.Fatalf("rollback MigrateAll = %+v, %v; want 3 converted", r, err)
		}
	})
}

// testDamaged: bytes that are not a value of the codec are ErrCorrupt and
// never overwritten; with Config.Quarantine they are moved aside.
func (su suite) testDamaged(t *testing.T) {
	su.eachStore(t, func(t *testing.T, c *storetest.Counter) {
		ctx := t.Context()
		m := newManager(t, session.Config[Quiz]{Store: c, Namespace: "dmg", Codec: su.c})
		if _, err := m.Update(ctx, "k", func(q *Quiz) error { q.Score = 1000; q.Name = "name"; return nil }); err != nil {
			t.Fatal(err)
		}
		raw, err := c.Unwrap().Get(ctx, "dmg:k")
		if err != nil {
			t.Fatal(err)
		}
		bad := append(bytes.Clone(raw[:len(raw)-3]), 0xc1, 0xff, 0xff)
		if err := c.Unwrap().Set(ctx, "dmg:k", bad, 0); err != nil {
			t.Fatal(err)
		}
		c.Reset()
		if _, err := m.Load(ctx, "k"); !errors.Is(err, session.ErrCorrupt) {
			t.Fatalf("Load of damaged bytes: %v, want ErrCorrupt", err)
		}
		if _, err := m.Update(ctx, "k", func(q *Quiz) error { return nil }); !errors.Is(err, session.ErrCorrupt) {
			t.Fatalf("Update of damaged bytes: %v, want ErrCorrupt", err)
		}
		if n := c.Writes(); n != 0 {
			t.Fatalf("damaged value: %d writes, want none", n)
		}
		q := newManager(t, session.Config[Quiz]{Store: c, Namespace: "dmg", Codec: su.c, Quarantine: true})
		s, err := q.Load(ctx, "k")
		if err != nil || s.Data != (Quiz{}) {
			t.Fatalf("Load with Quarantine = %+v, %v; want a new session", s, err)
		}
		found := 0
		err = c.Unwrap().(store.Scanner).Scan(ctx, session.QuarantinePrefix, func(key string) error {
			v, err := c.Unwrap().Get(ctx, key)
			if err == nil && bytes.Equal(v, bad) {
				found++
			}
			return nil
		})
		if err != nil || found != 1 {
			t.Fatalf("quarantined copies: %d, %v; want 1", found, err)
		}
	})
}

// testRefusedValue: a value the decoder would refuse (nested past its
// limit) is refused by Save, and the stored session is left as it was.
func (su suite) testRefusedValue(t *testing.T) {
	su.eachStore(t, func(t *testing.T, c *storetest.Counter) {
		ctx := t.Context()
		m := newManager(t, session.Config[Every]{Store: c, Namespace: "deep", Codec: su.c, MaxBytes: -1})
		if _, err := m.Update(ctx, "k", func(e *Every) error { e.S = "before"; return nil }); err != nil {
			t.Fatal(err)
		}
		before, _ := c.Unwrap().Get(ctx, "deep:k")
		c.Reset()
		if _, err := m.Update(ctx, "k", func(e *Every) error { e.A = deepAny(10010, "x"); return nil }); err == nil {
			t.Fatal("Update of a value nested past the decoder's limit succeeded")
		}
		if n := c.Writes(); n != 0 {
			t.Fatalf("a refused Update wrote %d times", n)
		}
		after, _ := c.Unwrap().Get(ctx, "deep:k")
		if !bytes.Equal(before, after) {
			t.Fatal("a refused Update changed the stored value")
		}
		if s, err := m.Load(ctx, "k"); err != nil || s.Data.S != "before" {
			t.Fatalf("Load after a refused Update: %v", err)
		}
	})
}

// Session types for testStorableTypes.
type (
	// cartItems holds data in unexported fields only: every codec writes
	// it as {}.
	cartItems    struct{ items []string }
	holdsCart    struct{ Cart cartItems }
	mapOfCarts   struct{ Carts map[string]*cartItems }
	hiddenCode   struct{ Code int }
	embedsHidden struct {
		*hiddenCode // unexported: no decoder can allocate it
		N           int
	}
	withComplex struct {
		C complex128
		N int
	}
	withChan struct {
		Ch chan int
		N  int
	}
	withCache struct {
		N     int
		cache []string
	}
	withMutex struct {
		sync.Mutex
		N int
	}
	allSkipped struct {
		A int `json:"-"`
	}
	// embeddedTwice embeds pathX through two paths at one depth: its X is
	// ambiguous, stored by none.
	pathX         struct{ X int }
	viaA          struct{ pathX }
	viaB          struct{ pathX }
	embeddedTwice struct {
		viaA
		viaB
		N int
	}
)

// NewRefuses checks that session.New with codec c refuses session type T
// as one that cannot be stored, naming field (a Go field name, or a part
// of the path it gives): for a codec module's own cases, such as a field
// its own tag leaves out.
//
//	codectest.NewRefuses[struct{ A int `cbor:"-"` }](t, cbor.Codec{}, "A")
func NewRefuses[T any](t testing.TB, c codec.Named, field string) {
	t.Helper()
	err := newErr[T](c)
	if err == nil || !strings.Contains(err.Error(), "cannot be stored") || !strings.Contains(err.Error(), field) {
		t.Errorf("New[%s] = %v, want a refusal naming %s", reflect.TypeFor[T](), err, field)
	}
}

// NewAccepts checks that session.New with codec c accepts session type T.
func NewAccepts[T any](t testing.TB, c codec.Named) {
	t.Helper()
	if err := newErr[T](c); err != nil {
		t.Errorf("New[%s] = %v, want nil", reflect.TypeFor[T](), err)
	}
}

func newErr[T any](c codec.Named) error {
	st, err := memstore.New(memstore.Options{CleanupInterval: -1})
	if err != nil {
		return err
	}
	defer st.Close()
	_, err = session.New(session.Config[T]{Store: st, Codec: c})
	return err
}

// testStorableTypes: New refuses a session type that the codec would store
// as {} although it holds data, or would not read back (a member it cannot
// encode or decode), naming the field; and accepts the others.
func (su suite) testStorableTypes(t *testing.T) {
	NewRefuses[cartItems](t, su.c, "items")
	NewRefuses[holdsCart](t, su.c, "Cart")
	NewRefuses[mapOfCarts](t, su.c, "Carts")
	NewRefuses[embedsHidden](t, su.c, "Code") // behind an unexported embedded pointer
	NewRefuses[withComplex](t, su.c, ".C")
	NewRefuses[withChan](t, su.c, "Ch")

	NewAccepts[struct{}](t, su.c)
	NewAccepts[allSkipped](t, su.c)
	NewAccepts[withCache](t, su.c)
	NewAccepts[withMutex](t, su.c)
	NewAccepts[embeddedTwice](t, su.c)
	NewAccepts[Every](t, su.c)
	NewAccepts[Quiz](t, su.c)
	NewAccepts[map[string]any](t, su.c)
	NewAccepts[*Quiz](t, su.c)
	NewAccepts[struct{ E *Every }](t, su.c)
	NewAccepts[[]withCache](t, su.c)
}

// suite runs the cases on one codec.
type suite struct{ c codec.Named }

// Run runs every case on c, each as a subtest.
func Run(t *testing.T, c codec.Named) {
	s := suite{c}
	t.Run("RoundTrip", s.testRoundTrip)
	t.Run("UnchangedSaveMaps", s.testUnchangedSaveMaps)
	t.Run("RawStep", s.testRawStep)
	t.Run("RawDocumentTypes", s.testRawDocumentTypes)
	t.Run("CodecChange", s.testCodecChange)
	t.Run("Damaged", s.testDamaged)
	t.Run("RefusedValue", s.testRefusedValue)
	t.Run("StorableTypes", s.testStorableTypes)
}

// FuzzSessionRoundTrip is the root package's values property with codec
// c, for a codec module's fuzz target of the same name: whatever Save
// accepts, Load returns equal (typed fields exactly, times by instant;
// untyped fields with the same encoding), and a Save of what Load returned
// writes nothing.
//
//	func FuzzSessionRoundTrip(f *testing.F) { codectest.FuzzSessionRoundTrip(f, cbor.Codec{}) }
func FuzzSessionRoundTrip(f *testing.F, cdc codec.Named) {
	f.Add(int64(math.MaxInt64), uint64(math.MaxUint64), 1.5, "a", []byte{0, 1}, uint16(3), int64(0))
	f.Add(int64(math.MinInt64), uint64(0), -0.0, "a\xffb", []byte(nil), uint16(20000), int64(-1))
	f.Add(int64(1265476890672672808), uint64(9007199254740993), 1e308, "\u2028<&>\x00", []byte("x"), uint16(0), int64(1<<62))
	f.Add(int64(-1), uint64(1), math.NaN(), "\ufffd", []byte{}, uint16(10001), int64(253402300799))
	st, err := memstore.New(memstore.Options{CleanupInterval: -1})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { st.Close() })
	c := storetest.NewCounter(st)
	m, err := session.New(session.Config[Every]{Store: c, Namespace: "fuzz", Codec: cdc, MaxBytes: -1})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, i int64, u uint64, fl float64, s string, b []byte, depth uint16, sec int64) {
		ctx := t.Context()
		p := i
		in := Every{
			I8: int8(i), I64: i, U64: u, F32: float32(fl), F64: fl, S: s, B: b, Bool: i%2 == 0, P: &p,
			M: map[string]int64{s: i, s + "x": -i}, Sl: []string{s, ""}, Arr: [2]uint64{u, 1},
			T: time.Unix(sec%(1<<34), int64(u%1e9)).In(time.FixedZone("", int(i%50000))),
			A: deepAny(int(depth), i), MA: map[string]any{"i": i, "u": u, "f": fl, "s": s, "n": nil, "l": []any{fl, s}, "b": b},
		}
		in.E.Set(s, time.Hour)
		if depth%3 == 0 {
			in.Inner = &Every{S: s, A: s}
		}
		saved, err := m.Update(ctx, "k", func(e *Every) error { *e = in; return nil })
		if err != nil {
			// Refused (nested past the limit, a year CBOR's time form
			// cannot hold): nothing to check but that it was refused.
			return
		}
		loaded, err := m.Load(ctx, "k")
		if err != nil {
			t.Fatalf("Save accepted the value but Load fails: %v", err)
		}
		if diff := cmp.Diff(typed(saved), typed(loaded.Data), cmpopts.EquateNaNs()); diff != "" {
			t.Fatalf("typed fields changed through the store (-saved +loaded):\n%s", diff)
		}
		for _, pair := range [][2]any{{saved.A, loaded.Data.A}, {saved.MA, loaded.Data.MA}} {
			e1, err1 := cdc.Marshal(pair[0])
			e2, err2 := cdc.Marshal(pair[1])
			if err1 != nil || err2 != nil || !bytes.Equal(e1, e2) {
				t.Fatalf("untyped field changed through the store: %v, %v", err1, err2)
			}
		}
		c.Reset()
		if err := m.Save(ctx, loaded); err != nil {
			t.Fatal(err)
		}
		if n := c.Writes(); n != 0 {
			t.Fatalf("an unchanged Save wrote %d times", n)
		}
		again, err := m.Load(ctx, "k")
		if err != nil {
			t.Fatal(err)
		}
		// (reflect.DeepEqual, not cmp: cmp is slow on deep values; NaN
		// is compared by the encodings above.)
		if fl == fl && !reflect.DeepEqual(loaded.Data, again.Data) {
			t.Fatalf("second round trip differs:\nfirst  %+v\nsecond %+v", loaded.Data, again.Data)
		}
	})
}
