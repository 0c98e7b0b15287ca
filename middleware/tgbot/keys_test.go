package tgbot

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/go-telegram/bot/models"

	"github.com/typedsession/session/internal/tgkey"
	"github.com/typedsession/session/internal/tgkey/tgkeytest"
	"github.com/typedsession/session/middleware"
)

// update decodes an update as the Bot API sends it, so that the cases read
// like real updates and exercise the models' JSON decoding.
func update(t *testing.T, js string) *models.Update {
	t.Helper()
	var u models.Update
	if err := json.Unmarshal([]byte(js), &u); err != nil {
		t.Fatalf("decode %s: %v", js, err)
	}
	return &u
}

// TestKeyFuncs runs the table every Telegram adapter runs
// (internal/tgkey/tgkeytest): the same updates, the same keys.
func TestKeyFuncs(t *testing.T) {
	t.Parallel()
	f := func(key middleware.KeyFunc[*models.Update]) func(*testing.T, string) (string, error) {
		return func(t *testing.T, js string) (string, error) { return key(context.Background(), update(t, js)) }
	}
	tgkeytest.Run(t, tgkeytest.Funcs{
		tgkey.Chat:        f(ChatKey),
		tgkey.User:        f(UserKey),
		tgkey.UserInChat:  f(UserInChatKey),
		tgkey.Topic:       f(TopicKey),
		tgkey.UserInTopic: f(UserInTopicKey),
	}, "guest_message") // go-telegram/bot v1.19 does not decode guest_message
}

// TestForBot: several bots in one store and namespace keep their sessions
// apart; an update without a key stays without one.
func TestForBot(t *testing.T) {
	t.Parallel()
	u := update(t, `{"update_id":1,"message":{"message_id":1,"date":1,"chat":{"id":42,"type":"private"},"from":{"id":42,"is_bot":false,"first_name":"A"},"text":"hi"}}`)
	a, _ := ForBot(111, ChatKey)(context.Background(), u)
	b, _ := ForBot(222, ChatKey)(context.Background(), u)
	if a != "bot111:42" || b != "bot222:42" {
		t.Errorf("ForBot keys %q, %q; want bot111:42 and bot222:42", a, b)
	}
	poll := update(t, `{"update_id":13,"poll":{"id":"p","question":"?","options":[],"total_voter_count":0,"is_closed":false,"is_anonymous":true,"type":"regular","allows_multiple_answers":false}}`)
	if k, err := ForBot(111, ChatKey)(context.Background(), poll); k != "" || !errors.Is(err, middleware.ErrNoKey) {
		t.Errorf("ForBot on a poll = %q, %v; want ErrNoKey", k, err)
	}
}

func TestNoKeyErrorSaysWhy(t *testing.T) {
	t.Parallel()
	u := update(t, `{"update_id":77,"inline_query":{"id":"q","from":{"id":14,"is_bot":false,"first_name":"H"},"query":"go","offset":""}}`)
	_, err := ChatKey(context.Background(), u)
	if err == nil || !strings.Contains(err.Error(), "update 77 (inline_query) has no chat") {
		t.Errorf("ChatKey error = %v; want it to name the update, its kind and what is missing", err)
	}
	for _, f := range []middleware.KeyFunc[*models.Update]{ChatKey, UserKey, UserInChatKey, TopicKey, UserInTopicKey} {
		if _, err := f(context.Background(), nil); !errors.Is(err, middleware.ErrNoKey) {
			t.Errorf("key of a nil update: %v; want ErrNoKey", err)
		}
	}
}
