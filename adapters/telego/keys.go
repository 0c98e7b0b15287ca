package telegosession

import (
	"context"

	"github.com/mymmrac/telego"

	"github.com/typedsession/session/internal/tgkey"
	"github.com/typedsession/session/middleware"
)

// The key functions below are those of
// github.com/typedsession/session/middleware/tgbot, rule for rule: the
// rules live in the core's internal/tgkey, which all three Telegram
// adapters call, and this file only turns a *telego.Update into the
// neutral tgkey.Update; so a bot that moves between the frameworks keeps
// its sessions.

// ChatKey keys the session by chat: everyone in a group shares one session,
// and a private chat has its own. The key is the chat ID in decimal, such as
// "-1001234567890", as middleware/tgbot and the telebot adapter make it; in
// a chat of a business account, "business:<business_connection_id>:" comes
// first (see the package documentation, # Keys).
//
// It finds the chat of a message, an edited message, a channel post and an
// edited one, a business message and an edited one, deleted business
// messages, a business connection (the bot's private chat with the
// account's owner), a callback query whose message is known (not for a
// message sent via inline mode), a chat member update, a join request, a
// reaction, a reaction count and a chat boost. For other updates, such as
// inline queries, it returns an error wrapping middleware.ErrNoKey.
func ChatKey(_ context.Context, u *telego.Update) (string, error) {
	return tgkey.String(neutral(u), tgkey.Chat)
}

// UserKey keys the session by sender, the same in every chat (business
// chats included: one session per person): the key is the user ID in
// decimal, such as "123456789".
//
// It finds the sender of a message, an edited message, a business message
// and an edited one, a business connection (the account's owner), a
// callback query, an inline query, a chosen inline result, a shipping or
// pre-checkout query, a paid media purchase, a poll answer, a chat member
// update, a join request, a reaction and a chat boost by a Premium user.
// For updates without a sender, such as channel posts, it returns an error
// wrapping middleware.ErrNoKey.
//
// # Senders that are chats
//
// A message sent on behalf of a chat carries that chat in sender_chat (Bot
// API), and its from field holds a placeholder user that many senders share:
// 1087968824 (@GroupAnonymousBot) for every anonymous admin of every group,
// 777000 for every automatic forward from a linked channel, 136817688
// (@Channel_Bot) for every message sent on behalf of a channel. Keyed by
// from, all of them would share one session. So the rule is the presence
// of sender_chat, not a list of IDs: a message that carries sender_chat is
// keyed by that chat's ID, such as "-1001234567890" (chat IDs are negative,
// user IDs positive, so the two never meet). The same holds for a reaction
// with actor_chat and a poll answer with voter_chat. Anonymous admins of
// one group all post as the group itself, so they share its session: the
// Bot API does not say which admin wrote.
func UserKey(_ context.Context, u *telego.Update) (string, error) {
	return tgkey.String(neutral(u), tgkey.User)
}

// UserInChatKey keys the session by sender within a chat: the same user has
// one session in each group and one in the private chat with the bot. The
// key is "<chat ID>:<sender ID>", such as "-1001234567890:123456789"; a
// sender that is a chat (see [UserKey]) gives "<chat ID>:<sender chat ID>",
// such as "-1001234567890:-1009876543210"; in a business chat,
// "business:<business_connection_id>:" comes first.
//
// It needs both a chat and a sender (see [ChatKey] and [UserKey]); for
// other updates, such as inline queries and channel posts, it returns an
// error wrapping middleware.ErrNoKey.
func UserInChatKey(_ context.Context, u *telego.Update) (string, error) {
	return tgkey.String(neutral(u), tgkey.UserInChat)
}

// TopicKey keys the session by forum topic: everyone in one topic of a
// forum supergroup shares a session. The key is "<chat ID>:<thread ID>",
// where the thread ID is the message_thread_id of a topic message, the
// topic_id of its direct_messages_topic in a channel's direct messages
// chat (one topic, so one session, per user writing to the channel), and
// 0 outside topics (the General topic, and chats that are not forums,
// where a reply thread does not count as a topic); in a business chat,
// "business:<business_connection_id>:" comes first.
//
// It finds the topic of a message, an edited message, a channel post, a
// business message and a callback query whose message is known. For other
// updates, including callback queries on a message too old to be known, it
// returns an error wrapping middleware.ErrNoKey.
func TopicKey(_ context.Context, u *telego.Update) (string, error) {
	return tgkey.String(neutral(u), tgkey.Topic)
}

// UserInTopicKey keys the session by sender within a forum topic: the same
// user has one session in each topic (aiogram's USER_IN_TOPIC). The key is
// "<chat ID>:<thread ID>:<sender ID>", such as
// "-1001234567890:99:123456789", with the thread ID of [TopicKey] and the
// sender of [UserKey]; in a business chat,
// "business:<business_connection_id>:" comes first. It needs a known topic
// and a sender; for other updates it returns an error wrapping
// middleware.ErrNoKey.
func UserInTopicKey(_ context.Context, u *telego.Update) (string, error) {
	return tgkey.String(neutral(u), tgkey.UserInTopic)
}

// ForBot returns key with "bot<botID>:" in front of every key it makes, so
// that several bots keep their sessions apart in one store and namespace
// (the bot's ID is the number before the colon of its token):
//
//	telegosession.New(m, telegosession.ForBot(botID, telegosession.ChatKey), middleware.Options{})
//
// It panics if botID is 0 or key is nil.
func ForBot(botID int64, key middleware.KeyFunc[*telego.Update]) middleware.KeyFunc[*telego.Update] {
	return tgkey.ForBot(botID, key)
}

