package conversation_test

import (
	"testing"

	"github.com/typedsession/session/internal/convtest"
	"github.com/typedsession/session/internal/testenv"
	"github.com/typedsession/session/store"
	"github.com/typedsession/session/store/memstore"
	"github.com/typedsession/session/store/redisstore"
)

// TestConformance runs the conformance suite (internal/convtest) on
// memstore and Redis; store/sqlstore runs it on PostgreSQL and SQLite.
func TestConformance(t *testing.T) {
	t.Run("memstore", func(t *testing.T) { convtest.Run(t, memStore) })
	t.Run("redis", func(t *testing.T) { convtest.Run(t, redisStore) })
}

func memStore(t testing.TB) store.Store {
	st, err := memstore.New(memstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// redisStore returns a redisstore under a prefix of its own, emptied when
// t ends; it skips t without a Redis (fails it under CI=true).
func redisStore(t testing.TB) store.Store {
	c := testenv.Redis(t)
	prefix := testenv.Prefix(t, "conv")
	testenv.CleanupPrefix(t, c, prefix)
	return redisstore.New(c, redisstore.Options{Prefix: prefix})
}
