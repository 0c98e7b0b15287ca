package redisstore_test

import (
	"context"
	"fmt"
	"log"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/typedsession/session/store/redisstore"
)

// A store on a single Redis node, under the prefix "mybot:". The example
// needs a Redis server, so it is compiled but not run by go test.
func Example() {
	rdb := redis.NewClient(&redis.Options{
		Addr:                  "127.0.0.1:6379",
		ContextTimeoutEnabled: true, // honour ctx deadlines (see the package doc)
	})
	defer rdb.Close()
	st := redisstore.New(rdb, redisstore.Options{Prefix: "mybot:"})
	ctx := context.Background()

	// Stored in Redis as "mybot:quiz:42", expiring in a day.
	if err := st.Set(ctx, "quiz:42", []byte(`{"score":1}`), 24*time.Hour); err != nil {
		log.Fatal(err)
	}
	// Replace it only if nobody changed it since we read it.
	ok, err := st.CompareAndSwap(ctx, "quiz:42", []byte(`{"score":1}`), []byte(`{"score":2}`), 24*time.Hour)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("swapped:", ok)
}

// The same store on a Redis Cluster: every method but Scan touches one key,
// so no hash tags are needed; Scan visits every master.
func Example_cluster() {
	rdb := redis.NewClusterClient(&redis.ClusterOptions{
		Addrs:                 []string{"127.0.0.1:7000", "127.0.0.1:7001", "127.0.0.1:7002"},
		ContextTimeoutEnabled: true,
	})
	defer rdb.Close()
	st := redisstore.New(rdb, redisstore.Options{Prefix: "mybot:"})

	err := st.Scan(context.Background(), "quiz:", func(key string) error {
		fmt.Println(key) // "quiz:42", without the "mybot:" prefix
		return nil
	})
	if err != nil {
		log.Fatal(err)
	}
}
