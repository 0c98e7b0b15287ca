package telegosession

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/mymmrac/telego"

	"github.com/typedsession/session/internal/tgkey"
	"github.com/typedsession/session/internal/tgkey/tgkeytest"
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

// TestKeyFuncs runs the table every Telegram adapter runs
// (internal/tgkey/tgkeytest): the same updates as middleware/tgbot and the
// telebot adapter, the same keys.
func TestKeyFuncs(t *testing.T) {
	t.Parallel()
	f := func(key middleware.KeyFunc[*telego.Update]) func(*testing.T, string) (string, error) {
		return func(t *testing.T, js string) (string, error) { return key(context.Background(), update(t, js)) }
	}
	tgkeytest.Run(t, tgkeytest.Funcs{
		tgkey.Chat:        f(ChatKey),
		tgkey.User:        f(UserKey),
		tgkey.UserInChat:  f(UserInChatKey),
		tgkey.Topic:       f(TopicKey),
		tgkey.UserInTopic: f(UserInTopicKey),
	}, "guest_message") // telego v1.6 does not decode guest_message
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
	for _, f := range []middleware.KeyFunc[*telego.Update]{ChatKey, UserKey, UserInChatKey, TopicKey, UserInTopicKey} {
		if _, err := f(context.Background(), nil); !errors.Is(err, middleware.ErrNoKey) {
			t.Errorf("key of a nil update: %v; want ErrNoKey", err)
		}
	}
}
