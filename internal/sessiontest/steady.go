// Package sessiontest holds test bodies about the Manager that run on more
// than one store and in more than one module: the root package runs them on
// memstore, filestore and Redis, the sqlstore module on SQLite, PostgreSQL
// and MySQL, so that the core's tests import no SQL driver.
package sessiontest

import (
	"testing"
	"time"

	"github.com/typedsession/session"
	"github.com/typedsession/session/store"
	"github.com/typedsession/session/store/storetest"
)

// score is the session type of these tests.
type score struct {
	Score int `json:"score"`
}

// SteadyReadsOnlyRead checks the idle-timeout rule on st, a fresh store
// whose keys no one else writes: a Load + Save of a session that is not near
// expiry makes no store write, and a session near expiry is extended by the
// first Load after it, once (one Touch for three Loads), to at least the TTL
// less Manager.Slack when the store tells TTLs.
func SteadyReadsOnlyRead(t *testing.T, st store.Store) {
	t.Helper()
	ctx := t.Context()
	c := storetest.NewCounter(st)
	const ttl = time.Hour
	m, err := session.New(session.Config[score]{Store: c, Namespace: "q", TTL: ttl})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	if _, err := m.Update(ctx, "u", func(q *score) error { q.Score = 1; return nil }); err != nil {
		t.Fatal(err)
	}
	writes := func() int {
		return c.Calls("Set") + c.Calls("CompareAndSwap") + c.Calls("Touch") + c.Calls("GetAndTouch") + c.Calls("Delete")
	}
	c.Reset()
	const loads = 100
	for range loads {
		s, err := m.Load(ctx, "u")
		if err != nil {
			t.Fatal(err)
		}
		if err := m.Save(ctx, s); err != nil {
			t.Fatal(err)
		}
	}
	if n := writes(); n != 0 {
		t.Fatalf("%d steady Load+Save of an unchanged session made %d store writes (%v), want 0", loads, n, c.Snapshot())
	}
	// Near expiry: the next Load extends it, once.
	raw, err := st.Get(ctx, "q:u")
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Set(ctx, "q:u", raw, ttl-m.Slack()-time.Minute); err != nil {
		t.Fatal(err)
	}
	c.Reset()
	for range 3 {
		if _, err := m.Load(ctx, "u"); err != nil {
			t.Fatal(err)
		}
	}
	if n := c.Calls("Touch"); n != 1 {
		t.Fatalf("3 Loads near expiry made %d Touch calls (%v), want 1", n, c.Snapshot())
	}
	if g, ok := st.(store.TTLGetter); ok {
		_, left, err := g.GetWithTTL(ctx, "q:u")
		if err != nil || left < ttl-m.Slack() {
			t.Fatalf("after the extension: %v left, %v; want at least %v", left, err, ttl-m.Slack())
		}
	}
}
