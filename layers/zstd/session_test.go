package zstd_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/typedsession/session"
	"github.com/typedsession/session/internal/testenv"
	"github.com/typedsession/session/layers/zstd"
	"github.com/typedsession/session/seal"
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

func every(n int) Every {
	p := int64(-7)
	in := Every{
		I8: -128, I64: math.MinInt64, U64: math.MaxUint64, F32: 1.5, F64: 1e308, S: strings.Repeat("quiz answer ", n),
		B: []byte{0, 1, 0xff}, Bool: true, P: &p, M: map[string]int64{"z": 1, "a": math.MaxInt64, "m": -1},
		Sl: []string{"x", ""}, Arr: [2]uint64{1 << 63, 1},
		T: time.Date(2026, 11, 30, 13, 14, 15, 123456789, time.FixedZone("", 3600)),
		A: []any{map[string]any{"k": json.Number("1265476890672672808")}},
		MA: map[string]any{"i": json.Number("-3"), "f": json.Number("0.1"), "s": "s", "n": nil,
			"l": []any{json.Number("2.5"), "x"}},
		Inner: &Every{S: "inner", A: "x", M: map[string]int64{}},
	}
	in.E.Set("code", time.Hour)
	return in
}

func eachStore(t *testing.T, fn func(t *testing.T, c *storetest.Counter)) {
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
		prefix := testenv.Prefix(t, "layer-zstd")
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

func TestSessionRoundTrip(t *testing.T) {
	ring, err := seal.New(seal.Key{ID: "k1", Secret: bytes.Repeat([]byte{7}, seal.KeySize)})
	if err != nil {
		t.Fatal(err)
	}
	z := mustNew(t, zstd.Options{Dict: []byte(strings.Repeat(`"quiz answer ","i8":-128,"i64":`, 4))})
	eachStore(t, func(t *testing.T, c *storetest.Counter) {
		for _, sealed := range []bool{false, true} {
			for _, n := range []int{1, 500} {
				ctx := t.Context()
				cfg := session.Config[Every]{Store: c, Namespace: "zrt", Compressor: z}
				if sealed {
					cfg.Keyring = ring
				}
				m := newManager(t, cfg)
				in := every(n)
				saved, err := m.Update(ctx, "k", func(e *Every) error { *e = in; return nil })
				if err != nil {
					t.Fatal(err)
				}
				raw, _ := c.Unwrap().Get(ctx, "zrt:k")
				// Compressed only above CompressAbove (1,024 bytes).
				compressed := bytes.Contains(raw, []byte("zstd")) && bytes.Contains(raw, []byte(z.DictID()))
				if compressed != (n > 1) || (n > 1 && len(raw) > len(in.S)/4) {
					t.Fatalf("n=%d sealed=%v: %d bytes stored, compressed %v", n, sealed, len(raw), compressed)
				}
				loaded, err := m.Load(ctx, "k")
				if err != nil {
					t.Fatal(err)
				}
				if diff := cmp.Diff(saved, loaded.Data); diff != "" {
					t.Fatalf("changed through the store (-saved +loaded):\n%s", diff)
				}
				c.Reset()
				if err := m.Save(ctx, loaded); err != nil {
					t.Fatal(err)
				}
				if w := c.Writes(); w != 0 {
					t.Fatalf("an unchanged Save wrote %d times", w)
				}
				loaded.Data.I8++
				if err := m.Save(ctx, loaded); err != nil {
					t.Fatal(err)
				}
				if w := c.Writes(); w != 1 {
					t.Fatalf("a changed Save wrote %d times, want 1", w)
				}
			}
		}
	})
}

// TestDictionaryChange: a new dictionary reads values of the old one listed
// in ReadDicts; MigrateAll with Reseal rewrites them with the new one;
// a manager without the old dictionary reports ErrUnsupportedCodec and writes
// nothing.
func TestDictionaryChange(t *testing.T) {
	oldDict := []byte(strings.Repeat(`{"answers":["yes","no","maybe"]}`, 4))
	newDict := []byte(strings.Repeat(`{"cart":[{"sku":"A-1","qty":2}]}`, 4))
	zOld := mustNew(t, zstd.Options{Dict: oldDict})
	zNew := mustNew(t, zstd.Options{Dict: newDict, ReadDicts: [][]byte{oldDict}})
	zLacking := mustNew(t, zstd.Options{Dict: newDict})
	eachStore(t, func(t *testing.T, c *storetest.Counter) {
		ctx := t.Context()
		old := newManager(t, session.Config[Every]{Store: c, Namespace: "zd", Compressor: zOld})
		for _, k := range []string{"a", "b"} {
			if _, err := old.Update(ctx, k, func(e *Every) error { *e = every(300); return nil }); err != nil {
				t.Fatal(err)
			}
		}
		lacking := newManager(t, session.Config[Every]{Store: c, Namespace: "zd", Compressor: zLacking})
		c.Reset()
		if _, err := lacking.Load(ctx, "a"); !errors.Is(err, session.ErrUnsupportedCodec) {
			t.Fatalf("Load without the dictionary: %v, want ErrUnsupportedCodec", err)
		}
		if _, err := lacking.Update(ctx, "a", func(*Every) error { return nil }); !errors.Is(err, session.ErrUnsupportedCodec) {
			t.Fatalf("Update without the dictionary: %v, want ErrUnsupportedCodec", err)
		}
		if w := c.Writes(); w != 0 {
			t.Fatalf("%d writes without the dictionary", w)
		}
		m := newManager(t, session.Config[Every]{Store: c, Namespace: "zd", Compressor: zNew})
		s, err := m.Load(ctx, "a")
		if err != nil || s.Data.S != every(300).S {
			t.Fatalf("Load with the old dictionary in ReadDicts: %v", err)
		}
		r, err := m.MigrateAll(ctx, session.MigrateOptions{Reseal: true})
		if err != nil || r.Migrated != 2 {
			t.Fatalf("MigrateAll(Reseal) = %+v, %v; want 2 rewritten", r, err)
		}
		for _, k := range []string{"a", "b"} {
			raw, _ := c.Unwrap().Get(ctx, "zd:"+k)
			if !bytes.Contains(raw, []byte(zNew.DictID())) || bytes.Contains(raw, []byte(zOld.DictID())) {
				t.Fatalf("%s after MigrateAll: %q, want the new dictionary's ID", k, raw)
			}
			if _, err := lacking.Load(ctx, k); err != nil {
				t.Fatalf("%s: the old dictionary is still needed: %v", k, err)
			}
		}
	})
}
