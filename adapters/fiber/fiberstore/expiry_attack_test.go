package fiberstore_test

import (
	"context"
	"testing"
	"time"

	fiberredis "github.com/gofiber/storage/redis/v3"

	session "github.com/typedsession/session"
	"github.com/typedsession/session/adapters/fiber/fiberstore"
	"github.com/typedsession/session/internal/testenv"
)

type cart struct {
	Items []string `json:"items"`
}

// TestAttackUnchangedSessionExpiryAsDocumented: the package documentation
// said that without Touch "a session with a TTL is extended by writing it
// again, which the manager does when it is near expiry". The manager
// never writes an unchanged value back on a store without compare-and-swap
// (a blind write could revert another process's newer save), so a session
// near expiry that is loaded and saved unchanged is not extended: its
// idle timeout counts from its last change. This test pins what happens,
// so that the documentation says it: a Load and an unchanged Save send no
// write, and the key's expiry stays where it was.
func TestAttackUnchangedSessionExpiryAsDocumented(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	rc := testenv.Redis(t)
	prefix := testenv.Prefix(t, "fiberstore")
	testenv.CleanupPrefix(t, rc, prefix)
	st := fiberstore.New(fiberredis.NewFromConnection(rc), fiberstore.Options{Prefix: prefix})
	const ttl = time.Hour
	m, err := session.New(session.Config[cart]{Store: st, Namespace: "cart", TTL: ttl})
	if err != nil {
		t.Fatal(err)
	}
	s, err := m.Load(ctx, "u")
	if err != nil {
		t.Fatal(err)
	}
	s.Data.Items = append(s.Data.Items, "apple")
	if err := m.Save(ctx, s); err != nil {
		t.Fatal(err)
	}
	key := prefix + "cart:u"
	// Near expiry: ten minutes left of the hour.
	if err := rc.PExpire(ctx, key, 10*time.Minute).Err(); err != nil {
		t.Fatal(err)
	}
	// A request that only reads: the middleware loads and saves unchanged.
	s, err = m.Load(ctx, "u")
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Save(ctx, s); err != nil {
		t.Fatal(err)
	}
	left, err := rc.PTTL(ctx, key).Result()
	if err != nil {
		t.Fatal(err)
	}
	if left > 10*time.Minute {
		t.Fatalf("an unchanged session near expiry was extended (%v left): the documentation says it is not", left)
	}
}
