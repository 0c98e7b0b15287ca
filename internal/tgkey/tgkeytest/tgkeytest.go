// Package tgkeytest is the one table of Telegram updates and their session
// keys that every Telegram adapter runs (middleware/tgbot, adapters/telebot,
// adapters/telego): the same JSON, as the Bot API sends it, decoded into
// each library's own update type, must give the same key in every scope, so
// that a bot moving between the libraries keeps its sessions.
package tgkeytest

import (
	"errors"
	"slices"
	"testing"

	"github.com/typedsession/session/internal/tgkey"
	"github.com/typedsession/session/middleware"
)

// None is a want meaning "an error wrapping middleware.ErrNoKey".
const None = "ErrNoKey"

// Case is one update and the key of each scope.
type Case struct {
	Name string
	Why  string
	// Kind is the Bot API field of the update, so that an adapter whose
	// library does not decode it (see Run) expects no key.
	Kind string
	// Feature, when set, is a field inside the update that some libraries
	// do not decode (see Run): the case is skipped for them.
	Feature string
	Update  string
	// The keys of ChatKey, UserKey, UserInChatKey, TopicKey and
	// UserInTopicKey; None for an error wrapping middleware.ErrNoKey.
	Chat, User, UserInChat, Topic, UserInTopic string
}

// Funcs are an adapter's key functions, each given an update as JSON to
// decode into its library's type.
type Funcs map[tgkey.Scope]func(t *testing.T, update string) (string, error)

// scopes names the scopes in the order of Case's fields.
var scopes = []struct {
	scope tgkey.Scope
	name  string
	want  func(c *Case) string
}{
	{tgkey.Chat, "ChatKey", func(c *Case) string { return c.Chat }},
	{tgkey.User, "UserKey", func(c *Case) string { return c.User }},
	{tgkey.UserInChat, "UserInChatKey", func(c *Case) string { return c.UserInChat }},
	{tgkey.Topic, "TopicKey", func(c *Case) string { return c.Topic }},
	{tgkey.UserInTopic, "UserInTopicKey", func(c *Case) string { return c.UserInTopic }},
}

// Run runs every case of [Cases] through funcs, which must have all five
// scopes. A case whose Kind is in unsupported (an update field the library
// does not decode: it sees an update with no field at all) must give no
// key in any scope; a case whose Feature is in unsupported (a field inside
// the update the library does not decode) is skipped, and logged. Then it
// checks the property the table exists for: conversations that share IDs
// never share a key (the customer's chats with two business accounts and
// with the bot itself; the topics of two users in a channel's direct
// messages chat).
func Run(t *testing.T, funcs Funcs, unsupported ...string) {
	t.Helper()
	if len(funcs) != len(scopes) {
		t.Fatalf("tgkeytest: Funcs has %d scopes, want %d", len(funcs), len(scopes))
	}
	skip := map[string]bool{}
	for _, k := range unsupported {
		skip[k] = true
	}
	got := map[string]map[tgkey.Scope]string{}
	for i := range Cases {
		c := &Cases[i]
		got[c.Name] = map[tgkey.Scope]string{}
		if skip[c.Feature] {
			t.Logf("%s: skipped: the library does not decode %s", c.Name, c.Feature)
			continue
		}
		for _, sc := range scopes {
			key, err := funcs[sc.scope](t, c.Update)
			want := sc.want(c)
			if skip[c.Kind] {
				want = None
			}
			got[c.Name][sc.scope] = key
			if want == None {
				if !errors.Is(err, middleware.ErrNoKey) || key != "" {
					t.Errorf("%s: %s() = %q, %v; want an error wrapping ErrNoKey (%s)", c.Name, sc.name, key, err, c.Why)
				}
				continue
			}
			if err != nil || key != want {
				t.Errorf("%s: %s() = %q, %v; want %q (%s)", c.Name, sc.name, key, err, want, c.Why)
			}
		}
	}
	// Issue 23: one customer's chat with business A, with business B and
	// with the bot itself got one key in every scope with a chat.
	apart := []struct {
		names  []string
		scopes []tgkey.Scope
	}{
		{[]string{"business message to business A", "business message to business B", "private message"},
			[]tgkey.Scope{tgkey.Chat, tgkey.UserInChat, tgkey.Topic, tgkey.UserInTopic}},
		{[]string{"direct message to a channel", "direct message from another user"},
			[]tgkey.Scope{tgkey.Topic}},
	}
	for _, a := range apart {
		for _, sc := range scopes {
			if !slices.Contains(a.scopes, sc.scope) {
				continue
			}
			seen := map[string]string{}
			for _, name := range a.names {
				k := got[name][sc.scope]
				if k == "" {
					continue
				}
				if other, ok := seen[k]; ok {
					t.Errorf("%s: %q and %q share the key %q: two conversations, one session", sc.name, other, name, k)
				}
				seen[k] = name
			}
		}
	}
}

