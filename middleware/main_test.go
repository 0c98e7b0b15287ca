package middleware

import (
	"fmt"
	"os"
	"sync"
	"testing"
)

// lockLen returns the number of keys in the core's lock table.
func (c *core[T]) lockLen() int {
	if lt, ok := c.locker.(*LockTable); ok {
		return lt.Len()
	}
	return 0
}

var (
	tablesMu sync.Mutex
	tables   []*LockTable
)

// TestMain checks, after all tests, that every lock table any middleware
// of the tests made is empty: no test path (panics included) leaves a key
// locked. Tests that provoke such paths also check their own table.
func TestMain(m *testing.M) {
	lockTableMade = func(lt *LockTable) {
		tablesMu.Lock()
		tables = append(tables, lt)
		tablesMu.Unlock()
	}
	code := m.Run()
	tablesMu.Lock()
	for i, lt := range tables {
		if n := lt.Len(); n != 0 {
			fmt.Fprintf(os.Stderr, "FAIL: lock table %d of %d still holds %d keys after the tests\n", i, len(tables), n)
			code = 1
		}
	}
	tablesMu.Unlock()
	os.Exit(code)
}
