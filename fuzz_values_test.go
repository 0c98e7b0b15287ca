package session_test

import (
	"encoding/json"
	"errors"
	"math"
	"reflect"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/typedsession/session"
	"github.com/typedsession/session/store/memstore"
)

// Every has a field of every kind a session holds.
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

// FuzzRoundTrip is the values property: whatever Save accepts, Load
// returns equal (typed fields exactly; any and map[string]any fields with
// the same JSON value, and exactly after one round trip), and a Save of
// what Load returned writes nothing.
func FuzzRoundTrip(f *testing.F) {
	f.Add(int64(math.MaxInt64), uint64(math.MaxUint64), 1.5, "a", []byte{0, 1}, uint16(3), int64(0))
	f.Add(int64(math.MinInt64), uint64(0), -0.0, "a\xffb", []byte(nil), uint16(20000), int64(-1))
	f.Add(int64(1265476890672672808), uint64(9007199254740993), 1e308, "\u2028<&>\x00", []byte("x"), uint16(0), int64(1<<62))
	f.Add(int64(-1), uint64(1), 5e-324, "\ufffd", []byte{}, uint16(10001), int64(253402300799))
	st, err := memstore.New(memstore.Options{CleanupInterval: -1})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { st.Close() })
	c := newCounting(st)
	m := newManager(f, session.Config[Every]{Store: c, Namespace: "every", MaxBytes: -1})

	f.Fuzz(func(t *testing.T, i int64, u uint64, fl float64, s string, b []byte, depth uint16, sec int64) {
		ctx := t.Context()
		p := i
		in := Every{
			I8: int8(i), I64: i, U64: u, F32: float32(fl), F64: fl, S: s, B: b, Bool: i%2 == 0, P: &p,
			M: map[string]int64{s: i}, Sl: []string{s, ""}, Arr: [2]uint64{u, 1},
			T: time.Unix(sec%(1<<34), int64(u%1e9)).In(time.FixedZone("", int(i%50000))),
			A: deepAny(int(depth), i), MA: map[string]any{"i": i, "u": u, "f": fl, "s": s, "n": nil, "l": []any{fl, s}},
		}
		in.E.Set(s, time.Hour)
		if depth%3 == 0 {
			in.Inner = &Every{S: s, A: s}
		}
		saved, err := m.Update(ctx, "k", func(e *Every) error { *e = in; return nil })
		if err != nil {
			if !errors.Is(err, session.ErrInvalid) && !errors.Is(err, session.ErrTooLarge) {
				// NaN, ±Inf and years past 9999 cannot be JSON.
				var ue *json.UnsupportedValueError
				var me *json.MarshalerError
				if !errors.As(err, &ue) && !errors.As(err, &me) {
					t.Fatalf("Update refused %+v with %v", in, err)
				}
			}
			return
		}
		loaded, err := m.Load(ctx, "k")
		if err != nil {
			t.Fatalf("Save accepted %+v but Load fails: %v", saved, err)
		}
		// Typed fields come back exactly.
		typed := func(e Every) Every {
			e.A, e.MA = nil, nil
			if e.Inner != nil {
				inner := *e.Inner
				inner.A = nil
				e.Inner = &inner
			}
			return e
		}
		if diff := cmp.Diff(typed(saved), typed(loaded.Data)); diff != "" {
			t.Fatalf("typed fields changed through the store (-saved +loaded):\n%s", diff)
		}
		// Untyped fields hold the same JSON values.
		js, _ := json.Marshal(saved)
		jl, _ := json.Marshal(loaded.Data)
		if string(js) != string(jl) {
			t.Fatalf("values changed through the store:\nsaved  %s\nloaded %s", js, jl)
		}
		// A Save of what Load returned writes nothing, and loads equal.
		c.Reset()
		if err := m.Save(ctx, loaded); err != nil {
			t.Fatal(err)
		}
		if n := c.Calls("CompareAndSwap") + c.Calls("Set"); n != 0 {
			t.Fatalf("an unchanged Save wrote %d times", n)
		}
		again, err := m.Load(ctx, "k")
		if err != nil {
			t.Fatal(err)
		}
		// (reflect.DeepEqual, not cmp: cmp's slice diff is exponential on
		// deeply nested values.)
		if !reflect.DeepEqual(loaded.Data, again.Data) {
			t.Fatalf("second round trip differs:\nfirst  %+v\nsecond %+v", loaded.Data, again.Data)
		}
	})
}
