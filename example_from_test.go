package session_test

import (
	"context"
	"fmt"

	"github.com/typedsession/session"
	"github.com/typedsession/session/middleware"
	"github.com/typedsession/session/store/memstore"
)

// An update of a bot: the middleware binds the user's session to the
// update's context; the handler asks for its typed session with From.
type botUpdate struct{ UserID string }

func ExampleFrom() {
	ctx := context.Background()
	st, _ := memstore.New(memstore.Options{})
	defer st.Close()
	m, _ := session.New(session.Config[Quiz]{Store: st, Namespace: "quiz"})

	key := func(_ context.Context, u botUpdate) (string, error) { return u.UserID, nil }
	handle := middleware.Handle(m, key, func(ctx context.Context, u botUpdate) error {
		s, err := session.From[Quiz](ctx)
		if err != nil {
			return err
		}
		s.Data.Score += 10 // saved by the middleware when the handler returns nil
		return nil
	}, middleware.Options{})

	if err := handle(ctx, botUpdate{UserID: "user-7"}); err != nil {
		panic(err)
	}
	q, _ := m.Load(ctx, "user-7")
	fmt.Println(q.Data.Score)
	// Output:
	// 10
}
