package main

import (
	"context"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/typedsession/session/internal/testenv"
)

// TestCases runs every case on 2,000 sessions in a Redis of the test's
// own, so that the program keeps working; run.sh runs it on a million.
func TestCases(t *testing.T) {
	testenv.NeedRedisBinaries(t)
	port := testenv.FreePort(t, map[int]bool{})
	srv, err := testenv.StartRedisServer(port, filepath.Join(t.TempDir(), strconv.Itoa(port)), "--appendonly", "no")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Kill)
	c := redis.NewClient(&redis.Options{Addr: srv.Addr()})
	t.Cleanup(func() { c.Close() })
	ctx := context.Background()
	const n = 2000
	if got, err := seed(ctx, c, "bulk:", n, 1); err != nil || got != n {
		t.Fatalf("seed = %d, %v", got, err)
	}
	r, err := migrateAll(ctx, c, "bulk:")
	if err != nil || r.Scanned != n || r.Migrated != n {
		t.Fatalf("migrate v1 = %+v, %v; want %d migrated", r, err, n)
	}
	r, err = migrateAll(ctx, c, "bulk:")
	if err != nil || r.Current != n {
		t.Fatalf("migrate again = %+v, %v; want %d current", r, err, n)
	}
	if got, err := baseline(ctx, c, "bulk:", 100); err != nil || got != n {
		t.Fatalf("baseline = %d, %v; want %d", got, err, n)
	}
}

// TestCheckPrefix: seed deletes what is under -prefix, so an empty prefix
// (the whole Redis) or one with a glob metacharacter (SCAN MATCH would
// read it as a pattern) is refused before anything is touched.
func TestCheckPrefix(t *testing.T) {
	for _, p := range []string{"", "*", "bulk*", "a?b", "[ab]:", `back\slash`} {
		if err := checkPrefix(p); err == nil {
			t.Errorf("checkPrefix(%q) = nil, want a refusal", p)
		}
	}
	for _, p := range []string{"bulk:", "tsbench:run1:"} {
		if err := checkPrefix(p); err != nil {
			t.Errorf("checkPrefix(%q) = %v, want nil", p, err)
		}
	}
}
