package telebotsession

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	tele "gopkg.in/telebot.v4"

	"github.com/typedsession/session/internal/tgkey"
	"github.com/typedsession/session/internal/tgkey/tgkeytest"
	"github.com/typedsession/session/middleware"
)

// update decodes an update as the Bot API sends it into telebot's own
// tele.Update, and wraps it in telebot's own Context.
func update(t *testing.T, js string) tele.Context {
	t.Helper()
	var u tele.Update
	if err := json.Unmarshal([]byte(js), &u); err != nil {
		t.Fatalf("decode %s: %v", js, err)
	}
	return tele.NewContext(nil, u)
}

// TestKeyFuncs runs the table every Telegram adapter runs
// (internal/tgkey/tgkeytest): the same updates as middleware/tgbot and the
// telego adapter, the same keys. telebot also decodes guest_message.
func TestKeyFuncs(t *testing.T) {
	t.Parallel()
	f := func(key middleware.KeyFunc[tele.Context]) func(*testing.T, string) (string, error) {
		return func(t *testing.T, js string) (string, error) { return key(context.Background(), update(t, js)) }
	}
	tgkeytest.Run(t, tgkeytest.Funcs{
		tgkey.Chat:        f(ChatKey),
		tgkey.User:        f(UserKey),
		tgkey.UserInChat:  f(UserInChatKey),
		tgkey.Topic:       f(TopicKey),
		tgkey.UserInTopic: f(UserInTopicKey),
	}, "direct_messages_topic") // telebot v4.0.0-beta.10 does not decode it: see the package doc, # Keys
}

// TestForBot: several bots in one store and namespace keep their sessions
// apart.
func TestForBot(t *testing.T) {
	t.Parallel()
	u := update(t, `{"update_id":1,"message":{"message_id":1,"date":1,"chat":{"id":42,"type":"private"},"from":{"id":42,"is_bot":false,"first_name":"A"},"text":"hi"}}`)
	a, _ := ForBot(111, ChatKey)(context.Background(), u)
	b, _ := ForBot(222, UserInChatKey)(context.Background(), u)
	if a != "bot111:42" || b != "bot222:42:42" {
		t.Errorf("ForBot keys %q, %q; want bot111:42 and bot222:42:42", a, b)
	}
}

func TestNoKeyErrorSaysWhy(t *testing.T) {
	t.Parallel()
	c := update(t, `{"update_id":77,"inline_query":{"id":"q","from":{"id":14,"is_bot":false,"first_name":"H"},"query":"go","offset":""}}`)
	_, err := ChatKey(context.Background(), c)
	if err == nil || !strings.Contains(err.Error(), "update 77 (inline_query) has no chat") {
		t.Errorf("ChatKey error = %v; want it to name the update, its kind and what is missing", err)
	}
	for _, f := range []middleware.KeyFunc[tele.Context]{ChatKey, UserKey, UserInChatKey, TopicKey, UserInTopicKey} {
		if _, err := f(context.Background(), nil); !errors.Is(err, middleware.ErrNoKey) {
			t.Errorf("key of a nil context: %v; want ErrNoKey", err)
		}
		if _, err := f(context.Background(), tele.NewContext(nil, tele.Update{ID: 1, Message: &tele.Message{ID: 1}})); !errors.Is(err, middleware.ErrNoKey) {
			// A message without a chat is not one the Bot API sends; it
			// must not panic. UserKey has no sender either.
			t.Errorf("key of a message without chat or sender: %v; want ErrNoKey", err)
		}
	}
}
