//go:build linux

package filestore

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/typedsession/session/store"
)

// The tests in this file mount file systems of their own: a small tmpfs
// (a full disk) and a read-only bind mount. They need root (CAP_SYS_ADMIN)
// and skip, saying so, where mounting is not permitted, in CI too: that
// is a missing capability of the machine, not a failure of the store.

// mount runs mount(2) and skips the test when the process may not mount.
func mount(t *testing.T, source, target, fstype string, flags uintptr, data string) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skipf("mounting on %s needs root (CAP_SYS_ADMIN); running as uid %d", target, os.Geteuid())
	}
	if err := syscall.Mount(source, target, fstype, flags, data); err != nil {
		if errors.Is(err, syscall.EPERM) || errors.Is(err, syscall.EACCES) || errors.Is(err, syscall.ENOSYS) || errors.Is(err, syscall.ENODEV) {
			t.Skipf("mounting is not permitted here (%v): this test needs CAP_SYS_ADMIN", err)
		}
		t.Fatalf("mount %s on %s: %v", source, target, err)
	}
}

func unmountAtCleanup(t *testing.T, target string) {
	t.Cleanup(func() {
		if err := syscall.Unmount(target, syscall.MNT_DETACH); err != nil {
			t.Errorf("unmount %s: %v", target, err)
		}
	})
}

// Issue 12, item 1: on a 1 MiB tmpfs holding one 600 KB session, a read
// that rewrote the file (GetAndTouch, as Load once did with a TTL) failed
// with "no space left on device". Get and GetWithTTL only read and work.
func TestReadsWorkOnFullDisk(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "tmpfs")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	mount(t, "tmpfs", dir, "tmpfs", 0, "size=1m")
	unmountAtCleanup(t, dir)
	s, err := New(dir, Options{CleanupInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	ctx := t.Context()
	session := bytes.Repeat([]byte("s"), 600<<10)
	if err := s.Set(ctx, "quiz:1", session, time.Hour); err != nil {
		t.Fatalf("Set of 600 KB on an empty 1 MiB tmpfs: %v", err)
	}

	// The disk is full for a rewrite: what a read that writes would meet.
	_, err = s.GetAndTouch(ctx, "quiz:1", time.Hour)
	if !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("GetAndTouch on a full disk = %v, want ENOSPC; the test's disk is not full", err)
	}
	if err := s.Set(ctx, "quiz:1", session[1:], time.Hour); !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("Set on a full disk = %v, want ENOSPC", err)
	}

	got, err := s.Get(ctx, "quiz:1")
	if err != nil || !bytes.Equal(got, session) {
		t.Fatalf("Get on a full disk = %d bytes, %v; want the 600 KB session", len(got), err)
	}
	got, left, err := s.GetWithTTL(ctx, "quiz:1")
	if err != nil || !bytes.Equal(got, session) || left <= 0 || left > time.Hour {
		t.Fatalf("GetWithTTL on a full disk = %d bytes, %v left, %v; want the session and under an hour", len(got), left, err)
	}
	var keys []string
	if err := s.Scan(ctx, "", func(k string) error { keys = append(keys, k); return nil }); err != nil || !slices.Equal(keys, []string{"quiz:1"}) {
		t.Fatalf("Scan on a full disk = %q, %v", keys, err)
	}
	// The failed writes left no temp file behind to fill the disk further.
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if k, _ := classify(e.Name()); k == tempName {
			t.Errorf("a failed write left %s", e.Name())
		}
	}
}

