package telegosession

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/mymmrac/telego"

	"github.com/typedsession/session/middleware"
)

// update decodes an update as the Bot API sends it into telego's own
// telego.Update.
func update(t *testing.T, js string) *telego.Update {
	t.Helper()
	var u telego.Update
	if err := json.Unmarshal([]byte(js), &u); err != nil {
		t.Fatalf("decode %s: %v", js, err)
	}
	return &u
}

const none = "ErrNoKey" // want: an error wrapping middleware.ErrNoKey

// keyCases are the cases of middleware/tgbot's TestKeyFuncs, the same
// JSON and the same keys: the two adapters must agree.
var keyCases = []struct {
	name   string
	why    string
	update string
	// want keys of ChatKey, UserKey, UserInChatKey, TopicKey; none
	// means an error wrapping middleware.ErrNoKey.
	chat, user, userInChat, topic string
}{
	{
		name:   "private message",
		why:    "a private chat's ID equals the user's",
		update: `{"update_id":1,"message":{"message_id":1,"date":1,"chat":{"id":42,"type":"private"},"from":{"id":42,"is_bot":false,"first_name":"A"},"text":"hi"}}`,
		chat:   "42", user: "42", userInChat: "42:42", topic: "42:0",
	},
	{
		name:   "group message",
		why:    "negative chat IDs stay as they are",
		update: `{"update_id":2,"message":{"message_id":1,"date":1,"chat":{"id":-1001,"type":"supergroup"},"from":{"id":7,"is_bot":false,"first_name":"B"},"text":"hi"}}`,
		chat:   "-1001", user: "7", userInChat: "-1001:7", topic: "-1001:0",
	},
	{
		name:   "forum topic message",
		why:    "a topic message carries its thread ID",
		update: `{"update_id":3,"message":{"message_id":5,"message_thread_id":99,"is_topic_message":true,"date":1,"chat":{"id":-1002,"type":"supergroup","is_forum":true},"from":{"id":7,"is_bot":false,"first_name":"B"},"text":"hi"}}`,
		chat:   "-1002", user: "7", userInChat: "-1002:7", topic: "-1002:99",
	},
	{
		name:   "reply thread outside a forum",
		why:    "message_thread_id without is_topic_message is a reply thread, not a topic",
		update: `{"update_id":4,"message":{"message_id":6,"message_thread_id":3,"date":1,"chat":{"id":-1003,"type":"supergroup"},"from":{"id":8,"is_bot":false,"first_name":"C"},"text":"re"}}`,
		chat:   "-1003", user: "8", userInChat: "-1003:8", topic: "-1003:0",
	},
	{
		name:   "edited message",
		update: `{"update_id":5,"edited_message":{"message_id":1,"date":1,"edit_date":2,"chat":{"id":-5,"type":"group"},"from":{"id":9,"is_bot":false,"first_name":"D"},"text":"fixed"}}`,
		chat:   "-5", user: "9", userInChat: "-5:9", topic: "-5:0",
	},
	{
		name:   "channel post",
		why:    "a channel post has a chat but no user",
		update: `{"update_id":6,"channel_post":{"message_id":1,"date":1,"chat":{"id":-1004,"type":"channel"},"text":"news"}}`,
		chat:   "-1004", user: none, userInChat: none, topic: "-1004:0",
	},
	{
		name:   "callback query on a message",
		why:    "the user is the one who pressed, not the bot that sent the message",
		update: `{"update_id":7,"callback_query":{"id":"c1","from":{"id":11,"is_bot":false,"first_name":"E"},"chat_instance":"x","data":"2","message":{"message_id":3,"message_thread_id":12,"is_topic_message":true,"date":1,"chat":{"id":-1005,"type":"supergroup"},"from":{"id":1000,"is_bot":true,"first_name":"Bot"},"text":"Q?"}}}`,
		chat:   "-1005", user: "11", userInChat: "-1005:11", topic: "-1005:12",
	},
	{
		name:   "callback query on an inaccessible message",
		why:    "date 0 marks an inaccessible message: its chat is known, its topic is not",
		update: `{"update_id":8,"callback_query":{"id":"c2","from":{"id":12,"is_bot":false,"first_name":"F"},"chat_instance":"x","data":"2","message":{"message_id":3,"date":0,"chat":{"id":-1006,"type":"supergroup"}}}}`,
		chat:   "-1006", user: "12", userInChat: "-1006:12", topic: none,
	},
	{
		name:   "callback query from inline mode",
		why:    "a message sent via inline mode has no chat for the bot",
		update: `{"update_id":9,"callback_query":{"id":"c3","from":{"id":13,"is_bot":false,"first_name":"G"},"chat_instance":"x","inline_message_id":"im","data":"2"}}`,
		chat:   none, user: "13", userInChat: none, topic: none,
	},
	{
		name:   "inline query",
		why:    "an inline query has a user and no chat",
		update: `{"update_id":10,"inline_query":{"id":"q","from":{"id":14,"is_bot":false,"first_name":"H"},"query":"go","offset":""}}`,
		chat:   none, user: "14", userInChat: none, topic: none,
	},
	{
		name:   "chat join request",
		update: `{"update_id":11,"chat_join_request":{"chat":{"id":-1007,"type":"supergroup"},"from":{"id":15,"is_bot":false,"first_name":"I"},"user_chat_id":15,"date":1}}`,
		chat:   "-1007", user: "15", userInChat: "-1007:15", topic: none,
	},
	{
		name:   "anonymous reaction",
		why:    "a reaction by an anonymous admin is keyed by its actor_chat, not merged with other anonymous reactions",
		update: `{"update_id":12,"message_reaction":{"chat":{"id":-1008,"type":"supergroup"},"message_id":1,"actor_chat":{"id":-1008,"type":"supergroup"},"date":1,"old_reaction":[],"new_reaction":[]}}`,
		chat:   "-1008", user: "-1008", userInChat: "-1008:-1008", topic: none,
	},
	{
		name:   "anonymous admin",
		why:    "from is the placeholder 1087968824 shared by every anonymous admin of every group; sender_chat (the group) keys it",
		update: `{"update_id":20,"message":{"message_id":1,"date":1,"chat":{"id":-1001,"type":"supergroup"},"from":{"id":1087968824,"is_bot":true,"first_name":"Group","username":"GroupAnonymousBot"},"sender_chat":{"id":-1001,"type":"supergroup","title":"G"},"text":"hi"}}`,
		chat:   "-1001", user: "-1001", userInChat: "-1001:-1001", topic: "-1001:0",
	},
	{
		name:   "anonymous admin of another group",
		why:    "must not share the first group's anonymous admin session",
		update: `{"update_id":21,"message":{"message_id":1,"date":1,"chat":{"id":-1009,"type":"supergroup"},"from":{"id":1087968824,"is_bot":true,"first_name":"Group","username":"GroupAnonymousBot"},"sender_chat":{"id":-1009,"type":"supergroup","title":"H"},"text":"hi"}}`,
		chat:   "-1009", user: "-1009", userInChat: "-1009:-1009", topic: "-1009:0",
	},
	{
		name:   "automatic forward from a linked channel",
		why:    "from is the placeholder 777000; sender_chat is the channel",
		update: `{"update_id":22,"message":{"message_id":2,"date":1,"chat":{"id":-1010,"type":"supergroup"},"from":{"id":777000,"is_bot":false,"first_name":"Telegram"},"sender_chat":{"id":-1004,"type":"channel","title":"News"},"is_automatic_forward":true,"text":"news"}}`,
		chat:   "-1010", user: "-1004", userInChat: "-1010:-1004", topic: "-1010:0",
	},
	{
		name:   "message on behalf of a channel",
		why:    "from is the placeholder 136817688 (@Channel_Bot); sender_chat is the channel",
		update: `{"update_id":23,"message":{"message_id":3,"date":1,"chat":{"id":-1012,"type":"supergroup"},"from":{"id":136817688,"is_bot":true,"first_name":"Channel","username":"Channel_Bot"},"sender_chat":{"id":-1011,"type":"channel","title":"Mine"},"text":"hello"}}`,
		chat:   "-1012", user: "-1011", userInChat: "-1012:-1011", topic: "-1012:0",
	},
	{
		name:   "another channel in the same group",
		why:    "a different sender_chat behind the same placeholder is a different sender",
		update: `{"update_id":24,"message":{"message_id":4,"date":1,"chat":{"id":-1012,"type":"supergroup"},"from":{"id":136817688,"is_bot":true,"first_name":"Channel","username":"Channel_Bot"},"sender_chat":{"id":-1014,"type":"channel","title":"Other"},"text":"hello"}}`,
		chat:   "-1012", user: "-1014", userInChat: "-1012:-1014", topic: "-1012:0",
	},
	{
		name:   "anonymous poll answer",
		why:    "a poll answer on behalf of a chat is keyed by voter_chat; it has no chat of its own",
		update: `{"update_id":25,"poll_answer":{"poll_id":"p","voter_chat":{"id":-1013,"type":"channel"},"option_ids":[0]}}`,
		chat:   none, user: "-1013", userInChat: none, topic: none,
	},
	{
		name:   "poll",
		why:    "a poll state update has neither chat nor user",
		update: `{"update_id":13,"poll":{"id":"p","question":"?","options":[],"total_voter_count":0,"is_closed":false,"is_anonymous":true,"type":"regular","allows_multiple_answers":false}}`,
		chat:   none, user: none, userInChat: none, topic: none,
	},
}

