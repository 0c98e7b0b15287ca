package filestore

import (
	"testing"
	"time"

	"github.com/typedsession/session/store"
	"github.com/typedsession/session/store/storetest"
)

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store {
		s, err := New(t.TempDir(), Options{CleanupInterval: 50 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	})
}
