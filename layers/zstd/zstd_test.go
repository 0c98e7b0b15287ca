package zstd_test

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"runtime"
	"sync"
	"testing"

	kzstd "github.com/klauspost/compress/zstd"

	"github.com/typedsession/session/codec"
	"github.com/typedsession/session/layers/zstd"
)

func mustNew(t testing.TB, o zstd.Options) *zstd.Compressor {
	t.Helper()
	c, err := zstd.New(o)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestRoundTripAndDictionaries(t *testing.T) {
	dictA := bytes.Repeat([]byte(`{"score":1,"answers":["yes","no"],"name":"`), 8)
	dictB := bytes.Repeat([]byte(`{"cart":[{"sku":"A-1","qty":2}],"total":"`), 8)
	plain := mustNew(t, zstd.Options{})
	a := mustNew(t, zstd.Options{Dict: dictA})
	b := mustNew(t, zstd.Options{Dict: dictB, ReadDicts: [][]byte{dictA}})
	if plain.DictID() != "" || len(a.DictID()) != 16 || a.DictID() == b.DictID() {
		t.Fatalf("DictIDs %q %q %q", plain.DictID(), a.DictID(), b.DictID())
	}
	src := bytes.Repeat([]byte(`{"score":1,"answers":["yes","no"],"name":"ann"}`), 20)
	for _, tc := range []struct {
		name     string
		w, r     *zstd.Compressor
		ok       bool
		whyNotOK string
	}{
		{"no dictionary", plain, plain, true, ""},
		{"dictionary", a, a, true, ""},
		{"an old dictionary in ReadDicts", a, b, true, ""},
		{"a dictionary the reader lacks", b, a, false, "a does not hold dictB"},
		{"no dictionary, read by one with", plain, b, true, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			z, err := tc.w.Compress([]byte("prefix"), src)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.HasPrefix(z, []byte("prefix")) || len(z)-6 >= len(src) {
				t.Fatalf("Compress gave %d bytes for %d", len(z)-6, len(src))
			}
			out, err := tc.r.Decompress([]byte("x"), z[6:], tc.w.DictID(), 1<<20)
			if !tc.ok {
				if !errors.Is(err, codec.ErrDecompress) {
					t.Fatalf("Decompress: %v, want ErrDecompress (%s)", err, tc.whyNotOK)
				}
				return
			}
			if err != nil || !bytes.Equal(out, append([]byte("x"), src...)) {
				t.Fatalf("Decompress = %q, %v", out, err)
			}
		})
	}
	// The envelope's dictionary ID must match the frame's.
	z, _ := a.Compress(nil, src)
	if _, err := b.Decompress(nil, z, "", 1<<20); !errors.Is(err, codec.ErrDecompress) {
		t.Fatalf("a dictionary frame read as without one: %v", err)
	}
	if _, err := b.Decompress(nil, z, b.DictID(), 1<<20); !errors.Is(err, codec.ErrDecompress) {
		t.Fatalf("a frame read with another dictionary: %v", err)
	}
}

func TestZstdFormatDictionary(t *testing.T) {
	var samples [][]byte
	for i := range 200 {
		samples = append(samples, fmt.Appendf(nil, `{"user":%d,"name":"user%d","lang":"en","step":"quiz","answers":[%d,%d]}`, i, i, i%7, i%3))
	}
	d, err := kzstd.BuildDict(kzstd.BuildDictOptions{ID: 4242, Contents: samples, History: bytes.Join(samples, nil)})
	if err != nil {
		t.Skipf("BuildDict: %v", err)
	}
	c := mustNew(t, zstd.Options{Dict: d})
	z, _ := c.Compress(nil, samples[3])
	out, err := c.Decompress(nil, z, c.DictID(), 0)
	if err != nil || !bytes.Equal(out, samples[3]) {
		t.Fatalf("Decompress = %q, %v", out, err)
	}
}

// TestMaxSize: output over maxSize is refused, and without allocating it,
// whether or not the frame declares its size.
func TestMaxSize(t *testing.T) {
	c := mustNew(t, zstd.Options{})
	big := make([]byte, 64<<20)
	withSize, _ := c.Compress(nil, big)
	var buf bytes.Buffer
	w, _ := kzstd.NewWriter(&buf)
	io.Copy(w, bytes.NewReader(big))
	w.Close()
	var h kzstd.Header
	if err := h.Decode(buf.Bytes()); err != nil || h.HasFCS {
		t.Fatalf("streamed frame: %+v, %v; want one without a content size", h, err)
	}
	for name, z := range map[string][]byte{"content size": withSize, "streamed": buf.Bytes()} {
		t.Run(name, func(t *testing.T) {
			var before, after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			_, err := c.Decompress(nil, z, "", 1<<20)
			runtime.ReadMemStats(&after)
			if !errors.Is(err, codec.ErrDecompress) {
				t.Fatalf("64 MiB with maxSize 1 MiB: %v, want ErrDecompress", err)
			}
			if n := after.TotalAlloc - before.TotalAlloc; n > 16<<20 {
				t.Fatalf("refusing 64 MiB allocated %d bytes", n)
			}
			out, err := c.Decompress(nil, z, "", 0)
			if err != nil || len(out) != len(big) {
				t.Fatalf("without a limit: %d bytes, %v", len(out), err)
			}
		})
	}
	exact, _ := c.Compress(nil, big[:1<<20])
	if out, err := c.Decompress(nil, exact, "", 1<<20); err != nil || len(out) != 1<<20 {
		t.Fatalf("exactly maxSize: %d, %v", len(out), err)
	}
}

func TestDamaged(t *testing.T) {
	c := mustNew(t, zstd.Options{})
	src := bytes.Repeat([]byte("session data "), 100)
	z, _ := c.Compress(nil, src)
	cases := map[string][]byte{
		"empty":      nil,
		"truncated":  z[:len(z)/2],
		"not zstd":   src,
		"two frames": append(bytes.Clone(z), z...),
	}
	flipped := bytes.Clone(z)
	flipped[len(flipped)/2] ^= 0x10
	cases["flipped bit"] = flipped
	for name, in := range cases {
		out, err := c.Decompress(nil, in, "", 1<<20)
		if name == "flipped bit" && err == nil && !bytes.Equal(out, src) {
			t.Fatalf("%s: decoded to other bytes without an error", name)
		}
		if name != "flipped bit" && !errors.Is(err, codec.ErrDecompress) {
			t.Fatalf("%s: %v, want ErrDecompress", name, err)
		}
	}
}

// TestConcurrent runs many compressions and decompressions at once (run
// with -race).
func TestConcurrent(t *testing.T) {
	c := mustNew(t, zstd.Options{Dict: bytes.Repeat([]byte("dictionary content "), 10)})
	var wg sync.WaitGroup
	for g := range 32 {
		wg.Go(func() {
			for i := range 50 {
				src := bytes.Repeat(fmt.Appendf(nil, "goroutine %d item %d ", g, i), 10+i)
				z, err := c.Compress(nil, src)
				if err != nil {
					t.Error(err)
					return
				}
				out, err := c.Decompress(nil, z, c.DictID(), 1<<20)
				if err != nil || !bytes.Equal(out, src) {
					t.Errorf("round trip: %v", err)
					return
				}
			}
		})
	}
	wg.Wait()
}
