package main

import (
	"context"
	"fmt"
	"log"

	tgbotapi "github.com/go-telegram-bot-api/telegram-bot-api/v5"

	session "github.com/typedsession/session"
	"github.com/typedsession/session/store/memstore"
)

// printer prints the replies instead of sending them.
type printer struct{}

func (printer) Send(c tgbotapi.Chattable) (tgbotapi.Message, error) {
	msg := c.(tgbotapi.MessageConfig)
	fmt.Printf("to %d: %s\n", msg.ChatID, msg.Text)
	return tgbotapi.Message{}, nil
}

// Example_updateLoop runs the bot's update loop on a channel of updates,
// the way bot.GetUpdatesChan delivers them, with the generic session
// middleware around the handler.
func Example_updateLoop() {
	st, err := memstore.New(memstore.Options{})
	if err != nil {
		log.Fatal(err)
	}
	defer st.Close()
	m, err := session.New(session.Config[Notes]{Store: st, Namespace: "notes"})
	if err != nil {
		log.Fatal(err)
	}
	h := newHandler(m, printer{})

	for i, t := range []string{"milk", "eggs", "/list"} {
		updates := make(chan tgbotapi.Update, 1) // one at a time, for a stable output
		msg := &tgbotapi.Message{MessageID: i, Date: 1, Chat: &tgbotapi.Chat{ID: 42}, From: &tgbotapi.User{ID: 42}, Text: t}
		if t[0] == '/' {
			msg.Entities = []tgbotapi.MessageEntity{{Type: "bot_command", Length: len(t)}}
		}
		updates <- tgbotapi.Update{UpdateID: i, Message: msg}
		close(updates)
		serve(context.Background(), updates, h, func(err error) { fmt.Println("error:", err) })
	}
	s, _ := m.Load(context.Background(), "42:42")
	fmt.Println("stored:", s.Data.Items)

	// Output:
	// to 42: Noted (1).
	// to 42: Noted (2).
	// to 42: Notes:
	// - milk
	// - eggs
	// stored: [milk eggs]
}
