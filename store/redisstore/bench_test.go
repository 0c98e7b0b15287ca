package redisstore_test

import (
	"bytes"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/typedsession/session/internal/testenv"
	"github.com/typedsession/session/store/redisstore"
)

// The benchmarks put each store operation beside the raw go-redis command
// it is built on, on the same client and with the same 500-byte payload,
// so that the ratio shows what the store layer costs. They need REDIS_URL
// (default redis://127.0.0.1:6379/0) and skip without it.

var (
	benchPayload  = bytes.Repeat([]byte("0123456789"), 50) // 500 bytes
	benchPayload2 = bytes.Repeat([]byte("abcdefghij"), 50)
)

func benchStore(b *testing.B) (*redisstore.Store, string, *redis.Client) {
	b.Helper()
	client := testenv.Redis(b)
	prefix := "tsbench:" + randomHex(b) + ":"
	b.Cleanup(func() { deletePrefix(b, client, prefix) })
	return redisstore.New(client, redisstore.Options{Prefix: prefix}), prefix, client
}

func BenchmarkRawGet(b *testing.B) {
	_, prefix, client := benchStore(b)
	ctx := b.Context()
	key := prefix + "k"
	if err := client.Set(ctx, key, benchPayload, time.Hour).Err(); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		v, err := client.Get(ctx, key).Bytes()
		if err != nil || len(v) != len(benchPayload) {
			b.Fatal(len(v), err)
		}
	}
}

func BenchmarkStoreGet(b *testing.B) {
	s, _, _ := benchStore(b)
	ctx := b.Context()
	if err := s.Set(ctx, "k", benchPayload, time.Hour); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		v, err := s.Get(ctx, "k")
		if err != nil || len(v) != len(benchPayload) {
			b.Fatal(len(v), err)
		}
	}
}

func BenchmarkRawSetEX(b *testing.B) {
	_, prefix, client := benchStore(b)
	ctx := b.Context()
	key := prefix + "k"
	b.ReportAllocs()
	for b.Loop() {
		if err := client.Set(ctx, key, benchPayload, time.Hour).Err(); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkStoreSet(b *testing.B) {
	s, _, _ := benchStore(b)
	ctx := b.Context()
	b.ReportAllocs()
	for b.Loop() {
		if err := s.Set(ctx, "k", benchPayload, time.Hour); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkStoreCompareAndSwap swaps between two payloads, so every call
// matches and writes: the script's full path.
func BenchmarkStoreCompareAndSwap(b *testing.B) {
	s, _, _ := benchStore(b)
	ctx := b.Context()
	if err := s.Set(ctx, "k", benchPayload, time.Hour); err != nil {
		b.Fatal(err)
	}
	old, next := benchPayload, benchPayload2
	b.ReportAllocs()
	for b.Loop() {
		ok, err := s.CompareAndSwap(ctx, "k", old, next, time.Hour)
		if err != nil || !ok {
			b.Fatal(ok, err)
		}
		old, next = next, old
	}
}

func BenchmarkStoreGetAndTouch(b *testing.B) {
	s, _, _ := benchStore(b)
	ctx := b.Context()
	if err := s.Set(ctx, "k", benchPayload, time.Hour); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		v, err := s.GetAndTouch(ctx, "k", time.Hour)
		if err != nil || len(v) != len(benchPayload) {
			b.Fatal(len(v), err)
		}
	}
}
