package middleware

import (
	"testing"

	"github.com/typedsession/session/store/memstore"
	"github.com/typedsession/session/store/storetest"
)

// newCountingStore returns a memstore wrapped in a counter of store calls
// that keeps every optional capability (a plain wrapper would hide them and
// change what the manager does).
func newCountingStore(t *testing.T) *storetest.Counter {
	t.Helper()
	ms, err := memstore.New(memstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ms.Close() })
	return storetest.NewCounter(ms)
}
