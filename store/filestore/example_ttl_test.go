package filestore_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"time"

	"github.com/typedsession/session/store/filestore"
)

// An idle timeout that reads first: GetWithTTL only reads, so it works on
// a read-only or full disk, and the file is rewritten (GetAndTouch) only
// when the key runs low. CompareAndDelete removes a key only if nobody
// changed it since it was read.
func ExampleStore_GetWithTTL() {
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

	const idle = 24 * time.Hour
	if err := st.Set(ctx, "quiz:42", []byte(`{"score":3}`), idle); err != nil {
		log.Fatal(err)
	}
	v, left, err := st.GetWithTTL(ctx, "quiz:42")
	if err != nil {
		log.Fatal(err)
	}
	if left < idle/2 { // running low: extend it (this one writes)
		if v, err = st.GetAndTouch(ctx, "quiz:42", idle); err != nil {
			log.Fatal(err)
		}
	}
	fmt.Printf("%s, more than 23h left: %v\n", v, left > 23*time.Hour)

	ok, err := st.CompareAndDelete(ctx, "quiz:42", []byte(`{"score":2}`))
	fmt.Println("delete a stale copy:", ok, err)
	ok, err = st.CompareAndDelete(ctx, "quiz:42", v)
	fmt.Println("delete what we read:", ok, err)
	// Output:
	// {"score":3}, more than 23h left: true
	// delete a stale copy: false <nil>
	// delete what we read: true <nil>
}
