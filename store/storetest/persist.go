package storetest

import (
	"errors"
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/typedsession/session/store"
)

// RunPersistent runs the persistence cases against a store that keeps its
// data across a close and an open: memstore with a snapshot file, filestore,
// SQLite. Run checks the store while it is open; RunPersistent checks what
// the next open finds. It checks that values, keys (every key of the store's
// alphabet, byte for byte, including those an encoder would escape or
// replace), expiries (absolute, as they were set) and deletions survive, and
// that every write acknowledged before Close, including writes that race with
// Close, is there after the reopen.
//
// open opens the store kept in dir and returns it with the function that
// closes it:
//
//	storetest.RunPersistent(t, func(t *testing.T, dir string) (store.Store, func() error) {
//		s, err := mystore.New(filepath.Join(dir, "sessions.db"), mystore.Options{})
//		if err != nil {
//			t.Fatal(err)
//		}
//		return s, s.Close
//	})
//
// Each case gets a fresh empty dir, the same for every open within the case,
// and never has two stores open on it at once: it calls the close function
// and waits for it to return before it calls open again. The close function
// must do what shutting the process down cleanly does (the backend's Close,
// then closing a *sql.DB that open made) and return the backend's Close
// error; the case fails if it is not nil. RunPersistent calls it once for
// every store it opens, also when a case fails, so open should not register
// its own cleanup for the store. Cases run in parallel with each other.
func RunPersistent(t *testing.T, open func(t *testing.T, dir string) (s store.Store, close func() error)) {
	t.Helper()
	for _, tc := range persistCases() {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			t.Logf("contract: %s", tc.reason)
			r := &reopener{t: t, dir: t.TempDir(), open: open}
			t.Cleanup(func() {
				if r.close != nil {
					r.close()
				}
			})
			r.reopen()
			tc.run(t, r)
		})
	}
}

type persistCase struct {
	name   string
	reason string
	run    func(t *testing.T, r *reopener)
}

func persistCases() []persistCase {
	return []persistCase{
		{"ReopenEmpty", "a store opened on an empty folder is empty, and stays empty when closed and opened again", testReopenEmpty},
		{"ValuesSurvive", "values (empty, binary, large), overwrites and deletes survive close and open, again and again", testValuesSurvive},
		{"KeysSurvive", "every accepted key survives close and open byte for byte, distinct from every other", testKeysSurvive},
		{"ExpiriesSurvive", "expiries survive as absolute deadlines: no expiry stays none, a clamped one stays live, a passed one stays passed", testExpiriesSurvive},
		{"AcknowledgedWritesSurviveClose", "every write that returned nil before or while Close ran is there after the reopen; one that returned ErrClosed is not", testAcknowledgedWritesSurviveClose},
	}
}

// reopener holds the store a persistence case works on and reopens it.
type reopener struct {
	t     *testing.T
	dir   string
	open  func(t *testing.T, dir string) (store.Store, func() error)
	s     store.Store
	close func() error
}

// reopen closes the open store, if any, and opens dir again.
func (r *reopener) reopen() store.Store {
	r.t.Helper()
	r.shut()
	s, closeFn := r.open(r.t, r.dir)
	if s == nil || closeFn == nil {
		r.t.Fatal("storetest: open returned a nil store or close function")
	}
	r.s, r.close = s, closeFn
	return s
}

// shut closes the open store and fails the case on an error.
func (r *reopener) shut() {
	r.t.Helper()
	if r.close == nil {
		return
	}
	closeFn := r.close
	r.s, r.close = nil, nil
	if err := closeFn(); err != nil {
		r.t.Fatalf("close: %v", err)
	}
}

func testReopenEmpty(t *testing.T, r *reopener) {
	wantAbsent(t, r.s, "k")
	if sc, ok := r.s.(store.Scanner); ok {
		wantKeys(t, sc, "")
	}
	s := r.reopen()
	wantAbsent(t, s, "k")
	if sc, ok := s.(store.Scanner); ok {
		wantKeys(t, sc, "")
	}
}

