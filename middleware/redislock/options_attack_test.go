package redislock_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/typedsession/session/middleware/redislock"
)

// TestAttackNewNilClientPointer: a nil *redis.Client is a non-nil
// redis.UniversalClient: New took it, and the first Lock panicked with a
// nil dereference deep in go-redis. New panics at once, as its doc says
// for a nil client, naming the type.
func TestAttackNewNilClientPointer(t *testing.T) {
	for _, c := range []redis.UniversalClient{(*redis.Client)(nil), (*redis.ClusterClient)(nil)} {
		func() {
			defer func() {
				msg := fmt.Sprint(recover())
				if !strings.Contains(msg, "nil client") || !strings.Contains(msg, fmt.Sprintf("%T", c)) {
					t.Errorf("New(%T(nil)): panic %q, want one naming a nil client and its type", c, msg)
				}
			}()
			redislock.New(c, redislock.Options{})
		}()
	}
}
