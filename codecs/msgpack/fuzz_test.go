package msgpack_test

import (
	"bytes"
	"testing"

	"github.com/typedsession/session/codec/codectest"
)

// FuzzUnmarshal feeds arbitrary bytes to the decoder: it must not panic or
// hang, and whatever it accepts re-encodes to a fixed point (the encoding of
// the decoded value decodes to a value with the same encoding).
func FuzzUnmarshal(f *testing.F) {
	for _, v := range []any{codectest.SampleEvery(), map[string]any{"a": []any{1, "x", nil, 1.5}}, []byte{1}, "s", -1, uint64(1 << 63)} {
		b, err := testCodec.Marshal(v)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte{0x82, 0xa1, 0x62, 0x01, 0xa1, 0x61, 0x02})
	f.Add([]byte{0xd6, 0xff, 0, 0, 0, 1})
	f.Fuzz(func(t *testing.T, data []byte) {
		var e codectest.Every
		if testCodec.Unmarshal(data, &e) == nil {
			fixedPoint(t, &e, func() any { return new(codectest.Every) })
		}
		var doc map[string]any
		if testCodec.Unmarshal(data, &doc) == nil {
			fixedPoint(t, &doc, func() any { return new(map[string]any) })
		}
		var a any
		if testCodec.Unmarshal(data, &a) == nil {
			fixedPoint(t, &a, func() any { return new(any) })
		}
	})
}

// fixedPoint checks that v's encoding, if any, decodes into a fresh value
// whose encoding is the same.
func fixedPoint(t *testing.T, v any, fresh func() any) {
	t.Helper()
	b1, err := testCodec.Marshal(v)
	if err != nil {
		return // decoded but not encodable (a time past year 9999, say)
	}
	w := fresh()
	if err := testCodec.Unmarshal(b1, w); err != nil {
		t.Fatalf("Marshal gave %x, which does not decode into %T: %v", b1, w, err)
	}
	b2, err := testCodec.Marshal(w)
	if err != nil {
		t.Fatalf("re-encoding %T: %v", w, err)
	}
	if !bytes.Equal(b1, b2) {
		t.Fatalf("not a fixed point for %T:\n%x\n%x", w, b1, b2)
	}
}
