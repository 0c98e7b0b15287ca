package redisstore_test

import (
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	session "github.com/typedsession/session"
	"github.com/typedsession/session/internal/testenv"
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

// TestAttackHugeTTL: Config.TTL near the largest duration is clamped by
// the store (store.MaxExpiry), as Config.TTL's doc says: an Update stores
// the session, a Load finds it, on a real Redis.
func TestAttackHugeTTL(t *testing.T) {
	client := testenv.Redis(t)
	st := newStore(t, client)
	for _, ttl := range []time.Duration{math.MaxInt64, 200 * 365 * 24 * time.Hour} {
		m, err := session.New(session.Config[struct {
			N int `json:"n"`
		}]{Store: st, Namespace: "huge", TTL: ttl})
		if err != nil {
			t.Fatal(err)
		}
		key := fmt.Sprint(int64(ttl))
		for range 2 {
			if _, err := m.Update(t.Context(), key, func(d *struct {
				N int `json:"n"`
			}) error {
				d.N++
				return nil
			}); err != nil {
				t.Fatalf("TTL %v: Update: %v", ttl, err)
			}
		}
		s, err := m.Load(t.Context(), key)
		if err != nil || s.IsNew() || s.Data.N != 2 {
			t.Fatalf("TTL %v: Load = %+v, new %v, %v; want N 2", ttl, s.Data, s.IsNew(), err)
		}
	}
}
