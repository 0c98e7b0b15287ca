package sqlstore

import (
	"testing"

	"github.com/typedsession/session/internal/convtest"
	"github.com/typedsession/session/store"
)

// TestConversation runs package conversation's conformance suite
// (internal/convtest: steps, timeouts after a restart, racing and killed
// sweepers over the due-index, migrations, removed steps) on PostgreSQL
// and SQLite (the core runs it on memstore and Redis), each store on a
// table of its own.
func TestConversation(t *testing.T) {
	t.Run("postgres", func(t *testing.T) {
		db := postgresDB(t)
		convtest.Run(t, func(t testing.TB) store.Store { return newTestStore(t, db, Options{}) })
	})
	t.Run("sqlite", func(t *testing.T) {
		db := sqliteDB(t)
		convtest.Run(t, func(t testing.TB) store.Store { return newTestStore(t, db, Options{}) })
	})
}
