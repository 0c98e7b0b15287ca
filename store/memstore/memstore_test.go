package memstore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/typedsession/session/store"
	"github.com/typedsession/session/store/storetest"
)

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store {
		s, err := New(Options{CleanupInterval: 50 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	})
}

func TestConformanceWithBackup(t *testing.T) {
	dir := t.TempDir()
	var n atomic.Int64
	storetest.Run(t, func(t *testing.T) store.Store {
		path := filepath.Join(dir, fmt.Sprintf("snapshot-%d.json", n.Add(1)))
		s, err := New(Options{BackupPath: path, BackupInterval: 20 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			if err := s.Close(); err != nil {
				t.Error(err)
			}
		})
		return s
	})
}

func rawCount(s *Store) int {
	n := 0
	for i := range s.shards {
		s.shards[i].mu.RLock()
		n += len(s.shards[i].m)
		s.shards[i].mu.RUnlock()
	}
	return n
}

func TestSweepRemovesExpired(t *testing.T) {
	s, err := New(Options{CleanupInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := t.Context()
	for _, k := range []string{"a", "b", "c"} {
		if err := s.Set(ctx, k, []byte("v"), time.Millisecond); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Set(ctx, "keep", []byte("v"), 0); err != nil {
		t.Fatal(err)
	}
	time.Sleep(20 * time.Millisecond)
	if got := rawCount(s); got != 4 {
		t.Fatalf("before the sweep the map holds %d entries, want 4 (sweep is off)", got)
	}
	s.sweep()
	if got := rawCount(s); got != 1 {
		t.Fatalf("after the sweep the map holds %d entries, want 1", got)
	}
	if s.Len() != 1 {
		t.Fatalf("Len = %d, want 1", s.Len())
	}
}

func TestDefaultTTL(t *testing.T) {
	s, err := New(Options{DefaultTTL: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := t.Context()
	s.Set(ctx, "default", []byte("v"), 0)
	s.Set(ctx, "forever", []byte("v"), -1)
	time.Sleep(300 * time.Millisecond)
	if _, err := s.Get(ctx, "default"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("key set with ttl 0 under DefaultTTL: Get = %v, want ErrNotFound", err)
	}
	if _, err := s.Get(ctx, "forever"); err != nil {
		t.Errorf("key set with negative ttl: Get = %v, want the value", err)
	}
}

func TestSnapshotSurvivesRestart(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sessions.json")
	ctx := context.Background()
	s, err := New(Options{BackupPath: path, BackupInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	s.Set(ctx, "forever", []byte("kept\x00bytes"), 0)
	s.Set(ctx, "hour", []byte("kept for an hour"), time.Hour)
	s.Set(ctx, "short", []byte("gone soon"), 300*time.Millisecond)
	s.Set(ctx, "dead", []byte("expired before Close"), time.Millisecond)
	time.Sleep(10 * time.Millisecond)
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if _, err := s.Get(ctx, "forever"); !errors.Is(err, ErrClosed) {
		t.Fatalf("Get after Close = %v, want ErrClosed", err)
	}

	s2, err := New(Options{BackupPath: path, BackupInterval: -1})
	if err != nil {
		t.Fatalf("New with the snapshot: %v", err)
	}
	defer s2.Close()
	for k, want := range map[string]string{"forever": "kept\x00bytes", "hour": "kept for an hour", "short": "gone soon"} {
		got, err := s2.Get(ctx, k)
		if err != nil || string(got) != want {
			t.Errorf("after restore Get(%q) = %q, %v; want %q", k, got, err, want)
		}
	}
	if _, err := s2.Get(ctx, "dead"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("a key expired before Close was restored: %v", err)
	}
	// Expiry is absolute: "short" keeps its original deadline, not a new one.
	time.Sleep(500 * time.Millisecond)
	if _, err := s2.Get(ctx, "short"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("restored key outlived its original TTL: %v", err)
	}
	if _, err := s2.Get(ctx, "hour"); err != nil {
		t.Errorf("restored key with an hour left: %v", err)
	}
}

func TestPeriodicSnapshot(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sessions.json")
	s, err := New(Options{BackupPath: path, BackupInterval: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	s.Set(t.Context(), "k", []byte("v"), 0)
	deadline := time.Now().Add(10 * time.Second)
	for {
		data, err := os.ReadFile(path)
		if err == nil && bytes.Contains(data, []byte(`"key":"k"`)) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("no periodic snapshot with the key after 10s (last read: %v)", err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestUnreadableSnapshotFailsNew(t *testing.T) {
	for name, content := range map[string]string{
		"truncated":    `{"format":"typedsession-memstore","version":1,"entries":[{"key":"a"`,
		"not json":     "\x00\x01garbage",
		"other format": `{"format":"something-else","version":1,"entries":[]}`,
		"newer":        `{"format":"typedsession-memstore","version":2,"entries":[]}`,
	} {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "sessions.json")
			if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
				t.Fatal(err)
			}
			s, err := New(Options{BackupPath: path})
			if err == nil {
				s.Close()
				t.Fatal("New with an unreadable snapshot succeeded; it must fail")
			}
			t.Logf("New: %v", err)
			got, _ := os.ReadFile(path)
			if string(got) != content {
				t.Fatalf("the unreadable snapshot was changed to %q", got)
			}
		})
	}
}

func TestSnapshotUnreadableFile(t *testing.T) {
	if os.Geteuid() == 0 {
		// root reads files whatever their mode; use a directory instead.
		path := t.TempDir()
		if _, err := New(Options{BackupPath: path}); err == nil {
			t.Fatal("New with a directory as BackupPath succeeded")
		}
		return
	}
	path := filepath.Join(t.TempDir(), "sessions.json")
	os.WriteFile(path, []byte("{}"), 0)
	if _, err := New(Options{BackupPath: path}); err == nil {
		t.Fatal("New with an unreadable snapshot succeeded")
	}
}
