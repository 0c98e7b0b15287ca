package main

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	tgbotapi "github.com/go-telegram-bot-api/telegram-bot-api/v5"

	session "github.com/typedsession/session"
	"github.com/typedsession/session/middleware"
)

// Notes is the session of one sender in one chat: the notes they keep.
type Notes struct {
	Items []string `json:"items" validate:"max=20,dive,max=200"`
}

// Sender sends a message: *tgbotapi.BotAPI in the bot, a recorder in the
// tests (which talk to no Telegram server).
type Sender interface {
	Send(c tgbotapi.Chattable) (tgbotapi.Message, error)
}

// userInChatKey keys the session by sender within a chat, as
// middleware/tgbot's UserInChatKey does: "<chat ID>:<sender ID>".
//
// A message sent on behalf of a chat (an anonymous group admin, an
// automatic forward from a linked channel, a message as a channel) carries
// that chat in sender_chat and a placeholder user in from (1087968824,
// 777000, 136817688) that many senders share: such a message is keyed by
// its sender_chat. Updates without a chat and a sender (inline queries,
// channel posts, polls) have no session: middleware.ErrNoKey.
//
// go-telegram-bot-api v5.5.1 speaks Bot API 5.5: it has no forum topics,
// reactions or business messages, so there is no topic key here.
func userInChatKey(_ context.Context, u *tgbotapi.Update) (string, error) {
	var chat, sender int64
	switch {
	case u.Message != nil || u.EditedMessage != nil:
		m := u.Message
		if m == nil {
			m = u.EditedMessage
		}
		if m.Chat == nil {
			break
		}
		chat = m.Chat.ID
		if m.SenderChat != nil && m.SenderChat.ID != 0 {
			sender = m.SenderChat.ID
		} else if m.From != nil {
			sender = m.From.ID
		}
	case u.CallbackQuery != nil:
		if q := u.CallbackQuery; q.Message != nil && q.Message.Chat != nil && q.From != nil {
			chat, sender = q.Message.Chat.ID, q.From.ID
		}
	case u.ChatJoinRequest != nil:
		chat, sender = u.ChatJoinRequest.Chat.ID, u.ChatJoinRequest.From.ID
	}
	if chat == 0 || sender == 0 {
		return "", fmt.Errorf("%w: update %d has no chat and sender", middleware.ErrNoKey, u.UpdateID)
	}
	return strconv.FormatInt(chat, 10) + ":" + strconv.FormatInt(sender, 10), nil
}

// handle is the bot: "/list" lists the notes, "/clear" forgets them, any
// other text is a note. It reads and changes the session through
// session.From; when the reply cannot be sent it returns the error, and
// the middleware then saves nothing, so the user can simply send again.
func handle(bot Sender) middleware.Handler[*tgbotapi.Update] {
	return func(ctx context.Context, u *tgbotapi.Update) error {
		m := u.Message
		if m == nil {
			return nil // edits, callbacks, join requests: nothing to do here
		}
		s, err := session.From[Notes](ctx)
		if errors.Is(err, session.ErrNoSession) {
			return nil // no sender: a channel post
		}
		if err != nil {
			return err
		}
		var reply string
		switch m.Command() {
		case "list":
			if len(s.Data.Items) == 0 {
				reply = "No notes yet."
			} else {
				reply = "Notes:\n- " + strings.Join(s.Data.Items, "\n- ")
			}
		case "clear":
			s.Reset()
			reply = "Forgotten."
		case "":
			s.Data.Items = append(s.Data.Items, m.Text)
			reply = fmt.Sprintf("Noted (%d).", len(s.Data.Items))
		default:
			reply = "Send a note, /list or /clear."
		}
		_, err = bot.Send(tgbotapi.NewMessage(m.Chat.ID, reply))
		return err
	}
}
