package tgbot

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-telegram/bot"
	"github.com/go-telegram/bot/models"

	session "github.com/typedsession/session"
	"github.com/typedsession/session/middleware"
	"github.com/typedsession/session/store/memstore"
)

type counter struct {
	N     int      `json:"n" validate:"gte=0,lte=1000"`
	Texts []string `json:"texts"`
}

type profile struct {
	Name string `json:"name" validate:"max=5"`
}

func newStore(t *testing.T) *memstore.Store {
	t.Helper()
	st, err := memstore.New(memstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

func newManager[T any](t *testing.T, st *memstore.Store, ns string) *session.Manager[T] {
	t.Helper()
	m, err := session.New(session.Config[T]{Store: st, Namespace: ns})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// newBot returns a bot that talks to no server: the tests feed it updates
// with ProcessUpdate, and its handlers do not call the Bot API.
func newBot(t *testing.T, h bot.HandlerFunc, opts ...bot.Option) *bot.Bot {
	t.Helper()
	opts = append([]bot.Option{bot.WithSkipGetMe(), bot.WithDefaultHandler(h)}, opts...)
	b, err := bot.New("1:test", opts...)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func message(id int64, chat, user int64, text string) *models.Update {
	m := &models.Message{ID: int(id), Chat: models.Chat{ID: chat}, Text: text}
	if user != 0 {
		m.From = &models.User{ID: user}
	}
	return &models.Update{ID: id, Message: m}
}

func load[T any](t *testing.T, m *session.Manager[T], key string) *session.Session[T] {
	t.Helper()
	s, err := m.Load(context.Background(), key)
	if err != nil {
		t.Fatalf("Load(%q): %v", key, err)
	}
	return s
}

// errorLog collects what OnError receives.
type errorLog struct {
	mu   sync.Mutex
	errs []string
	n    atomic.Int64
}

func (l *errorLog) hook(_ context.Context, op, key string, err error) {
	l.mu.Lock()
	l.errs = append(l.errs, fmt.Sprintf("%s %s: %v", op, key, err))
	l.mu.Unlock()
	l.n.Add(1)
}

func (l *errorLog) all() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.errs...)
}

// TestConcurrentUpdatesOfOneUser feeds many updates of one user to a bot
// that runs each handler in its own goroutine (go-telegram/bot's default):
// per-key serialization makes every one of them count.
func TestConcurrentUpdatesOfOneUser(t *testing.T) {
	t.Parallel()
	st := newStore(t)
	m := newManager[counter](t, st, "c")
	var log errorLog
	locks := middleware.NewLockTable()
	const n = 40
	var wg sync.WaitGroup
	wg.Add(2 * n)
	// The outermost middleware marks the end of each update, after the
	// session middleware has saved.
	done := func(next bot.HandlerFunc) bot.HandlerFunc {
		return func(ctx context.Context, b *bot.Bot, u *models.Update) {
			defer wg.Done()
			next(ctx, b, u)
		}
	}
	b := newBot(t, Handler(func(ctx context.Context, _ *bot.Bot, u *models.Update) error {
		s, err := session.From[counter](ctx)
		if err != nil {
			return err
		}
		s.Data.N++
		runtimeYield()
		s.Data.Texts = append(s.Data.Texts, u.Message.Text)
		return nil
	}), bot.WithMiddlewares(done, New(m, UserKey, middleware.Options{OnError: log.hook, Locker: locks})))

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for i := range n {
		b.ProcessUpdate(ctx, message(int64(i), 100, 7, fmt.Sprint(i)))
		b.ProcessUpdate(ctx, message(int64(n+i), -5, 8, fmt.Sprint(i))) // another user in a group
	}
	wg.Wait()
	if errs := log.all(); len(errs) > 0 {
		t.Fatalf("OnError got %d errors, first: %s", len(errs), errs[0])
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

// runtimeYield widens the window between the load and the save, where a
// lost update would happen without serialization.
func runtimeYield() { time.Sleep(100 * time.Microsecond) }

// TestNoLockConflictsAreReported turns serialization off: concurrent
// updates of one key then conflict in the store's compare-and-swap, and
// every one that did not save is reported, none is lost silently.
func TestNoLockConflictsAreReported(t *testing.T) {
	t.Parallel()
	st := newStore(t)
	m := newManager[counter](t, st, "c")
	var log errorLog
	const n = 30
	var wg sync.WaitGroup
	wg.Add(n)
	done := func(next bot.HandlerFunc) bot.HandlerFunc {
		return func(ctx context.Context, b *bot.Bot, u *models.Update) {
			defer wg.Done()
			next(ctx, b, u)
		}
	}
	b := newBot(t, Handler(func(ctx context.Context, _ *bot.Bot, u *models.Update) error {
		s, err := session.From[counter](ctx)
		if err != nil {
			return err
		}
		s.Data.N++
		runtimeYield()
		return nil
	}), bot.WithMiddlewares(done, New(m, ChatKey, middleware.Options{NoLock: true, OnError: log.hook})))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for i := range n {
		b.ProcessUpdate(ctx, message(int64(i), 100, int64(i+1), "x"))
	}
	wg.Wait()
	saved := load(t, m, "100").Data.N
	errs := log.all()
	for _, e := range errs {
		if !errorsIsConflictText(e) {
			t.Errorf("unexpected error: %s", e)
		}
	}
	if saved+len(errs) != n {
		t.Errorf("%d saved + %d conflicts reported = %d; want %d", saved, len(errs), saved+len(errs), n)
	}
}

func errorsIsConflictText(s string) bool {
	return strings.HasPrefix(s, "save ") && strings.Contains(s, "conflict")
}

func TestHandlerErrorDiscardsChanges(t *testing.T) {
	t.Parallel()
	st := newStore(t)
	m := newManager[counter](t, st, "c")
	fail := errors.New("reply failed")
	b := newBot(t, Handler(func(ctx context.Context, _ *bot.Bot, u *models.Update) error {
		s, err := session.From[counter](ctx)
		if err != nil {
			return err
		}
		s.Data.N++
		if u.Message.Text == "fail" {
			return fail
		}
		return nil
	}), bot.WithNotAsyncHandlers(), bot.WithMiddlewares(New(m, UserInChatKey, middleware.Options{})))
	ctx := context.Background()
	b.ProcessUpdate(ctx, message(1, 5, 6, "ok"))
	b.ProcessUpdate(ctx, message(2, 5, 6, "fail"))
	b.ProcessUpdate(ctx, message(3, 5, 6, "fail"))
	if got := load(t, m, "5:6").Data.N; got != 1 {
		t.Errorf("N = %d; want 1: the failed updates must not be saved", got)
	}
}

func TestPlainHandlerCountsAsSuccess(t *testing.T) {
	t.Parallel()
	st := newStore(t)
	m := newManager[counter](t, st, "c")
	b := newBot(t, func(ctx context.Context, _ *bot.Bot, _ *models.Update) {
		if s, err := session.From[counter](ctx); err == nil {
			s.Data.N += 10
		}
	}, bot.WithNotAsyncHandlers(), bot.WithMiddlewares(New(m, ChatKey, middleware.Options{})))
	b.ProcessUpdate(context.Background(), message(1, 5, 6, "x"))
	if got := load(t, m, "5").Data.N; got != 10 {
		t.Errorf("N = %d; want 10", got)
	}
}

func TestUpdateWithoutKeyRunsWithoutSession(t *testing.T) {
	t.Parallel()
	st := newStore(t)
	m := newManager[counter](t, st, "c")
	var got error
	ran := false
	b := newBot(t, Handler(func(ctx context.Context, _ *bot.Bot, _ *models.Update) error {
		ran = true
		_, got = session.From[counter](ctx)
		return nil
	}), bot.WithNotAsyncHandlers(), bot.WithMiddlewares(New(m, UserKey, middleware.Options{})))
	post := &models.Update{ID: 1, ChannelPost: &models.Message{ID: 1, Chat: models.Chat{ID: -100, Type: "channel"}, Text: "news"}}
	b.ProcessUpdate(context.Background(), post)
	if !ran || !errors.Is(got, session.ErrNoSession) {
		t.Errorf("handler ran = %v, From error = %v; want it to run and get ErrNoSession", ran, got)
	}
	n := 0
	if err := st.Scan(context.Background(), "", func(string) error { n++; return nil }); err != nil || n != 0 {
		t.Errorf("store holds %d keys (%v); want none", n, err)
	}
}

// A stored session that does not validate: Name is longer than 5.
var badProfile = []byte(`{"typedsession":1,"data":{"name":"much too long"}}`)

func TestEagerLoadErrorStopsHandler(t *testing.T) {
	t.Parallel()
	st := newStore(t)
	m := newManager[profile](t, st, "p")
	if err := st.Set(context.Background(), "p:6", badProfile, 0); err != nil {
		t.Fatal(err)
	}
	var log errorLog
	ran := false
	b := newBot(t, func(context.Context, *bot.Bot, *models.Update) { ran = true },
		bot.WithNotAsyncHandlers(), bot.WithMiddlewares(New(m, UserKey, middleware.Options{OnError: log.hook})))
	b.ProcessUpdate(context.Background(), message(1, 6, 6, "x"))
	if ran {
		t.Error("the handler ran although its session could not be loaded")
	}
	if errs := log.all(); len(errs) != 1 || !strings.Contains(errs[0], "load 6:") || !strings.Contains(errs[0], "invalid") {
		t.Errorf("OnError got %q; want one load error naming the key and ErrInvalid", errs)
	}
}

// TestContinueOnLoadErrorRunsTheHandler: with the option, a bot answers
// even when the session cannot be loaded; From reports the error and
// nothing is saved.
func TestContinueOnLoadErrorRunsTheHandler(t *testing.T) {
	t.Parallel()
	st := newStore(t)
	m := newManager[profile](t, st, "p")
	if err := st.Set(context.Background(), "p:6", badProfile, 0); err != nil {
		t.Fatal(err)
	}
	var log errorLog
	var fromErr error
	ran := false
	b := newBot(t, Handler(func(ctx context.Context, _ *bot.Bot, _ *models.Update) error {
		ran = true
		_, fromErr = session.From[profile](ctx)
		return nil
	}), bot.WithNotAsyncHandlers(), bot.WithMiddlewares(New(m, UserKey, middleware.Options{OnError: log.hook, ContinueOnLoadError: true})))
	b.ProcessUpdate(context.Background(), message(1, 6, 6, "x"))
	if !ran || !errors.Is(fromErr, session.ErrInvalid) {
		t.Errorf("handler ran = %v, From = %v; want it run with ErrInvalid", ran, fromErr)
	}
	if errs := log.all(); len(errs) != 1 || !strings.Contains(errs[0], "load 6:") {
		t.Errorf("OnError got %q; want one load error", errs)
	}
	if raw, _ := st.Get(context.Background(), "p:6"); string(raw) != string(badProfile) {
		t.Errorf("stored value changed to %s", raw)
	}
}

func TestLazyHandlerThatDoesNotAskLoadsNothing(t *testing.T) {
	t.Parallel()
	st := newStore(t)
	m := newManager[profile](t, st, "p")
	if err := st.Set(context.Background(), "p:6", badProfile, 0); err != nil {
		t.Fatal(err)
	}
	var log errorLog
	var fromErr error
	asks := true
	b := newBot(t, Handler(func(ctx context.Context, _ *bot.Bot, _ *models.Update) error {
		if asks {
			_, fromErr = session.From[profile](ctx)
		}
		return nil
	}), bot.WithNotAsyncHandlers(), bot.WithMiddlewares(New(m, UserKey, middleware.Options{Lazy: true, OnError: log.hook})))
	asks = false
	b.ProcessUpdate(context.Background(), message(1, 6, 6, "x"))
	if errs := log.all(); len(errs) != 0 {
		t.Errorf("a lazy handler that never asked for its session got errors %q", errs)
	}
	asks = true
	b.ProcessUpdate(context.Background(), message(2, 6, 6, "x"))
	if !errors.Is(fromErr, session.ErrInvalid) || len(log.all()) != 1 {
		t.Errorf("From = %v, OnError got %q; want ErrInvalid from From and one report", fromErr, log.all())
	}
}

// TestNestedMiddlewares gives a handler two sessions; a failure inside
// makes both discard their changes.
func TestNestedMiddlewares(t *testing.T) {
	t.Parallel()
	st := newStore(t)
	mc := newManager[counter](t, st, "c")
	mp := newManager[profile](t, st, "p")
	var log errorLog
	b := newBot(t, Handler(func(ctx context.Context, _ *bot.Bot, u *models.Update) error {
		c, err := session.From[counter](ctx)
		if err != nil {
			return err
		}
		p, err := session.From[profile](ctx)
		if err != nil {
			return err
		}
		c.Data.N++
		p.Data.Name = u.Message.Text // more than 5 bytes fails validation on save
		if u.Message.Text == "boom" {
			return errors.New("boom")
		}
		return nil
	}), bot.WithNotAsyncHandlers(), bot.WithMiddlewares(
		New(mc, ChatKey, middleware.Options{OnError: log.hook}),
		New(mp, UserKey, middleware.Options{OnError: log.hook}),
	))
	ctx := context.Background()
	b.ProcessUpdate(ctx, message(1, 5, 6, "ann"))           // both saved
	b.ProcessUpdate(ctx, message(2, 5, 6, "boom"))          // handler fails: neither saved
	b.ProcessUpdate(ctx, message(3, 5, 6, "much too long")) // inner save fails: outer not saved
	if got := load(t, mc, "5").Data.N; got != 1 {
		t.Errorf("counter N = %d; want 1", got)
	}
	if got := load(t, mp, "6").Data.Name; got != "ann" {
		t.Errorf("profile Name = %q; want %q", got, "ann")
	}
	if errs := log.all(); len(errs) != 1 || !strings.Contains(errs[0], "save 6:") {
		t.Errorf("OnError got %q; want one save error of the inner session", errs)
	}
}

func TestNewPanicsOnNil(t *testing.T) {
	t.Parallel()
	st := newStore(t)
	m := newManager[counter](t, st, "c")
	for name, f := range map[string]func(){
		"nil key":     func() { New(m, nil, middleware.Options{}) },
		"nil manager": func() { New[counter](nil, ChatKey, middleware.Options{}) },
		"nil handler": func() { Handler(nil) },
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

// TestErrorsLoggedByDefault: with neither OnError nor Logger, a failed
// save is logged to slog.Default(), like go-telegram/bot's own errors,
// without the refused value and without the key (a user identifier). Not
// parallel: it replaces slog.Default.
func TestErrorsLoggedByDefault(t *testing.T) {
	var buf bytes.Buffer
	prev := slog.Default()
	slog.SetDefault(slog.New(slog.NewTextHandler(&buf, nil)))
	t.Cleanup(func() { slog.SetDefault(prev) })

	m := newManager[profile](t, newStore(t), "p")
	b := newBot(t, Handler(func(ctx context.Context, _ *bot.Bot, u *models.Update) error {
		s, err := session.From[profile](ctx)
		if err != nil {
			return err
		}
		s.Data.Name = u.Message.Text // max=5: too long to save
		return nil
	}), bot.WithNotAsyncHandlers(), bot.WithMiddlewares(New(m, UserKey, middleware.Options{})))
	b.ProcessUpdate(context.Background(), message(1, 5, 987654321, "Bartholomew"))
	out := buf.String()
	if !strings.Contains(out, "level=ERROR") || !strings.Contains(out, "op=save") || !strings.Contains(out, `profile.Name: failed \"max=5\"`) {
		t.Errorf("log %q; want an error record of the save naming the field and its rule", out)
	}
	for _, secret := range []string{"Bartholomew", "987654321"} {
		if strings.Contains(out, secret) {
			t.Errorf("the log holds %q: %s", secret, out)
		}
	}
}
