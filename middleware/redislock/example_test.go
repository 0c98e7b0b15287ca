package redislock_test

import (
	"context"
	"log"
	"strconv"

	"github.com/redis/go-redis/v9"

	session "github.com/typedsession/session"
	"github.com/typedsession/session/middleware"
	"github.com/typedsession/session/middleware/redislock"
	"github.com/typedsession/session/store/redisstore"
)

type Quiz struct {
	Score int `json:"score"`
}

type Update struct {
	UserID int64
}

// Every replica of a bot creates the same stack: sessions in Redis, and a
// Redis lock so that the updates of one user run one after the other
// across replicas. The example needs a Redis server, so it is compiled but
// not run by go test.
func Example() {
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:6379", ContextTimeoutEnabled: true})
	defer rdb.Close()

	quizzes, err := session.New(session.Config[Quiz]{
		Store:     redisstore.New(rdb, redisstore.Options{Prefix: "mybot:"}),
		Namespace: "quiz",
	})
	if err != nil {
		log.Fatal(err)
	}
	lock := redislock.New(rdb, redislock.Options{
		Prefix: "mybot:lock:quiz:",
		OnError: func(key string, err error) {
			log.Printf("session lock of %s: %v", key, err) // a lost lease, a failed release
		},
	})
	defer lock.Close()

	mw := middleware.New(quizzes, func(_ context.Context, u *Update) (string, error) {
		return strconv.FormatInt(u.UserID, 10), nil
	}, middleware.Options{Locker: lock})
	handle := mw.Wrap(func(ctx context.Context, u *Update) error {
		s, err := session.From[Quiz](ctx)
		if err != nil {
			return err
		}
		s.Data.Score++
		return nil
	})
	if err := handle(context.Background(), &Update{UserID: 42}); err != nil {
		log.Fatal(err)
	}
}

// On a Redis Cluster the same Locker works unchanged: each lock is one key,
// and the release messages reach the waiters on every node.
func Example_cluster() {
	rdb := redis.NewClusterClient(&redis.ClusterOptions{
		Addrs:                 []string{"127.0.0.1:7000", "127.0.0.1:7001", "127.0.0.1:7002"},
		ContextTimeoutEnabled: true,
	})
	defer rdb.Close()
	lock := redislock.New(rdb, redislock.Options{Prefix: "mybot:lock:"})
	defer lock.Close()

	unlock, err := lock.Lock(context.Background(), "42")
	if err != nil {
		log.Fatal(err)
	}
	defer unlock()
	// ... the update of user 42, alone across every replica ...
}
