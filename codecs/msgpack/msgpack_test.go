package msgpack_test

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"sync"
	"testing"
	"time"

	vmsgpack "github.com/vmihailenco/msgpack/v5"

	"github.com/typedsession/session/codec/codectest"
	"github.com/typedsession/session/codecs/msgpack"
)

func TestStrict(t *testing.T) {
	c := msgpack.Codec{}
	for _, tc := range []struct {
		name, hex string
	}{
		{"empty", ""},
		{"data after the value", "0101"},
		{"reserved code", "c1"},
		{"truncated", "93010203"[:6]},
		{"array longer than the input", "ddffffffff"},
		{"map longer than the input", "df0000ffff01"},
		{"string longer than the input", "db0000ffff61"},
		{"truncated float", "cb0000"},
	} {
		data, err := hex.DecodeString(tc.hex)
		if err != nil {
			t.Fatal(err)
		}
		var v any
		if err := c.Unmarshal(data, &v); err == nil {
			t.Errorf("%s: Unmarshal(%x) = %v, want an error", tc.name, data, v)
		}
	}
}

func TestLimits(t *testing.T) {
	c := msgpack.Codec{}
	nest := func(n int) any {
		v := any("leaf")
		for range n {
			v = []any{v}
		}
		return v
	}
	if _, err := c.Marshal(nest(msgpack.MaxNestedLevels + 1)); err == nil {
		t.Fatal("Marshal of a value nested deeper than the decoder's limit succeeded")
	}
	b, err := c.Marshal(nest(msgpack.MaxNestedLevels))
	if err != nil {
		t.Fatalf("Marshal at the nesting limit: %v", err)
	}
	var back any
	if err := c.Unmarshal(b, &back); err != nil {
		t.Fatalf("Unmarshal at the nesting limit: %v", err)
	}
	// A million nested arrays from 1 MB of input: refused before decoding
	// (the library itself has no depth limit).
	if err := c.Unmarshal(append(bytes.Repeat([]byte{0x91}, 1<<20), 0x01), &back); err == nil {
		t.Fatal("Unmarshal of input nested past the limit succeeded")
	}
	if _, err := c.Marshal(make([]bool, msgpack.MaxElements+1)); err == nil {
		t.Fatal("Marshal of an array over MaxElements succeeded")
	}
}

// TestCanonical: maps of every type come out in one order, whatever the
// library's.
func TestCanonical(t *testing.T) {
	c := msgpack.Codec{}
	type S struct {
		Zeta  int               `json:"zeta"`
		Alpha map[int64]string  `json:"alpha"`
		Mid   map[string]uint16 `json:"mid"`
	}
	v := S{Zeta: 1, Alpha: map[int64]string{}, Mid: map[string]uint16{}}
	for i := range 50 {
		v.Alpha[int64(i*1000-25000)] = "x"
		v.Mid[string(rune('a'+i%26))+string(rune('a'+i/26))] = uint16(i)
	}
	first, err := c.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	for range 50 {
		again, _ := c.Marshal(v)
		if !bytes.Equal(first, again) {
			t.Fatal("two encodings of one value differ")
		}
	}
	// The library's own decoder reads it (the order is only a choice).
	var back S
	if err := vmsgpack.Unmarshal(first, &back); err != nil {
		t.Fatal(err)
	}
	// Struct fields are in key order too: "alpha" before "zeta".
	if i, j := bytes.Index(first, []byte("alpha")), bytes.Index(first, []byte("zeta")); i < 0 || j < 0 || i > j {
		t.Fatalf("alpha at %d, zeta at %d", i, j)
	}
}

func TestTimes(t *testing.T) {
	c := msgpack.Codec{}
	for _, tm := range []time.Time{
		time.Date(2026, 1, 2, 3, 4, 5, 6, time.FixedZone("odd", 3661)),
		time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(12000, 12, 31, 23, 59, 59, 999999999, time.FixedZone("", -3600)),
		{},
	} {
		b, err := c.Marshal(tm)
		if err != nil {
			t.Fatal(err)
		}
		var back time.Time
		if err := c.Unmarshal(b, &back); err != nil {
			t.Fatal(err)
		}
		if !back.Equal(tm) {
			t.Fatalf("%v came back as %v", tm, back)
		}
	}
}

func TestJSONTags(t *testing.T) {
	type T struct {
		Name  string `json:"name"`
		Skip  string `json:"-"`
		Empty string `json:"empty,omitempty"`
		Plain int
	}
	b, err := msgpack.Codec{}.Marshal(T{Name: "n", Skip: "s", Plain: 1})
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := (msgpack.Codec{}).Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	if len(doc) != 2 || doc["name"] != "n" || doc["Plain"] != int64(1) {
		t.Fatalf("encoded %v, want name and Plain only", doc)
	}
}

// TestInvalidUTF8: Go strings are bytes; they come back as they went in.
func TestInvalidUTF8(t *testing.T) {
	type T struct {
		S string         `json:"s"`
		M map[string]int `json:"m"`
	}
	in := T{S: "a\xffb", M: map[string]int{"\xfe": 1}}
	b, err := msgpack.Codec{}.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	var back T
	if err := (msgpack.Codec{}).Unmarshal(b, &back); err != nil || back.S != in.S || back.M["\xfe"] != 1 {
		t.Fatalf("got %+v, %v", back, err)
	}
}

// TestConcurrent uses the pooled encoders and decoders from many
// goroutines (run with -race).
func TestConcurrent(t *testing.T) {
	c := msgpack.Codec{}
	var wg sync.WaitGroup
	for g := range 16 {
		wg.Go(func() {
			for i := range 100 {
				in := map[string]map[int]string{fmt.Sprint(g): {i: "x", -i: "y"}}
				b, err := c.Marshal(in)
				if err != nil {
					t.Error(err)
					return
				}
				var back map[string]map[int]string
				if err := c.Unmarshal(b, &back); err != nil || back[fmt.Sprint(g)][-i] != "y" {
					t.Errorf("round trip: %v, %v", back, err)
					return
				}
			}
		})
	}
	wg.Wait()
}

// TestNewRefusesFieldsTheCodecSkips: session.New round-trips a sample of
// the type through the codec, so a field this codec's own tag leaves out
// (which JSON would store) is refused, named; a field its tag only
// renames is accepted.
func TestNewRefusesFieldsTheCodecSkips(t *testing.T) {
	codectest.NewRefuses[struct {
		Name  string `json:"name"`
		Token string `json:"token" msgpack:"-"`
	}](t, msgpack.Codec{}, "Token does not come back")
	codectest.NewAccepts[struct {
		Name  string `json:"name"`
		Token string `json:"token" msgpack:"t"`
	}](t, msgpack.Codec{})
}
