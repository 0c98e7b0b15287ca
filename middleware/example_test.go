package middleware_test

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	session "github.com/typedsession/session"
	"github.com/typedsession/session/middleware"
	"github.com/typedsession/session/store/memstore"
)

// Update is a chat update of some bot framework.
type Update struct {
	UserID int64
	Text   string
}

// Counter is the session: a struct of your own.
type Counter struct {
	Messages int `json:"messages"`
}

func Example() {
	st, _ := memstore.New(memstore.Options{})
	defer st.Close()
	counters, _ := session.New(session.Config[Counter]{Store: st, Namespace: "counter"})

	mw := middleware.New(counters, func(ctx context.Context, u *Update) (string, error) {
		if u.UserID == 0 {
			return "", middleware.ErrNoKey // a channel post: no user, no session
		}
		return strconv.FormatInt(u.UserID, 10), nil
	}, middleware.Options{
		OnError: func(ctx context.Context, op, key string, err error) {
			fmt.Printf("session %s %q failed: %v\n", op, key, err)
		},
	})

	handle := mw.Wrap(func(ctx context.Context, u *Update) error {
		s, err := session.From[Counter](ctx)
		if errors.Is(err, session.ErrNoSession) {
			fmt.Println("no session for", u.Text)
			return nil
		}
		if err != nil {
			return err
		}
		s.Data.Messages++
		if u.Text == "fail" {
			return errors.New("handler failed") // the increment is not saved
		}
		fmt.Printf("user %d: message %d\n", u.UserID, s.Data.Messages)
		return nil
	})

	ctx := context.Background()
	handle(ctx, &Update{UserID: 7, Text: "hi"})
	handle(ctx, &Update{UserID: 7, Text: "fail"})
	handle(ctx, &Update{UserID: 7, Text: "again"})
	handle(ctx, &Update{Text: "channel post"})
	// Output:
	// user 7: message 1
	// user 7: message 2
	// no session for channel post
}
