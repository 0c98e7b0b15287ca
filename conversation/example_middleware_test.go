package conversation_test

import (
	"context"
	"fmt"

	session "github.com/typedsession/session"
	"github.com/typedsession/session/conversation"
	"github.com/typedsession/session/middleware"
	"github.com/typedsession/session/store/memstore"
)

// chatMsg is an update of a chat library of your own shape.
type chatMsg struct {
	ID   int64
	Chat string
	Text string
}

// A flow behind a session middleware: Apply runs the update on the
// session the middleware bound, and the middleware saves it.
func ExampleFlow_Apply() {
	ctx := context.Background()
	st, _ := memstore.New(memstore.Options{})
	defer st.Close()
	m, _ := session.New(session.Config[Order]{Store: st, Namespace: "shop"})
	f, _ := conversation.New[Order, string, Pizza](conversation.Config[Order]{
		Name: "order", Manager: m, Store: st,
		State: func(o *Order) *conversation.State { return &o.Conv },
	})
	f.Global(func(t *conversation.Turn[Order, string, Pizza]) (conversation.Next, bool, error) {
		if text, _ := t.Update(); text == "/order" {
			return conversation.Goto(ChooseSize{}), true, nil
		}
		return conversation.Next{}, false, nil
	})
	conversation.On(f, func(t *conversation.Turn[Order, string, Pizza], d *ChooseSize) (conversation.Next, error) {
		size, _ := t.Update()
		return t.End(Pizza{Size: size, Amount: 1}), nil
	})
	f.OnEnd(func(t *conversation.Turn[Order, string, Pizza], p Pizza) error {
		t.Session().Orders = append(t.Session().Orders, p)
		return nil
	})

	// RepeatOnConflict: a sweeper's timeout may write the key between the
	// middleware's load and its save; the handler then runs again.
	mw := middleware.New(m, func(_ context.Context, u *chatMsg) (string, error) { return u.Chat, nil },
		middleware.Options{RepeatOnConflict: true})
	handle := mw.Wrap(func(ctx context.Context, u *chatMsg) error {
		s, err := session.From[Order](ctx)
		if err != nil {
			return err
		}
		_, err = f.Apply(ctx, s, u.ID, u.Text)
		return err // an error discards the changes
	})
	for id, text := range []string{"/order", "small", "small"} {
		if err := handle(ctx, &chatMsg{ID: int64(id + 1), Chat: "c1", Text: text}); err != nil {
			fmt.Println(err)
		}
	}
	s, _ := m.Load(ctx, "c1")
	fmt.Printf("orders: %+v, running: %v\n", s.Data.Orders, s.Data.Conv.Active())
	// Output:
	// orders: [{Size:small Amount:1}], running: false
}
