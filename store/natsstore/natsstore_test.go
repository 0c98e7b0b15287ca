package natsstore

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/typedsession/session/store"
	"github.com/typedsession/session/store/storetest"
)

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store {
		s, _ := newTestStore(t, Options{SweepInterval: 50 * time.Millisecond})
		return s
	})
}

func TestPersistent(t *testing.T) {
	js := connect(t)
	var mu sync.Mutex
	buckets := map[string]bool{}
	t.Cleanup(func() {
		for b := range buckets {
			js.DeleteKeyValue(context.Background(), b)
		}
	})
	storetest.RunPersistent(t, func(t *testing.T, dir string) (store.Store, func() error) {
		sum := sha256.Sum256([]byte(dir))
		bucket := "p_" + hex.EncodeToString(sum[:8]) // the same for every open of one case
		mu.Lock()
		buckets[bucket] = true
		mu.Unlock()
		s, err := New(context.Background(), js, Options{Bucket: bucket, Storage: jetstream.FileStorage})
		if err != nil {
			t.Fatal(err)
		}
		return s, s.Close
	})
}

// ---- cross-process counting ----

const (
	helperEnv       = "NATSSTORE_TEST_HELPER"
	helperURLEnv    = "NATSSTORE_TEST_URL"
	helperBucketEnv = "NATSSTORE_TEST_BUCKET"
	helperNEnv      = "NATSSTORE_TEST_N"
)

func helperMode() bool { return os.Getenv(helperEnv) != "" }

// TestHelperProcess is the child of TestCrossProcessCounter: it increments
// the shared counter N times through its own connection and store.
func TestHelperProcess(t *testing.T) {
	if !helperMode() {
		t.Skip("child process of TestCrossProcessCounter; runs only when it starts it")
	}
	err := func() error {
		n, err := strconv.Atoi(os.Getenv(helperNEnv))
		if err != nil {
			return err
		}
		nc, err := nats.Connect(os.Getenv(helperURLEnv), nats.ReconnectBufSize(-1))
		if err != nil {
			return err
		}
		defer nc.Close()
		js, err := jetstream.New(nc)
		if err != nil {
			return err
		}
		s, err := New(context.Background(), js, Options{Bucket: os.Getenv(helperBucketEnv), SweepInterval: -1})
		if err != nil {
			return err
		}
		defer s.Close()
		for range n {
			if err := storetest.Increment(context.Background(), s, "counter"); err != nil {
				return err
			}
		}
		return s.Close()
	}()
	if err != nil {
		fmt.Fprintln(os.Stderr, "helper:", err)
		os.Exit(1)
	}
	os.Exit(0)
}

