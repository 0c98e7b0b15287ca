package natsstore

import (
	"fmt"
	"testing"
	"time"
)

// The benchmarks measure one call against the test server (a local
// nats-server started by TestMain, or NATS_URL): round trips dominate.
//
//	go test -run '^$' -bench . ./store/natsstore

func BenchmarkGet(b *testing.B) {
	s, _ := newTestStore(b, Options{SweepInterval: -1})
	if err := s.Set(b.Context(), "k", make([]byte, 512), time.Hour); err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if _, err := s.Get(b.Context(), "k"); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkSet(b *testing.B) {
	s, _ := newTestStore(b, Options{SweepInterval: -1})
	v := make([]byte, 512)
	for b.Loop() {
		if err := s.Set(b.Context(), "k", v, time.Hour); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkCompareAndSwap is the session manager's save: one read and one
// conditional publish.
func BenchmarkCompareAndSwap(b *testing.B) {
	s, _ := newTestStore(b, Options{SweepInterval: -1})
	old := []byte("v0")
	if err := s.Set(b.Context(), "k", old, time.Hour); err != nil {
		b.Fatal(err)
	}
	i := 0
	for b.Loop() {
		i++
		next := []byte(fmt.Sprintf("v%d", i))
		ok, err := s.CompareAndSwap(b.Context(), "k", old, next, time.Hour)
		if err != nil || !ok {
			b.Fatal(ok, err)
		}
		old = next
	}
}

// BenchmarkScan1000 lists a bucket of 1,000 keys.
func BenchmarkScan1000(b *testing.B) {
	s, _ := newTestStore(b, Options{SweepInterval: -1})
	for i := range 1000 {
		if err := s.Set(b.Context(), fmt.Sprintf("user:%d", i), []byte("v"), time.Hour); err != nil {
			b.Fatal(err)
		}
	}
	for b.Loop() {
		n := 0
		if err := s.Scan(b.Context(), "", func(string) error { n++; return nil }); err != nil || n != 1000 {
			b.Fatal(n, err)
		}
	}
}