// Cases are the updates every adapter keys alike. The customer 42 writes
// to the bot, and to two business accounts (whose chats with the customer
// carry the customer's ID, 42, too).
var Cases = []Case{
	{
		Name: "private message", Kind: "message",
		Why:    "a private chat's ID equals the user's",
		Update: `{"update_id":1,"message":{"message_id":1,"date":1,"chat":{"id":42,"type":"private"},"from":{"id":42,"is_bot":false,"first_name":"A"},"text":"hi"}}`,
		Chat:   "42", User: "42", UserInChat: "42:42", Topic: "42:0", UserInTopic: "42:0:42",
	},
	{
		Name: "group message", Kind: "message",
		Why:    "negative chat IDs stay as they are",
		Update: `{"update_id":2,"message":{"message_id":1,"date":1,"chat":{"id":-1001,"type":"supergroup"},"from":{"id":7,"is_bot":false,"first_name":"B"},"text":"hi"}}`,
		Chat:   "-1001", User: "7", UserInChat: "-1001:7", Topic: "-1001:0", UserInTopic: "-1001:0:7",
	},
	{
		Name: "forum topic message", Kind: "message",
		Why:    "a topic message carries its thread ID",
		Update: `{"update_id":3,"message":{"message_id":5,"message_thread_id":99,"is_topic_message":true,"date":1,"chat":{"id":-1002,"type":"supergroup","is_forum":true},"from":{"id":7,"is_bot":false,"first_name":"B"},"text":"hi"}}`,
		Chat:   "-1002", User: "7", UserInChat: "-1002:7", Topic: "-1002:99", UserInTopic: "-1002:99:7",
	},
	{
		Name: "another user in the same topic", Kind: "message",
		Why:    "user in topic: one session per user in each topic",
		Update: `{"update_id":30,"message":{"message_id":6,"message_thread_id":99,"is_topic_message":true,"date":1,"chat":{"id":-1002,"type":"supergroup","is_forum":true},"from":{"id":8,"is_bot":false,"first_name":"C"},"text":"hi"}}`,
		Chat:   "-1002", User: "8", UserInChat: "-1002:8", Topic: "-1002:99", UserInTopic: "-1002:99:8",
	},
	{
		Name: "reply thread outside a forum", Kind: "message",
		Why:    "message_thread_id without is_topic_message is a reply thread, not a topic",
		Update: `{"update_id":4,"message":{"message_id":6,"message_thread_id":3,"date":1,"chat":{"id":-1003,"type":"supergroup"},"from":{"id":8,"is_bot":false,"first_name":"C"},"text":"re"}}`,
		Chat:   "-1003", User: "8", UserInChat: "-1003:8", Topic: "-1003:0", UserInTopic: "-1003:0:8",
	},
	{
		Name: "edited message", Kind: "edited_message",
		Update: `{"update_id":5,"edited_message":{"message_id":1,"date":1,"edit_date":2,"chat":{"id":-5,"type":"group"},"from":{"id":9,"is_bot":false,"first_name":"D"},"text":"fixed"}}`,
		Chat:   "-5", User: "9", UserInChat: "-5:9", Topic: "-5:0", UserInTopic: "-5:0:9",
	},
	{
		Name: "channel post", Kind: "channel_post",
		Why:    "a channel post has a chat but no user",
		Update: `{"update_id":6,"channel_post":{"message_id":1,"date":1,"chat":{"id":-1004,"type":"channel"},"text":"news"}}`,
		Chat:   "-1004", User: None, UserInChat: None, Topic: "-1004:0", UserInTopic: None,
	},
	{
		Name: "edited channel post", Kind: "edited_channel_post",
		Update: `{"update_id":31,"edited_channel_post":{"message_id":1,"date":1,"edit_date":2,"chat":{"id":-1004,"type":"channel"},"text":"news!"}}`,
		Chat:   "-1004", User: None, UserInChat: None, Topic: "-1004:0", UserInTopic: None,
	},
	{
		Name: "callback query on a message", Kind: "callback_query",
		Why:    "the user is the one who pressed, not the bot that sent the message",
		Update: `{"update_id":7,"callback_query":{"id":"c1","from":{"id":11,"is_bot":false,"first_name":"E"},"chat_instance":"x","data":"2","message":{"message_id":3,"message_thread_id":12,"is_topic_message":true,"date":1,"chat":{"id":-1005,"type":"supergroup"},"from":{"id":1000,"is_bot":true,"first_name":"Bot"},"text":"Q?"}}}`,
		Chat:   "-1005", User: "11", UserInChat: "-1005:11", Topic: "-1005:12", UserInTopic: "-1005:12:11",
	},
	{
		Name: "callback query on an inaccessible message", Kind: "callback_query",
		Why:    "date 0 marks an inaccessible message: its chat is known, its topic is not",
		Update: `{"update_id":8,"callback_query":{"id":"c2","from":{"id":12,"is_bot":false,"first_name":"F"},"chat_instance":"x","data":"2","message":{"message_id":3,"date":0,"chat":{"id":-1006,"type":"supergroup"}}}}`,
		Chat:   "-1006", User: "12", UserInChat: "-1006:12", Topic: None, UserInTopic: None,
	},
	{
		Name: "callback query from inline mode", Kind: "callback_query",
		Why:    "a message sent via inline mode has no chat for the bot",
		Update: `{"update_id":9,"callback_query":{"id":"c3","from":{"id":13,"is_bot":false,"first_name":"G"},"chat_instance":"x","inline_message_id":"im","data":"2"}}`,
		Chat:   None, User: "13", UserInChat: None, Topic: None, UserInTopic: None,
	},
	{
		Name: "inline query", Kind: "inline_query",
		Why:    "an inline query has a user and no chat",
		Update: `{"update_id":10,"inline_query":{"id":"q","from":{"id":14,"is_bot":false,"first_name":"H"},"query":"go","offset":""}}`,
		Chat:   None, User: "14", UserInChat: None, Topic: None, UserInTopic: None,
	},
	{
		Name: "chosen inline result", Kind: "chosen_inline_result",
		Update: `{"update_id":32,"chosen_inline_result":{"result_id":"r","from":{"id":14,"is_bot":false,"first_name":"H"},"query":"go"}}`,
		Chat:   None, User: "14", UserInChat: None, Topic: None, UserInTopic: None,
	},
	{
		Name: "shipping query", Kind: "shipping_query",
		Update: `{"update_id":33,"shipping_query":{"id":"s","from":{"id":15,"is_bot":false,"first_name":"I"},"invoice_payload":"p","shipping_address":{"country_code":"DE","state":"","city":"B","street_line1":"x","street_line2":"","post_code":"1"}}}`,
		Chat:   None, User: "15", UserInChat: None, Topic: None, UserInTopic: None,
	},
	{
		Name: "pre-checkout query", Kind: "pre_checkout_query",
		Update: `{"update_id":34,"pre_checkout_query":{"id":"p","from":{"id":15,"is_bot":false,"first_name":"I"},"currency":"XTR","total_amount":1,"invoice_payload":"p"}}`,
		Chat:   None, User: "15", UserInChat: None, Topic: None, UserInTopic: None,
	},
	{
		Name: "paid media purchase", Kind: "purchased_paid_media",
		Update: `{"update_id":35,"purchased_paid_media":{"from":{"id":16,"is_bot":false,"first_name":"J"},"paid_media_payload":"p"}}`,
		Chat:   None, User: "16", UserInChat: None, Topic: None, UserInTopic: None,
	},
	{
		Name: "chat join request", Kind: "chat_join_request",
		Update: `{"update_id":11,"chat_join_request":{"chat":{"id":-1007,"type":"supergroup"},"from":{"id":15,"is_bot":false,"first_name":"I"},"user_chat_id":15,"date":1}}`,
		Chat:   "-1007", User: "15", UserInChat: "-1007:15", Topic: None, UserInTopic: None,
	},
	{
		Name: "my chat member", Kind: "my_chat_member",
		Why:    "the user who changed the bot's status in the chat",
		Update: `{"update_id":36,"my_chat_member":{"chat":{"id":-1015,"type":"supergroup"},"from":{"id":17,"is_bot":false,"first_name":"K"},"date":1,"old_chat_member":{"status":"left","user":{"id":1000,"is_bot":true,"first_name":"Bot"}},"new_chat_member":{"status":"member","user":{"id":1000,"is_bot":true,"first_name":"Bot"}}}}`,
		Chat:   "-1015", User: "17", UserInChat: "-1015:17", Topic: None, UserInTopic: None,
	},
	{
		Name: "chat member", Kind: "chat_member",
		Update: `{"update_id":37,"chat_member":{"chat":{"id":-1015,"type":"supergroup"},"from":{"id":17,"is_bot":false,"first_name":"K"},"date":1,"old_chat_member":{"status":"left","user":{"id":18,"is_bot":false,"first_name":"L"}},"new_chat_member":{"status":"member","user":{"id":18,"is_bot":false,"first_name":"L"}}}}`,
		Chat:   "-1015", User: "17", UserInChat: "-1015:17", Topic: None, UserInTopic: None,
	},
	{
		Name: "reaction", Kind: "message_reaction",
		Update: `{"update_id":38,"message_reaction":{"chat":{"id":-1008,"type":"supergroup"},"message_id":1,"user":{"id":19,"is_bot":false,"first_name":"M"},"date":1,"old_reaction":[],"new_reaction":[]}}`,
		Chat:   "-1008", User: "19", UserInChat: "-1008:19", Topic: None, UserInTopic: None,
	},
	{
		Name: "anonymous reaction", Kind: "message_reaction",
		Why:    "a reaction by an anonymous admin is keyed by its actor_chat, not merged with other anonymous reactions",
		Update: `{"update_id":12,"message_reaction":{"chat":{"id":-1008,"type":"supergroup"},"message_id":1,"actor_chat":{"id":-1008,"type":"supergroup"},"date":1,"old_reaction":[],"new_reaction":[]}}`,
		Chat:   "-1008", User: "-1008", UserInChat: "-1008:-1008", Topic: None, UserInTopic: None,
	},
	{
		Name: "reaction count", Kind: "message_reaction_count",
		Update: `{"update_id":39,"message_reaction_count":{"chat":{"id":-1008,"type":"supergroup"},"message_id":1,"date":1,"reactions":[]}}`,
		Chat:   "-1008", User: None, UserInChat: None, Topic: None, UserInTopic: None,
	},
	{
		Name: "anonymous admin", Kind: "message",
		Why:    "from is the placeholder 1087968824 shared by every anonymous admin of every group; sender_chat (the group) keys it",
		Update: `{"update_id":20,"message":{"message_id":1,"date":1,"chat":{"id":-1001,"type":"supergroup"},"from":{"id":1087968824,"is_bot":true,"first_name":"Group","username":"GroupAnonymousBot"},"sender_chat":{"id":-1001,"type":"supergroup","title":"G"},"text":"hi"}}`,
		Chat:   "-1001", User: "-1001", UserInChat: "-1001:-1001", Topic: "-1001:0", UserInTopic: "-1001:0:-1001",
	},
	{
		Name: "anonymous admin of another group", Kind: "message",
		Why:    "must not share the first group's anonymous admin session",
		Update: `{"update_id":21,"message":{"message_id":1,"date":1,"chat":{"id":-1009,"type":"supergroup"},"from":{"id":1087968824,"is_bot":true,"first_name":"Group","username":"GroupAnonymousBot"},"sender_chat":{"id":-1009,"type":"supergroup","title":"H"},"text":"hi"}}`,
		Chat:   "-1009", User: "-1009", UserInChat: "-1009:-1009", Topic: "-1009:0", UserInTopic: "-1009:0:-1009",
	},
	{
		Name: "automatic forward from a linked channel", Kind: "message",
		Why:    "from is the placeholder 777000; sender_chat is the channel",
		Update: `{"update_id":22,"message":{"message_id":2,"date":1,"chat":{"id":-1010,"type":"supergroup"},"from":{"id":777000,"is_bot":false,"first_name":"Telegram"},"sender_chat":{"id":-1004,"type":"channel","title":"News"},"is_automatic_forward":true,"text":"news"}}`,
		Chat:   "-1010", User: "-1004", UserInChat: "-1010:-1004", Topic: "-1010:0", UserInTopic: "-1010:0:-1004",
	},
	{
		Name: "message on behalf of a channel", Kind: "message",
		Why:    "from is the placeholder 136817688 (@Channel_Bot); sender_chat is the channel",
		Update: `{"update_id":23,"message":{"message_id":3,"date":1,"chat":{"id":-1012,"type":"supergroup"},"from":{"id":136817688,"is_bot":true,"first_name":"Channel","username":"Channel_Bot"},"sender_chat":{"id":-1011,"type":"channel","title":"Mine"},"text":"hello"}}`,
		Chat:   "-1012", User: "-1011", UserInChat: "-1012:-1011", Topic: "-1012:0", UserInTopic: "-1012:0:-1011",
	},
	{
		Name: "another channel in the same group", Kind: "message",
		Why:    "a different sender_chat behind the same placeholder is a different sender",
		Update: `{"update_id":24,"message":{"message_id":4,"date":1,"chat":{"id":-1012,"type":"supergroup"},"from":{"id":136817688,"is_bot":true,"first_name":"Channel","username":"Channel_Bot"},"sender_chat":{"id":-1014,"type":"channel","title":"Other"},"text":"hello"}}`,
		Chat:   "-1012", User: "-1014", UserInChat: "-1012:-1014", Topic: "-1012:0", UserInTopic: "-1012:0:-1014",
	},
	{
		Name: "poll answer", Kind: "poll_answer",
		Update: `{"update_id":40,"poll_answer":{"poll_id":"p","user":{"id":20,"is_bot":false,"first_name":"N"},"option_ids":[0]}}`,
		Chat:   None, User: "20", UserInChat: None, Topic: None, UserInTopic: None,
	},
	{
		Name: "anonymous poll answer", Kind: "poll_answer",
		Why:    "a poll answer on behalf of a chat is keyed by voter_chat; it has no chat of its own",
		Update: `{"update_id":25,"poll_answer":{"poll_id":"p","voter_chat":{"id":-1013,"type":"channel"},"option_ids":[0]}}`,
		Chat:   None, User: "-1013", UserInChat: None, Topic: None, UserInTopic: None,
	},
	{
		Name: "poll", Kind: "poll",
		Why:    "a poll state update has neither chat nor user",
		Update: `{"update_id":13,"poll":{"id":"p","question":"?","options":[],"total_voter_count":0,"is_closed":false,"is_anonymous":true,"type":"regular","allows_multiple_answers":false}}`,
		Chat:   None, User: None, UserInChat: None, Topic: None, UserInTopic: None,
	},
	{
		Name: "premium chat boost", Kind: "chat_boost",
		Why:    "a Premium boost's user is the booster (as in aiogram)",
		Update: `{"update_id":41,"chat_boost":{"chat":{"id":-1016,"type":"channel"},"boost":{"boost_id":"b","add_date":1,"expiration_date":2,"source":{"source":"premium","user":{"id":21,"is_bot":false,"first_name":"O"}}}}}`,
		Chat:   "-1016", User: "21", UserInChat: "-1016:21", Topic: None, UserInTopic: None,
	},
	{
		Name: "gift code chat boost", Kind: "chat_boost",
		Why:    "a gift code's user received the boost; nobody sent the update",
		Update: `{"update_id":42,"chat_boost":{"chat":{"id":-1016,"type":"channel"},"boost":{"boost_id":"b","add_date":1,"expiration_date":2,"source":{"source":"gift_code","user":{"id":22,"is_bot":false,"first_name":"P"}}}}}`,
		Chat:   "-1016", User: None, UserInChat: None, Topic: None, UserInTopic: None,
	},
	{
		Name: "removed chat boost", Kind: "removed_chat_boost",
		Update: `{"update_id":43,"removed_chat_boost":{"chat":{"id":-1016,"type":"channel"},"boost_id":"b","remove_date":1,"source":{"source":"premium","user":{"id":21,"is_bot":false,"first_name":"O"}}}}`,
		Chat:   "-1016", User: None, UserInChat: None, Topic: None, UserInTopic: None,
	},

	// Business accounts (issue 23). The customer 42 writes to two business
	// accounts whose owners connected the bot; each chat carries the
	// customer's ID, as the bot's own private chat with 42 does.
	{
		Name: "business message to business A", Kind: "business_message",
		Why:    "a business chat is its own conversation, not the bot's chat with the customer, nor business B's",
		Update: `{"update_id":50,"business_message":{"message_id":1,"business_connection_id":"connA","date":1,"chat":{"id":42,"type":"private"},"from":{"id":42,"is_bot":false,"first_name":"A"},"text":"hi A"}}`,
		Chat:   "business:connA:42", User: "42", UserInChat: "business:connA:42:42", Topic: "business:connA:42:0", UserInTopic: "business:connA:42:0:42",
	},
	{
		Name: "business message to business B", Kind: "business_message",
		Update: `{"update_id":51,"business_message":{"message_id":1,"business_connection_id":"connB","date":1,"chat":{"id":42,"type":"private"},"from":{"id":42,"is_bot":false,"first_name":"A"},"text":"hi B"}}`,
		Chat:   "business:connB:42", User: "42", UserInChat: "business:connB:42:42", Topic: "business:connB:42:0", UserInTopic: "business:connB:42:0:42",
	},
	{
		Name: "business owner's answer", Kind: "business_message",
		Why:    "the owner's own messages in the chat arrive as business messages too, from the owner",
		Update: `{"update_id":52,"business_message":{"message_id":2,"business_connection_id":"connA","date":1,"chat":{"id":42,"type":"private"},"from":{"id":500,"is_bot":false,"first_name":"Owner A"},"text":"hello"}}`,
		Chat:   "business:connA:42", User: "500", UserInChat: "business:connA:42:500", Topic: "business:connA:42:0", UserInTopic: "business:connA:42:0:500",
	},
	{
		Name: "edited business message", Kind: "edited_business_message",
		Update: `{"update_id":53,"edited_business_message":{"message_id":1,"business_connection_id":"connA","date":1,"edit_date":2,"chat":{"id":42,"type":"private"},"from":{"id":42,"is_bot":false,"first_name":"A"},"text":"hi A!"}}`,
		Chat:   "business:connA:42", User: "42", UserInChat: "business:connA:42:42", Topic: "business:connA:42:0", UserInTopic: "business:connA:42:0:42",
	},
	{
		Name: "callback query on a business message", Kind: "callback_query",
		Why:    "a button under a message the bot sent for business A belongs to that business chat",
		Update: `{"update_id":54,"callback_query":{"id":"c4","from":{"id":42,"is_bot":false,"first_name":"A"},"chat_instance":"x","data":"1","message":{"message_id":3,"business_connection_id":"connA","date":1,"chat":{"id":42,"type":"private"},"from":{"id":500,"is_bot":false,"first_name":"Owner A"},"text":"Choose"}}}`,
		Chat:   "business:connA:42", User: "42", UserInChat: "business:connA:42:42", Topic: "business:connA:42:0", UserInTopic: "business:connA:42:0:42",
	},
	{
		Name: "deleted business messages", Kind: "deleted_business_messages",
		Why:    "messages deleted in business A's chat: that chat, no sender",
		Update: `{"update_id":55,"deleted_business_messages":{"business_connection_id":"connA","chat":{"id":42,"type":"private"},"message_ids":[1,2]}}`,
		Chat:   "business:connA:42", User: None, UserInChat: None, Topic: None, UserInTopic: None,
	},
	{
		Name: "business connection", Kind: "business_connection",
		Why:    "the owner connected the bot: the bot's own private chat with the owner (user_chat_id), and the owner",
		Update: `{"update_id":56,"business_connection":{"id":"connA","user":{"id":500,"is_bot":false,"first_name":"Owner A"},"user_chat_id":500,"date":1,"is_enabled":true}}`,
		Chat:   "500", User: "500", UserInChat: "500:500", Topic: None, UserInTopic: None,
	},

	// A channel's direct messages chat (-1020): one topic per user who
	// writes to the channel, the channel answering in that user's topic.
	{
		Name: "direct message to a channel", Kind: "message", Feature: "direct_messages_topic",
		Why:    "each user's conversation with the channel is a topic of its own: direct_messages_topic.topic_id",
		Update: `{"update_id":70,"message":{"message_id":1,"date":1,"chat":{"id":-1020,"type":"supergroup","is_direct_messages":true},"from":{"id":30,"is_bot":false,"first_name":"Q"},"direct_messages_topic":{"topic_id":7001,"user":{"id":30,"is_bot":false,"first_name":"Q"}},"text":"hello channel"}}`,
		Chat:   "-1020", User: "30", UserInChat: "-1020:30", Topic: "-1020:7001", UserInTopic: "-1020:7001:30",
	},
	{
		Name: "direct message from another user", Kind: "message", Feature: "direct_messages_topic",
		Update: `{"update_id":71,"message":{"message_id":2,"date":1,"chat":{"id":-1020,"type":"supergroup","is_direct_messages":true},"from":{"id":31,"is_bot":false,"first_name":"R"},"direct_messages_topic":{"topic_id":7002,"user":{"id":31,"is_bot":false,"first_name":"R"}},"text":"hi"}}`,
		Chat:   "-1020", User: "31", UserInChat: "-1020:31", Topic: "-1020:7002", UserInTopic: "-1020:7002:31",
	},
	{
		Name: "the channel's answer in a user's topic", Kind: "message", Feature: "direct_messages_topic",
		Why:    "the channel writes as itself (sender_chat); the topic is the user's",
		Update: `{"update_id":72,"message":{"message_id":3,"date":1,"chat":{"id":-1020,"type":"supergroup","is_direct_messages":true},"from":{"id":136817688,"is_bot":true,"first_name":"Channel","username":"Channel_Bot"},"sender_chat":{"id":-1019,"type":"channel","title":"News"},"direct_messages_topic":{"topic_id":7001},"text":"thanks"}}`,
		Chat:   "-1020", User: "-1019", UserInChat: "-1020:-1019", Topic: "-1020:7001", UserInTopic: "-1020:7001:-1019",
	},

	// Guest mode: only telebot decodes guest_message today.
	{
		Name: "guest message", Kind: "guest_message",
		Why:    "the bot called as a guest in a chat it is not a member of: no conversation of the bot's own",
		Update: `{"update_id":60,"guest_message":{"message_id":1,"date":1,"chat":{"id":42,"type":"private"},"from":{"id":42,"is_bot":false,"first_name":"A"},"guest_query_id":"g","text":"@bot hi"}}`,
		Chat:   "guest:42", User: "42", UserInChat: "guest:42:42", Topic: "guest:42:0", UserInTopic: "guest:42:0:42",
	},
}
