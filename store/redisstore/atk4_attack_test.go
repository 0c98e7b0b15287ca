package redisstore_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/typedsession/session/store/redisstore"
)

// TestAttackNewNilClientPointer: a nil *redis.Client is a non-nil
// redis.UniversalClient: New passed its nil check and panicked with a nil
// pointer dereference while reading the client's retry settings. It
// panics with the message its doc promises, naming the type.
func TestAttackNewNilClientPointer(t *testing.T) {
	for _, c := range []redis.UniversalClient{(*redis.Client)(nil), (*redis.ClusterClient)(nil)} {
		func() {
			defer func() {
				msg := fmt.Sprint(recover())
				if !strings.Contains(msg, "nil client") || !strings.Contains(msg, fmt.Sprintf("%T", c)) {
					t.Errorf("New(%T(nil)): panic %q, want one naming a nil client and its type", c, msg)
				}
			}()
			redisstore.New(c, redisstore.Options{})
		}()
	}
}
