package session_test

import (
	"context"
	"fmt"

	"github.com/typedsession/session"
	"github.com/typedsession/session/store/memstore"
)

func ExampleManager_Update() {
	ctx := context.Background()
	st, _ := memstore.New(memstore.Options{})
	defer st.Close()
	m, _ := session.New(session.Config[Quiz]{Store: st, Namespace: "quiz"})

	// Update loads, applies the function and saves with compare-and-swap,
	// retrying on conflict: concurrent increments are never lost.
	for range 3 {
		q, err := m.Update(ctx, "chat-1", func(q *Quiz) error {
			q.Active = true
			q.Score++
			return nil
		})
		if err != nil {
			panic(err)
		}
		fmt.Println("score", q.Score)
	}
	// Output:
	// score 1
	// score 2
	// score 3
}
