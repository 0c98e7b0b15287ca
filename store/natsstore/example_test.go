package natsstore_test

import (
	"context"
	"fmt"
	"log"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	session "github.com/typedsession/session"
	"github.com/typedsession/session/store/natsstore"
)

// Cart is a web shop's session.
type Cart struct {
	Items []string `json:"items" validate:"max=50"`
}

// Example keeps typed sessions in a JetStream key-value bucket. It needs a
// NATS server with JetStream at nats.DefaultURL, so it has no output to
// check.
func Example() {
	ctx := context.Background()
	nc, err := nats.Connect(nats.DefaultURL, nats.ReconnectBufSize(-1))
	if err != nil {
		log.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		log.Fatal(err)
	}
	st, err := natsstore.New(ctx, js, natsstore.Options{Bucket: "shop_sessions"})
	if err != nil {
		log.Fatal(err)
	}
	defer st.Close() // before nc.Close

	carts, err := session.New(session.Config[Cart]{Store: st, Namespace: "cart", TTL: 24 * time.Hour})
	if err != nil {
		log.Fatal(err)
	}
	cart, err := carts.Update(ctx, "visitor-1", func(c *Cart) error {
		c.Items = append(c.Items, "tea")
		return nil
	})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(cart.Items)
}
