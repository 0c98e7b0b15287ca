package fiberstore_test

import (
	"context"
	"fmt"

	fiberredis "github.com/gofiber/storage/redis/v3"
	"github.com/redis/go-redis/v9"

	session "github.com/typedsession/session"
	"github.com/typedsession/session/adapters/fiber/fiberstore"
	"github.com/typedsession/session/internal/testenv"
)

type Prefs struct {
	Theme string `json:"theme" validate:"omitempty,oneof=light dark"`
}

// Example keeps sessions in Redis through Fiber's Redis driver. It needs
// the Redis server at REDIS_URL (default 127.0.0.1:6379).
func Example() {
	opts, _ := redis.ParseURL(testenv.RedisURL())
	rc := redis.NewClient(opts)
	defer rc.Close()
	st := fiberstore.New(fiberredis.NewFromConnection(rc), fiberstore.Options{Prefix: "example:fiberstore:"})
	prefs, _ := session.New(session.Config[Prefs]{Store: st, Namespace: "prefs"})

	ctx := context.Background()
	defer prefs.Delete(ctx, "ann")
	prefs.Update(ctx, "ann", func(p *Prefs) error { p.Theme = "dark"; return nil })
	s, _ := prefs.Load(ctx, "ann")
	fmt.Println("theme:", s.Data.Theme)
	// Output:
	// theme: dark
}
