package natsstore

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	session "github.com/typedsession/session"
	"github.com/typedsession/session/store"
	"github.com/typedsession/session/store/storetest"
)

type visits struct {
	N int `json:"n" validate:"gte=0"`
}

// TestManagerUpdates: concurrent Updates of one session through the
// session manager, with an idle timeout, lose nothing; a steady session
// is read, not written, on Load.
func TestManagerUpdates(t *testing.T) {
	t.Parallel()
	s, _ := newTestStore(t, Options{SweepInterval: -1})
	counter := storetest.NewCounter(s)
	m, err := session.New(session.Config[visits]{Store: counter, Namespace: "v", TTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	const workers, each = 8, 20
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for range each {
				if _, err := m.Update(ctx, "user:1", func(v *visits) error { v.N++; return nil }); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	got, err := m.Load(ctx, "user:1")
	if err != nil {
		t.Fatal(err)
	}
	if got.Data.N != workers*each {
		t.Fatalf("N = %d after %d updates: updates were lost", got.Data.N, workers*each)
	}
	counter.Reset()
	for range 10 {
		s, err := m.Load(context.Background(), "user:1")
		if err != nil {
			t.Fatal(err)
		}
		if err := m.Save(context.Background(), s); err != nil {
			t.Fatal(err)
		}
	}
	if w := counter.Writes(); w != 0 {
		t.Errorf("10 unchanged Load+Save wrote %d times; want 0 (reads only, far from expiry)", w)
	}
}

// TestMigrateAllMeetsDamagedExpiry (issue 23): one live session and one
// whose expiry header is not a number. MigrateAll used to report
// scanned=1 failed=0, since Scan skipped the damaged key that Get reports
// as store.ErrCorrupt; it must look at both and report the damaged one.
func TestMigrateAllMeetsDamagedExpiry(t *testing.T) {
	t.Parallel()
	s, js := newTestStore(t, Options{SweepInterval: -1})
	m, err := session.New(session.Config[visits]{Store: s, Namespace: "v"})
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	if _, err := m.Update(ctx, "good", func(v *visits) error { v.N = 1; return nil }); err != nil {
		t.Fatal(err)
	}
	msg := nats.NewMsg(s.pre + encodeKey("v:bad"))
	msg.Header.Set(ExpiresHeader, "soon")
	msg.Data = []byte(`{"typedsession":1,"data":{"n":2}}`)
	if _, err := js.PublishMsg(ctx, msg); err != nil {
		t.Fatal(err)
	}
	r, err := m.MigrateAll(ctx, session.MigrateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if r.Scanned != 2 || len(r.Failed) != 1 || r.Failed[0].Key != "bad" || !errors.Is(r.Failed[0].Err, store.ErrCorrupt) {
		t.Errorf("MigrateAll = scanned %d, failed %v; want scanned 2 and the key \"bad\" failed with store.ErrCorrupt", r.Scanned, r.Failed)
	}
}
