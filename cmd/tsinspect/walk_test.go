package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/typedsession/session/internal/testenv"
	"github.com/typedsession/session/store"
	"github.com/typedsession/session/store/filestore"
	"github.com/typedsession/session/store/memstore"
	"github.com/typedsession/session/store/redisstore"
)

// walkStore is a memstore whose Scan also reports keys that do not exist
// (gone between the scan and the read), whose Get reports one key as
// corrupt, and whose batch reads, when batch is set, fail as a whole for a
// batch holding that key, as a store that cannot read a value back does.
type walkStore struct {
	keyByKey
	ghosts  []string
	corrupt string
	batches *atomic.Int64
}

func (w walkStore) Scan(ctx context.Context, prefix string, fn func(string) error) error {
	if err := w.keyByKey.Scan(ctx, prefix, fn); err != nil {
		return err
	}
	for _, g := range w.ghosts {
		if err := fn(g); err != nil {
			return err
		}
	}
	return nil
}

func (w walkStore) Get(ctx context.Context, key string) ([]byte, error) {
	if key == w.corrupt {
		return nil, fmt.Errorf("damaged: %w", store.ErrCorrupt)
	}
	return w.Store.Get(ctx, key)
}

func (w walkStore) GetWithTTL(ctx context.Context, key string) ([]byte, time.Duration, error) {
	if key == w.corrupt {
		return nil, 0, fmt.Errorf("damaged: %w", store.ErrCorrupt)
	}
	return w.keyByKey.GetWithTTL(ctx, key)
}

// keyByKey is a memstore without its batch reads.
type keyByKey struct {
	store.Store
	mem *memstore.Store
}

func (k keyByKey) Scan(ctx context.Context, prefix string, fn func(string) error) error {
	return k.mem.Scan(ctx, prefix, fn)
}

func (k keyByKey) GetWithTTL(ctx context.Context, key string) ([]byte, time.Duration, error) {
	return k.mem.GetWithTTL(ctx, key)
}

// batchWalkStore adds batch reads to walkStore.
type batchWalkStore struct{ walkStore }

func (w batchWalkStore) GetManyWithTTL(ctx context.Context, keys []string) ([][]byte, []time.Duration, error) {
	w.batches.Add(1)
	if slices.Contains(keys, w.corrupt) {
		return nil, nil, fmt.Errorf("damaged: %w", store.ErrCorrupt)
	}
	return w.mem.GetManyWithTTL(ctx, keys)
}

// walkRecord is an entry without what changes from read to read.
type walkRecord struct {
	Key      string
	Gone     bool
	Size     int
	TTLHours int
	TTLKnown bool
	Status   Status
	Version  int
	Raw      string
}

