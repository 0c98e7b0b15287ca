package main

import (
	"context"
	"fmt"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/typedsession/session/internal/testenv"
)

// lineCounter is a writer that counts lines and keeps nothing.
type lineCounter struct{ lines atomic.Int64 }

func (c *lineCounter) Write(p []byte) (int, error) {
	c.lines.Add(int64(strings.Count(string(p), "\n")))
	return len(p), nil
}

// TestStreaming lists and counts 200,000 keys in Redis and checks that the
// heap stays flat: its peak while the command runs stays within 16 MiB of
// what it was before, though the values read add up to about 40 MiB.
func TestStreaming(t *testing.T) {
	testenv.Slow(t)
	const n = 200_000
	c := testenv.Redis(t)
	prefix := testenv.Prefix(t, "tsinspect-stream")
	testenv.CleanupPrefix(t, c, prefix)
	ctx := context.Background()
	value := `{"typedsession":2,"writes":["w00000000001"],"data":{"score":12,"answers":["` + strings.Repeat("x", 120) + `"]}}`
	start := time.Now()
	for i := 0; i < n; i += 5000 {
		p := c.Pipeline()
		for j := i; j < i+5000; j++ {
			p.Set(ctx, fmt.Sprintf("%squiz:%d", prefix, j), value, time.Hour)
		}
		if _, err := p.Exec(ctx); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("seeded %d keys in %v", n, time.Since(start).Round(time.Millisecond))
	args := []string{"--store", testenv.RedisURL(), "--prefix", prefix, "--workers", "16"}

	for _, cmd := range [][]string{{"ls"}, {"stats", "--top", "5"}} {
		out := &lineCounter{}
		root := newRoot(strings.NewReader(""), out, &lineCounter{})
		root.SetArgs(append(append([]string(nil), args...), cmd...))
		before, peak := heapPeak(t, func() {
			start = time.Now()
			if err := root.ExecuteContext(ctx); err != nil {
				t.Fatalf("%s: %v", cmd[0], err)
			}
		})
		d := time.Since(start)
		t.Logf("%s: %d keys in %v, %.0f keys/s; heap in use %.1f MiB before, %.1f MiB at the peak",
			cmd[0], n, d.Round(time.Millisecond), n/d.Seconds(), mib(before), mib(peak))
		if cmd[0] == "ls" && out.lines.Load() != n+1 {
			t.Errorf("ls printed %d lines, want %d", out.lines.Load(), n+1)
		}
		if grew := peak - before; grew > 16<<20 {
			t.Errorf("%s: the heap grew by %.1f MiB while it ran; it should stay flat", cmd[0], mib(grew))
		}
	}
}

// TestStreamingTransfer exports 200,000 keys from Redis to a file and
// imports them under another prefix, with a flat heap both ways.
func TestStreamingTransfer(t *testing.T) {
	testenv.Slow(t)
	const n = 200_000
	c := testenv.Redis(t)
	from, to := testenv.Prefix(t, "tsinspect-export"), testenv.Prefix(t, "tsinspect-import")
	testenv.CleanupPrefix(t, c, from)
	testenv.CleanupPrefix(t, c, to)
	ctx := context.Background()
	value := `{"typedsession":1,"data":{"score":1,"note":"` + strings.Repeat("y", 100) + `"}}`
	for i := 0; i < n; i += 5000 {
		p := c.Pipeline()
		for j := i; j < i+5000; j++ {
			p.Set(ctx, fmt.Sprintf("%sk%d", from, j), value, time.Hour)
		}
		if _, err := p.Exec(ctx); err != nil {
			t.Fatal(err)
		}
	}
	file := filepath.Join(t.TempDir(), "export.jsonl")
	for _, step := range []struct {
		name string
		args []string
	}{
		{"export", []string{"--store", testenv.RedisURL(), "--prefix", from, "--workers", "16", "export", "-o", file}},
		{"import", []string{"--store", testenv.RedisURL(), "--prefix", to, "--workers", "16", "import", file}},
	} {
		root := newRoot(strings.NewReader(""), &lineCounter{}, &lineCounter{})
		root.SetArgs(step.args)
		start := time.Now()
		before, peak := heapPeak(t, func() {
			if err := root.ExecuteContext(ctx); err != nil {
				t.Fatalf("%s: %v", step.name, err)
			}
		})
		d := time.Since(start)
		t.Logf("%s: %d keys in %v, %.0f keys/s; heap in use %.1f MiB before, %.1f MiB at the peak",
			step.name, n, d.Round(time.Millisecond), n/d.Seconds(), mib(before), mib(peak))
		if grew := peak - before; grew > 16<<20 {
			t.Errorf("%s: the heap grew by %.1f MiB while it ran; it should stay flat", step.name, mib(grew))
		}
	}
	got, err := c.Get(ctx, to+"k199999").Result()
	if err != nil || got != value {
		t.Errorf("imported k199999 = %q, %v", got, err)
	}
	if ttl := c.PTTL(ctx, to+"k199999").Val(); ttl <= 50*time.Minute || ttl > time.Hour {
		t.Errorf("imported k199999 has %v left, want about an hour", ttl)
	}
}

func mib(b uint64) float64 { return float64(b) / (1 << 20) }

// heapPeak runs fn and returns the heap in use before it (after a GC) and
// the largest seen while it ran, sampled every 5 ms.
func heapPeak(t *testing.T, fn func()) (before, peak uint64) {
	// A low GOGC while fn runs keeps garbage from counting as growth: with
	// the default of 100 the heap may hold twice the live data before a
	// collection, and a busy machine's collector lags behind further. What
	// is measured is then the live heap plus at most a fifth, and a command
	// that held every value (about 40 MiB) would still exceed the bound.
	defer debug.SetGCPercent(debug.SetGCPercent(20))
	var ms runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&ms)
	before, peak = ms.HeapInuse, ms.HeapInuse
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		var ms runtime.MemStats
		for {
			select {
			case <-done:
				return
			case <-time.After(5 * time.Millisecond):
			}
			runtime.ReadMemStats(&ms)
			peak = max(peak, ms.HeapInuse)
		}
	}()
	fn()
	close(done)
	wg.Wait()
	return before, peak
}
