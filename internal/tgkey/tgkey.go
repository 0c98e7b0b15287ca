// Package tgkey holds the rules by which the Telegram adapters key sessions:
// middleware/tgbot (go-telegram/bot), adapters/telebot and adapters/telego.
// Each adapter turns its library's update into an [Update], a neutral
// description of what a key needs (chat, sender, forum topic, business
// connection), and asks [Make] for the key; so the rules live here once,
// and a bot that moves between the libraries keeps its sessions. The
// adapters are modules of their own and import this package by path
// (github.com/typedsession/session/internal/...), which the go tool allows
// to every package under github.com/typedsession/session.
//
// # Conversations that share IDs
//
// Two conversations never share a key. A Telegram chat ID alone does not
// name a conversation:
//
//   - a chat of a business account that the bot serves through a business
//     connection (business_message and the updates about it) carries the
//     ID of the customer, the same number as the bot's own private chat
//     with that customer, and the same again through another business
//     connection. The Bot API says so: such a message "belongs to a chat of
//     the corresponding business account that is independent from any
//     potential bot chat which might share the same identifier". Its keys
//     begin with "business:<business_connection_id>:".
//   - a guest message (guest mode: the bot called in a chat it is not a
//     member of, such as a private chat between two users) belongs to a
//     chat in which the bot has no conversation of its own. Its keys begin
//     with "guest:".
//
// The sender-only key ([User]) is the exception by definition: one session
// per person, in every chat, business and guest chats included.
//
// A channel's direct messages chat holds one topic per user who writes to
// the channel (direct_messages_topic): the topic keys ([Topic],
// [UserInTopic]) tell them apart by its topic_id; the chat key ([Chat]),
// like a group's, is one session for the whole chat.
package tgkey

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/typedsession/session/middleware"
)

// Update is what a key needs to know of a Telegram update, whatever
// library decoded it. Zero means "none" for every ID: Telegram never uses
// 0 for a chat or a user.
type Update struct {
	// ID is the update_id, for error messages.
	ID int64
	// Kind is the name of the update's field in the Bot API
	// ("message", "business_message", "callback_query", ...), for error
	// messages; "" when the library decoded no field it knows.
	Kind string
	// Chat is the chat the update happened in.
	Chat int64
	// Sender is the user the update came from, or the chat it was sent
	// on behalf of (sender_chat, actor_chat, voter_chat), never the
	// placeholder user the Bot API sends next to such a chat.
	Sender int64
	// HasTopic says that the update's message is known, so that its
	// topic is: Thread is the message_thread_id of a forum topic message
	// (is_topic_message), the topic_id of its direct_messages_topic in a
	// channel's direct messages chat (one topic per user writing to the
	// channel), and 0 outside topics (the General topic, chats that are
	// not forums, reply threads).
	HasTopic bool
	Thread   int64
	// BusinessConnectionID is the business_connection_id of an update in
	// a chat of a business account, "" otherwise.
	BusinessConnectionID string
	// Guest marks a guest message.
	Guest bool
}

// Scope is which conversations share a session: the rule of a key
// function.
type Scope int

// The scopes, one per key function of the adapters.
const (
	Chat        Scope = iota + 1 // one session per chat
	User                         // one per sender, in every chat
	UserInChat                   // one per sender in each chat
	Topic                        // one per forum topic
	UserInTopic                  // one per sender in each forum topic
)

// Key is a session key made of its parts: the key functions' result, and
// what a handler can rebuild to reach another conversation's session.
type Key struct {
	Scope Scope
	// BotID, when not 0, begins the key with "bot<BotID>:" (see ForBot).
	BotID int64
	// BusinessConnectionID, when set, puts the key in the business
	// connection's own space: "business:<ID>:". Ignored by User.
	BusinessConnectionID string
	// Guest puts the key in the space of guest chats: "guest:". Ignored
	// by User.
	Guest bool
	// ChatID, UserID and ThreadID are the parts the scope uses.
	ChatID   int64
	UserID   int64
	ThreadID int64
}

