package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/typedsession/session/store/filestore"
)

// fakeAPI is a Bot API server for one bot, with the getUpdates semantics of
// the real one: an update stays pending until a getUpdates asks for a
// higher offset, so a bot that stops before confirming it gets it again.
type fakeAPI struct {
	t *testing.T

	mu      sync.Mutex
	nextID  int64
	pending []map[string]any // updates not yet confirmed, in ID order
	wake    chan struct{}    // closed when updates are pushed or confirmed
	sent    []sentMessage
}

type sentMessage struct {
	Chat   int64
	Thread int
	Text   string
}

func newFakeAPI(t *testing.T) (*fakeAPI, *httptest.Server) {
	f := &fakeAPI{t: t, nextID: 1000, wake: make(chan struct{})}
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	return f, srv
}

// changed wakes everyone waiting; f.mu must be held.
func (f *fakeAPI) changed() {
	close(f.wake)
	f.wake = make(chan struct{})
}

func (f *fakeAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	method := r.URL.Path[strings.LastIndexByte(r.URL.Path, '/')+1:]
	if err := r.ParseMultipartForm(1 << 20); err != nil && method != "getMe" {
		if r.Context().Err() != nil || errors.Is(err, io.ErrUnexpectedEOF) {
			// The client went away mid-request: a long poll cut off
			// by the bot's shutdown. The real API sees a closed
			// connection, not a bad request, and answers nothing.
			return
		}
		f.t.Errorf("%s: parse form: %v", method, err)
	}
	reply := func(result any) {
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]any{"ok": true, "result": result})
	}
	switch method {
	case "getMe":
		reply(map[string]any{"id": 1, "is_bot": true, "first_name": "Quiz", "username": "quiz_test_bot"})
	case "getUpdates":
		offset, _ := strconv.ParseInt(r.FormValue("offset"), 10, 64)
		f.mu.Lock()
		n := len(f.pending)
		f.pending = slices.DeleteFunc(f.pending, func(u map[string]any) bool { return u["update_id"].(int64) < offset })
		if len(f.pending) != n {
			f.changed()
		}
		if len(f.pending) > 0 {
			batch := slices.Clone(f.pending)
			f.mu.Unlock()
			reply(batch)
			return
		}
		wake := f.wake
		f.mu.Unlock()
		// A short long poll: answer [] when nothing comes, and let the
		// bot ask again.
		t := time.NewTimer(50 * time.Millisecond)
		defer t.Stop()
		select {
		case <-wake:
		case <-t.C:
		case <-r.Context().Done():
		}
		reply([]any{})
	case "sendMessage":
		chat, err := strconv.ParseInt(r.FormValue("chat_id"), 10, 64)
		if err != nil {
			f.t.Errorf("sendMessage: chat_id %q", r.FormValue("chat_id"))
		}
		thread, _ := strconv.Atoi(r.FormValue("message_thread_id"))
		f.mu.Lock()
		f.sent = append(f.sent, sentMessage{chat, thread, r.FormValue("text")})
		f.changed()
		f.mu.Unlock()
		reply(map[string]any{"message_id": 1, "date": 1, "chat": map[string]any{"id": chat, "type": "private"}, "text": r.FormValue("text")})
	case "answerCallbackQuery":
		reply(true)
	default:
		f.t.Errorf("unexpected Bot API method %s", method)
		w.WriteHeader(http.StatusNotFound)
		json.NewEncoder(w).Encode(map[string]any{"ok": false, "error_code": 404, "description": "Not Found"})
	}
}

// push queues updates as one getUpdates batch, giving them IDs.
func (f *fakeAPI) push(updates ...map[string]any) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, u := range updates {
		f.nextID++
		u["update_id"] = f.nextID
		f.pending = append(f.pending, u)
	}
	f.changed()
}

