package middleware_test

import (
	"context"
	"fmt"

	session "github.com/typedsession/session"
	"github.com/typedsession/session/middleware"
	"github.com/typedsession/session/store/memstore"
)

// Draft is a session keyed by a device, bound to the user who owns it.
type Draft struct {
	Owner string `json:"owner"`
	Text  string `json:"text"`
}

// Message comes from a shared device; User is who authentication verified.
type Message struct {
	Device string
	User   string
	Text   string
}

// A session bound to the verified user: when the session's Owner is not the
// user authentication verified (another person on a shared device, a
// stolen cookie), the session is cleared with Reset before anything reads
// it.
func Example_boundToUser() {
	st, _ := memstore.New(memstore.Options{})
	defer st.Close()
	drafts, _ := session.New(session.Config[Draft]{Store: st, Namespace: "draft"})

	byDevice := func(ctx context.Context, m *Message) (string, error) { return m.Device, nil }
	handle := middleware.New(drafts, byDevice, middleware.Options{}).Wrap(func(ctx context.Context, m *Message) error {
		s, err := session.From[Draft](ctx)
		if err != nil {
			return err
		}
		if s.Data.Owner != m.User {
			s.Reset()
			s.Data.Owner = m.User
		}
		s.Data.Text += m.Text
		fmt.Printf("%s sees draft %q\n", m.User, s.Data.Text)
		return nil
	})

	ctx := context.Background()
	handle(ctx, &Message{Device: "kiosk-1", User: "ann", Text: "Dear Bob, "})
	handle(ctx, &Message{Device: "kiosk-1", User: "ann", Text: "my PIN is 1234"})
	handle(ctx, &Message{Device: "kiosk-1", User: "eve", Text: "hi"})
	// Output:
	// ann sees draft "Dear Bob, "
	// ann sees draft "Dear Bob, my PIN is 1234"
	// eve sees draft "hi"
}
