package mysqltest

import (
	"testing"

	"github.com/typedsession/session/internal/sessiontest"
	"github.com/typedsession/session/store/sqlstore"
)

// TestSteadyReadsOnlyRead is the Manager's idle-timeout rule on MySQL and
// MariaDB: a Load of a session that is not near expiry only reads, and one
// near expiry extends it once.
func TestSteadyReadsOnlyRead(t *testing.T) {
	sessiontest.SteadyReadsOnlyRead(t, newTestStore(t, openDB(t, nil), sqlstore.Options{}))
}