// String returns the key as the session is stored under it (without the
// manager's namespace):
//
//	Chat         "<chat>"                  "-1001234567890"
//	User         "<user>"                  "123456789"
//	UserInChat   "<chat>:<user>"           "-1001234567890:123456789"
//	Topic        "<chat>:<thread>"         "-1001234567890:99"
//	UserInTopic  "<chat>:<thread>:<user>"  "-1001234567890:99:123456789"
//
// preceded, except for User, by "business:<business_connection_id>:" in a
// business chat and by "guest:" in a guest chat, and, for every scope, by
// "bot<bot ID>:" when BotID is set. Chat and user IDs are decimal (chat
// IDs of groups and channels are negative), so no key of one scope can be
// read as a key of the same scope with other parts: a connection ID holds
// no colon in practice, and even one that did could not make two keys of
// one scope equal, since the parts after it have a fixed count.
func (k Key) String() string {
	var b strings.Builder
	if k.BotID != 0 {
		b.WriteString("bot")
		b.WriteString(strconv.FormatInt(k.BotID, 10))
		b.WriteByte(':')
	}
	if k.Scope != User {
		switch {
		case k.BusinessConnectionID != "":
			b.WriteString("business:")
			b.WriteString(k.BusinessConnectionID)
			b.WriteByte(':')
		case k.Guest:
			b.WriteString("guest:")
		}
	}
	id := func(n int64) { b.WriteString(strconv.FormatInt(n, 10)) }
	switch k.Scope {
	case Chat:
		id(k.ChatID)
	case User:
		id(k.UserID)
	case UserInChat:
		id(k.ChatID)
		b.WriteByte(':')
		id(k.UserID)
	case Topic:
		id(k.ChatID)
		b.WriteByte(':')
		id(k.ThreadID)
	case UserInTopic:
		id(k.ChatID)
		b.WriteByte(':')
		id(k.ThreadID)
		b.WriteByte(':')
		id(k.UserID)
	}
	return b.String()
}

// Make returns the key of u in scope s, or an error wrapping
// middleware.ErrNoKey that names the update, its kind and what it lacks
// when u has no chat, sender or known topic that s needs (or u is nil).
func Make(u *Update, s Scope) (Key, error) {
	if u == nil {
		return Key{}, fmt.Errorf("%w: nil update", middleware.ErrNoKey)
	}
	k := Key{Scope: s, BusinessConnectionID: u.BusinessConnectionID, Guest: u.Guest, ChatID: u.Chat, UserID: u.Sender, ThreadID: u.Thread}
	needChat := s == Chat || s == UserInChat || s == Topic || s == UserInTopic
	needUser := s == User || s == UserInChat || s == UserInTopic
	needTopic := s == Topic || s == UserInTopic
	switch {
	case needTopic && !u.HasTopic:
		return Key{}, noKey(u, "topic")
	case needChat && u.Chat == 0:
		return Key{}, noKey(u, "chat")
	case needUser && u.Sender == 0:
		return Key{}, noKey(u, "user")
	}
	return k, nil
}

// String is Make(u, s).String(), for a key function.
func String(u *Update, s Scope) (string, error) {
	k, err := Make(u, s)
	if err != nil {
		return "", err
	}
	return k.String(), nil
}

func noKey(u *Update, what string) error {
	kind := u.Kind
	if kind == "" {
		kind = "unknown kind"
	}
	return fmt.Errorf("%w: update %d (%s) has no %s", middleware.ErrNoKey, u.ID, kind, what)
}

// ForBot returns key with "bot<botID>:" in front of every key it makes,
// so that several bots can keep their sessions in one store (and one
// namespace) apart. It panics if botID is 0 or key is nil.
func ForBot[U any](botID int64, key func(context.Context, U) (string, error)) func(context.Context, U) (string, error) {
	if botID == 0 {
		panic("session: ForBot(0, ...): pass the bot's ID, the number before the colon in its token")
	}
	if key == nil {
		panic("session: ForBot(id, nil): pass a key function such as ChatKey")
	}
	prefix := "bot" + strconv.FormatInt(botID, 10) + ":"
	return func(ctx context.Context, u U) (string, error) {
		k, err := key(ctx, u)
		if err != nil || k == "" {
			return k, err
		}
		return prefix + k, nil
	}
}
