package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"testing"

	tgbotapi "github.com/go-telegram-bot-api/telegram-bot-api/v5"

	session "github.com/typedsession/session"
	"github.com/typedsession/session/middleware"
	"github.com/typedsession/session/store/memstore"
	"github.com/typedsession/session/store/storetest"
)

// recorder stands in for the Bot API (there is no Telegram server here):
// it records each reply, and fails every reply to a chat in failChats.
type recorder struct {
	mu        sync.Mutex
	replies   []string
	failChats map[int64]bool
}

func (r *recorder) Send(c tgbotapi.Chattable) (tgbotapi.Message, error) {
	msg := c.(tgbotapi.MessageConfig)
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.failChats[msg.ChatID] {
		return tgbotapi.Message{}, errors.New("send: network is down")
	}
	r.replies = append(r.replies, fmt.Sprintf("%d: %s", msg.ChatID, msg.Text))
	return tgbotapi.Message{}, nil
}

func (r *recorder) all() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.replies...)
}

type bot struct {
	st   *storetest.Counter
	m    *session.Manager[Notes]
	rec  *recorder
	h    middleware.Handler[*tgbotapi.Update]
	mu   sync.Mutex
	errs []error
}

func newBot(t *testing.T) *bot {
	t.Helper()
	ms, err := memstore.New(memstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ms.Close() })
	b := &bot{st: storetest.NewCounter(ms), rec: &recorder{failChats: map[int64]bool{}}}
	b.m, err = session.New(session.Config[Notes]{Store: b.st, Namespace: "notes"})
	if err != nil {
		t.Fatal(err)
	}
	b.h = newHandler(b.m, b.rec)
	return b
}

// run feeds updates to serve through a channel, as GetUpdatesChan does,
// and returns when every one of them is handled (serve handles them
// concurrently).
func (b *bot) run(updates ...tgbotapi.Update) {
	ch := make(chan tgbotapi.Update, len(updates))
	for _, u := range updates {
		ch <- u
	}
	close(ch)
	serve(context.Background(), ch, b.h, func(err error) {
		b.mu.Lock()
		b.errs = append(b.errs, err)
		b.mu.Unlock()
	})
}

func (b *bot) errors() []error {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]error(nil), b.errs...)
}

func (b *bot) notes(t *testing.T, key string) *session.Session[Notes] {
	t.Helper()
	s, err := b.m.Load(context.Background(), key)
	if err != nil {
		t.Fatalf("Load(%q): %v", key, err)
	}
	return s
}

// update decodes an update as the Bot API sends it, into the library's
// own tgbotapi.Update.
func update(t *testing.T, js string) tgbotapi.Update {
	t.Helper()
	var u tgbotapi.Update
	if err := json.Unmarshal([]byte(js), &u); err != nil {
		t.Fatalf("decode %s: %v", js, err)
	}
	return u
}

func text(id int, chat, user int64, s string) tgbotapi.Update {
	m := &tgbotapi.Message{MessageID: id, Date: 1, Chat: &tgbotapi.Chat{ID: chat}, From: &tgbotapi.User{ID: user}, Text: s}
	if strings.HasPrefix(s, "/") {
		m.Entities = []tgbotapi.MessageEntity{{Type: "bot_command", Offset: 0, Length: len(s)}}
	}
	return tgbotapi.Update{UpdateID: id, Message: m}
}

// TestNewChangedUnchangedFailed walks one user's session through a new
// session, a change, a read-only command and a reply that fails.
func TestNewChangedUnchangedFailed(t *testing.T) {
	t.Parallel()
	b := newBot(t)
	b.run(text(1, -5, 6, "milk"))
	if s := b.notes(t, "-5:6"); len(s.Data.Items) != 1 || b.st.Writes() != 1 {
		t.Fatalf("after a new session: %v, %d writes; want one note, one write", s.Data.Items, b.st.Writes())
	}
	b.run(text(2, -5, 6, "eggs"))
	if w := b.st.Writes(); w != 2 {
		t.Fatalf("after a change: %d writes; want 2", w)
	}
	b.run(text(3, -5, 6, "/list"))
	if w := b.st.Writes(); w != 2 {
		t.Errorf("a read-only update wrote the session: %d writes; want 2", w)
	}
	b.rec.mu.Lock()
	b.rec.failChats[-5] = true
	b.rec.mu.Unlock()
	b.run(text(4, -5, 6, "bread")) // the reply fails: the note must not be kept
	if s := b.notes(t, "-5:6"); fmt.Sprint(s.Data.Items) != "[milk eggs]" || b.st.Writes() != 2 {
		t.Errorf("after a failed reply: %v, %d writes; want [milk eggs] and 2", s.Data.Items, b.st.Writes())
	}
	want := []string{"-5: Noted (1).", "-5: Noted (2).", "-5: Notes:\n- milk\n- eggs"}
	if got := b.rec.all(); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("replies = %q; want %q", got, want)
	}
	if e := b.errors(); len(e) != 1 || !strings.Contains(e[0].Error(), "network is down") {
		t.Errorf("errors = %v; want the failed reply", e)
	}
}

