package telegosession

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mymmrac/telego"
	th "github.com/mymmrac/telego/telegohandler"

	session "github.com/typedsession/session"
	"github.com/typedsession/session/middleware"
	"github.com/typedsession/session/store/memstore"
	"github.com/typedsession/session/store/storetest"
)

type counter struct {
	N     int      `json:"n" validate:"gte=0,lte=1000"`
	Texts []string `json:"texts"`
}

type profile struct {
	Name string `json:"name" validate:"max=5"`
}

func newStore(t *testing.T) *storetest.Counter {
	t.Helper()
	st, err := memstore.New(memstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return storetest.NewCounter(st) // counts the writes that reach the store
}

func newManager[T any](t *testing.T, st *storetest.Counter, ns string) *session.Manager[T] {
	t.Helper()
	m, err := session.New(session.Config[T]{Store: st, Namespace: ns})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// harness runs a telego BotHandler on a channel of updates, as telego's
// long polling or webhook feeds it, with a bot that talks to no server.
type harness struct {
	bh      *th.BotHandler
	updates chan telego.Update
	pending sync.WaitGroup // updates sent and not yet through the chain

	mu   sync.Mutex
	errs []error // what the BotHandler's error handler received
}

// newHarness makes a BotHandler whose outermost middleware marks the end
// of each update (after the session middlewares have saved); setup
// installs the rest.
func newHarness(t *testing.T, setup func(bh *th.BotHandler)) *harness {
	t.Helper()
	bot, err := telego.NewBot("123456:"+strings.Repeat("a", 35), telego.WithDiscardLogger())
	if err != nil {
		t.Fatal(err)
	}
	h := &harness{updates: make(chan telego.Update, 100)}
	// An update is done when its handlers returned nil, or when the error
	// handler has heard of their error: telego calls the error handler
	// after the chain returns, and handles updates concurrently, so a
	// count kept in a middleware alone would let the test look before an
	// error arrived.
	h.bh, err = th.NewBotHandler(bot, h.updates, th.WithErrorHandler(func(_ *th.Context, _ telego.Update, err error) {
		h.mu.Lock()
		h.errs = append(h.errs, err)
		h.mu.Unlock()
		h.pending.Done()
	}))
	if err != nil {
		t.Fatal(err)
	}
	h.bh.Use(func(ctx *th.Context, u telego.Update) (err error) {
		defer func() {
			if err == nil {
				h.pending.Done()
			}
		}()
		return ctx.Next(u)
	})
	setup(h.bh)
	started := make(chan error, 1)
	go func() { started <- h.bh.Start() }()
	t.Cleanup(func() {
		h.pending.Wait()
		if err := h.bh.Stop(); err != nil {
			t.Errorf("Stop: %v", err)
		}
		if err := <-started; err != nil {
			t.Errorf("Start: %v", err)
		}
	})
	return h
}

// send hands u to the BotHandler without waiting for it.
func (h *harness) send(u telego.Update) {
	h.pending.Add(1)
	h.updates <- u
}

// process hands u to the BotHandler and waits until it is through.
func (h *harness) process(u telego.Update) {
	h.send(u)
	h.pending.Wait()
}

func (h *harness) errors() []error {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]error(nil), h.errs...)
}

func message(id int, chat, user int64, text string) telego.Update {
	m := &telego.Message{MessageID: id, Date: 1, Chat: telego.Chat{ID: chat}, Text: text}
	if user != 0 {
		m.From = &telego.User{ID: user}
	}
	return telego.Update{UpdateID: id, Message: m}
}

func load[T any](t *testing.T, m *session.Manager[T], key string) *session.Session[T] {
	t.Helper()
	s, err := m.Load(context.Background(), key)
	if err != nil {
		t.Fatalf("Load(%q): %v", key, err)
	}
	return s
}

// count adds one to the counter and records the text; the text "fail"
// makes it fail after changing the session.
func count(ctx *th.Context, msg telego.Message) error {
	s, err := session.From[counter](ctx)
	if err != nil {
		return err
	}
	s.Data.N++
	s.Data.Texts = append(s.Data.Texts, msg.Text)
	if msg.Text == "fail" {
		return errors.New("reply failed")
	}
	return nil
}

