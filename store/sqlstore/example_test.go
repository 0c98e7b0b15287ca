package sqlstore_test

import (
	"context"
	"database/sql"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"time"

	_ "modernc.org/sqlite"

	"github.com/typedsession/session/store/sqlstore"
)

// Example opens a SQLite database with the recommended settings, keeps a
// session in it and replaces it with compare-and-swap.
func Example() {
	dir, err := os.MkdirTemp("", "sqlstore-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)

	dsn := "file:" + filepath.ToSlash(filepath.Join(dir, "sessions.db")) +
		"?_pragma=busy_timeout(5000)&_pragma=journal_mode(WAL)"
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		log.Fatal(err)
	}
	defer db.Close() // the store never closes db

	st, err := sqlstore.New(db, sqlstore.Options{}) // dialect detected, table "sessions"
	if err != nil {
		log.Fatal(err)
	}
	defer st.Close() // stops the expiry sweep

	ctx := context.Background()
	if err := st.Set(ctx, "quiz:42", []byte(`{"score":1}`), time.Hour); err != nil {
		log.Fatal(err)
	}
	swapped, err := st.CompareAndSwap(ctx, "quiz:42", []byte(`{"score":1}`), []byte(`{"score":2}`), time.Hour)
	if err != nil {
		log.Fatal(err)
	}
	stale, err := st.CompareAndSwap(ctx, "quiz:42", []byte(`{"score":1}`), []byte(`{"score":9}`), time.Hour)
	if err != nil {
		log.Fatal(err)
	}
	v, err := st.Get(ctx, "quiz:42")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(swapped, stale, string(v))
	// Output: true false {"score":2}
}
