package natsstore

import (
	"context"
	"net/url"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/typedsession/session/internal/testenv"
	"github.com/typedsession/session/store"
)

// TestLostReplies: a write whose reply is lost after JetStream stored it
// is not published again by the store or nats.go (which resends a publish
// only on "no responders", when no stream took it), and a conditional
// write then returns an error.
func TestLostReplies(t *testing.T) {
	other, _ := newTestStore(t, Options{SweepInterval: -1})
	u, err := url.Parse(natsURL)
	if err != nil {
		t.Fatal(err)
	}
	testenv.LostReplies(t, u.Host, func(t *testing.T, proxyAddr string) (store.Store, store.Store) {
		pu := *u
		pu.Host = proxyAddr
		nc, err := nats.Connect(pu.String(), nats.ReconnectBufSize(-1))
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
		return s, other
	}, func(key string) []byte {
		// The publish to the key's subject (PUB or HPUB), not the
		// read of its last message, whose request names it too.
		return []byte(" " + other.pre + encodeKey(key) + " ")
	})
}
