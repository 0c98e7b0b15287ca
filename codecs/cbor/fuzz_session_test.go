package cbor_test

import (
	"bytes"
	"math"
	"reflect"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/typedsession/session"
	"github.com/typedsession/session/store/memstore"
	"github.com/typedsession/session/store/storetest"
)

// FuzzSessionRoundTrip is the root package's values property with this
// codec: whatever Save accepts, Load returns equal (typed fields exactly,
// times by instant; untyped fields with the same encoding), and a Save of
// what Load returned writes nothing. (The same file is in codecs/cbor and
// codecs/msgpack.)
func FuzzSessionRoundTrip(f *testing.F) {
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
	m, err := session.New(session.Config[Every]{Store: c, Namespace: "fuzz", Codec: testCodec, MaxBytes: -1})
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
			e1, err1 := testCodec.Marshal(pair[0])
			e2, err2 := testCodec.Marshal(pair[1])
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
