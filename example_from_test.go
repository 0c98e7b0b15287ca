package session_test

import (
	"context"
	"fmt"

	"github.com/typedsession/session"
	"github.com/typedsession/session/store/memstore"
)

func ExampleFrom() {
	ctx := context.Background()
	st, _ := memstore.New(memstore.Options{})
	defer st.Close()
	m, _ := session.New(session.Config[Quiz]{Store: st})

	// Middleware binds a loader; the handler asks for its typed session.
	ctx, binding := session.Bind(ctx, func(ctx context.Context) (*session.Session[Quiz], error) {
		return m.Load(ctx, "user-7")
	})
	handler := func(ctx context.Context) error {
		s, err := session.From[Quiz](ctx)
		if err != nil {
			return err
		}
		s.Data.Score += 10
		return nil
	}
	if err := handler(ctx); err != nil {
		panic(err)
	}
	if s, ok := binding.Loaded(); ok {
		m.Save(ctx, s)
	}
	q, _ := m.Load(ctx, "user-7")
	fmt.Println(q.Data.Score)
	// Output:
	// 10
}
