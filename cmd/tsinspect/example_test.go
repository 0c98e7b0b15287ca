package main

import (
	"context"
	"os"
	"path/filepath"

	"github.com/typedsession/session/store/filestore"
)

// The inspector on a filestore folder: a session written with a TTL, one
// without an envelope.
func Example() {
	dir, _ := os.MkdirTemp("", "tsinspect-example-")
	defer os.RemoveAll(dir)
	st, _ := filestore.New(filepath.Join(dir, "sessions"), filestore.Options{})
	ctx := context.Background()
	st.Set(ctx, "quiz:42", []byte(`{"typedsession":2,"writes":["hT3kQ0aZr8Ym"],"data":{"score":3}}`), 0)
	st.Set(ctx, "quiz:7", []byte(`{"score":1}`), 0)
	st.Close()

	root := newRoot(os.Stdin, os.Stdout, os.Stderr)
	root.SetArgs([]string{"--store", filepath.Join(dir, "sessions"), "--workers", "1", "get", "-n", "quiz", "42"})
	root.Execute()
	// Output:
	// key:      quiz:42
	// size:     63 bytes
	// ttl:      none
	// status:   ok
	// envelope: JSON
	// version:  2
	// writes:   1, newest first: hT3kQ0aZr8Ym
	// data:     11 bytes
	//   {
	//     "score": 3
	//   }
}