// waitFor waits until cond holds (with f.mu held) or ctx ends.
func (f *fakeAPI) waitFor(ctx context.Context, what string, cond func() bool) {
	f.t.Helper()
	for {
		f.mu.Lock()
		ok, wake := cond(), f.wake
		f.mu.Unlock()
		if ok {
			return
		}
		select {
		case <-wake:
		case <-ctx.Done():
			f.mu.Lock()
			defer f.mu.Unlock()
			f.t.Fatalf("waiting for %s: %v; sent so far: %+v", what, ctx.Err(), f.sent)
		}
	}
}

// exchange pushes a batch and waits until the bot has sent n more
// messages and confirmed the batch (asked for updates after it).
func (f *fakeAPI) exchange(ctx context.Context, n int, updates ...map[string]any) []sentMessage {
	f.t.Helper()
	f.mu.Lock()
	before := len(f.sent)
	f.mu.Unlock()
	f.push(updates...)
	f.waitFor(ctx, fmt.Sprintf("%d replies", n), func() bool { return len(f.sent) >= before+n })
	f.waitFor(ctx, "the batch to be confirmed", func() bool { return len(f.pending) == 0 })
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.sent) != before+n {
		f.t.Fatalf("bot sent %d replies; want %d: %+v", len(f.sent)-before, n, f.sent[before:])
	}
	return slices.Clone(f.sent[before:])
}

func msg(chat, user int64, text string) map[string]any {
	typ := "private"
	if chat < 0 {
		typ = "supergroup"
	}
	return map[string]any{"message": map[string]any{
		"message_id": 1, "date": 1, "text": text,
		"chat": map[string]any{"id": chat, "type": typ},
		"from": map[string]any{"id": user, "is_bot": false, "first_name": fmt.Sprint("user", user)},
	}}
}

func button(chat, user int64, data string) map[string]any {
	return map[string]any{"callback_query": map[string]any{
		"id": "cb" + data, "chat_instance": "ci", "data": data,
		"from":    map[string]any{"id": user, "is_bot": false, "first_name": fmt.Sprint("user", user)},
		"message": map[string]any{"message_id": 2, "date": 1, "chat": map[string]any{"id": chat, "type": "supergroup"}, "text": "Question 1/10"},
	}}
}

// texts returns the texts sent to chat, in order.
func texts(sent []sentMessage, chat int64) []string {
	var out []string
	for _, s := range sent {
		if s.Chat == chat {
			out = append(out, s.Text)
		}
	}
	return out
}

// startBot runs the program in Telegram mode until the returned stop is
// called; stop returns what it printed.
func startBot(ctx context.Context, t *testing.T, apiURL, dir string) (stop func() string) {
	t.Helper()
	ctx, cancel := context.WithCancel(ctx)
	var out strings.Builder
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"-dir", dir, "-token", "1:test", "-telegram-api", apiURL}, strings.NewReader(""), &out)
	}()
	return func() string {
		cancel()
		if err := <-done; err != nil {
			t.Fatalf("run: %v; output:\n%s", err, out.String())
		}
		return out.String()
	}
}

const (
	alice, bob, carol = 11, 22, 33
	group             = -100
)

