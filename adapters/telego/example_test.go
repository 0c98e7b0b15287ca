package telegosession_test

import (
	"fmt"
	"log"
	"strings"

	"github.com/mymmrac/telego"
	th "github.com/mymmrac/telego/telegohandler"

	session "github.com/typedsession/session"
	telegosession "github.com/typedsession/session/adapters/telego"
	"github.com/typedsession/session/middleware"
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

	// A real bot gets its updates from bot.UpdatesViaLongPolling (or a
	// webhook); here a channel stands in for it, so that the example runs
	// without the Bot API.
	bot, err := telego.NewBot("123456:"+strings.Repeat("x", 35), telego.WithDiscardLogger())
	if err != nil {
		log.Fatal(err)
	}
	updates := make(chan telego.Update)
	bh, err := th.NewBotHandler(bot, updates)
	if err != nil {
		log.Fatal(err)
	}
	done := make(chan struct{})
	bh.Use(func(ctx *th.Context, u telego.Update) error {
		defer func() { done <- struct{}{} }() // the example's own: one update at a time
		return ctx.Next(u)
	})
	bh.Use(telegosession.New(m, telegosession.UserInChatKey, middleware.Options{}))
	bh.HandleMessage(func(ctx *th.Context, msg telego.Message) error {
		s, err := session.From[Visits](ctx)
		if err != nil {
			return err // session.ErrNoSession for an update without a user or chat
		}
		s.Data.Count++
		s.Data.Seen = append(s.Data.Seen, msg.Text)
		// A real bot replies with ctx.Bot().SendMessage; an error returned
		// here discards the session changes.
		fmt.Printf("%s: visit %d, seen %q\n", s.Key(), s.Data.Count, s.Data.Seen)
		return nil
	})
	go bh.Start()
	defer bh.Stop()

	say := func(id int, chat, user int64, text string) {
		updates <- telego.Update{UpdateID: id, Message: &telego.Message{
			MessageID: id, Date: 1, Chat: telego.Chat{ID: chat}, From: &telego.User{ID: user}, Text: text,
		}}
		<-done
	}
	say(1, 42, 42, "hello")    // private chat of user 42
	say(2, -100, 42, "hi all") // user 42 in a group: another session
	say(3, 42, 42, "again")    // back in the private chat
	say(4, -100, 7, "me too")  // user 7 in the group

	// An anonymous admin of the group: from is the placeholder
	// @GroupAnonymousBot, sender_chat is the group, which keys the session.
	updates <- telego.Update{UpdateID: 5, Message: &telego.Message{
		MessageID: 5, Date: 1, Chat: telego.Chat{ID: -100}, From: &telego.User{ID: 1087968824},
		SenderChat: &telego.Chat{ID: -100}, Text: "anon",
	}}
	<-done

	// Output:
	// 42:42: visit 1, seen ["hello"]
	// -100:42: visit 1, seen ["hi all"]
	// 42:42: visit 2, seen ["hello" "again"]
	// -100:7: visit 1, seen ["me too"]
	// -100:-100: visit 1, seen ["anon"]
}