// TestConcurrentUpdatesOfOneUser: serve runs every update in its own
// goroutine; the middleware's per-key lock keeps all of them.
func TestConcurrentUpdatesOfOneUser(t *testing.T) {
	t.Parallel()
	b := newBot(t)
	const n = 20 // Notes allows 20 items
	var updates []tgbotapi.Update
	for i := range n {
		updates = append(updates, text(i, 7, 7, fmt.Sprint(i)), text(n+i, -9, 8, fmt.Sprint(i)))
	}
	b.run(updates...)
	if e := b.errors(); len(e) > 0 {
		t.Fatalf("errors: %v", e)
	}
	for _, key := range []string{"7:7", "-9:8"} {
		items := b.notes(t, key).Data.Items
		sort.Slice(items, func(i, j int) bool {
			return len(items[i]) < len(items[j]) || (len(items[i]) == len(items[j]) && items[i] < items[j])
		})
		want := make([]string, n)
		for i := range want {
			want[i] = fmt.Sprint(i)
		}
		if fmt.Sprint(items) != fmt.Sprint(want) {
			t.Errorf("%s: notes %v; want all of %v: updates were lost", key, items, want)
		}
	}
}

// TestPlaceholderSenders: each placeholder user of the Bot API, on behalf
// of two different chats, gives two sessions, none keyed by the
// placeholder.
func TestPlaceholderSenders(t *testing.T) {
	t.Parallel()
	b := newBot(t)
	id := 0
	for _, placeholder := range []int64{1087968824, 777000, 136817688} {
		for _, sender := range []int64{-1001, -1002} {
			id++
			u := update(t, fmt.Sprintf(`{"update_id":%d,"message":{"message_id":%d,"date":1,"chat":{"id":-1000,"type":"supergroup"},"from":{"id":%d,"is_bot":true,"first_name":"P"},"sender_chat":{"id":%d,"type":"channel"},"text":"from %d"}}`,
				id, id, placeholder, sender-placeholder, placeholder))
			b.run(u)
		}
	}
	for _, placeholder := range []int64{1087968824, 777000, 136817688} {
		if s := b.notes(t, fmt.Sprintf("-1000:%d", placeholder)); !s.IsNew() {
			t.Errorf("a session is keyed by the placeholder user %d: %v", placeholder, s.Data.Items)
		}
		for _, sender := range []int64{-1001, -1002} {
			key := fmt.Sprintf("-1000:%d", sender-placeholder)
			if items := b.notes(t, key).Data.Items; fmt.Sprint(items) != fmt.Sprintf("[from %d]", placeholder) {
				t.Errorf("sender chat %s: %v; want its own session with one note", key, items)
			}
		}
	}
	if e := b.errors(); len(e) > 0 {
		t.Errorf("errors: %v", e)
	}
}

// TestUpdatesWithoutSession: a channel post and an inline query have no
// sender in a chat; the handler runs without a session and nothing is
// stored.
func TestUpdatesWithoutSession(t *testing.T) {
	t.Parallel()
	b := newBot(t)
	b.run(
		update(t, `{"update_id":1,"channel_post":{"message_id":1,"date":1,"chat":{"id":-1004,"type":"channel"},"text":"news"}}`),
		update(t, `{"update_id":2,"inline_query":{"id":"q","from":{"id":14,"is_bot":false,"first_name":"H"},"query":"go","offset":""}}`),
	)
	if e := b.errors(); len(e) > 0 {
		t.Errorf("errors: %v", e)
	}
	if w := b.st.Writes(); w != 0 {
		t.Errorf("%d writes; want none", w)
	}
}

func TestUserInChatKey(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		update, want string
	}{
		{`{"update_id":1,"message":{"message_id":1,"date":1,"chat":{"id":42,"type":"private"},"from":{"id":42,"is_bot":false,"first_name":"A"},"text":"hi"}}`, "42:42"},
		{`{"update_id":5,"edited_message":{"message_id":1,"date":1,"edit_date":2,"chat":{"id":-5,"type":"group"},"from":{"id":9,"is_bot":false,"first_name":"D"},"text":"fixed"}}`, "-5:9"},
		{`{"update_id":7,"callback_query":{"id":"c1","from":{"id":11,"is_bot":false,"first_name":"E"},"chat_instance":"x","data":"2","message":{"message_id":3,"date":1,"chat":{"id":-1005,"type":"supergroup"},"from":{"id":1000,"is_bot":true,"first_name":"Bot"},"text":"Q?"}}}`, "-1005:11"},
		{`{"update_id":11,"chat_join_request":{"chat":{"id":-1007,"type":"supergroup"},"from":{"id":15,"is_bot":false,"first_name":"I"},"user_chat_id":15,"date":1}}`, "-1007:15"},
		{`{"update_id":20,"message":{"message_id":1,"date":1,"chat":{"id":-1001,"type":"supergroup"},"from":{"id":1087968824,"is_bot":true,"first_name":"Group","username":"GroupAnonymousBot"},"sender_chat":{"id":-1001,"type":"supergroup","title":"G"},"text":"hi"}}`, "-1001:-1001"},
		{`{"update_id":9,"callback_query":{"id":"c3","from":{"id":13,"is_bot":false,"first_name":"G"},"chat_instance":"x","inline_message_id":"im","data":"2"}}`, ""},
		{`{"update_id":6,"channel_post":{"message_id":1,"date":1,"chat":{"id":-1004,"type":"channel"},"text":"news"}}`, ""},
	} {
		u := update(t, tt.update)
		got, err := userInChatKey(context.Background(), &u)
		if tt.want == "" {
			if !errors.Is(err, middleware.ErrNoKey) {
				t.Errorf("%s: got %q, %v; want ErrNoKey", tt.update, got, err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("%s: got %q, %v; want %q", tt.update, got, err, tt.want)
		}
	}
}
