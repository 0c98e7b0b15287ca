package sqlstore

import (
	"testing"

	"github.com/typedsession/session/internal/sessiontest"
)

// TestSteadyReadsOnlyRead is the Manager's idle-timeout rule on SQLite and
// PostgreSQL (the root package runs it on memstore, filestore and Redis): a
// Load of a session that is not near expiry only reads, and one near expiry
// extends it once.
func TestSteadyReadsOnlyRead(t *testing.T) {
	t.Run("sqlite", func(t *testing.T) {
		sessiontest.SteadyReadsOnlyRead(t, newTestStore(t, sqliteDB(t), Options{}))
	})
	t.Run("postgres", func(t *testing.T) {
		sessiontest.SteadyReadsOnlyRead(t, newTestStore(t, postgresDB(t), Options{}))
	})
}
