package tgkey

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/typedsession/session/middleware"
)

func TestKeyString(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		key  Key
		want string
	}{
		{Key{Scope: Chat, ChatID: -100}, "-100"},
		{Key{Scope: User, UserID: 7, ChatID: -100}, "7"},
		{Key{Scope: UserInChat, ChatID: -100, UserID: 7}, "-100:7"},
		{Key{Scope: Topic, ChatID: -100, ThreadID: 9}, "-100:9"},
		{Key{Scope: UserInTopic, ChatID: -100, ThreadID: 9, UserID: 7}, "-100:9:7"},
		{Key{Scope: Chat, ChatID: 42, BusinessConnectionID: "c"}, "business:c:42"},
		{Key{Scope: User, UserID: 42, BusinessConnectionID: "c"}, "42"},
		{Key{Scope: UserInChat, ChatID: 42, UserID: 42, Guest: true}, "guest:42:42"},
		{Key{Scope: UserInChat, ChatID: 42, UserID: 42, BotID: 5, BusinessConnectionID: "c"}, "bot5:business:c:42:42"},
		{Key{Scope: User, UserID: 42, BotID: 5}, "bot5:42"},
	} {
		if got := tc.key.String(); got != tc.want {
			t.Errorf("%+v.String() = %q, want %q", tc.key, got, tc.want)
		}
	}
}

func TestMakeNoKey(t *testing.T) {
	t.Parallel()
	if _, err := Make(nil, Chat); !errors.Is(err, middleware.ErrNoKey) {
		t.Errorf("Make(nil) = %v, want ErrNoKey", err)
	}
	u := &Update{ID: 3, Kind: "inline_query", Sender: 7}
	_, err := Make(u, UserInChat)
	if !errors.Is(err, middleware.ErrNoKey) || !strings.Contains(err.Error(), "update 3 (inline_query) has no chat") {
		t.Errorf("Make(inline query, UserInChat) = %v; want ErrNoKey naming the update, its kind and the chat", err)
	}
	_, err = Make(&Update{ID: 4, Chat: -1}, Topic)
	if !strings.Contains(err.Error(), "update 4 (unknown kind) has no topic") {
		t.Errorf("Make(no topic) = %v", err)
	}
}

func TestForBotPanics(t *testing.T) {
	t.Parallel()
	key := func(context.Context, int) (string, error) { return "k", nil }
	for name, f := range map[string]func(){
		"zero ID":  func() { ForBot(0, key) },
		"nil func": func() { ForBot[int](1, nil) },
	} {
		func() {
			defer func() {
				if r := recover(); r == nil {
					t.Errorf("ForBot with %s did not panic", name)
				}
			}()
			f()
		}()
	}
	if k, _ := ForBot(9, key)(context.Background(), 0); k != "bot9:k" {
		t.Errorf("ForBot(9) key = %q, want bot9:k", k)
	}
}