// TestNewChangedUnchanged walks one user's session through a new session,
// a change, an update that changes nothing, and a failed handler.
func TestNewChangedUnchanged(t *testing.T) {
	t.Parallel()
	st := newStore(t)
	m := newManager[counter](t, st, "c")
	var mu sync.Mutex
	var isNew []bool
	h := newHarness(t, func(bh *th.BotHandler) {
		bh.Use(New(m, UserInChatKey, middleware.Options{}))
		bh.HandleMessage(func(ctx *th.Context, msg telego.Message) error {
			s, err := session.From[counter](ctx)
			if err != nil {
				return err
			}
			mu.Lock()
			isNew = append(isNew, s.IsNew())
			mu.Unlock()
			if msg.Text == "look" {
				return nil // reads only
			}
			return count(ctx, msg)
		})
	})

	h.process(message(1, -5, 6, "hello"))
	if got := load(t, m, "-5:6").Data; got.N != 1 || st.Writes() != 1 {
		t.Fatalf("after a new session: N = %d, %d writes; want 1 and 1", got.N, st.Writes())
	}
	h.process(message(2, -5, 6, "again"))
	if got := load(t, m, "-5:6").Data; got.N != 2 || st.Writes() != 2 {
		t.Fatalf("after a change: N = %d, %d writes; want 2 and 2", got.N, st.Writes())
	}
	h.process(message(3, -5, 6, "look"))
	if w := st.Writes(); w != 2 {
		t.Errorf("an unchanged session was written: %d writes, want 2", w)
	}
	h.process(message(4, -5, 6, "fail"))
	if got := load(t, m, "-5:6").Data; got.N != 2 || st.Writes() != 2 {
		t.Errorf("after a failed handler: N = %d, %d writes; want 2 and 2: its changes must be discarded", got.N, st.Writes())
	}
	mu.Lock()
	defer mu.Unlock()
	if want := []bool{true, false, false, false}; fmt.Sprint(isNew) != fmt.Sprint(want) {
		t.Errorf("IsNew per update = %v; want %v", isNew, want)
	}
	if e := h.errors(); len(e) != 1 || e[0].Error() != "reply failed" {
		t.Errorf("the error handler got %v; want the handler's own error once", e)
	}
}

// TestConcurrentUpdatesOfOneUser sends many updates of one user at once;
// telego handles each in its own goroutine, and per-key serialization
// makes every one of them count.
func TestConcurrentUpdatesOfOneUser(t *testing.T) {
	t.Parallel()
	st := newStore(t)
	m := newManager[counter](t, st, "c")
	locks := middleware.NewLockTable()
	h := newHarness(t, func(bh *th.BotHandler) {
		bh.Use(New(m, UserKey, middleware.Options{Locker: locks}))
		bh.HandleMessage(func(ctx *th.Context, msg telego.Message) error {
			s, err := session.From[counter](ctx)
			if err != nil {
				return err
			}
			s.Data.N++
			time.Sleep(100 * time.Microsecond) // widen the window for a lost update
			s.Data.Texts = append(s.Data.Texts, msg.Text)
			return nil
		})
	})
	const n = 40
	for i := range n {
		h.send(message(i, 100, 7, fmt.Sprint(i)))
		h.send(message(n+i, -5, 8, fmt.Sprint(i))) // another user in a group
	}
	h.pending.Wait()
	if e := h.errors(); len(e) > 0 {
		t.Fatalf("the error handler got %d errors, first: %v", len(e), e[0])
	}
	for _, key := range []string{"7", "8"} {
		s := load(t, m, key)
		if s.Data.N != n || len(s.Data.Texts) != n {
			t.Errorf("user %s: N = %d, %d texts; want %d of each: updates were lost", key, s.Data.N, len(s.Data.Texts), n)
		}
	}
	if k := locks.Len(); k != 0 {
		t.Errorf("lock table holds %d keys, want 0", k)
	}
}

// TestPlaceholderSenders sends messages from each placeholder user of the
// Bot API, each on behalf of two different chats: every sender chat gets
// a session of its own, none is keyed by the placeholder.
func TestPlaceholderSenders(t *testing.T) {
	t.Parallel()
	st := newStore(t)
	m := newManager[counter](t, st, "c")
	h := newHarness(t, func(bh *th.BotHandler) {
		bh.Use(New(m, UserKey, middleware.Options{}))
		bh.HandleMessage(count)
	})
	id := 0
	for _, placeholder := range []int64{1087968824, 777000, 136817688} {
		for _, sender := range []int64{-1001, -1002} {
			id++
			u := message(id, -1000, placeholder, fmt.Sprint(placeholder))
			u.Message.SenderChat = &telego.Chat{ID: sender - placeholder} // distinct per placeholder
			h.process(u)
		}
	}
	for _, placeholder := range []int64{1087968824, 777000, 136817688} {
		if s := load(t, m, fmt.Sprint(placeholder)); !s.IsNew() {
			t.Errorf("a session is keyed by the placeholder user %d: %+v", placeholder, s.Data)
		}
		for _, sender := range []int64{-1001, -1002} {
			key := fmt.Sprint(sender - placeholder)
			if got := load(t, m, key).Data; got.N != 1 || got.Texts[0] != fmt.Sprint(placeholder) {
				t.Errorf("sender chat %s: %+v; want its own session with one message", key, got)
			}
		}
	}
	if e := h.errors(); len(e) > 0 {
		t.Errorf("the error handler got %v", e)
	}
}