func testValuesSurvive(t *testing.T, r *reopener) {
	large := make([]byte, 1<<20)
	for i := range large {
		large[i] = byte(i*7 + i>>8)
	}
	values := map[string][]byte{
		"empty":     {},
		"binary":    {0, 1, 2, 0, 0xff, 0xfe, '\n', '\r', 0x80, '"', '\\', 0, '}', ']'},
		"json-like": []byte(`{"key":"x","value":"AA==","expires":1}`),
		"text":      []byte("plain text ünïcödé 🙂"),
		"large":     large,
	}
	s := r.s
	for k, v := range values {
		mustSet(t, s, k, v, 0)
	}
	mustSet(t, s, "nil", nil, 0)
	mustSet(t, s, "overwritten", []byte("first, and longer than the second"), 0)
	mustSet(t, s, "overwritten", []byte("second"), 0)
	mustSet(t, s, "deleted", []byte("v"), 0)
	if err := s.Delete(ctx(t), "deleted"); err != nil {
		t.Fatal(err)
	}
	values["nil"] = []byte{}
	values["overwritten"] = []byte("second")
	check := func(s store.Store, round string) {
		t.Helper()
		for k, v := range values {
			got, err := s.Get(ctx(t), k)
			if err != nil {
				t.Fatalf("%s: Get(%q): %v, want %q", round, k, err, short(v))
			}
			if string(got) != string(v) {
				t.Fatalf("%s: Get(%q) = %q (%d bytes), want %q (%d bytes)", round, k, short(got), len(got), short(v), len(v))
			}
		}
		wantAbsent(t, s, "deleted")
	}
	s = r.reopen()
	check(s, "after the first reopen")

	// Changes made by a reopened store survive the next reopen.
	mustSet(t, s, "after reopen", []byte("v"), 0)
	mustSet(t, s, "overwritten", []byte("third"), longTTL)
	if err := s.Delete(ctx(t), "binary"); err != nil {
		t.Fatal(err)
	}
	values["after reopen"] = []byte("v")
	values["overwritten"] = []byte("third")
	delete(values, "binary")
	if sw, ok := s.(store.Swapper); ok {
		cas(t, sw, "swapped", nil, []byte("created by a swap"), 0, true)
		cas(t, sw, "text", values["text"], []byte("swapped"), 0, true)
		values["swapped"] = []byte("created by a swap")
		values["text"] = []byte("swapped")
	}
	if d, ok := s.(store.Deleter); ok {
		cad(t, d, "json-like", values["json-like"], true)
		delete(values, "json-like")
	}
	s = r.reopen()
	check(s, "after the second reopen")
	wantAbsent(t, s, "binary")
	if _, ok := s.(store.Deleter); ok {
		wantAbsent(t, s, "json-like")
	}
	s = r.reopen() // a reopen with no writes in between keeps everything
	check(s, "after the third reopen")
}

func testKeysSurvive(t *testing.T, r *reopener) {
	keys := acceptedKeys()
	for i, k := range keys {
		mustSet(t, r.s, k, []byte(strconv.Itoa(i)), 0)
	}
	for round := 1; round <= 2; round++ {
		s := r.reopen()
		for i, k := range keys {
			got, err := s.Get(ctx(t), k)
			if err != nil || string(got) != strconv.Itoa(i) {
				t.Fatalf("after reopen %d: Get(%q) = %q, %v; want %q", round, short([]byte(k)), got, err, strconv.Itoa(i))
			}
		}
		if sc, ok := s.(store.Scanner); ok {
			wantKeys(t, sc, "", keys...)
		}
	}
}

func testExpiriesSurvive(t *testing.T, r *reopener) {
	const restoreTTL = 3 * shortTTL
	s := r.s
	mustSet(t, s, "forever", []byte("v"), 0)
	mustSet(t, s, "persisted", []byte("v"), shortTTL)
	mustSet(t, s, "persisted", []byte("v"), -1) // Set with ttl <= 0 removed the expiry
	mustSet(t, s, "hour", []byte("v"), longTTL)
	mustSet(t, s, "clamped", []byte("v"), 1<<63-1)
	mustSet(t, s, "expired", []byte("v"), time.Millisecond)
	mustSet(t, s, "deadline", []byte("v"), restoreTTL)
	if to, ok := s.(store.Toucher); ok {
		mustSet(t, s, "touched", []byte("v"), shortTTL)
		if err := to.Touch(ctx(t), "touched", longTTL); err != nil {
			t.Fatal(err)
		}
		mustSet(t, s, "untimed", []byte("v"), shortTTL)
		if err := to.Touch(ctx(t), "untimed", 0); err != nil {
			t.Fatal(err)
		}
	}
	start := time.Now()
	time.Sleep(2 * shortTTL) // "expired" has certainly expired; "deadline" has restoreTTL-2*shortTTL left
	s = r.reopen()
	wantAbsent(t, s, "expired")
	for _, k := range []string{"forever", "persisted", "hour", "clamped"} {
		wantValue(t, s, k, []byte("v"))
	}
	if _, ok := s.(store.Toucher); ok {
		wantValue(t, s, "touched", []byte("v"))
		wantValue(t, s, "untimed", []byte("v"))
	}
	if g, ok := s.(store.TTLGetter); ok {
		left := func(k string) time.Duration {
			t.Helper()
			_, ttl, err := g.GetWithTTL(ctx(t), k)
			if err != nil {
				t.Fatalf("GetWithTTL(%q) after reopen: %v", k, err)
			}
			return ttl
		}
		for _, k := range []string{"forever", "persisted"} {
			if ttl := left(k); ttl != store.NoExpiry {
				t.Errorf("GetWithTTL(%q) after reopen reports %v left, want store.NoExpiry", k, ttl)
			}
		}
		if ttl := left("hour"); ttl > longTTL || ttl <= longTTL/2 {
			t.Errorf("GetWithTTL(%q) after reopen reports %v left, want at most %v and more than %v", "hour", ttl, longTTL, longTTL/2)
		}
		if ttl := left("clamped"); ttl < 365*24*time.Hour {
			t.Errorf("GetWithTTL(%q) after reopen reports %v left, want years", "clamped", ttl)
		}
	}
	// The deadline is absolute: the reopen did not restart the ttl. Once
	// restoreTTL has passed since the Set, the key is gone however fast
	// the reopen was.
	time.Sleep(time.Until(start.Add(restoreTTL + 350*time.Millisecond)))
	wantAbsent(t, s, "deadline")
	s = r.reopen()
	wantAbsent(t, s, "deadline")
	wantAbsent(t, s, "expired")
	wantValue(t, s, "clamped", []byte("v"))
	if sc, ok := s.(store.Scanner); ok {
		want := []string{"forever", "persisted", "hour", "clamped"}
		if _, ok := s.(store.Toucher); ok {
			want = append(want, "touched", "untimed")
		}
		wantKeys(t, sc, "", want...)
	}
}

