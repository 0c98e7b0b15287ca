package redisstore_test

import (
	"bytes"
	"fmt"
	"slices"
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

// The reads with a TTL: what a Load costs when it must learn the time a
// session has left (GetWithTTL) beside a plain GET and a GETEX that
// extends the TTL on every read, and the other ways to read a value and its
// TTL in one round trip. Each reports commands/op and round-trips/op (the
// writes on the connections).

// benchCountingStore is benchStore on a client of countingClient, with
// the payload stored under "k".
func benchCountingStore(b *testing.B) (*redisstore.Store, string, *redis.Client, *cmdCounter, *writeCounter) {
	b.Helper()
	client, cmds, writes := countingClient(b)
	prefix := "tsbench:" + randomHex(b) + ":"
	b.Cleanup(func() { deletePrefix(b, client, prefix) })
	s := redisstore.New(client, redisstore.Options{Prefix: prefix})
	if err := s.Set(b.Context(), "k", benchPayload, time.Hour); err != nil {
		b.Fatal(err)
	}
	return s, prefix, client, cmds, writes
}

// benchCounted runs op b.N times and reports commands and round trips per
// op.
func benchCounted(b *testing.B, cmds *cmdCounter, writes *writeCounter, op func() error) {
	b.Helper()
	if err := op(); err != nil { // warm: connection, script cache
		b.Fatal(err)
	}
	c0, w0 := cmds.n.Load(), writes.n.Load()
	n := 0
	b.ReportAllocs()
	for b.Loop() {
		if err := op(); err != nil {
			b.Fatal(err)
		}
		n++
	}
	b.ReportMetric(float64(cmds.n.Load()-c0)/float64(n), "cmds/op")
	b.ReportMetric(float64(writes.n.Load()-w0)/float64(n), "round-trips/op")
}

func BenchmarkReadTTLStoreGet(b *testing.B) {
	s, _, _, cmds, writes := benchCountingStore(b)
	ctx := b.Context()
	benchCounted(b, cmds, writes, func() error { _, err := s.Get(ctx, "k"); return err })
}

func BenchmarkReadTTLStoreGetAndTouch(b *testing.B) {
	s, _, _, cmds, writes := benchCountingStore(b)
	ctx := b.Context()
	benchCounted(b, cmds, writes, func() error { _, err := s.GetAndTouch(ctx, "k", time.Hour); return err })
}

func BenchmarkReadTTLStoreGetWithTTL(b *testing.B) {
	s, _, _, cmds, writes := benchCountingStore(b)
	ctx := b.Context()
	benchCounted(b, cmds, writes, func() error {
		_, ttl, err := s.GetWithTTL(ctx, "k")
		if err == nil && ttl <= 0 {
			return fmt.Errorf("ttl %v", ttl)
		}
		return err
	})
}

// BenchmarkReadTTLRawPipeline is GET and PTTL pipelined: one round trip,
// but not atomic (another client's command may run between the two).
func BenchmarkReadTTLRawPipeline(b *testing.B) {
	_, prefix, client, cmds, writes := benchCountingStore(b)
	ctx := b.Context()
	key := prefix + "k"
	benchCounted(b, cmds, writes, func() error {
		pipe := client.Pipeline()
		get := pipe.Get(ctx, key)
		pttl := pipe.PTTL(ctx, key)
		if _, err := pipe.Exec(ctx); err != nil {
			return err
		}
		_, _ = get.Bytes()
		_ = pttl.Val()
		return nil
	})
}

// BenchmarkReadTTLRawTx is MULTI GET PTTL EXEC: one round trip, atomic.
func BenchmarkReadTTLRawTx(b *testing.B) {
	_, prefix, client, cmds, writes := benchCountingStore(b)
	ctx := b.Context()
	key := prefix + "k"
	benchCounted(b, cmds, writes, func() error {
		pipe := client.TxPipeline()
		get := pipe.Get(ctx, key)
		pttl := pipe.PTTL(ctx, key)
		if _, err := pipe.Exec(ctx); err != nil {
			return err
		}
		_, _ = get.Bytes()
		_ = pttl.Val()
		return nil
	})
}

// getTTLScript reads a value and its PTTL in a Lua script (EVALSHA), the
// alternative to GetWithTTL's pipeline.
var getTTLScript = redis.NewScript("return {redis.call('GET', KEYS[1]), redis.call('PTTL', KEYS[1])}")

// BenchmarkReadTTLInterleaved calls the reads one after the other in every
// round, so that the load of a busy machine falls on all of them alike,
// and reports each one's median latency in µs (the ns/op is a round of
// all five). It is the figure the package doc quotes.
func BenchmarkReadTTLInterleaved(b *testing.B) {
	s, prefix, client, _, _ := benchCountingStore(b)
	ctx := b.Context()
	key := prefix + "k"
	ops := []struct {
		name string
		f    func() error
	}{
		{"GET", func() error { _, err := s.Get(ctx, "k"); return err }},
		{"GETEX", func() error { _, err := s.GetAndTouch(ctx, "k", time.Hour); return err }},
		{"GetWithTTL", func() error { _, _, err := s.GetWithTTL(ctx, "k"); return err }},
		{"pipeline", func() error {
			p := client.Pipeline()
			p.Get(ctx, key)
			p.PTTL(ctx, key)
			_, err := p.Exec(ctx)
			return err
		}},
		{"script", func() error { return getTTLScript.Run(ctx, client, []string{key}).Err() }},
	}
	times := make([][]time.Duration, len(ops))
	for b.Loop() {
		for i, op := range ops {
			start := time.Now()
			if err := op.f(); err != nil {
				b.Fatal(op.name, err)
			}
			times[i] = append(times[i], time.Since(start))
		}
	}
	for i, op := range ops {
		slices.Sort(times[i])
		b.ReportMetric(float64(times[i][len(times[i])/2].Nanoseconds())/1000, op.name+"-p50-µs")
	}
}
