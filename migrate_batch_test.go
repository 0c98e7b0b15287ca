package session_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/redis/go-redis/v9"

	session "github.com/typedsession/session"
	"github.com/typedsession/session/internal/testenv"
	"github.com/typedsession/session/migrate"
	"github.com/typedsession/session/store"
	"github.com/typedsession/session/store/memstore"
	"github.com/typedsession/session/store/redisstore"
)

// The tests of MigrateAll on stores with batch reads (memstore, Redis) and
// batch compare-and-swaps (Redis): the same reports, stored values and hook
// events as the key-by-key walk, no update lost under concurrent Updates,
// nothing lost or applied twice when connections are cut mid-pipeline.

// Tally is the session of these tests: the ids of the updates applied to
// it, in order, so that a lost or doubled update shows. Version 2 added
// Tag.
type Tally struct {
	IDs []string `json:"ids"`
	Tag string   `json:"tag"`
}

func tallyPlan(t testing.TB) *migrate.Plan {
	p, err := migrate.New(migrate.Raw(1, func(doc map[string]any) error {
		if doc["ids"] == "boom" {
			return errors.New("step 1 refuses this value")
		}
		doc["tag"] = "v2"
		return nil
	}))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// keyByKey hides the batch capabilities of a store (and keeps every other
// one), so that MigrateAll walks it key by key: the reference.
type keyByKey struct {
	store.Store
	store.Swapper
	store.Deleter
	store.Toucher
	store.TTLGetter
	store.Scanner
}

func hideBatch(s store.Store) store.Store {
	k := keyByKey{Store: s}
	k.Swapper, _ = s.(store.Swapper)
	k.Deleter, _ = s.(store.Deleter)
	k.Toucher, _ = s.(store.Toucher)
	k.TTLGetter, _ = s.(store.TTLGetter)
	k.Scanner, _ = s.(store.Scanner)
	return k
}

// pausedScan makes the keys named in expire expire between MigrateAll's
// scan and its reads: once the scan is done, its Scan gives them a TTL of
// 1 ms and returns after pause. pausedScan hides the batch capabilities
// of the store it wraps; batchPausedScan and batchSwapping add them.
type pausedScan struct {
	store.Store
	expire  []string
	pause   time.Duration
	batches *atomic.Int64 // batch calls made through the wrapper
}

func (p pausedScan) Scan(ctx context.Context, prefix string, fn func(string) error) error {
	err := p.Store.(store.Scanner).Scan(ctx, prefix, fn)
	for _, k := range p.expire {
		if terr := p.Touch(ctx, k, time.Millisecond); terr != nil {
			return terr
		}
	}
	time.Sleep(p.pause)
	return err
}

func (p pausedScan) CompareAndSwap(ctx context.Context, key string, old, value []byte, ttl time.Duration) (bool, error) {
	return p.Store.(store.Swapper).CompareAndSwap(ctx, key, old, value, ttl)
}
func (p pausedScan) CompareAndDelete(ctx context.Context, key string, old []byte) (bool, error) {
	return p.Store.(store.Deleter).CompareAndDelete(ctx, key, old)
}
func (p pausedScan) Touch(ctx context.Context, key string, ttl time.Duration) error {
	return p.Store.(store.Toucher).Touch(ctx, key, ttl)
}
func (p pausedScan) GetWithTTL(ctx context.Context, key string) ([]byte, time.Duration, error) {
	return p.Store.(store.TTLGetter).GetWithTTL(ctx, key)
}

// batchPausedScan is pausedScan with the batch capabilities of the store.
type batchPausedScan struct {
	pausedScan
}

func (p batchPausedScan) GetMany(ctx context.Context, keys []string) ([][]byte, error) {
	p.batches.Add(1)
	return p.Store.(store.BatchGetter).GetMany(ctx, keys)
}
func (p batchPausedScan) GetManyWithTTL(ctx context.Context, keys []string) ([][]byte, []time.Duration, error) {
	p.batches.Add(1)
	return p.Store.(store.BatchTTLGetter).GetManyWithTTL(ctx, keys)
}

// batchSwapping adds the store's BatchSwapper, if it has one.
type batchSwapping struct {
	batchPausedScan
}

func (p batchSwapping) CompareAndSwapMany(ctx context.Context, swaps []store.Swap) ([]store.SwapResult, error) {
	p.batches.Add(1000)
	return p.Store.(store.BatchSwapper).CompareAndSwapMany(ctx, swaps)
}

// seedMix writes n keys of namespace "tally" into s, of every kind
// MigrateAll meets, and returns the store keys that must expire between
// MigrateAll's scan and its reads (see pausedScan).
func seedMix(t *testing.T, s store.Store, n int) (expire []string) {
	t.Helper()
	ctx := t.Context()
	for i := range n {
		key := fmt.Sprintf("tally:%04d", i)
		var v string
		switch i % 10 {
		case 0, 1, 2:
			v = fmt.Sprintf(`{"typedsession":1,"data":{"ids":["seed%d"]}}`, i) // one step to go
		case 3, 4:
			v = fmt.Sprintf(`{"typedsession":2,"data":{"ids":["seed%d"],"tag":"v2"}}`, i) // current
		case 5:
			v = fmt.Sprintf(`{"typedsession":1,"data":{"ids":["seed%d"],"extra":%d}}`, i, i) // a member Tally lacks
		case 6:
			v = `{"typedsession":1,"data":{"ids":` // corrupt
		case 7:
			v = fmt.Sprintf(`{"typedsession":3,"data":{"ids":["seed%d"]}}`, i) // a future version
		case 8:
			if i%20 == 8 {
				v = `{"typedsession":1,"data":{"ids":"boom"}}` // a failing step
			} else {
				v = fmt.Sprintf(`{"ids":["seed%d"]}`, i) // version 0: no step from 0
			}
		case 9:
			v = fmt.Sprintf(`{"typedsession":1,"data":{"ids":["seed%d"]}}`, i)
			expire = append(expire, key) // gone between the scan and the read
		}
		if err := s.Set(ctx, key, []byte(v), time.Hour); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Set(ctx, "other:1", []byte("not ours"), 0); err != nil {
		t.Fatal(err)
	}
	return expire
}

// eventRecord is an Event without what differs from run to run.
type eventRecord struct {
	Op, Key                string
	Outcome                session.Outcome
	Err                    string
	Bytes                  int
	StoredVersion, Version int
	Attempts, Conflicts    int
	Unknown                []string
}

func recordEvents() (func(context.Context, session.Event), func() []eventRecord) {
	var mu sync.Mutex
	var recs []eventRecord
	hook := func(_ context.Context, e session.Event) {
		r := eventRecord{Op: e.Op, Key: e.Key, Outcome: e.Outcome, Bytes: e.Bytes, StoredVersion: e.StoredVersion,
			Version: e.Version, Attempts: e.Attempts, Conflicts: e.Conflicts, Unknown: e.Extra}
		if e.Err != nil {
			r.Err = errKind(e.Err)
		}
		mu.Lock()
		recs = append(recs, r)
		mu.Unlock()
	}
	return hook, func() []eventRecord {
		mu.Lock()
		defer mu.Unlock()
		// Two stores scan in different orders.
		return slices.SortedStableFunc(slices.Values(recs), func(a, b eventRecord) int { return strings.Compare(a.Key, b.Key) })
	}
}

// errKind names the session error err matches.
func errKind(err error) string {
	for _, k := range []struct {
		name string
		err  error
	}{
		{"corrupt", session.ErrCorrupt}, {"future", session.ErrFutureVersion}, {"migration", session.ErrMigration},
		{"invalid", session.ErrInvalid}, {"conflict", session.ErrConflict}, {"unknown", session.ErrOutcomeUnknown},
	} {
		if errors.Is(err, k.err) {
			return k.name
		}
	}
	return "other: " + err.Error()
}

// reportRecord is a MigrateReport with its failures as kinds.
type reportRecord struct {
	Scanned, Migrated, Current, Gone, Unknown int
	Failed                                    map[string]string
	Progress                                  int
}

func runMigrate(t *testing.T, st store.Store) (reportRecord, []eventRecord) {
	t.Helper()
	hook, events := recordEvents()
	m, err := session.New(session.Config[Tally]{Store: st, Namespace: "tally", TTL: time.Hour, Migrations: tallyPlan(t), Hook: hook, LogKeys: true})
	if err != nil {
		t.Fatal(err)
	}
	progress := 0
	r, err := m.MigrateAll(t.Context(), session.MigrateOptions{Progress: func(p session.MigrateReport) {
		progress++
		if p.Scanned != progress {
			t.Errorf("progress call %d reports %d scanned", progress, p.Scanned)
		}
	}})
	if err != nil {
		t.Fatalf("MigrateAll: %v", err)
	}
	rec := reportRecord{Scanned: r.Scanned, Migrated: r.Migrated, Current: r.Current, Gone: r.Gone, Unknown: r.Extra,
		Failed: map[string]string{}, Progress: progress}
	for _, f := range r.Failed {
		rec.Failed[f.Key] = errKind(f.Err)
	}
	return rec, events()
}

// storedValues reads every key under "tally:" with its write identities
// stripped.
func storedValues(t *testing.T, st store.Store) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := st.(store.Scanner).Scan(t.Context(), "", func(k string) error {
		v, err := st.Get(t.Context(), k)
		if errors.Is(err, store.ErrNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		out[k] = stripWrites(v)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestMigrateAllBatchSameAsKeyByKey migrates the same 1,000 keys of every
// kind (one step to go, current, a member Tally lacks, corrupt, a future
// version, a failing step, version 0 without a step, expiring between the
// scan and the read) once key by key and once in batches, on memstore
// (batch reads) and on Redis, one node and a cluster (batch reads and
// writes), and compares the reports, the Progress calls, the hook events
// and the values stored.
func TestMigrateAllBatchSameAsKeyByKey(t *testing.T) {
	const n, pause = 1000, 50 * time.Millisecond
	testCluster := lazyCluster(t)
	stores := []struct {
		name    string
		open    func(t *testing.T) store.Store
		swapped bool // the batch run also writes in batches
	}{
		{"memstore", func(t *testing.T) store.Store {
			s, err := memstore.New(memstore.Options{})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { s.Close() })
			return s
		}, false},
		{"redis", func(t *testing.T) store.Store {
			c := testenv.Redis(t)
			prefix := testenv.Prefix(t, "migratebatch")
			testenv.CleanupPrefix(t, c, prefix)
			return redisstore.New(c, redisstore.Options{Prefix: prefix})
		}, true},
		{"cluster", func(t *testing.T) store.Store {
			c := testCluster(t)
			return redisstore.New(c, redisstore.Options{Prefix: testenv.Prefix(t, "migratebatch")})
		}, true},
	}
	for _, tc := range stores {
		t.Run(tc.name, func(t *testing.T) {
			ref, batch := tc.open(t), tc.open(t)
			expire := seedMix(t, ref, n)
			wantReport, wantEvents := runMigrate(t, pausedScan{Store: hideBatch(ref), expire: expire, pause: pause})
			seedMix(t, batch, n)
			var batches atomic.Int64
			var bst store.Store = batchPausedScan{pausedScan{Store: batch, expire: expire, pause: pause, batches: &batches}}
			if tc.swapped {
				bst = batchSwapping{bst.(batchPausedScan)}
			}
			gotReport, gotEvents := runMigrate(t, bst)
			// 1,000 keys are 4 chunks: 4 batch reads and, with batch
			// writes, 4 batches of swaps (1000 each in the count).
			if want := int64(4 + map[bool]int{true: 4000}[tc.swapped]); batches.Load() != want {
				t.Errorf("the batch run made %d batch calls (reads + 1000 × writes), want %d", batches.Load(), want)
			}
			if diff := cmp.Diff(wantReport, gotReport); diff != "" {
				t.Errorf("report mismatch (-key by key +batch):\n%s", diff)
			}
			if diff := cmp.Diff(wantEvents, gotEvents); diff != "" {
				t.Errorf("hook events mismatch (-key by key +batch):\n%s", diff)
			}
			if diff := cmp.Diff(storedValues(t, ref), storedValues(t, batch)); diff != "" {
				t.Errorf("stored values mismatch (-key by key +batch):\n%s", diff)
			}
			// The mix holds what it should.
			if wantReport.Scanned != n || wantReport.Migrated != 400 || wantReport.Current != 200 || wantReport.Gone != 100 ||
				wantReport.Unknown != 100 || len(wantReport.Failed) != 300 || wantReport.Progress != n {
				t.Errorf("report %+v (%d failed), want 1000 scanned, 400 migrated, 200 current, 100 gone, 100 unknown, 300 failed", wantReport, len(wantReport.Failed))
			}
		})
	}
}

// lazyCluster returns a getter of a three-master Redis Cluster, started
// by its first call and stopped when parent ends.
func lazyCluster(parent *testing.T) func(t *testing.T) *redis.ClusterClient {
	var (
		once sync.Once
		c    *testenv.RedisCluster
		err  error
	)
	return func(t *testing.T) *redis.ClusterClient {
		t.Helper()
		testenv.Slow(t) // the cluster tests are in the slow suite
		testenv.NeedRedisBinaries(t)
		once.Do(func() {
			if c, err = testenv.StartRedisCluster(parent, "session"); err == nil {
				parent.Cleanup(c.Stop)
			}
		})
		if err != nil {
			t.Fatalf("starting a Redis Cluster: %v", err)
		}
		return c.Client
	}
}

// TestMigrateAllBatchConcurrentUpdates migrates 1,000 keys at version 1
// in batches while goroutines run Update on random keys of them: every
// update must be in the final values exactly once, and the report must
// count each key once: migrated by MigrateAll (as many as its hook saw
// written) or found current (an Update migrated it first).
func TestMigrateAllBatchConcurrentUpdates(t *testing.T) {
	testCluster := lazyCluster(t)
	for _, tc := range []struct {
		name string
		open func(t *testing.T) store.Store
	}{
		{"memstore", func(t *testing.T) store.Store {
			s, err := memstore.New(memstore.Options{})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { s.Close() })
			return s
		}},
		{"redis", func(t *testing.T) store.Store {
			c := testenv.Redis(t)
			prefix := testenv.Prefix(t, "migrateconc")
			testenv.CleanupPrefix(t, c, prefix)
			return redisstore.New(c, redisstore.Options{Prefix: prefix})
		}},
		{"cluster", func(t *testing.T) store.Store {
			return redisstore.New(testCluster(t), redisstore.Options{Prefix: testenv.Prefix(t, "migrateconc")})
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st := tc.open(t)
			runConcurrentMigration(t, st, 1000, 8, 60)
		})
	}
}

// runConcurrentMigration seeds n keys at version 1, runs MigrateAll while
// workers × perWorker Updates run, and checks the outcome.
func runConcurrentMigration(t *testing.T, st store.Store, n, workers, perWorker int) {
	ctx := t.Context()
	for i := range n {
		if err := st.Set(ctx, "tally:"+strconv.Itoa(i), fmt.Appendf(nil, `{"typedsession":1,"data":{"ids":["seed%d"]}}`, i), time.Hour); err != nil {
			t.Fatal(err)
		}
	}
	var written, conflicts atomic.Int64
	mig, err := session.New(session.Config[Tally]{Store: st, Namespace: "tally", TTL: time.Hour, Migrations: tallyPlan(t),
		LogKeys: true,
		Hook: func(_ context.Context, e session.Event) {
			if e.Op == "migrate" && e.Outcome == session.OutcomeWritten {
				written.Add(1)
			}
			conflicts.Add(int64(e.Conflicts))
		}})
	if err != nil {
		t.Fatal(err)
	}
	upd, err := session.New(session.Config[Tally]{Store: st, Namespace: "tally", TTL: time.Hour, Migrations: tallyPlan(t)})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string][]string{}
	var mu sync.Mutex
	start := make(chan struct{})
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := range workers {
		wg.Go(func() {
			<-start
			for j := range perWorker {
				key := strconv.Itoa(rand.N(n))
				id := fmt.Sprintf("w%d.%d", w, j)
				if _, err := upd.Update(ctx, key, func(s *Tally) error {
					s.IDs = append(s.IDs, id)
					return nil
				}); err != nil {
					errs <- fmt.Errorf("Update(%s): %w", key, err)
					return
				}
				mu.Lock()
				want[key] = append(want[key], id)
				mu.Unlock()
			}
		})
	}
	close(start)
	r, err := mig.MigrateAll(ctx, session.MigrateOptions{})
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if err != nil {
		t.Fatalf("MigrateAll: %v", err)
	}
	if r.Scanned != n || r.Migrated+r.Current != n || r.Gone != 0 || len(r.Failed) != 0 || int64(r.Migrated) != written.Load() {
		t.Errorf("report %+v, %d written by the hook's count; want %d scanned, migrated + current = %d, migrated = written", r, written.Load(), n, n)
	}
	// Every update once, in the order its key saw them, after the seed.
	lost, doubled := 0, 0
	for i := range n {
		key := strconv.Itoa(i)
		s, err := upd.Load(ctx, key)
		if err != nil {
			t.Fatal(err)
		}
		if s.Version() != 2 || s.Data.Tag != "v2" {
			t.Errorf("key %s: version %d, tag %q after the migration", key, s.Version(), s.Data.Tag)
		}
		got := map[string]int{}
		for _, id := range s.Data.IDs {
			got[id]++
		}
		for _, id := range want[key] {
			switch got[id] {
			case 0:
				lost++
			case 1:
			default:
				doubled++
			}
		}
		if len(s.Data.IDs) != 1+len(want[key]) || s.Data.IDs[0] != "seed"+key {
			t.Errorf("key %s holds %q, want the seed and %q", key, s.Data.IDs, want[key])
		}
	}
	if lost != 0 || doubled != 0 {
		t.Fatalf("%d updates lost, %d applied twice", lost, doubled)
	}
	t.Logf("report %+v; %d conflicts retried by MigrateAll", r, conflicts.Load())
}

// TestMigrateAllBatchClientKill migrates 2,000 keys in batches on a Redis
// of the test's own while, from the first batch read on (after the scan),
// every connection of the client is cut every 3 ms (CLIENT KILL from another connection, as redisstore's fault tests
// do) and goroutines run Updates through the same client. A cut
// mid-pipeline leaves swaps of a batch with an open outcome, which
// MigrateAll settles by resending them and reading the write identities.
// Nothing may be lost or applied twice: every acknowledged Update is in
// its key once, an Update that reported ErrOutcomeUnknown at most once, and
// a second MigrateAll, without cuts, leaves every key at version 2.
func TestMigrateAllBatchClientKill(t *testing.T) {
	testenv.Slow(t)
	testenv.NeedRedisBinaries(t)
	port := testenv.FreePort(t, map[int]bool{})
	srv, err := testenv.StartRedisServer(port, filepath.Join(t.TempDir(), strconv.Itoa(port)), "--appendonly", "no")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Kill)
	client := redis.NewClient(&redis.Options{Addr: srv.Addr(), ContextTimeoutEnabled: true, DialTimeout: 500 * time.Millisecond})
	t.Cleanup(func() { client.Close() })
	killer := redis.NewClient(&redis.Options{Addr: srv.Addr()})
	t.Cleanup(func() { killer.Close() })
	st := &openCounting{Store: redisstore.New(client, redisstore.Options{Prefix: "kill:"}), reading: make(chan struct{})}
	// No run-wide deadline: each Update has its own, and the client's
	// read timeout bounds MigrateAll's calls, so the run ends by itself
	// however slow the machine.
	ctx := t.Context()

	const n, workers, perWorker = 2000, 8, 40
	for i := range n {
		if err := st.Set(ctx, "tally:"+strconv.Itoa(i), fmt.Appendf(nil, `{"typedsession":1,"data":{"ids":["seed%d"]}}`, i), time.Hour); err != nil {
			t.Fatal(err)
		}
	}
	newManager := func() *session.Manager[Tally] {
		m, err := session.New(session.Config[Tally]{Store: st, Namespace: "tally", TTL: time.Hour, Migrations: tallyPlan(t)})
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	mig, upd := newManager(), newManager()
	var (
		mu              sync.Mutex
		acked, unknown  = map[string][]string{}, map[string][]string{}
		otherErrs       []error
		kills, cut      atomic.Int64
		stopKill        = make(chan struct{})
		killerDone      = make(chan struct{})
		updatesFinished sync.WaitGroup
	)
	go func() {
		defer close(killerDone)
		select {
		case <-st.reading:
		case <-stopKill:
			return
		}
		tick := time.NewTicker(3 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stopKill:
				return
			case <-tick.C:
			}
			k, err := killer.Do(context.Background(), "CLIENT", "KILL", "TYPE", "normal", "SKIPME", "yes").Int64()
			if err == nil {
				kills.Add(1)
				cut.Add(k)
			}
		}
	}()
	for w := range workers {
		updatesFinished.Go(func() {
			<-st.reading // with the cuts
			for j := range perWorker {
				key := strconv.Itoa((w*perWorker + j*37) % n)
				id := fmt.Sprintf("w%d.%d", w, j)
				callCtx, callCancel := context.WithTimeout(ctx, 5*time.Second)
				_, err := upd.Update(callCtx, key, func(s *Tally) error {
					s.IDs = append(s.IDs, id)
					return nil
				})
				callCancel()
				mu.Lock()
				switch {
				case err == nil:
					acked[key] = append(acked[key], id)
				case errors.Is(err, session.ErrOutcomeUnknown):
					unknown[key] = append(unknown[key], id)
				default:
					otherErrs = append(otherErrs, err) // a failed read: nothing written
				}
				mu.Unlock()
			}
		})
	}
	first, err := mig.MigrateAll(ctx, session.MigrateOptions{})
	updatesFinished.Wait()
	close(stopKill)
	<-killerDone
	if err != nil {
		t.Fatalf("MigrateAll under cuts: %v", err)
	}
	failedKinds := map[string]int{}
	for _, f := range first.Failed {
		failedKinds[errKind(f.Err)]++
	}
	t.Logf("%d CLIENT KILLs cut %d connections; MigrateAll under cuts: scanned %d, migrated %d, current %d, failed %d %v; %d batches of swaps, %d swaps left open by a cut and settled; updates: %d acknowledged, %d unknown, %d failed",
		kills.Load(), cut.Load(), first.Scanned, first.Migrated, first.Current, len(first.Failed), failedKinds,
		st.batches.Load(), st.open.Load(), count(acked), count(unknown), len(otherErrs))
	if cut.Load() == 0 {
		t.Fatal("CLIENT KILL never closed a connection: the test tested nothing")
	}
	if first.Scanned != n || first.Migrated+first.Current+len(first.Failed) != n {
		t.Errorf("first report %+v: want every key counted once", first)
	}
	second, err := mig.MigrateAll(ctx, session.MigrateOptions{})
	if err != nil || len(second.Failed) != 0 || second.Migrated+second.Current != n {
		t.Fatalf("second MigrateAll = %+v, %v; want every key migrated or current", second, err)
	}
	for i := range n {
		key := strconv.Itoa(i)
		s, err := upd.Load(ctx, key)
		if err != nil {
			t.Fatal(err)
		}
		if s.Version() != 2 || s.Data.Tag != "v2" {
			t.Errorf("key %s: version %d, tag %q", key, s.Version(), s.Data.Tag)
		}
		got := map[string]int{}
		for _, id := range s.Data.IDs {
			got[id]++
		}
		if len(s.Data.IDs) == 0 || s.Data.IDs[0] != "seed"+key || got["seed"+key] != 1 {
			t.Errorf("key %s lost or doubled its seed: %q", key, s.Data.IDs)
		}
		for _, id := range acked[key] {
			if got[id] != 1 {
				t.Errorf("key %s: acknowledged update %s applied %d times", key, id, got[id])
			}
		}
		for _, id := range unknown[key] {
			if got[id] > 1 {
				t.Errorf("key %s: update %s (outcome unknown) applied %d times", key, id, got[id])
			}
		}
		for id, k := range got {
			if k > 1 {
				t.Errorf("key %s: %s applied %d times", key, id, k)
			}
		}
	}
}

// openCounting counts the batches of swaps and the swaps whose outcome a
// batch left open.
type openCounting struct {
	*redisstore.Store
	batches, open atomic.Int64
	// reading is closed by the first batch read, once the scan is done
	// (a scan cut too often fails MigrateAll as a whole).
	reading     chan struct{}
	readingOnce sync.Once
}

func (o *openCounting) GetManyWithTTL(ctx context.Context, keys []string) ([][]byte, []time.Duration, error) {
	o.readingOnce.Do(func() { close(o.reading) })
	return o.Store.GetManyWithTTL(ctx, keys)
}

func (o *openCounting) CompareAndSwapMany(ctx context.Context, swaps []store.Swap) ([]store.SwapResult, error) {
	res, err := o.Store.CompareAndSwapMany(ctx, swaps)
	o.batches.Add(1)
	for _, r := range res {
		if r.Err != nil {
			o.open.Add(1)
		}
	}
	return res, err
}

func count(m map[string][]string) int {
	n := 0
	for _, v := range m {
		n += len(v)
	}
	return n
}

// TestMigrateAllBatchCancelledMidChunk: with batch writes, a Progress
// callback that cancels ctx mid-chunk stops MigrateAll after the chunk,
// and every write the chunk made is counted: a second run finds exactly
// the rest to migrate.
func TestMigrateAllBatchCancelledMidChunk(t *testing.T) {
	c := testenv.Redis(t)
	prefix := testenv.Prefix(t, "migratecancel")
	testenv.CleanupPrefix(t, c, prefix)
	st := redisstore.New(c, redisstore.Options{Prefix: prefix})
	ctx := t.Context()
	const n = 1000
	for i := range n {
		if err := st.Set(ctx, "tally:"+strconv.Itoa(i), fmt.Appendf(nil, `{"typedsession":1,"data":{"ids":["seed%d"]}}`, i), 0); err != nil {
			t.Fatal(err)
		}
	}
	m, err := session.New(session.Config[Tally]{Store: st, Namespace: "tally", Migrations: tallyPlan(t)})
	if err != nil {
		t.Fatal(err)
	}
	stopCtx, stop := context.WithCancel(ctx)
	first, err := m.MigrateAll(stopCtx, session.MigrateOptions{Progress: func(r session.MigrateReport) {
		if r.Scanned == 300 {
			stop()
		}
	}})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled MigrateAll = %v, want context.Canceled", err)
	}
	if first.Scanned < 300 || first.Scanned >= n || first.Migrated != first.Scanned {
		t.Fatalf("cancelled run = %+v; want it stopped after the chunk holding key 300, every key scanned migrated", first)
	}
	second, err := m.MigrateAll(ctx, session.MigrateOptions{})
	if err != nil || second.Current != first.Migrated || second.Migrated != n-first.Migrated {
		t.Fatalf("second run = %+v, %v; want %d current, %d migrated", second, err, first.Migrated, n-first.Migrated)
	}
	t.Logf("the cancelled run stopped after %d keys (chunk of 256)", first.Scanned)
}