// TestTelegramEndToEnd runs the real go-telegram/bot client against a fake
// Bot API server: several players, two answers of one player in one batch
// (handled at the same time; both must count), then a restart of the bot
// on the same store that continues every quiz.
func TestTelegramEndToEnd(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	api, srv := newFakeAPI(t)
	dir := t.TempDir()

	stop := startBot(ctx, t, srv.URL, dir)
	sent := api.exchange(ctx, 3, msg(alice, alice, "/quiz"), msg(bob, bob, "/quiz"), msg(group, carol, "/quiz"))
	for _, chat := range []int64{alice, bob, group} {
		if got := texts(sent, chat); len(got) != 1 || !strings.HasPrefix(got[0], "Question 1/10") {
			t.Errorf("chat %d got %q; want question 1", chat, got)
		}
	}
	// Alice answers twice in one batch: "3" is right for questions 1 and
	// 2, in whichever order the two handlers get her session.
	sent = api.exchange(ctx, 3, msg(alice, alice, "3"), msg(alice, alice, "3"), msg(bob, bob, "1"))
	got := texts(sent, alice)
	slices.Sort(got)
	if len(got) != 2 || !strings.HasPrefix(got[0], "Right!\nQuestion 2/10") || !strings.HasPrefix(got[1], "Right!\nQuestion 3/10") {
		t.Errorf("alice got %q; want two right answers, then questions 2 and 3", got)
	}
	if got := texts(sent, bob); len(got) != 1 || !strings.HasPrefix(got[0], "Wrong: it was Paris.\nQuestion 2/10") {
		t.Errorf("bob got %q", got)
	}
	// Carol answers with a button; alice looks in the group, where she
	// has no quiz; a channel post has no player and gets no reply.
	channelPost := map[string]any{"channel_post": map[string]any{"message_id": 1, "date": 1, "text": "news", "chat": map[string]any{"id": -200, "type": "channel"}}}
	sent = api.exchange(ctx, 2, button(group, carol, "3"), msg(group, alice, "/score"), channelPost)
	if got := texts(sent, group); !slices.ContainsFunc(got, func(s string) bool { return strings.HasPrefix(s, "Right!\nQuestion 2/10") }) ||
		!slices.ContainsFunc(got, func(s string) bool { return strings.HasPrefix(s, "No quiz played yet") }) {
		t.Errorf("group got %q; want carol's right answer and alice's empty score", got)
	}
	out1 := stop()
	if !strings.Contains(out1, "Quiz bot @quiz_test_bot is running on Telegram. Sessions are kept in files under "+dir) {
		t.Errorf("banner missing:\n%s", out1)
	}

	// Restart: a new bot on the same store continues every quiz.
	stop = startBot(ctx, t, srv.URL, dir)
	sent = api.exchange(ctx, 3, msg(alice, alice, "/score"), msg(bob, bob, "/score"), msg(group, carol, "/score"))
	want := map[int64]string{
		alice: "Score: 2 of 2 answered, at question 3/10. Best: 0.",
		bob:   "Score: 0 of 1 answered, at question 2/10. Best: 0.",
		group: "Score: 1 of 1 answered, at question 2/10. Best: 0.",
	}
	for chat, w := range want {
		if got := texts(sent, chat); len(got) != 1 || got[0] != w {
			t.Errorf("after restart, chat %d got %q; want %q", chat, got, w)
		}
	}
	sent = api.exchange(ctx, 1, msg(alice, alice, "Mars"))
	if got := texts(sent, alice); len(got) != 1 || !strings.HasPrefix(got[0], "Right!\nQuestion 4/10") {
		t.Errorf("alice got %q; want question 4", got)
	}
	out2 := stop()
	for _, out := range []string{out1, out2} {
		if strings.Contains(out, "session ") || strings.Contains(out, "telegram: ") {
			t.Errorf("the bot reported errors:\n%s", out)
		}
	}

	st, err := filestore.New(dir, filestore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	for key, want := range map[string]view{
		"11:11":   {Running: &Asking{Question: 3, Score: 3, Answers: []string{"Paris", "Seven", "Mars"}}},
		"22:22":   {Running: &Asking{Question: 1, Score: 0, Answers: []string{"Berlin"}}},
		"-100:33": {Running: &Asking{Question: 1, Score: 1, Answers: []string{"Paris"}}},
	} {
		if diff := cmp.Diff(want, loadQuiz(t, st, "quiz", key)); diff != "" {
			t.Errorf("%s: stored quiz mismatch (-want +got):\n%s", key, diff)
		}
	}
	// Alice only asked for her score in the group: nothing was stored.
	if _, err := st.Get(context.Background(), "quiz:-100:11"); err == nil {
		t.Error("a session nobody changed was stored for alice in the group")
	}
}