// testAcknowledgedWritesSurviveClose runs writers while the store is
// closed under them, then reopens it: a write that returned nil must be
// there, one that returned ErrClosed must not.
func testAcknowledgedWritesSurviveClose(t *testing.T, r *reopener) {
	const (
		rounds      = 10
		writers     = 8
		beforeClose = 20 // acknowledged writes per writer before Close starts
	)
	_, swaps := r.s.(store.Swapper)
	for round := range rounds {
		s := r.s
		type result struct {
			acked  int   // writes 0..acked-1 returned nil
			failed error // the error that stopped the writer
		}
		results := make([]result, writers)
		var started, wg sync.WaitGroup
		started.Add(writers)
		for w := range writers {
			useCAS := swaps && w%2 == 1
			wg.Go(func() {
				main := fmt.Sprintf("r%d:w%d", round, w)
				signalled := false
				defer func() {
					if !signalled {
						started.Done()
					}
				}()
				var prev []byte
				for i := 0; ; i++ {
					v := []byte(strconv.Itoa(i))
					// Each step writes a key of its own and overwrites
					// the writer's main key.
					var err error
					each := fmt.Sprintf("%s:%d", main, i)
					if useCAS {
						var ok bool
						if ok, err = s.(store.Swapper).CompareAndSwap(ctx(t), each, nil, v, longTTL); err == nil && !ok {
							err = fmt.Errorf("CompareAndSwap(%q, nil) of a new key reported false", each)
						}
					} else {
						err = s.Set(ctx(t), each, v, longTTL)
					}
					if err == nil {
						if useCAS {
							var ok bool
							if ok, err = s.(store.Swapper).CompareAndSwap(ctx(t), main, prev, v, 0); err == nil && !ok {
								err = fmt.Errorf("CompareAndSwap(%q, %q) by its only writer reported false", main, prev)
							}
						} else {
							err = s.Set(ctx(t), main, v, 0)
						}
						if err != nil {
							// The step's own key landed, its main
							// write did not: record that below.
							err = &halfStep{err}
						}
					}
					if err != nil {
						results[w] = result{acked: i, failed: err}
						return
					}
					prev = v
					if i+1 == beforeClose {
						signalled = true
						started.Done()
					}
				}
			})
		}
		started.Wait()
		r.shut() // Close runs while every writer is still writing
		wg.Wait()
		s = r.reopen()
		for w, res := range results {
			main := fmt.Sprintf("r%d:w%d", round, w)
			var half *halfStep
			cause := res.failed
			if errors.As(cause, &half) {
				cause = half.err
			}
			if !errors.Is(cause, store.ErrClosed) {
				t.Fatalf("round %d: writer %d stopped at write %d with %v, want store.ErrClosed", round, w, res.acked, res.failed)
			}
			if res.acked < beforeClose {
				t.Fatalf("round %d: writer %d stopped after %d writes, before Close started", round, w, res.acked)
			}
			// Every acknowledged step is there.
			for i := range res.acked {
				k := fmt.Sprintf("%s:%d", main, i)
				got, err := s.Get(ctx(t), k)
				if err != nil || string(got) != strconv.Itoa(i) {
					t.Fatalf("round %d: acknowledged write of %q = %d; after reopen Get = %q, %v", round, k, i, got, err)
				}
			}
			stop := fmt.Sprintf("%s:%d", main, res.acked)
			if half != nil {
				// The step's own key returned nil, so it is kept.
				wantValue(t, s, stop, []byte(strconv.Itoa(res.acked)))
			} else {
				// The write that returned ErrClosed is not kept.
				if got, err := s.Get(ctx(t), stop); !errors.Is(err, store.ErrNotFound) {
					t.Fatalf("round %d: the write of %q returned ErrClosed, yet after reopen Get = %q, %v; want ErrNotFound", round, stop, got, err)
				}
			}
			// The main key holds the last acknowledged value.
			want := strconv.Itoa(res.acked - 1)
			if got, err := s.Get(ctx(t), main); err != nil || string(got) != want {
				t.Fatalf("round %d: the last acknowledged write of %q was %s; after reopen Get = %q, %v", round, main, want, got, err)
			}
		}
	}
}

// halfStep marks a writer step whose first write returned nil and whose
// second did not.
type halfStep struct{ err error }

func (h *halfStep) Error() string { return "second write of the step: " + h.err.Error() }
func (h *halfStep) Unwrap() error { return h.err }
