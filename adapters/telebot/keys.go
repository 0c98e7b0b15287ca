package telebotsession

import (
	"context"

	tele "gopkg.in/telebot.v4"

	"github.com/typedsession/session/internal/tgkey"
	"github.com/typedsession/session/middleware"
)

// The key functions below are those of
// github.com/typedsession/session/middleware/tgbot, rule for rule: the
// rules live in the core's internal/tgkey, which all three Telegram
// adapters call, and this file only turns telebot's update into the
// neutral tgkey.Update; so a bot that moves between the frameworks keeps
// its sessions. They read c.Update(), so they work on any tele.Context,
// including one made with tele.NewContext in a test.

// ChatKey keys the session by chat: everyone in a group shares one session,
// and a private chat has its own. The key is the chat ID in decimal, such as
// "-1001234567890"; in a chat of a business account,
// "business:<business_connection_id>:" comes first, and in a guest chat
// "guest:" (see the package documentation, # Keys).
//
// It finds the chat of a message, an edited message, a channel post and an
// edited one, a business message and an edited one, deleted business
// messages, a business connection (the bot's private chat with the
// account's owner), a guest message, a callback query whose message is
// known (not for a message sent via inline mode), a chat member update, a
// join request, a reaction, a reaction count and a chat boost. For other
// updates, such as inline queries, it returns an error wrapping
// middleware.ErrNoKey.
func ChatKey(_ context.Context, c tele.Context) (string, error) {
	return tgkey.String(neutral(c), tgkey.Chat)
}

// UserKey keys the session by sender, the same in every chat (business and
// guest chats included: one session per person): the key is the user ID in
// decimal, such as "123456789".
//
// It finds the sender of a message, an edited message, a business message
// and an edited one, a guest message, a business connection (the account's
// owner), a callback query, an inline query, a chosen inline result, a
// shipping or pre-checkout query, a paid media purchase, a poll answer, a
// chat member update, a join request, a reaction and a chat boost by a
// Premium user. For updates without a sender, such as channel posts, it
// returns an error wrapping middleware.ErrNoKey.
//
// # Senders that are chats
//
// A message sent on behalf of a chat carries that chat in sender_chat
// (Message.SenderChat), and its from field (Message.Sender) holds a
// placeholder user that many senders share: 1087968824 (@GroupAnonymousBot)
// for every anonymous admin of every group, 777000 for every automatic
// forward from a linked channel, 136817688 (@Channel_Bot) for every message
// sent on behalf of a channel. Keyed by from, all of them would share one
// session. So the rule is the presence of sender_chat, not a list of IDs: a
// message that carries sender_chat is keyed by that chat's ID, such as
// "-1001234567890" (chat IDs are negative, user IDs positive, so the two
// never meet). The same holds for a reaction with actor_chat and a poll
// answer with voter_chat (PollAnswer.Chat). Anonymous admins of one group
// all post as the group itself, so they share its session: the Bot API
// does not say which admin wrote.
//
// Note that telebot's own c.Sender() returns the placeholder user for such
// messages; do not key sessions by it.
func UserKey(_ context.Context, c tele.Context) (string, error) {
	return tgkey.String(neutral(c), tgkey.User)
}

// UserInChatKey keys the session by sender within a chat: the same user has
// one session in each group and one in the private chat with the bot. The
// key is "<chat ID>:<sender ID>", such as "-1001234567890:123456789"; a
// sender that is a chat (see [UserKey]) gives "<chat ID>:<sender chat ID>",
// such as "-1001234567890:-1009876543210"; in a business chat,
// "business:<business_connection_id>:" comes first, and in a guest chat
// "guest:".
//
// It needs both a chat and a sender (see [ChatKey] and [UserKey]); for
// other updates, such as inline queries and channel posts, it returns an
// error wrapping middleware.ErrNoKey.
func UserInChatKey(_ context.Context, c tele.Context) (string, error) {
	return tgkey.String(neutral(c), tgkey.UserInChat)
}

// TopicKey keys the session by forum topic: everyone in one topic of a
// forum supergroup shares a session. The key is "<chat ID>:<thread ID>",
// where the thread ID is the message_thread_id of a topic message
// (Message.ThreadID when Message.TopicMessage) and 0 outside topics (the
// General topic, and chats that are not forums, where a reply thread does
// not count as a topic). telebot v4.0.0-beta.10 does not decode the
// direct_messages_topic of a channel's direct messages chat, so there
// every user's topic gets "<chat ID>:0", one session, where the other
// adapters give one per user; key such a chat with UserInChatKey. In a
// business chat,
// "business:<business_connection_id>:" comes first, and in a guest chat
// "guest:".
//
// It finds the topic of a message, an edited message, a channel post, a
// business message, a guest message and a callback query whose message is
// known. For other updates, including callback queries on a message too
// old to be known, it returns an error wrapping middleware.ErrNoKey.
func TopicKey(_ context.Context, c tele.Context) (string, error) {
	return tgkey.String(neutral(c), tgkey.Topic)
}

