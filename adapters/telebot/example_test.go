package telebotsession_test

import (
	"fmt"
	"log"

	tele "gopkg.in/telebot.v4"

	session "github.com/typedsession/session"
	telebotsession "github.com/typedsession/session/adapters/telebot"
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

	// Offline and ProcessUpdate let the example run without the Bot API;
	// a real bot sets Token and a Poller, and calls b.Start().
	b, err := tele.NewBot(tele.Settings{Offline: true, Synchronous: true})
	if err != nil {
		log.Fatal(err)
	}
	b.Use(telebotsession.New(m, telebotsession.UserInChatKey, middleware.Options{}))
	b.Handle(tele.OnText, func(c tele.Context) error {
		s, err := telebotsession.From[Visits](c)
		if err != nil {
			return err // session.ErrNoSession for an update without a user or chat
		}
		s.Data.Count++
		s.Data.Seen = append(s.Data.Seen, c.Text())
		// A real bot replies with c.Send; an error returned here discards
		// the session changes.
		fmt.Printf("%s: visit %d, seen %q\n", s.Key(), s.Data.Count, s.Data.Seen)
		return nil
	})

	say := func(id int, chat, user int64, text string) {
		b.ProcessUpdate(tele.Update{ID: id, Message: &tele.Message{
			ID: id, Unixtime: 1, Chat: &tele.Chat{ID: chat}, Sender: &tele.User{ID: user}, Text: text,
		}})
	}
	say(1, 42, 42, "hello")    // private chat of user 42
	say(2, -100, 42, "hi all") // user 42 in a group: another session
	say(3, 42, 42, "again")    // back in the private chat
	say(4, -100, 7, "me too")  // user 7 in the group

	// An anonymous admin of the group: from is the placeholder
	// @GroupAnonymousBot, sender_chat is the group, which keys the session.
	b.ProcessUpdate(tele.Update{ID: 5, Message: &tele.Message{
		ID: 5, Unixtime: 1, Chat: &tele.Chat{ID: -100}, Sender: &tele.User{ID: 1087968824},
		SenderChat: &tele.Chat{ID: -100}, Text: "anon",
	}})

	// Output:
	// 42:42: visit 1, seen ["hello"]
	// -100:42: visit 1, seen ["hi all"]
	// 42:42: visit 2, seen ["hello" "again"]
	// -100:7: visit 1, seen ["me too"]
	// -100:-100: visit 1, seen ["anon"]
}
