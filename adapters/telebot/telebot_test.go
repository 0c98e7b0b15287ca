package telebotsession

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	tele "gopkg.in/telebot.v4"

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

// botErrors collects what telebot's Settings.OnError receives.
type botErrors struct {
	mu   sync.Mutex
	errs []error
}

func (l *botErrors) hook(err error, _ tele.Context) {
	l.mu.Lock()
	l.errs = append(l.errs, err)
	l.mu.Unlock()
}

func (l *botErrors) all() []error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]error(nil), l.errs...)
}

// newBot returns a telebot bot that talks to no server (Settings.Offline):
// the tests feed it updates with ProcessUpdate, and its handlers do not
// call the Bot API.
func newBot(t *testing.T, sync bool, errs *botErrors) *tele.Bot {
	t.Helper()
	b, err := tele.NewBot(tele.Settings{Offline: true, Synchronous: sync, OnError: errs.hook})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func message(id int, chat, user int64, text string) tele.Update {
	m := &tele.Message{ID: id, Unixtime: 1, Chat: &tele.Chat{ID: chat}, Text: text}
	if user != 0 {
		m.Sender = &tele.User{ID: user}
	}
	return tele.Update{ID: id, Message: m}
}

func load[T any](t *testing.T, m *session.Manager[T], key string) *session.Session[T] {
	t.Helper()
	s, err := m.Load(context.Background(), key)
	if err != nil {
		t.Fatalf("Load(%q): %v", key, err)
	}
	return s
}

// count is a handler that adds one to the counter and records the text;
// the text "fail" makes it fail after changing the session.
func count(c tele.Context) error {
	s, err := From[counter](c)
	if err != nil {
		return err
	}
	s.Data.N++
	s.Data.Texts = append(s.Data.Texts, c.Text())
	if c.Text() == "fail" {
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
	var errs botErrors
	b := newBot(t, true, &errs)
	var isNew []bool
	b.Use(New(m, UserInChatKey, middleware.Options{}))
	b.Handle(tele.OnText, func(c tele.Context) error {
		s, err := From[counter](c)
		if err != nil {
			return err
		}
		isNew = append(isNew, s.IsNew())
		if c.Text() == "look" {
			return nil // reads only
		}
		return count(c)
	})

	b.ProcessUpdate(message(1, -5, 6, "hello"))
	if got := load(t, m, "-5:6").Data; got.N != 1 || st.Writes() != 1 {
		t.Fatalf("after a new session: N = %d, %d writes; want 1 and 1", got.N, st.Writes())
	}
	b.ProcessUpdate(message(2, -5, 6, "again"))
	if got := load(t, m, "-5:6").Data; got.N != 2 || st.Writes() != 2 {
		t.Fatalf("after a change: N = %d, %d writes; want 2 and 2", got.N, st.Writes())
	}
	b.ProcessUpdate(message(3, -5, 6, "look"))
	if w := st.Writes(); w != 2 {
		t.Errorf("an unchanged session was written: %d writes, want 2", w)
	}
	b.ProcessUpdate(message(4, -5, 6, "fail"))
	if got := load(t, m, "-5:6").Data; got.N != 2 || st.Writes() != 2 {
		t.Errorf("after a failed handler: N = %d, %d writes; want 2 and 2: its changes must be discarded", got.N, st.Writes())
	}
	if want := []bool{true, false, false, false}; fmt.Sprint(isNew) != fmt.Sprint(want) {
		t.Errorf("IsNew per update = %v; want %v", isNew, want)
	}
	if e := errs.all(); len(e) != 1 || e[0].Error() != "reply failed" {
		t.Errorf("telebot's OnError got %v; want the handler's own error once", e)
	}
}

// TestConcurrentUpdatesOfOneUser feeds many updates of one user to a bot
// that runs each handler in its own goroutine (telebot's default): per-key
// serialization makes every one of them count.
func TestConcurrentUpdatesOfOneUser(t *testing.T) {
	t.Parallel()
	st := newStore(t)
	m := newManager[counter](t, st, "c")
	var errs botErrors
	b := newBot(t, false, &errs)
	locks := middleware.NewLockTable()
	const n = 40
	var wg sync.WaitGroup
	wg.Add(2 * n)
	// The outermost middleware marks the end of each update, after the
	// session middleware has saved.
	done := func(next tele.HandlerFunc) tele.HandlerFunc {
		return func(c tele.Context) error {
			defer wg.Done()
			return next(c)
		}
	}
	b.Use(done, New(m, UserKey, middleware.Options{Locker: locks}))
	b.Handle(tele.OnText, func(c tele.Context) error {
		s, err := From[counter](c)
		if err != nil {
			return err
		}
		s.Data.N++
		time.Sleep(100 * time.Microsecond) // widen the window for a lost update
		s.Data.Texts = append(s.Data.Texts, c.Text())
		return nil
	})
	for i := range n {
		b.ProcessUpdate(message(i, 100, 7, fmt.Sprint(i)))
		b.ProcessUpdate(message(n+i, -5, 8, fmt.Sprint(i))) // another user in a group
	}
	wg.Wait()
	if e := errs.all(); len(e) > 0 {
		t.Fatalf("OnError got %d errors, first: %v", len(e), e[0])
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
// Bot API, each time on behalf of two different chats: every sender chat
// gets a session of its own, none is keyed by the placeholder.
func TestPlaceholderSenders(t *testing.T) {
	t.Parallel()
	st := newStore(t)
	m := newManager[counter](t, st, "c")
	var errs botErrors
	b := newBot(t, true, &errs)
	b.Use(New(m, UserKey, middleware.Options{}))
	b.Handle(tele.OnText, count)
	id := 0
	for _, placeholder := range []int64{1087968824, 777000, 136817688} {
		for _, sender := range []int64{-1001, -1002} {
			id++
			u := message(id, -1000, placeholder, fmt.Sprint(placeholder))
			u.Message.SenderChat = &tele.Chat{ID: sender - placeholder} // distinct per placeholder
			b.ProcessUpdate(u)
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
	if e := errs.all(); len(e) > 0 {
		t.Errorf("OnError got %v", e)
	}
}

// TestUpdateWithoutKeyRunsWithoutSession: a channel post has no user.
func TestUpdateWithoutKeyRunsWithoutSession(t *testing.T) {
	t.Parallel()
	st := newStore(t)
	m := newManager[counter](t, st, "c")
	var errs botErrors
	b := newBot(t, true, &errs)
	var got error
	ran := false
	b.Use(New(m, UserKey, middleware.Options{}))
	b.Handle(tele.OnChannelPost, func(c tele.Context) error {
		ran = true
		_, got = From[counter](c)
		return nil
	})
	b.ProcessUpdate(tele.Update{ID: 1, ChannelPost: &tele.Message{ID: 1, Unixtime: 1, Chat: &tele.Chat{ID: -100, Type: tele.ChatChannel}, Text: "news"}})
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
// reaches both OnError hooks (ours, then telebot's).
func TestLoadErrorStopsHandler(t *testing.T) {
	t.Parallel()
	st := newStore(t)
	m := newManager[profile](t, st, "p")
	if err := st.Unwrap().Set(context.Background(), "p:6", badProfile, 0); err != nil {
		t.Fatal(err)
	}
	var errs botErrors
	var ops []string
	b := newBot(t, true, &errs)
	ran := false
	b.Use(New(m, UserKey, middleware.Options{OnError: func(_ context.Context, op, key string, _ error) {
		ops = append(ops, op+" "+key)
	}}))
	b.Handle(tele.OnText, func(tele.Context) error { ran = true; return nil })
	b.ProcessUpdate(message(1, 6, 6, "x"))
	if ran {
		t.Error("the handler ran although its session could not be loaded")
	}
	if e := errs.all(); len(e) != 1 || !errors.Is(e[0], session.ErrInvalid) {
		t.Errorf("telebot's OnError got %v; want one ErrInvalid", e)
	}
	if fmt.Sprint(ops) != "[load 6]" {
		t.Errorf("Options.OnError got %v; want [load 6]", ops)
	}
}

// TestTwoHandlersOfOneUpdate: telebot runs both OnForward and OnText for
// a forwarded text message, on one tele.Context, in parallel. Each run
// loads and saves the session on its own, so both changes count.
func TestTwoHandlersOfOneUpdate(t *testing.T) {
	t.Parallel()
	st := newStore(t)
	m := newManager[counter](t, st, "c")
	var errs botErrors
	b := newBot(t, false, &errs)
	var wg sync.WaitGroup
	done := func(next tele.HandlerFunc) tele.HandlerFunc {
		return func(c tele.Context) error {
			defer wg.Done()
			return next(c)
		}
	}
	b.Use(done, New(m, ChatKey, middleware.Options{}))
	b.Handle(tele.OnForward, count)
	b.Handle(tele.OnText, count)
	const n = 20
	wg.Add(2 * n)
	for i := range n {
		u := message(i, 9, 9, "fwd")
		u.Message.Origin = &tele.MessageOrigin{Type: "hidden_user", SenderUsername: "x"}
		b.ProcessUpdate(u)
	}
	wg.Wait()
	if got := load(t, m, "9").Data.N; got != 2*n {
		t.Errorf("N = %d; want %d: both handlers of each update must count", got, 2*n)
	}
	if e := errs.all(); len(e) > 0 {
		t.Errorf("OnError got %v", e)
	}
}

// TestNestedMiddlewares gives a handler two sessions; a failure inside
// makes both discard their changes.
func TestNestedMiddlewares(t *testing.T) {
	t.Parallel()
	st := newStore(t)
	mc := newManager[counter](t, st, "c")
	mp := newManager[profile](t, st, "p")
	var errs botErrors
	b := newBot(t, true, &errs)
	b.Use(New(mc, ChatKey, middleware.Options{}))
	b.Handle(tele.OnText, func(c tele.Context) error {
		cs, err := From[counter](c)
		if err != nil {
			return err
		}
		ps, err := From[profile](c)
		if err != nil {
			return err
		}
		cs.Data.N++
		ps.Data.Name = c.Text() // more than 5 bytes fails validation on save
		if c.Text() == "boom" {
			return errors.New("boom")
		}
		return nil
	}, New(mp, UserKey, middleware.Options{}))
	b.ProcessUpdate(message(1, 5, 6, "ann"))           // both saved
	b.ProcessUpdate(message(2, 5, 6, "boom"))          // handler fails: neither saved
	b.ProcessUpdate(message(3, 5, 6, "much too long")) // inner save fails: outer not saved
	if got := load(t, mc, "5").Data.N; got != 1 {
		t.Errorf("counter N = %d; want 1", got)
	}
	if got := load(t, mp, "6").Data.Name; got != "ann" {
		t.Errorf("profile Name = %q; want %q", got, "ann")
	}
	e := errs.all()
	if len(e) != 2 || e[0].Error() != "boom" || !errors.Is(e[1], session.ErrInvalid) || !strings.Contains(e[1].Error(), "6") {
		t.Errorf("OnError got %v; want the handler's error, then the inner session's save error", e)
	}
}

func TestFromOutsideMiddleware(t *testing.T) {
	t.Parallel()
	c := tele.NewContext(nil, message(1, 1, 1, "x"))
	if _, err := From[counter](c); !errors.Is(err, session.ErrNoSession) {
		t.Errorf("From = %v; want ErrNoSession", err)
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