// UserInTopicKey keys the session by sender within a forum topic: the same
// user has one session in each topic (aiogram's USER_IN_TOPIC). The key is
// "<chat ID>:<thread ID>:<sender ID>", such as
// "-1001234567890:99:123456789", with the thread ID of [TopicKey] and the
// sender of [UserKey], and the business or guest part of those. It needs a
// known topic and a sender; for other updates it returns an error wrapping
// middleware.ErrNoKey.
func UserInTopicKey(_ context.Context, c tele.Context) (string, error) {
	return tgkey.String(neutral(c), tgkey.UserInTopic)
}

// ForBot returns key with "bot<botID>:" in front of every key it makes, so
// that several bots keep their sessions apart in one store and namespace;
// b.Me.ID is the bot's ID:
//
//	b.Use(telebotsession.New(m, telebotsession.ForBot(b.Me.ID, telebotsession.ChatKey), middleware.Options{}))
//
// It panics if botID is 0 or key is nil.
func ForBot(botID int64, key middleware.KeyFunc[tele.Context]) middleware.KeyFunc[tele.Context] {
	return tgkey.ForBot(botID, key)
}

// neutral describes the update of c for the rules of internal/tgkey; nil
// for a nil context.
func neutral(c tele.Context) *tgkey.Update {
	if c == nil {
		return nil
	}
	u := c.Update()
	n := &tgkey.Update{ID: int64(u.ID), Kind: kind(&u), Guest: u.GuestMessage != nil}
	if m := messageOf(&u); m != nil {
		n.Chat = m.Chat.ID
		n.HasTopic = true
		if m.TopicMessage {
			n.Thread = int64(m.ThreadID)
		}
		n.BusinessConnectionID = m.BusinessConnectionID
	} else {
		n.Chat, n.BusinessConnectionID = chatOf(&u)
	}
	n.Sender = senderOf(&u)
	return n
}

// inaccessible reports whether m is the Bot API's InaccessibleMessage: a
// message too old for the bot to see, of which only the chat and the ID
// are known, and whose date is always 0. (telebot's own
// Message.Inaccessible tests for a missing sender, which channel posts
// lack too.)
func inaccessible(m *tele.Message) bool { return m.Unixtime == 0 }

// messages are the update's fields that hold a message.
func messages(u *tele.Update) []*tele.Message {
	return []*tele.Message{u.Message, u.EditedMessage, u.ChannelPost, u.EditedChannelPost, u.BusinessMessage, u.EditedBusinessMessage, u.GuestMessage}
}

// messageOf returns the message an update is about, if the update is a
// message of some kind or a callback query on an accessible message, and
// the message has a chat (the Bot API always sends one).
func messageOf(u *tele.Update) *tele.Message {
	for _, m := range messages(u) {
		if m != nil {
			if m.Chat == nil {
				return nil
			}
			return m
		}
	}
	if q := u.Callback; q != nil && q.Message != nil && q.Message.Chat != nil && !inaccessible(q.Message) {
		return q.Message
	}
	return nil
}

// chatOf returns the chat of an update that is not about a known message,
// and its business connection.
func chatOf(u *tele.Update) (int64, string) {
	chat := func(c *tele.Chat) int64 {
		if c == nil {
			return 0
		}
		return c.ID
	}
	for _, m := range messages(u) {
		if m != nil {
			return 0, "" // a message without a chat: not one the Bot API sends
		}
	}
	switch {
	case u.Callback != nil:
		if m := u.Callback.Message; m != nil && inaccessible(m) {
			return chat(m.Chat), ""
		}
	case u.DeletedBusinessMessages != nil:
		return chat(u.DeletedBusinessMessages.Chat), u.DeletedBusinessMessages.BusinessConnectionID
	case u.BusinessConnection != nil:
		return u.BusinessConnection.UserChatID, "" // the bot's own chat with the owner
	case u.MyChatMember != nil:
		return chat(u.MyChatMember.Chat), ""
	case u.ChatMember != nil:
		return chat(u.ChatMember.Chat), ""
	case u.ChatJoinRequest != nil:
		return chat(u.ChatJoinRequest.Chat), ""
	case u.MessageReaction != nil:
		return chat(u.MessageReaction.Chat), ""
	case u.MessageReactionCount != nil:
		return chat(u.MessageReactionCount.Chat), ""
	case u.Boost != nil:
		return chat(u.Boost.Chat), ""
	case u.BoostRemoved != nil:
		return chat(u.BoostRemoved.Chat), ""
	}
	return 0, ""
}

