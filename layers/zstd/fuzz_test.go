package zstd_test

import (
	"bytes"
	"errors"
	"testing"

	"github.com/typedsession/session/codec"
	"github.com/typedsession/session/layers/zstd"
)

var fuzzDict = bytes.Repeat([]byte(`{"score":1,"answers":["yes","no"],"name":"`), 4)

// FuzzDecompress feeds arbitrary bytes to Decompress, with and without the
// dictionary and under a small limit: no panic, no output over the limit,
// every error an ErrDecompress.
func FuzzDecompress(f *testing.F) {
	c := mustNew(f, zstd.Options{Dict: fuzzDict})
	plain := mustNew(f, zstd.Options{})
	for _, s := range []string{"", "a", `{"score":1,"answers":["yes","no"],"name":"bob"}`, string(bytes.Repeat([]byte("ab"), 3000))} {
		z, _ := c.Compress(nil, []byte(s))
		f.Add(z, true, uint16(4096))
		z, _ = plain.Compress(nil, []byte(s))
		f.Add(z, false, uint16(100))
	}
	f.Fuzz(func(t *testing.T, data []byte, withDict bool, limit uint16) {
		id := ""
		if withDict {
			id = c.DictID()
		}
		out, err := c.Decompress(nil, data, id, int(limit))
		if err != nil {
			if !errors.Is(err, codec.ErrDecompress) {
				t.Fatalf("error %v is not ErrDecompress", err)
			}
			return
		}
		if limit > 0 && len(out) > int(limit) {
			t.Fatalf("%d bytes out, limit %d", len(out), limit)
		}
	})
}

// FuzzRoundTrip: whatever is compressed decompresses to itself.
func FuzzRoundTrip(f *testing.F) {
	c := mustNew(f, zstd.Options{Dict: fuzzDict})
	f.Add([]byte(`{"score":1,"answers":["yes","no"],"name":"bob"}`))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, src []byte) {
		z, err := c.Compress(nil, src)
		if err != nil {
			t.Fatal(err)
		}
		out, err := c.Decompress(nil, z, c.DictID(), len(src))
		if err != nil || !bytes.Equal(out, src) {
			t.Fatalf("round trip of %d bytes: %d bytes, %v", len(src), len(out), err)
		}
	})
}
