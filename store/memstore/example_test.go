package memstore_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/typedsession/session/store/memstore"
)

// A store with a snapshot file keeps its keys, and their deadlines, across
// a restart: Close writes the snapshot and New restores it.
func Example() {
	dir, _ := os.MkdirTemp("", "memstore-example")
	defer os.RemoveAll(dir)
	opts := memstore.Options{BackupPath: filepath.Join(dir, "sessions.snap")}
	ctx := context.Background()

	st, err := memstore.New(opts)
	if err != nil {
		fmt.Println(err)
		return
	}
	st.Set(ctx, "quiz:42", []byte(`{"score":3}`), time.Hour)
	if err := st.Close(); err != nil {
		fmt.Println(err)
		return
	}

	st, err = memstore.New(opts)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer st.Close()
	v, ttl, _ := st.GetWithTTL(ctx, "quiz:42")
	fmt.Printf("%s, expires within the hour: %v\n", v, ttl > 0 && ttl <= time.Hour)
	// Output: {"score":3}, expires within the hour: true
}