// senderOf returns the sender of an update: a user's ID, or the ID of the
// chat on whose behalf the update was sent (sender_chat, actor_chat,
// voter_chat), which the Bot API sends next to a placeholder user; 0 for
// none.
func senderOf(u *tele.Update) int64 {
	user := func(p *tele.User) int64 {
		if p == nil {
			return 0
		}
		return p.ID
	}
	byChat := func(c *tele.Chat, p *tele.User) int64 {
		if c != nil && c.ID != 0 {
			return c.ID
		}
		return user(p)
	}
	for _, m := range []*tele.Message{u.Message, u.EditedMessage, u.BusinessMessage, u.EditedBusinessMessage, u.GuestMessage} {
		if m != nil {
			return byChat(m.SenderChat, m.Sender)
		}
	}
	switch {
	case u.ChannelPost != nil, u.EditedChannelPost != nil:
		return 0 // posted by the channel, not by a user
	case u.Callback != nil:
		return user(u.Callback.Sender)
	case u.Query != nil:
		return user(u.Query.Sender)
	case u.InlineResult != nil:
		return user(u.InlineResult.Sender)
	case u.ShippingQuery != nil:
		return user(u.ShippingQuery.Sender)
	case u.PreCheckoutQuery != nil:
		return user(u.PreCheckoutQuery.Sender)
	case u.PurchasedPaidMedia != nil:
		return user(u.PurchasedPaidMedia.From)
	case u.PollAnswer != nil:
		return byChat(u.PollAnswer.Chat, u.PollAnswer.Sender)
	case u.BusinessConnection != nil:
		return user(u.BusinessConnection.Sender)
	case u.MyChatMember != nil:
		return user(u.MyChatMember.Sender)
	case u.ChatMember != nil:
		return user(u.ChatMember.Sender)
	case u.ChatJoinRequest != nil:
		return user(u.ChatJoinRequest.Sender)
	case u.MessageReaction != nil:
		return byChat(u.MessageReaction.ActorChat, u.MessageReaction.User)
	case u.Boost != nil:
		// Only a Premium boost's user is the booster (a gift code's or
		// a giveaway's user is who received the boost), as in aiogram.
		if b := u.Boost.Boost; b != nil && b.Source != nil && b.Source.Source == tele.BoostPremium {
			return user(b.Source.Booster)
		}
	}
	return 0
}

// kind names the kind of an update, for error messages, as the Bot API
// names it.
func kind(u *tele.Update) string {
	switch {
	case u.Message != nil:
		return "message"
	case u.EditedMessage != nil:
		return "edited_message"
	case u.ChannelPost != nil:
		return "channel_post"
	case u.EditedChannelPost != nil:
		return "edited_channel_post"
	case u.BusinessMessage != nil:
		return "business_message"
	case u.EditedBusinessMessage != nil:
		return "edited_business_message"
	case u.Callback != nil:
		return "callback_query"
	case u.Query != nil:
		return "inline_query"
	case u.InlineResult != nil:
		return "chosen_inline_result"
	case u.ShippingQuery != nil:
		return "shipping_query"
	case u.PreCheckoutQuery != nil:
		return "pre_checkout_query"
	case u.PurchasedPaidMedia != nil:
		return "purchased_paid_media"
	case u.Poll != nil:
		return "poll"
	case u.PollAnswer != nil:
		return "poll_answer"
	case u.MyChatMember != nil:
		return "my_chat_member"
	case u.ChatMember != nil:
		return "chat_member"
	case u.ChatJoinRequest != nil:
		return "chat_join_request"
	case u.MessageReaction != nil:
		return "message_reaction"
	case u.MessageReactionCount != nil:
		return "message_reaction_count"
	case u.Boost != nil:
		return "chat_boost"
	case u.BoostRemoved != nil:
		return "removed_chat_boost"
	case u.BusinessConnection != nil:
		return "business_connection"
	case u.DeletedBusinessMessages != nil:
		return "deleted_business_messages"
	case u.GuestMessage != nil:
		return "guest_message"
	}
	return ""
}