func walkAll(t *testing.T, st store.Store, workers int) []walkRecord {
	t.Helper()
	var mu sync.Mutex
	var out []walkRecord
	err := walk(t.Context(), &target{Store: st, Kind: "test"}, "", workers, func(e entry) error {
		mu.Lock()
		defer mu.Unlock()
		out = append(out, walkRecord{Key: e.Key, Gone: e.Gone, Size: e.Size, TTLHours: int(e.TTL.Round(time.Hour) / time.Hour),
			TTLKnown: e.TTLKnown, Status: e.Status, Version: e.Env.Version, Raw: string(e.Raw)})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	slices.SortFunc(out, func(a, b walkRecord) int { return strings.Compare(a.Key, b.Key) })
	return out
}

// TestWalkBatchSameAsKeyByKey walks 3,000 keys (values of every status,
// TTLs and none, keys gone between the scan and the read, a value the
// store cannot read back) key by key and in batches, and compares the
// entries.
func TestWalkBatchSameAsKeyByKey(t *testing.T) {
	mem, err := memstore.New(memstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { mem.Close() })
	ctx := t.Context()
	const n = 3000
	for i := range n {
		key := fmt.Sprintf("quiz:%04d", i)
		var v string
		switch i % 5 {
		case 0:
			v = fmt.Sprintf(`{"typedsession":2,"writes":["w00000000001"],"data":{"score":%d}}`, i)
		case 1:
			v = fmt.Sprintf(`{"score":%d}`, i) // v0
		case 2:
			v = `{"typedsession":2,"data":` // corrupt envelope
		case 3:
			v = "\x00binary" + strings.Repeat("x", i%100)
		case 4:
			v = fmt.Sprintf(`{"typedsession":1,"data":{"score":%d,"pad":"%s"}}`, i, strings.Repeat("p", i))
		}
		ttl := time.Duration(i%3) * time.Hour // 0: no expiry
		if err := mem.Set(ctx, key, []byte(v), ttl); err != nil {
			t.Fatal(err)
		}
	}
	ghosts := []string{"quiz:ghost1", "quiz:ghost2", "quiz:ghost3"}
	var batches atomic.Int64
	base := walkStore{keyByKey: keyByKey{Store: mem, mem: mem}, ghosts: ghosts, corrupt: "quiz:1234", batches: &batches}
	for _, workers := range []int{1, 8} {
		want := walkAll(t, base, workers)
		if len(want) != n+len(ghosts) {
			t.Fatalf("key-by-key walk reported %d entries, want %d", len(want), n+len(ghosts))
		}
		batches.Store(0)
		got := walkAll(t, batchWalkStore{base}, workers)
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("workers %d: entries mismatch (-key by key +batch):\n%s", workers, diff)
		}
		if b := batches.Load(); b < 20 || b > n/4 {
			t.Errorf("workers %d: %d batch reads for %d keys, want batches of many keys", workers, b, n)
		}
		t.Logf("workers %d: %d batch reads", workers, batches.Load())
	}
}

// TestWalkBatchSizeFollowsValues: with values of 256 KiB, batches hold
// about a MiB of values, not batchKeys values.
func TestWalkBatchSizeFollowsValues(t *testing.T) {
	mem, err := memstore.New(memstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { mem.Close() })
	big := strings.Repeat("x", 256<<10)
	for i := range 64 {
		if err := mem.Set(t.Context(), fmt.Sprintf("big:%02d", i), []byte(big), 0); err != nil {
			t.Fatal(err)
		}
	}
	var largest atomic.Int64
	st := sizeSpy{Store: mem, largest: &largest}
	err = walk(t.Context(), &target{Store: st, Kind: "test"}, "", 2, func(entry) error { return nil })
	if err != nil {
		t.Fatal(err)
	}
	if l := largest.Load(); l > 8 {
		t.Errorf("a batch of %d values of 256 KiB, want at most 8 (the first look) and about 4 after", l)
	}
}

type sizeSpy struct {
	*memstore.Store
	largest *atomic.Int64
}

func (s sizeSpy) GetManyWithTTL(ctx context.Context, keys []string) ([][]byte, []time.Duration, error) {
	for {
		l := s.largest.Load()
		if int64(len(keys)) <= l || s.largest.CompareAndSwap(l, int64(len(keys))) {
			break
		}
	}
	return s.Store.GetManyWithTTL(ctx, keys)
}

// TestListingShowsWhatReadsReport (issue 23): what a read reports, a
// listing shows. A Redis hash under the store's prefix was listed by
// nobody (the batch read took it for absent, and export counted it as
// "expired or deleted during the export"), while get said WRONGTYPE: it
// is now corrupt in ls. A key another program wrote that no method can
// reach (not UTF-8) stopped ls at its first read: it is no longer listed.
// A damaged file whose key cannot be recovered is skipped with a warning
// on stderr instead of in silence.
func TestListingShowsWhatReadsReport(t *testing.T) {
	t.Run("redis", func(t *testing.T) {
		c := testenv.Redis(t)
		prefix := testenv.Prefix(t, "tsinspect")
		testenv.CleanupPrefix(t, c, prefix)
		ctx := t.Context()
		st := redisstore.New(c, redisstore.Options{Prefix: prefix})
		if err := st.Set(ctx, "ok", []byte(`{"typedsession":1,"data":{}}`), 0); err != nil {
			t.Fatal(err)
		}
		if err := c.HSet(ctx, prefix+"hash", "f", "v").Err(); err != nil {
			t.Fatal(err)
		}
		if err := c.Set(ctx, prefix+"bad\xff", "v", 0).Err(); err != nil {
			t.Fatal(err)
		}
		args := []string{"--store", testenv.RedisURL(), "--prefix", prefix}
		out := mustCLI(t, "", append(args, "ls")...)
		if !regexp.MustCompile(`(?m)\s+corrupt\s+hash$`).MatchString(out) || !strings.Contains(out, " ok ") {
			t.Errorf("ls, want the hash listed as corrupt next to ok:\n%s", out)
		}
		if strings.Contains(out, "bad") {
			t.Errorf("ls listed a key no method can reach:\n%s", out)
		}
	})
	t.Run("filestore", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "fs")
		st, err := filestore.New(dir, filestore.Options{CleanupInterval: -1})
		if err != nil {
			t.Fatal(err)
		}
		long := strings.Repeat("k", 200) // a file named by a digest
		if err := st.Set(t.Context(), long, []byte("v"), 0); err != nil {
			t.Fatal(err)
		}
		st.Close()
		entries, err := os.ReadDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range entries {
			if !e.IsDir() {
				if err := os.Truncate(filepath.Join(dir, e.Name()), 10); err != nil {
					t.Fatal(err)
				}
			}
		}
		_, errOut, err := cli(t, "", "--store", dir, "ls")
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(errOut, "tsinspect: warning:") || !strings.Contains(errOut, "cannot be recovered") {
			t.Errorf("stderr %q, want a warning about the file whose key cannot be recovered", errOut)
		}
	})
}
