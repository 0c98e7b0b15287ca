package natsstore

import (
	"context"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/typedsession/session/internal/testenv"
)

// A write made while nats.go reconnects went into its reconnect buffer and
// out after the reconnection, long after the call had returned its error:
// a blind delete (Manager.Delete) whose caller had been told the outcome
// is open landed after another writer's acknowledged write of the key,
// and erased it.
func TestAttackNoWriteLandsAfterItReturned(t *testing.T) {
	other, _ := newTestStore(t, Options{SweepInterval: -1})
	u, err := url.Parse(natsURL)
	if err != nil {
		t.Fatal(err)
	}
	p := testenv.StartProxy(t, u.Host)
	pu := *u
	pu.Host = p.Addr()
	nc, err := nats.Connect(pu.String(), nats.ReconnectWait(50*time.Millisecond), nats.MaxReconnects(-1), nats.ReconnectBufSize(-1))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc, jetstream.WithDefaultTimeout(2*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	s, err := New(context.Background(), js, Options{Bucket: other.bucket, SweepInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	ctx := context.Background()
	const key = "reconnect:k"
	if err := other.Set(ctx, key, []byte("old"), time.Hour); err != nil {
		t.Fatal(err)
	}
	p.SetDown(true)
	for deadline := time.Now().Add(5 * time.Second); !nc.IsReconnecting(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the client did not notice the cut")
		}
	}
	dctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	err = s.Delete(dctx, key)
	cancel()
	if err == nil {
		t.Fatal("Delete succeeded with the server unreachable")
	}
	// The other writer's write, acknowledged.
	if err := other.Set(ctx, key, []byte("other"), time.Hour); err != nil {
		t.Fatal(err)
	}
	p.SetDown(false)
	for deadline := time.Now().Add(5 * time.Second); !nc.IsConnected(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the client did not reconnect")
		}
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond)
	got, err := other.Get(ctx, key)
	if err != nil || string(got) != "other" {
		t.Fatalf("after a Delete that returned %v and another writer's acknowledged write: %q, %v; want \"other\" (the delete landed after it returned)", "an error", got, err)
	}
}

// New refuses a connection that buffers publishes while it reconnects
// (nats.go's default), and takes one that does not reconnect.
func TestNewRefusesReconnectBuffer(t *testing.T) {
	connect(t) // skips without a server
	for _, tc := range []struct {
		name string
		opts []nats.Option
		ok   bool
	}{
		{"default", nil, false},
		{"8 MiB", []nats.Option{nats.ReconnectBufSize(8 << 20)}, false},
		{"-1", []nats.Option{nats.ReconnectBufSize(-1)}, true},
		{"no reconnect", []nats.Option{nats.NoReconnect()}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			nc, err := nats.Connect(natsURL, tc.opts...)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(nc.Close)
			js, err := jetstream.New(nc, jetstream.WithDefaultTimeout(time.Minute))
			if err != nil {
				t.Fatal(err)
			}
			bucket := bucketName(t)
			s, err := New(context.Background(), js, Options{Bucket: bucket, Storage: jetstream.MemoryStorage, SweepInterval: -1})
			if err == nil {
				s.Close()
				js.DeleteKeyValue(context.Background(), bucket)
			}
			if (err == nil) != tc.ok {
				t.Fatalf("New: %v; want ok=%v", err, tc.ok)
			}
			if err != nil && !strings.Contains(err.Error(), "nats.ReconnectBufSize(-1)") {
				t.Fatalf("New's refusal does not say what to do: %v", err)
			}
		})
	}
}