func TestKeyFuncs(t *testing.T) {
	t.Parallel()
	funcs := []struct {
		name string
		f    middleware.KeyFunc[*telego.Update]
		want func(i int) string
	}{
		{"ChatKey", ChatKey, func(i int) string { return keyCases[i].chat }},
		{"UserKey", UserKey, func(i int) string { return keyCases[i].user }},
		{"UserInChatKey", UserInChatKey, func(i int) string { return keyCases[i].userInChat }},
		{"TopicKey", TopicKey, func(i int) string { return keyCases[i].topic }},
	}
	for i, tt := range keyCases {
		c := update(t, tt.update)
		for _, fn := range funcs {
			got, err := fn.f(context.Background(), c)
			want := fn.want(i)
			if want == none {
				if !errors.Is(err, middleware.ErrNoKey) || got != "" {
					t.Errorf("%s: %s() = %q, %v; want an error wrapping ErrNoKey (%s)", tt.name, fn.name, got, err, tt.why)
				}
				continue
			}
			if err != nil || got != want {
				t.Errorf("%s: %s() = %q, %v; want %q (%s)", tt.name, fn.name, got, err, want, tt.why)
			}
		}
	}
}

func TestNoKeyErrorSaysWhy(t *testing.T) {
	t.Parallel()
	c := update(t, `{"update_id":77,"inline_query":{"id":"q","from":{"id":14,"is_bot":false,"first_name":"H"},"query":"go","offset":""}}`)
	_, err := ChatKey(context.Background(), c)
	if err == nil || !strings.Contains(err.Error(), "update 77 (inline_query) has no chat") {
		t.Errorf("ChatKey error = %v; want it to name the update, its kind and what is missing", err)
	}
	for _, f := range []middleware.KeyFunc[*telego.Update]{ChatKey, UserKey, UserInChatKey, TopicKey} {
		if _, err := f(context.Background(), nil); !errors.Is(err, middleware.ErrNoKey) {
			t.Errorf("key of a nil update: %v; want ErrNoKey", err)
		}
	}
}