// twiceScan reports every key twice in a row, as SCAN may report a key
// more than once: both land in one chunk.
type twiceScan struct{ *redisstore.Store }

func (s twiceScan) Scan(ctx context.Context, prefix string, fn func(string) error) error {
	return s.Store.Scan(ctx, prefix, func(k string) error {
		if err := fn(k); err != nil {
			return err
		}
		return fn(k)
	})
}

// TestMigrateAllBatchDuplicateKeys: a key reported twice by the scan is
// in one batch of swaps twice; the second swap finds the first one's
// write and reports false, so the key is migrated once and then found
// current, as key by key.
func TestMigrateAllBatchDuplicateKeys(t *testing.T) {
	c := testenv.Redis(t)
	prefix := testenv.Prefix(t, "migratedup")
	testenv.CleanupPrefix(t, c, prefix)
	st := twiceScan{redisstore.New(c, redisstore.Options{Prefix: prefix})}
	ctx := t.Context()
	const n = 300
	for i := range n {
		if err := st.Set(ctx, "tally:"+strconv.Itoa(i), fmt.Appendf(nil, `{"typedsession":1,"data":{"ids":["seed%d"]}}`, i), 0); err != nil {
			t.Fatal(err)
		}
	}
	m, err := session.New(session.Config[Tally]{Store: st, Namespace: "tally", Migrations: tallyPlan(t)})
	if err != nil {
		t.Fatal(err)
	}
	r, err := m.MigrateAll(ctx, session.MigrateOptions{})
	if err != nil || r.Scanned != 2*n || r.Migrated != n || r.Current != n || len(r.Failed) != 0 {
		t.Fatalf("MigrateAll = %+v, %v; want %d scanned, %d migrated, %d current", r, err, 2*n, n, n)
	}
	for i := range n {
		s, err := m.Load(ctx, strconv.Itoa(i))
		if err != nil || s.Version() != 2 || len(s.Data.IDs) != 1 {
			t.Fatalf("key %d: %+v, %v", i, s, err)
		}
	}
}
