package conversation_test

import (
	"context"
	"fmt"
	"strconv"
	"time"

	session "github.com/typedsession/session"
	"github.com/typedsession/session/conversation"
	"github.com/typedsession/session/store/memstore"
)

// Order is the session of a shop bot: a conversation, and the orders it
// leaves behind.
type Order struct {
	Conv   conversation.State `json:"conv"`
	Orders []Pizza            `json:"orders,omitempty"`
}

// Pizza is the order flow's result.
type Pizza struct {
	Size   string
	Amount int
}

// The order flow's steps: Go types, stored under their names.
type (
	ChooseSize   struct{}
	ChooseAmount struct{ Size string }
)

func Example() {
	ctx := context.Background()
	st, _ := memstore.New(memstore.Options{})
	defer st.Close()
	m, _ := session.New(session.Config[Order]{Store: st, Namespace: "shop"})
	f, _ := conversation.New[Order, string, Pizza](conversation.Config[Order]{
		Name: "order", Manager: m, Store: st,
		State: func(o *Order) *conversation.State { return &o.Conv },
	})
	f.Global(func(t *conversation.Turn[Order, string, Pizza]) (conversation.Next, bool, error) {
		switch text, _ := t.Update(); text {
		case "/order":
			return conversation.Goto(ChooseSize{}), true, nil
		case "/cancel":
			return t.Cancel(), true, nil
		}
		return conversation.Next{}, false, nil
	})
	conversation.On(f, func(t *conversation.Turn[Order, string, Pizza], d *ChooseSize) (conversation.Next, error) {
		size, _ := t.Update()
		return conversation.Goto(ChooseAmount{Size: size}), nil
	})
	conversation.On(f, func(t *conversation.Turn[Order, string, Pizza], d *ChooseAmount) (conversation.Next, error) {
		text, _ := t.Update()
		if text == "back" {
			return t.Back(), nil
		}
		n, err := strconv.Atoi(text)
		if err != nil {
			t.Do(func(context.Context) error { fmt.Println("bot: how many?"); return nil })
			return t.Stay(), nil
		}
		return t.End(Pizza{Size: d.Size, Amount: n}), nil
	})
	// An unanswered amount cancels the order after ten minutes, even if
	// the user never writes again (Sweep, or RunSweeper in every replica).
	conversation.OnTimeout(f, 10*time.Minute, func(t *conversation.Turn[Order, string, Pizza], d *ChooseAmount) (conversation.Next, error) {
		return t.Cancel(), nil
	})
	f.OnEnd(func(t *conversation.Turn[Order, string, Pizza], p Pizza) error {
		t.Session().Orders = append(t.Session().Orders, p)
		return nil
	})

	for id, text := range []string{"/order", "large", "some", "2"} {
		out, err := f.Handle(ctx, "chat-1", int64(id+1), text)
		if err != nil {
			fmt.Println(err)
			return
		}
		fmt.Printf("%q -> step %q, ended %v %+v\n", text, out.Step, out.Ended, out.Result)
	}
	// A webhook retry of update 4 is not applied again.
	out, _ := f.Handle(ctx, "chat-1", 4, "2")
	fmt.Println("retry: duplicate", out.Duplicate)
	s, _ := m.Load(ctx, "chat-1")
	fmt.Printf("orders: %+v\n", s.Data.Orders)
	// Output:
	// "/order" -> step "ChooseSize", ended false {Size: Amount:0}
	// "large" -> step "ChooseAmount", ended false {Size: Amount:0}
	// bot: how many?
	// "some" -> step "ChooseAmount", ended false {Size: Amount:0}
	// "2" -> step "", ended true {Size:large Amount:2}
	// retry: duplicate true
	// orders: [{Size:large Amount:2}]
}
