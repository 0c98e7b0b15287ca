package memstore

import (
	"testing"
	"time"

	"github.com/typedsession/session/store"
	"github.com/typedsession/session/store/storetest"
)

func TestBatchConformance(t *testing.T) {
	storetest.RunBatch(t, func(t *testing.T) store.Store {
		s, err := New(Options{CleanupInterval: 50 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		closeOK(t, s)
		return s
	})
}