// neutral describes u for the rules of internal/tgkey; nil for nil.
func neutral(u *telego.Update) *tgkey.Update {
	if u == nil {
		return nil
	}
	n := &tgkey.Update{ID: int64(u.UpdateID), Kind: kind(u)}
	if m := messageOf(u); m != nil {
		n.Chat = m.Chat.ID
		n.HasTopic = true
		switch {
		case m.DirectMessagesTopic != nil:
			n.Thread = int64(m.DirectMessagesTopic.TopicID)
		case m.IsTopicMessage:
			n.Thread = int64(m.MessageThreadID)
		}
		n.BusinessConnectionID = m.BusinessConnectionID
	} else {
		n.Chat, n.BusinessConnectionID = chatOf(u)
	}
	n.Sender = senderOf(u)
	return n
}

// messageOf returns the message an update is about, if the update is a
// message of some kind or a callback query on an accessible message.
func messageOf(u *telego.Update) *telego.Message {
	for _, m := range []*telego.Message{u.Message, u.EditedMessage, u.ChannelPost, u.EditedChannelPost, u.BusinessMessage, u.EditedBusinessMessage} {
		if m != nil {
			return m
		}
	}
	if q := u.CallbackQuery; q != nil && q.Message != nil && q.Message.IsAccessible() {
		return q.Message.Message()
	}
	return nil
}

// chatOf returns the chat of an update that is not about a known message,
// and its business connection.
func chatOf(u *telego.Update) (int64, string) {
	switch {
	case u.CallbackQuery != nil:
		if m := u.CallbackQuery.Message; m != nil && !m.IsAccessible() {
			return m.GetChat().ID, ""
		}
	case u.DeletedBusinessMessages != nil:
		return u.DeletedBusinessMessages.Chat.ID, u.DeletedBusinessMessages.BusinessConnectionID
	case u.BusinessConnection != nil:
		return u.BusinessConnection.UserChatID, "" // the bot's own chat with the owner
	case u.MyChatMember != nil:
		return u.MyChatMember.Chat.ID, ""
	case u.ChatMember != nil:
		return u.ChatMember.Chat.ID, ""
	case u.ChatJoinRequest != nil:
		return u.ChatJoinRequest.Chat.ID, ""
	case u.MessageReaction != nil:
		return u.MessageReaction.Chat.ID, ""
	case u.MessageReactionCount != nil:
		return u.MessageReactionCount.Chat.ID, ""
	case u.ChatBoost != nil:
		return u.ChatBoost.Chat.ID, ""
	case u.RemovedChatBoost != nil:
		return u.RemovedChatBoost.Chat.ID, ""
	}
	return 0, ""
}

// senderOf returns the sender of an update: a user's ID, or the ID of the
// chat on whose behalf the update was sent (sender_chat, actor_chat,
// voter_chat), which the Bot API sends next to a placeholder user; 0 for
// none.
func senderOf(u *telego.Update) int64 {
	user := func(p *telego.User) int64 {
		if p == nil {
			return 0
		}
		return p.ID
	}
	byChat := func(c *telego.Chat, p *telego.User) int64 {
		if c != nil && c.ID != 0 {
			return c.ID
		}
		return user(p)
	}
	for _, m := range []*telego.Message{u.Message, u.EditedMessage, u.BusinessMessage, u.EditedBusinessMessage} {
		if m != nil {
			return byChat(m.SenderChat, m.From)
		}
	}
	switch {
	case u.ChannelPost != nil, u.EditedChannelPost != nil:
		return 0 // posted by the channel, not by a user
	case u.CallbackQuery != nil:
		return user(&u.CallbackQuery.From)
	case u.InlineQuery != nil:
		return user(&u.InlineQuery.From)
	case u.ChosenInlineResult != nil:
		return user(&u.ChosenInlineResult.From)
	case u.ShippingQuery != nil:
		return user(&u.ShippingQuery.From)
	case u.PreCheckoutQuery != nil:
		return user(&u.PreCheckoutQuery.From)
	case u.PurchasedPaidMedia != nil:
		return user(&u.PurchasedPaidMedia.From)
	case u.PollAnswer != nil:
		return byChat(u.PollAnswer.VoterChat, u.PollAnswer.User)
	case u.BusinessConnection != nil:
		return user(&u.BusinessConnection.User)
	case u.MyChatMember != nil:
		return user(&u.MyChatMember.From)
	case u.ChatMember != nil:
		return user(&u.ChatMember.From)
	case u.ChatJoinRequest != nil:
		return user(&u.ChatJoinRequest.From)
	case u.MessageReaction != nil:
		return byChat(u.MessageReaction.ActorChat, u.MessageReaction.User)
	case u.ChatBoost != nil:
		// Only a Premium boost's user is the booster (a gift code's or
		// a giveaway's user is who received the boost), as in aiogram.
		if p, ok := u.ChatBoost.Boost.Source.(*telego.ChatBoostSourcePremium); ok {
			return p.User.ID
		}
	}
	return 0
}

// kind names the kind of an update, for error messages.
func kind(u *telego.Update) string {
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
	case u.CallbackQuery != nil:
		return "callback_query"
	case u.InlineQuery != nil:
		return "inline_query"
	case u.ChosenInlineResult != nil:
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
	case u.ChatBoost != nil:
		return "chat_boost"
	case u.RemovedChatBoost != nil:
		return "removed_chat_boost"
	case u.BusinessConnection != nil:
		return "business_connection"
	case u.DeletedBusinessMessages != nil:
		return "deleted_business_messages"
	}
	return ""
}
