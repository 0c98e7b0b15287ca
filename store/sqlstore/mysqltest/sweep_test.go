package mysqltest

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/typedsession/session/store/sqlstore"
)

// TestSweepRacesWrites: the sweep deletes expired rows, which one goroutine
// keeps writing, while others keep live rows alive with GetAndTouch, Touch
// and CompareAndSwap, moving their expires_at index entries.
// InnoDB locks the expires_at index before the primary key in the sweep's
// DELETE and the other way round in an UPDATE, so it may pick one of them
// as a deadlock's victim; the store tries such a statement again, and no
// call fails and no kept-alive key is lost.
func TestSweepRacesWrites(t *testing.T) {
	db := openDB(t, nil)
	s := newTestStore(t, db, sqlstore.Options{CleanupInterval: -1})
	ctx := t.Context()
	const keys, rounds, ttl = 20, 40, 5 * time.Second
	for i := range keys {
		if err := s.Set(ctx, fmt.Sprint("k", i), []byte("v"), ttl); err != nil {
			t.Fatal(err)
		}
	}
	stop := make(chan struct{})
	var sweeps sync.WaitGroup
	sweeps.Go(func() {
		for {
			select {
			case <-stop:
				return
			default:
			}
			if _, err := s.DeleteExpired(ctx); err != nil {
				t.Errorf("DeleteExpired: %v", err)
				return
			}
		}
	})
	sweeps.Go(func() {
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			if err := s.Set(ctx, fmt.Sprint("x", i%50), []byte("x"), time.Millisecond); err != nil {
				t.Errorf("Set: %v", err)
				return
			}
		}
	})
	var wg sync.WaitGroup
	for i := range keys {
		wg.Go(func() {
			key := fmt.Sprint("k", i)
			for r := range rounds {
				var err error
				switch r % 3 {
				case 0:
					_, err = s.GetAndTouch(ctx, key, ttl)
				case 1:
					err = s.Touch(ctx, key, ttl)
				case 2:
					var ok bool
					ok, err = s.CompareAndSwap(ctx, key, []byte("v"), []byte("v"), ttl)
					if err == nil && !ok {
						err = errors.New("CompareAndSwap of a live key to its own value reported false")
					}
				}
				if err != nil {
					t.Errorf("%s round %d: %v", key, r, err)
					return
				}
			}
		})
	}
	wg.Wait()
	close(stop)
	sweeps.Wait()
	for i := range keys {
		if got, err := s.Get(ctx, fmt.Sprint("k", i)); err != nil || string(got) != "v" {
			t.Fatalf("k%d after the race = %q, %v; want v", i, got, err)
		}
	}
}