// Issue 12, item 1: on a read-only mount, Get, GetWithTTL and Scan work;
// every write fails with the file system's error and changes nothing; New
// opens the store even when its lock folder was never created; the sweep
// reports the expired file it cannot remove through OnError.
func TestReadOnlyMount(t *testing.T) {
	for _, withLocks := range []bool{true, false} {
		name := "WithLockFolder"
		if !withLocks {
			name = "WithoutLockFolder"
		}
		t.Run(name, func(t *testing.T) {
			src := filepath.Join(t.TempDir(), "src")
			ro := filepath.Join(t.TempDir(), "ro")
			if err := os.Mkdir(ro, 0o700); err != nil {
				t.Fatal(err)
			}
			w, clk := newClockStore(t, src, Options{CleanupInterval: -1})
			ctx := t.Context()
			long := "quiz:" + string(bytes.Repeat([]byte("L"), 300))
			for k, ttl := range map[string]time.Duration{"quiz:1": time.Hour, "quiz:2": 0, long: time.Hour, "quiz:old": time.Minute} {
				if err := w.Set(ctx, k, []byte("v:"+k[:6]), ttl); err != nil {
					t.Fatal(err)
				}
			}
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
			if !withLocks {
				if err := os.RemoveAll(filepath.Join(src, lockDir)); err != nil {
					t.Fatal(err)
				}
			}
			mount(t, src, ro, "", syscall.MS_BIND, "")
			unmountAtCleanup(t, ro)
			mount(t, "", ro, "", syscall.MS_REMOUNT|syscall.MS_BIND|syscall.MS_RDONLY, "")
			if err := os.WriteFile(filepath.Join(ro, "probe"), nil, 0o600); !errors.Is(err, syscall.EROFS) {
				t.Fatalf("writing to the read-only mount = %v, want EROFS", err)
			}
			clk.advance(10 * time.Minute) // quiz:old has expired

			s, err := newStore(ro, Options{CleanupInterval: -1}, clk.now)
			if err != nil {
				t.Fatalf("New on a read-only mount: %v", err)
			}
			t.Cleanup(func() { s.Close() })

			if got, err := s.Get(ctx, "quiz:1"); err != nil || string(got) != "v:quiz:1" {
				t.Errorf("Get on a read-only mount = %q, %v", got, err)
			}
			if got, err := s.Get(ctx, long); err != nil || string(got) != "v:"+long[:6] {
				t.Errorf("Get of a long key on a read-only mount = %q, %v", got, err)
			}
			if got, left, err := s.GetWithTTL(ctx, "quiz:1"); err != nil || string(got) != "v:quiz:1" || left <= 0 || left > time.Hour {
				t.Errorf("GetWithTTL on a read-only mount = %q, %v, %v", got, left, err)
			}
			if _, left, err := s.GetWithTTL(ctx, "quiz:2"); err != nil || left != store.NoExpiry {
				t.Errorf("GetWithTTL on a read-only mount = %v, %v; want NoExpiry", left, err)
			}
			if _, err := s.Get(ctx, "quiz:old"); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("Get of an expired key on a read-only mount = %v, want ErrNotFound", err)
			}
			var keys []string
			if err := s.Scan(ctx, "quiz:", func(k string) error { keys = append(keys, k); return nil }); err != nil {
				t.Errorf("Scan on a read-only mount: %v", err)
			}
			slices.Sort(keys)
			if diff := cmp.Diff([]string{"quiz:1", "quiz:2", long}, keys); diff != "" {
				t.Errorf("Scan on a read-only mount mismatch (-want +got):\n%s", diff)
			}

			_, casErr := s.CompareAndSwap(ctx, "quiz:1", []byte("v:quiz:1"), []byte("new"), 0)
			_, cadErr := s.CompareAndDelete(ctx, "quiz:1", []byte("v:quiz:1"))
			_, gatErr := s.GetAndTouch(ctx, "quiz:1", time.Hour)
			for op, err := range map[string]error{
				"Set":              s.Set(ctx, "quiz:1", []byte("new"), 0),
				"Set (new key)":    s.Set(ctx, "quiz:3", []byte("new"), 0),
				"Delete":           s.Delete(ctx, "quiz:1"),
				"CompareAndSwap":   casErr,
				"CompareAndDelete": cadErr,
				"Touch":            s.Touch(ctx, "quiz:1", time.Hour),
				"GetAndTouch":      gatErr,
			} {
				if err == nil || errors.Is(err, store.ErrNotFound) {
					t.Errorf("%s on a read-only mount = %v, want the file system's error", op, err)
				}
			}
			if got, left, err := s.GetWithTTL(ctx, "quiz:1"); err != nil || string(got) != "v:quiz:1" || left <= 0 {
				t.Errorf("after the failed writes: GetWithTTL = %q, %v, %v; want the key unchanged", got, left, err)
			}

			if err := s.sweep(ctx, true); err == nil {
				t.Error("sweep of an expired file on a read-only mount = nil, want the error it met")
			}
			if _, err := os.Stat(filepath.Join(ro, fileName("quiz:old"))); err != nil {
				t.Errorf("the expired file: %v", err)
			}
		})
	}
}
