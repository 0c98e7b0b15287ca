package filestore_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"time"

	"github.com/typedsession/session/store/filestore"
)

func Example() {
	dir, err := os.MkdirTemp("", "filestore-example-")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)

	st, err := filestore.New(dir, filestore.Options{})
	if err != nil {
		log.Fatal(err)
	}
	defer st.Close()
	ctx := context.Background()

	if err := st.Set(ctx, "quiz:42", []byte(`{"score":3}`), time.Hour); err != nil {
		log.Fatal(err)
	}
	v, err := st.Get(ctx, "quiz:42")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%s\n", v)

	// Replace the value only if nobody changed it since we read it.
	ok, err := st.CompareAndSwap(ctx, "quiz:42", v, []byte(`{"score":4}`), time.Hour)
	fmt.Println("first swap:", ok, err)
	ok, err = st.CompareAndSwap(ctx, "quiz:42", v, []byte(`{"score":5}`), time.Hour)
	fmt.Println("stale swap:", ok, err)

	// Any key is safe: it never leaves dir.
	if err := st.Set(ctx, "../../etc/passwd", []byte("harmless"), 0); err != nil {
		log.Fatal(err)
	}
	err = st.Scan(ctx, "", func(key string) error {
		fmt.Printf("key %q\n", key)
		return nil
	})
	if err != nil {
		log.Fatal(err)
	}
	// Unordered output:
	// {"score":3}
	// first swap: true <nil>
	// stale swap: false <nil>
	// key "quiz:42"
	// key "../../etc/passwd"
}
