package session_test

import (
	"regexp"
	"testing"

	"github.com/typedsession/session/store"
	"github.com/typedsession/session/store/memstore"
	"github.com/typedsession/session/store/storetest"
)

// Quiz is the session type of the package's tests and examples.
type Quiz struct {
	Active   bool     `json:"active"`
	Question int      `json:"question" validate:"gte=0,lte=50"`
	Score    int      `json:"score"`
	Answers  []string `json:"answers" validate:"max=50"`
}

func newMem(t testing.TB) *memstore.Store {
	t.Helper()
	s, err := memstore.New(memstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// newCounting wraps s in a counter of store calls that keeps every
// optional capability of s.
func newCounting(s store.Store) *storetest.Counter { return storetest.NewCounter(s) }

// basic hides every optional capability: only Get, Set and Delete.
type basic struct{ store.Store }

// touchOnly offers Touch but not GetAndTouch or CompareAndSwap.
type touchOnly struct {
	store.Store
	store.Toucher
}

// refresherOnly offers GetAndTouch, but not GetWithTTL, Touch or CompareAndSwap.
type refresherOnly struct {
	store.Store
	store.Refresher
}

var writesMember = regexp.MustCompile(`"writes":\["[A-Za-z0-9_-]{12}"(,"[A-Za-z0-9_-]{12}")*\],`)

// stripWrites returns raw without its "writes" member, whose identities
// are random.
func stripWrites(raw []byte) string { return writesMember.ReplaceAllString(string(raw), "") }
