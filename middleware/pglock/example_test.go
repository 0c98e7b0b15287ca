package pglock_test

import (
	"context"
	"database/sql"
	"log"
	"strconv"

	"github.com/jackc/pgx/v5/pgxpool"

	session "github.com/typedsession/session"
	"github.com/typedsession/session/middleware"
	"github.com/typedsession/session/middleware/pglock"
	"github.com/typedsession/session/store/sqlstore"
)

type Quiz struct {
	Score int `json:"score"`
}

type Update struct {
	UserID int64
}

// Every replica creates the same stack: sessions in a sqlstore on
// PostgreSQL, and an advisory lock on a pgxpool of the same database, so
// that the updates of one user run one after the other across replicas.
// The example needs a PostgreSQL server, so it is compiled but not run by
// go test.
func Example() {
	const url = "postgres://app@127.0.0.1:5432/app"
	ctx := context.Background()
	db, err := sql.Open("pgx", url)
	if err != nil {
		log.Fatal(err)
	}
	defer db.Close()
	st, err := sqlstore.New(db, sqlstore.Options{})
	if err != nil {
		log.Fatal(err)
	}
	defer st.Close()
	quizzes, err := session.New(session.Config[Quiz]{Store: st, Namespace: "quiz"})
	if err != nil {
		log.Fatal(err)
	}

	pool, err := pgxpool.New(ctx, url) // pool_max_conns defaults to max(4, CPUs)
	if err != nil {
		log.Fatal(err)
	}
	defer pool.Close()
	lock := pglock.New(pool, pglock.Options{}) // locks hold at most half the pool's connections

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
	if err := handle(ctx, &Update{UserID: 42}); err != nil {
		log.Fatal(err)
	}
}