// TestUpdateWithoutKeyRunsWithoutSession: a channel post has no user.
func TestUpdateWithoutKeyRunsWithoutSession(t *testing.T) {
	t.Parallel()
	st := newStore(t)
	m := newManager[counter](t, st, "c")
	var got error
	ran := false
	h := newHarness(t, func(bh *th.BotHandler) {
		bh.Use(New(m, UserKey, middleware.Options{}))
		bh.HandleChannelPost(func(ctx *th.Context, _ telego.Message) error {
			ran = true
			_, got = session.From[counter](ctx)
			return nil
		})
	})
	h.process(telego.Update{UpdateID: 1, ChannelPost: &telego.Message{MessageID: 1, Date: 1, Chat: telego.Chat{ID: -100, Type: "channel"}, Text: "news"}})
	if !ran || !errors.Is(got, session.ErrNoSession) {
		t.Errorf("handler ran = %v, From error = %v; want it to run and get ErrNoSession", ran, got)
	}
	if w := st.Writes(); w != 0 {
		t.Errorf("%d writes; want none", w)
	}
}

// A stored session that does not validate: Name is longer than 5.
var badProfile = []byte(`{"typedsession":1,"data":{"name":"much too long"}}`)

// TestLoadErrorStopsHandler: the handler does not run, and the error
// reaches Options.OnError and the BotHandler's error handler.
func TestLoadErrorStopsHandler(t *testing.T) {
	t.Parallel()
	st := newStore(t)
	m := newManager[profile](t, st, "p")
	if err := st.Unwrap().Set(context.Background(), "p:6", badProfile, 0); err != nil {
		t.Fatal(err)
	}
	var ops []string
	ran := false
	h := newHarness(t, func(bh *th.BotHandler) {
		bh.Use(New(m, UserKey, middleware.Options{OnError: func(_ context.Context, op, key string, _ error) {
			ops = append(ops, op+" "+key)
		}}))
		bh.HandleMessage(func(*th.Context, telego.Message) error { ran = true; return nil })
	})
	h.process(message(1, 6, 6, "x"))
	if ran {
		t.Error("the handler ran although its session could not be loaded")
	}
	if e := h.errors(); len(e) != 1 || !errors.Is(e[0], session.ErrInvalid) {
		t.Errorf("the error handler got %v; want one ErrInvalid", e)
	}
	if fmt.Sprint(ops) != "[load 6]" {
		t.Errorf("Options.OnError got %v; want [load 6]", ops)
	}
}

// TestNestedMiddlewares gives a handler two sessions, one from the bot
// handler and one from a group; a failure inside makes both discard their
// changes.
func TestNestedMiddlewares(t *testing.T) {
	t.Parallel()
	st := newStore(t)
	mc := newManager[counter](t, st, "c")
	mp := newManager[profile](t, st, "p")
	h := newHarness(t, func(bh *th.BotHandler) {
		bh.Use(New(mc, ChatKey, middleware.Options{}))
		g := bh.Group(th.AnyMessage())
		g.Use(New(mp, UserKey, middleware.Options{}))
		g.HandleMessage(func(ctx *th.Context, msg telego.Message) error {
			cs, err := session.From[counter](ctx)
			if err != nil {
				return err
			}
			ps, err := session.From[profile](ctx)
			if err != nil {
				return err
			}
			cs.Data.N++
			ps.Data.Name = msg.Text // more than 5 bytes fails validation on save
			if msg.Text == "boom" {
				return errors.New("boom")
			}
			return nil
		})
	})
	h.process(message(1, 5, 6, "ann"))           // both saved
	h.process(message(2, 5, 6, "boom"))          // handler fails: neither saved
	h.process(message(3, 5, 6, "much too long")) // inner save fails: outer not saved
	if got := load(t, mc, "5").Data.N; got != 1 {
		t.Errorf("counter N = %d; want 1", got)
	}
	if got := load(t, mp, "6").Data.Name; got != "ann" {
		t.Errorf("profile Name = %q; want %q", got, "ann")
	}
	e := h.errors()
	if len(e) != 2 || e[0].Error() != "boom" || !errors.Is(e[1], session.ErrInvalid) {
		t.Errorf("the error handler got %v; want the handler's error, then the inner session's save error", e)
	}
}

func TestNewPanicsOnNil(t *testing.T) {
	t.Parallel()
	st := newStore(t)
	m := newManager[counter](t, st, "c")
	for name, f := range map[string]func(){
		"nil key":     func() { New(m, nil, middleware.Options{}) },
		"nil manager": func() { New[counter](nil, ChatKey, middleware.Options{}) },
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("%s: no panic", name)
				}
			}()
			f()
		}()
	}
}
