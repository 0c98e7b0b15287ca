package tgbot_test

import (
	"context"
	"fmt"
	"log"

	"github.com/go-telegram/bot"
	"github.com/go-telegram/bot/models"

	session "github.com/typedsession/session"
	"github.com/typedsession/session/middleware"
	"github.com/typedsession/session/middleware/tgbot"
	"github.com/typedsession/session/store/memstore"
)

// Visits is the session of one user in one chat.
type Visits struct {
	Count int      `json:"count" validate:"gte=0"`
	Seen  []string `json:"seen" validate:"max=100"`
}

func Example() {
	st, err := memstore.New(memstore.Options{})
	if err != nil {
		log.Fatal(err)
	}
	defer st.Close()
	m, err := session.New(session.Config[Visits]{Store: st, Namespace: "visits"})
	if err != nil {
		log.Fatal(err)
	}

	handler := tgbot.Handler(func(ctx context.Context, b *bot.Bot, u *models.Update) error {
		s, err := session.From[Visits](ctx)
		if err != nil {
			return err // session.ErrNoSession for an update without a user or chat
		}
		s.Data.Count++
		s.Data.Seen = append(s.Data.Seen, u.Message.Text)
		// A real bot replies with b.SendMessage; an error returned here
		// discards the session changes.
		fmt.Printf("%s: visit %d, seen %q\n", s.Key(), s.Data.Count, s.Data.Seen)
		return nil
	})

	// WithSkipGetMe and ProcessUpdate let the example run without the
	// Bot API; a real bot calls b.Start(ctx) instead.
	b, err := bot.New("123:example",
		bot.WithSkipGetMe(),
		bot.WithNotAsyncHandlers(),
		bot.WithMiddlewares(tgbot.New(m, tgbot.UserInChatKey, middleware.Options{})),
		bot.WithDefaultHandler(handler),
	)
	if err != nil {
		log.Fatal(err)
	}
	say := func(id int64, chat, user int64, text string) {
		b.ProcessUpdate(context.Background(), &models.Update{ID: id, Message: &models.Message{
			Chat: models.Chat{ID: chat}, From: &models.User{ID: user}, Text: text,
		}})
	}
	say(1, 42, 42, "hello")    // private chat of user 42
	say(2, -100, 42, "hi all") // user 42 in a group: another session
	say(3, 42, 42, "again")    // back in the private chat
	say(4, -100, 7, "me too")  // user 7 in the group

	// Output:
	// 42:42: visit 1, seen ["hello"]
	// -100:42: visit 1, seen ["hi all"]
	// 42:42: visit 2, seen ["hello" "again"]
	// -100:7: visit 1, seen ["me too"]
}