// TestCrossProcessCounter: four processes, each with its own connection,
// increment one key by compare-and-swap; none of the increments is lost.
func TestCrossProcessCounter(t *testing.T) {
	s, _ := newTestStore(t, Options{SweepInterval: -1})
	const procs, each = 4, 100
	var wg sync.WaitGroup
	errs := make(chan error, procs)
	for range procs {
		wg.Go(func() {
			cmd := exec.CommandContext(t.Context(), os.Args[0], "-test.run=^TestHelperProcess$", "-test.count=1")
			cmd.Env = append(os.Environ(), helperEnv+"=1", helperURLEnv+"="+natsURL,
				helperBucketEnv+"="+s.Bucket(), helperNEnv+"="+strconv.Itoa(each))
			if out, err := cmd.CombinedOutput(); err != nil {
				errs <- fmt.Errorf("child: %v\n%s", err, out)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	v, err := s.Get(t.Context(), "counter")
	if err != nil {
		t.Fatal(err)
	}
	if n, err := storetest.Count(v); err != nil || n != procs*each {
		t.Fatalf("after %d increments in %d processes the counter is %d (%v): updates were lost", procs*each, procs, n, err)
	}
}

// ---- the format in the bucket ----

func TestKeyEncoding(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct{ key, enc string }{
		{"abc", "abc"},
		{"quiz:42", "quiz=3A42"},
		{"a.b", "a=2Eb"},
		{"x=y", "x=3Dy"},
		{"é", "=C3=A9"},
		{"a b*>", "a=20b=2A=3E"},
		{"-_/", "-_/"},
	} {
		if got := encodeKey(tt.key); got != tt.enc {
			t.Errorf("encodeKey(%q) = %q; want %q", tt.key, got, tt.enc)
		}
		if got, ok := decodeKey(tt.enc); !ok || got != tt.key {
			t.Errorf("decodeKey(%q) = %q, %v; want %q", tt.enc, got, ok, tt.key)
		}
	}
	for _, enc := range []string{"", "a.b", "a=3a", "a=4", "a=41", "a=", "a*", "=ZZ"} {
		if got, ok := decodeKey(enc); ok {
			t.Errorf("decodeKey(%q) = %q, true; want false: encodeKey never writes it", enc, got)
		}
	}
}

func FuzzKeyEncoding(f *testing.F) {
	for _, k := range []string{"a", "quiz:42", "a.b", "=", "é", "\xff", "a=3Ab"} {
		f.Add(k)
	}
	f.Fuzz(func(t *testing.T, key string) {
		enc := encodeKey(key)
		for i := 0; i < len(enc); i++ {
			if !literal(enc[i]) && enc[i] != '=' {
				t.Fatalf("encodeKey(%q) = %q holds %q, which a NATS key may not", key, enc, enc[i])
			}
		}
		got, ok := decodeKey(enc)
		if key != "" && (!ok || got != key) {
			t.Fatalf("decodeKey(encodeKey(%q)) = %q, %v", key, got, ok)
		}
		// A prefix code: encode(p) is a prefix of encode(k) iff p is a
		// prefix of k, which is what Scan relies on.
		for i := 0; i <= len(key); i++ {
			if !strings.HasPrefix(enc, encodeKey(key[:i])) {
				t.Fatalf("encodeKey(%q) is not a prefix of encodeKey(%q)", key[:i], key)
			}
		}
	})
}

// TestBucketFormat reads what the store wrote with nats.go's own
// key-value API, as `nats kv get` would: the value as it is, under the
// encoded key, with the expiry in a header.
func TestBucketFormat(t *testing.T) {
	t.Parallel()
	s, js := newTestStore(t, Options{SweepInterval: -1})
	ctx := t.Context()
	if err := s.Set(ctx, "quiz:42", []byte(`{"score":1}`), time.Hour); err != nil {
		t.Fatal(err)
	}
	kv, err := js.KeyValue(ctx, s.Bucket())
	if err != nil {
		t.Fatal(err)
	}
	e, err := kv.Get(ctx, "quiz=3A42")
	if err != nil {
		t.Fatal(err)
	}
	if string(e.Value()) != `{"score":1}` {
		t.Errorf("bucket value = %q; want the value as written", e.Value())
	}
	stream, err := js.Stream(ctx, "KV_"+s.Bucket())
	if err != nil {
		t.Fatal(err)
	}
	m, err := stream.GetLastMsgForSubject(ctx, "$KV."+s.Bucket()+".quiz=3A42")
	if err != nil {
		t.Fatal(err)
	}
	ns, err := strconv.ParseInt(m.Header.Get(ExpiresHeader), 10, 64)
	if left := time.Until(time.Unix(0, ns)); err != nil || left < 59*time.Minute || left > time.Hour {
		t.Errorf("header %s = %q (%v); want now + 1h in Unix nanoseconds", ExpiresHeader, m.Header.Get(ExpiresHeader), err)
	}
}

// TestSweep: an expired key is invisible at once, and the sweep removes
// it from the bucket; a key rewritten after it expired is kept.
func TestSweep(t *testing.T) {
	t.Parallel()
	s, js := newTestStore(t, Options{SweepInterval: -1})
	ctx := t.Context()
	for _, k := range []string{"gone", "revived", "kept"} {
		ttl := 100 * time.Millisecond
		if k == "kept" {
			ttl = time.Hour
		}
		if err := s.Set(ctx, k, []byte(k), ttl); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(300 * time.Millisecond)
	if _, err := s.Get(ctx, "gone"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Get of an expired key before any sweep = %v; want ErrNotFound", err)
	}
	ok, err := s.CompareAndSwap(ctx, "revived", nil, []byte("again"), 0)
	if err != nil || !ok {
		t.Fatalf("CompareAndSwap(nil old) on an expired key = %v, %v; want true", ok, err)
	}
	n, err := s.Sweep(ctx)
	if err != nil || n != 1 {
		t.Fatalf("Sweep = %d, %v; want 1 expired key deleted", n, err)
	}
	kv, err := js.KeyValue(ctx, s.Bucket())
	if err != nil {
		t.Fatal(err)
	}
	keys, err := kv.Keys(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(keys) != "[revived kept]" && fmt.Sprint(keys) != "[kept revived]" {
		t.Errorf("bucket keys after the sweep = %v; want revived and kept", keys)
	}
	if v, err := s.Get(ctx, "revived"); err != nil || string(v) != "again" {
		t.Errorf("Get(revived) = %q, %v", v, err)
	}
}

// TestSweepKeepsNewerValue: a key rewritten after the sweep read it as
// expired is not deleted (the delete is conditional on the revision), and
// the purge of an old delete marker never removes a value written after it.
func TestSweepKeepsNewerValue(t *testing.T) {
	t.Parallel()
	s, _ := newTestStore(t, Options{SweepInterval: -1})
	ctx := t.Context()
	subj := s.pre + encodeKey("k")
	if err := s.Set(ctx, "k", []byte("old"), 50*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	time.Sleep(150 * time.Millisecond)
	e, err := s.read(ctx, subj, time.Now())
	if err != nil || e.live {
		t.Fatalf("read = %+v, %v; want an expired entry", e, err)
	}
	if err := s.Set(ctx, "k", []byte("new"), 0); err != nil {
		t.Fatal(err)
	}
	// What the sweep does with what it read before the rewrite.
	if err := s.kv.Delete(ctx, encodeKey("k"), jetstream.LastRevision(e.rev)); !isWrongRevision(err) {
		t.Fatalf("conditional delete of a rewritten key = %v; want a revision mismatch", err)
	}
	if err := s.stream.Purge(ctx, jetstream.WithPurgeSubject(subj), jetstream.WithPurgeSequence(e.rev+1)); err != nil {
		t.Fatal(err)
	}
	if v, err := s.Get(ctx, "k"); err != nil || !bytes.Equal(v, []byte("new")) {
		t.Errorf("Get after the sweep's steps = %q, %v; want the newer value", v, err)
	}
}

// TestScanSkipsForeignKeys: keys put into the bucket by other means, which
// the store cannot have written, are not reported.
func TestScanSkipsForeignKeys(t *testing.T) {
	t.Parallel()
	s, js := newTestStore(t, Options{SweepInterval: -1})
	ctx := t.Context()
	kv, err := js.KeyValue(ctx, s.Bucket())
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"a.b", "x=3a", "=00"} { // a dot, lower-case hex, a NUL
		if _, err := kv.Put(ctx, k, []byte("v")); err != nil {
			t.Fatalf("Put(%q): %v", k, err)
		}
	}
	if err := s.Set(ctx, "mine", []byte("v"), 0); err != nil {
		t.Fatal(err)
	}
	var keys []string
	if err := s.Scan(ctx, "", func(k string) error { keys = append(keys, k); return nil }); err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(keys) != "[mine]" {
		t.Errorf("Scan = %q; want only the store's own key", keys)
	}
}

// TestTooLarge: a value the server's max_payload cannot carry is refused
// with store.ErrTooLarge, and nothing is stored.
func TestTooLarge(t *testing.T) {
	t.Parallel()
	s, js := newTestStore(t, Options{SweepInterval: -1})
	big := make([]byte, js.Conn().MaxPayload()+1)
	err := s.Set(t.Context(), "big", big, 0)
	if !errors.Is(err, store.ErrTooLarge) {
		t.Fatalf("Set of %d bytes = %v; want ErrTooLarge", len(big), err)
	}
	if _, err := s.Get(t.Context(), "big"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Get after a refused Set = %v; want ErrNotFound", err)
	}
}

func TestNewRefusesBadBucket(t *testing.T) {
	t.Parallel()
	js := connect(t)
	if _, err := New(t.Context(), js, Options{Bucket: "a.b"}); err == nil || !strings.Contains(err.Error(), "invalid bucket") {
		t.Errorf("New with bucket a.b = %v; want an invalid bucket error", err)
	}
}

// TestCorruptExpiry: an expiry header the store cannot read makes Get
// report store.ErrCorrupt, and the value stays.
func TestCorruptExpiry(t *testing.T) {
	t.Parallel()
	s, js := newTestStore(t, Options{SweepInterval: -1})
	ctx := t.Context()
	m := nats.NewMsg(s.pre + "k")
	m.Header.Set(ExpiresHeader, "soon")
	m.Data = []byte("v")
	if _, err := js.PublishMsg(ctx, m); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get(ctx, "k"); !errors.Is(err, store.ErrCorrupt) {
		t.Errorf("Get = %v; want ErrCorrupt", err)
	}
}

// TestDamage (issue 23): a key whose expiry header the store cannot read
// is store.ErrCorrupt to every read and listed by Scan, so that MigrateAll,
// the inspector and quarantine meet it; before, Scan skipped it (MigrateAll
// reported scanned=1 failed=0 for one live and one damaged key).
func TestDamage(t *testing.T) {
	newStore := func(t *testing.T) store.Store {
		s, _ := newTestStore(t, Options{SweepInterval: -1})
		return s
	}
	header := func(v string) storetest.Damage {
		return func(t *testing.T, st store.Store, key string) {
			s := st.(*Store)
			m := nats.NewMsg(s.pre + encodeKey(key))
			m.Header.Set(ExpiresHeader, v)
			m.Data = []byte(`{"typedsession":1,"data":{}}`)
			if _, err := s.js.PublishMsg(t.Context(), m); err != nil {
				t.Fatal(err)
			}
		}
	}
	storetest.RunDamage(t, newStore, map[string]storetest.Damage{
		"ExpiryNotANumber": header("soon"),
		"ExpiryNegative":   header("-5"),
	})
}
