package pglock_test

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/typedsession/session/middleware/pglock"
)

// TestAttackLongChannel: PostgreSQL's pg_notify refuses a channel of 64
// bytes or more ("channel name too long"), and LISTEN cuts it to 63. New
// took such an Options.Channel, and then every release failed: its
// connection was closed to end the lock, OnError heard of each, and
// waiters woke only by polling. New panics, naming the option and its
// length; the longest channel PostgreSQL takes (63 bytes) works.
func TestAttackLongChannel(t *testing.T) {
	pool := testPool(t)
	func() {
		defer func() {
			msg := fmt.Sprint(recover())
			if !strings.Contains(msg, "Options.Channel") || !strings.Contains(msg, "64") {
				t.Errorf("New with a 64-byte Channel: panic %q, want one naming Options.Channel and its length", msg)
			}
		}()
		lk := pglock.New(pool, pglock.Options{Class: testClass(), Channel: strings.Repeat("c", 64)})
		lk.Close()
	}()

	var mu sync.Mutex
	var errs []error
	lk := pglock.New(pool, pglock.Options{Class: testClass(), Channel: strings.Repeat("c", 63), OnError: func(key string, err error) {
		mu.Lock()
		errs = append(errs, err)
		mu.Unlock()
	}})
	t.Cleanup(func() { lk.Close() })
	for range 3 {
		unlock, err := lk.Lock(t.Context(), "k")
		if err != nil {
			t.Fatal(err)
		}
		unlock()
	}
	time.Sleep(100 * time.Millisecond)
	mu.Lock()
	defer mu.Unlock()
	if len(errs) != 0 {
		t.Errorf("releases with a 63-byte Channel reported %v", errs)
	}
}
