package cbor_test

import (
	"bytes"
	"encoding/hex"
	"strings"
	"testing"
	"time"

	"github.com/typedsession/session/codec/codectest"
	"github.com/typedsession/session/codecs/cbor"
)

func TestStrict(t *testing.T) {
	c := cbor.Codec{}
	for _, tc := range []struct {
		name, hex string
	}{
		{"empty", ""},
		{"data after the value", "0101"},
		{"duplicate map key", "a2616101616102"},
		{"indefinite length", "9f01ff"},
		{"truncated", "83010203"[:6]},
		{"array longer than the input", "9b00000000ffffffff"},
		{"reserved", "1c"},
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
	c := cbor.Codec{}
	deep := any("leaf")
	for range cbor.MaxNestedLevels + 1 {
		deep = []any{deep}
	}
	if _, err := c.Marshal(deep); err == nil {
		t.Fatal("Marshal of a value nested deeper than the decoder's limit succeeded")
	}
	ok := any("leaf")
	for range cbor.MaxNestedLevels {
		ok = []any{ok}
	}
	b, err := c.Marshal(ok)
	if err != nil {
		t.Fatalf("Marshal at the nesting limit: %v", err)
	}
	var back any
	if err := c.Unmarshal(b, &back); err != nil {
		t.Fatalf("Unmarshal at the nesting limit: %v", err)
	}
	// Too deep on input: 9 levels past the limit, from its bytes.
	in := append(bytes.Repeat([]byte{0x81}, cbor.MaxNestedLevels+9), 0x01)
	if err := c.Unmarshal(in, &back); err == nil {
		t.Fatal("Unmarshal of input nested past the limit succeeded")
	}
	if _, err := c.Marshal(make([]bool, cbor.MaxArrayElements+1)); err == nil {
		t.Fatal("Marshal of an array over MaxArrayElements succeeded")
	}
}

func TestDeterministic(t *testing.T) {
	c := cbor.Codec{}
	m := map[string]int{}
	for i := range 100 {
		m[strings.Repeat("k", i%7)+string(rune('a'+i%26))+string(rune('A'+i/26))] = i
	}
	first, err := c.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	for range 50 {
		again, _ := c.Marshal(m)
		if !bytes.Equal(first, again) {
			t.Fatal("two encodings of one map differ")
		}
	}
}

// TestTimes: the instant is exact whatever the zone's offset (RFC 3339
// cannot hold an offset with seconds, so the zone is dropped, not the
// instant).
func TestTimes(t *testing.T) {
	c := cbor.Codec{}
	for _, tm := range []time.Time{
		time.Date(2026, 1, 2, 3, 4, 5, 6, time.FixedZone("odd", 3661)),
		time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(9999, 12, 31, 23, 59, 59, 999999999, time.FixedZone("", 3600)),
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
	// The limit is on the year in UTC.
	if _, err := c.Marshal(time.Date(9999, 12, 31, 23, 0, 0, 0, time.FixedZone("", -3600))); err == nil {
		t.Fatal("Marshal of year 10000 (in UTC) succeeded")
	}
}

func TestJSONTags(t *testing.T) {
	type T struct {
		Name  string    `json:"name"`
		Skip  string    `json:"-"`
		Empty string    `json:"empty,omitempty"`
		Zero  time.Time `json:"zero,omitzero"`
		Plain int
	}
	b, err := cbor.Codec{}.Marshal(T{Name: "n", Skip: "s", Plain: 1})
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := (cbor.Codec{}).Unmarshal(b, &doc); err != nil {
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
	b, err := cbor.Codec{}.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	var back T
	if err := (cbor.Codec{}).Unmarshal(b, &back); err != nil || back.S != in.S || back.M["\xfe"] != 1 {
		t.Fatalf("got %+v, %v", back, err)
	}
}

// TestNewRefusesFieldsTheCodecSkips: session.New round-trips a sample of
// the type through the codec, so a field this codec's own tag leaves out
// (which JSON would store) is refused, named; a field its tag only
// renames is accepted.
func TestNewRefusesFieldsTheCodecSkips(t *testing.T) {
	codectest.NewRefuses[struct {
		Name  string `json:"name"`
		Token string `json:"token" cbor:"-"`
	}](t, cbor.Codec{}, "Token does not come back")
	codectest.NewAccepts[struct {
		Name  string `json:"name"`
		Token string `json:"token" cbor:"t"`
	}](t, cbor.Codec{})
}
