package redisstore_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/typedsession/session/store"
	"github.com/typedsession/session/store/redisstore"
	"github.com/typedsession/session/store/storetest"
)

func TestClusterConformance(t *testing.T) {
	client := cluster(t)
	storetest.Run(t, func(t *testing.T) store.Store { return newStore(t, client) })
}

// TestClusterScanEveryMaster checks that keys do spread over the masters
// and that Scan reports the keys of every one of them.
func TestClusterScanEveryMaster(t *testing.T) {
	client := cluster(t)
	s, prefix := newStorePrefix(t, client)
	ctx := t.Context()
	const n = 60
	var want []string
	for i := range n {
		k := fmt.Sprintf("k%02d", i)
		want = append(want, k)
		if err := s.Set(ctx, k, []byte("v"), time.Hour); err != nil {
			t.Fatal(err)
		}
	}
	// Count on each master how many of the keys it holds.
	var (
		mu      sync.Mutex
		holding int
	)
	err := client.ForEachMaster(ctx, func(ctx context.Context, node *redis.Client) error {
		iter := node.Scan(ctx, 0, redisstore.EscapeGlob(prefix)+"*", 1000).Iterator()
		found := iter.Next(ctx)
		if err := iter.Err(); err != nil {
			return err
		}
		if found {
			mu.Lock()
			holding++
			mu.Unlock()
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if holding < 2 {
		t.Fatalf("%d keys landed on %d master(s); the test needs them spread", n, holding)
	}
	var got []string
	if err := s.Scan(ctx, "", func(k string) error { got = append(got, k); return nil }); err != nil {
		t.Fatal(err)
	}
	slices.Sort(got)
	got = slices.Compact(got)
	if !slices.Equal(got, want) {
		t.Fatalf("Scan over %d masters reported %d keys %q, want %d", holding, len(got), got, n)
	}
}
