package filestore

import (
	"bytes"
	"testing"
	"time"
)

// The write benchmarks measure two fsyncs per operation (the file and the
// directory): on a disk they are what a write costs.

func benchStore(b *testing.B) *Store {
	b.Helper()
	s, err := New(b.TempDir(), Options{CleanupInterval: -1})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	return s
}

var benchValue = bytes.Repeat([]byte("v"), 500)

func BenchmarkGet(b *testing.B) {
	s := benchStore(b)
	ctx := b.Context()
	if err := s.Set(ctx, "quiz:42", benchValue, time.Hour); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.Get(ctx, "quiz:42"); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkGetWithTTL is the read a Load under an idle timeout makes when
// the session is not near expiry: no lock, no write.
func BenchmarkGetWithTTL(b *testing.B) {
	s := benchStore(b)
	ctx := b.Context()
	if err := s.Set(ctx, "quiz:42", benchValue, time.Hour); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := s.GetWithTTL(ctx, "quiz:42"); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkGetAndTouch is the read that also rewrites the file, as a Load
// under an idle timeout did before it read the TTL first.
func BenchmarkGetAndTouch(b *testing.B) {
	s := benchStore(b)
	ctx := b.Context()
	if err := s.Set(ctx, "quiz:42", benchValue, time.Hour); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.GetAndTouch(ctx, "quiz:42", time.Hour); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkSet(b *testing.B) {
	s := benchStore(b)
	ctx := b.Context()
	b.ReportAllocs()
	for b.Loop() {
		if err := s.Set(ctx, "quiz:42", benchValue, time.Hour); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkCompareAndSwap(b *testing.B) {
	s := benchStore(b)
	ctx := b.Context()
	vals := [2][]byte{benchValue, bytes.Repeat([]byte("w"), 500)}
	if err := s.Set(ctx, "quiz:42", vals[0], time.Hour); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		ok, err := s.CompareAndSwap(ctx, "quiz:42", vals[i%2], vals[(i+1)%2], time.Hour)
		if err != nil || !ok {
			b.Fatalf("CompareAndSwap = %v, %v", ok, err)
		}
		i++
	}
}
