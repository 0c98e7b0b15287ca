// Command memsnapshot measures memstore's snapshot on a large store: the
// time and memory of the final snapshot that Close writes, and of the
// restore that New does. Run each phase in its own process, so that the
// peak memory the kernel reports is that phase's:
//
//	go build -o /tmp/memsnapshot ./memsnapshot
//	/usr/bin/time -v /tmp/memsnapshot -phase close -n 1000000 -size 200 -file /tmp/sessions.snap -replace
//	/usr/bin/time -v /tmp/memsnapshot -phase restore -file /tmp/sessions.snap
//
// The close phase fills a store with n keys of size random bytes each
// (keys "session:<i>", an hour's ttl), then calls Close. The restore phase
// calls New on the file. Each prints the phase's duration, the Go heap in
// use (after a GC) and the process's resident memory before the phase, and
// the peak resident memory (VmHWM) after it. BENCHMARKS.md at the root of
// the repository has the figures.
package main

import (
	"context"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"runtime"
	"strings"
	"time"

	"github.com/typedsession/session/store/memstore"
)

func main() {
	phase := flag.String("phase", "close", "close (fill, then Close writes the snapshot) or restore (New reads it)")
	n := flag.Int("n", 1_000_000, "keys to write in the close phase")
	size := flag.Int("size", 200, "bytes per value in the close phase")
	file := flag.String("file", "sessions.snap", "snapshot file")
	replace := flag.Bool("replace", false, "close phase: replace -file if it exists (it is deleted first)")
	flag.Parse()
	opts := memstore.Options{BackupPath: *file, BackupInterval: -1, CleanupInterval: -1}
	ctx := context.Background()
	switch *phase {
	case "close":
		if _, err := os.Stat(*file); err == nil {
			if !*replace {
				// The default name is what a bot's own snapshot may be
				// called: never delete a file the run did not ask for.
				fmt.Fprintf(os.Stderr, "memsnapshot: %s exists; the close phase deletes and rewrites it: pass -replace, or a -file of the run's own\n", *file)
				os.Exit(2)
			}
			check(os.Remove(*file))
		}
		s, err := memstore.New(opts)
		check(err)
		r := rand.New(rand.NewPCG(1, 2))
		buf := make([]byte, *size)
		for i := range *n {
			for j := range buf {
				buf[j] = byte(r.Uint32())
			}
			check(s.Set(ctx, fmt.Sprintf("session:%d", i), buf, time.Hour))
		}
		heap, rss := before()
		start := time.Now()
		check(s.Close())
		report("close", time.Since(start), heap, rss, *n)
		runtime.KeepAlive(s)
	case "restore":
		heap, rss := before()
		start := time.Now()
		s, err := memstore.New(opts)
		check(err)
		d := time.Since(start)
		heapAfter := heapInUse()
		report("restore", d, heap, rss, s.Len())
		fmt.Printf("heap in use after restore: %d MiB\n", heapAfter>>20)
		runtime.KeepAlive(s)
	default:
		check(fmt.Errorf("unknown -phase %q", *phase))
	}
}

func heapInUse() uint64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapInuse
}

func before() (heap, rss uint64) {
	return heapInUse(), procStatus("VmRSS")
}

func report(phase string, d time.Duration, heap, rss uint64, keys int) {
	fi, _ := os.Stat(flag.Lookup("file").Value.String())
	var fileSize int64
	if fi != nil {
		fileSize = fi.Size()
	}
	fmt.Printf("%s: %d keys, %v; file %d MiB\n", phase, keys, d.Round(time.Millisecond), fileSize>>20)
	fmt.Printf("before %s: heap in use %d MiB, resident %d MiB\n", phase, heap>>20, rss>>20)
	fmt.Printf("peak resident (VmHWM) after %s: %d MiB\n", phase, procStatus("VmHWM")>>20)
}

// procStatus returns a field of /proc/self/status in bytes (0 where there
// is none, outside Linux).
func procStatus(field string) uint64 {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for line := range strings.Lines(string(data)) {
		if rest, ok := strings.CutPrefix(line, field+":"); ok {
			var kb uint64
			fmt.Sscanf(strings.TrimSpace(rest), "%d kB", &kb)
			return kb << 10
		}
	}
	return 0
}

func check(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, "memsnapshot:", err)
		os.Exit(1)
	}
}
