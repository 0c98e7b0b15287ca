package tgbot

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-telegram/bot"
	"github.com/go-telegram/bot/models"

	session "github.com/typedsession/session"
	"github.com/typedsession/session/middleware"
)

// fakeAPI is a Bot API server that answers getUpdates with updates, once
// (as Telegram does after the bot confirms them with a higher offset), and
// then with nothing.
func fakeAPI(t *testing.T, updates []*models.Update) *httptest.Server {
	t.Helper()
	var once sync.Once
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var result []*models.Update
		if strings.HasSuffix(r.URL.Path, "/getUpdates") {
			once.Do(func() { result = updates })
			if result == nil {
				select { // a long poll that finds nothing
				case <-time.After(50 * time.Millisecond):
				case <-r.Context().Done():
				}
			}
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]any{"ok": true, "result": result})
	}))
	t.Cleanup(srv.Close)
	return srv
}

// runPolling feeds n messages of one chat (update IDs 1 to n) to a bot
// polling the fake server, with the session middleware and opts, and
// returns the order in which the handlers saw them, as the session stored
// it.
func runPolling(t *testing.T, n int, opts ...bot.Option) []int {
	t.Helper()
	updates := make([]*models.Update, n)
	for i := range n {
		updates[i] = message(int64(i+1), 42, 42, strconv.Itoa(i+1))
	}
	srv := fakeAPI(t, updates)
	st := newStore(t)
	m := newManager[counter](t, st, "c")
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
		s.Data.Texts = append(s.Data.Texts, u.Message.Text)
		return nil
	}), append([]bot.Option{
		bot.WithServerURL(srv.URL),
		bot.WithHTTPClient(time.Second, srv.Client()),
		bot.WithMiddlewares(done, New(m, ChatKey, middleware.Options{})),
	}, opts...)...)
	ctx, cancel := context.WithCancel(context.Background())
	stopped := make(chan struct{})
	go func() { b.Start(ctx); close(stopped) }()
	wg.Wait()
	cancel()
	<-stopped
	s := load(t, m, "42")
	if s.Data.N != n {
		t.Fatalf("the session counted %d of %d updates", s.Data.N, n)
	}
	order := make([]int, len(s.Data.Texts))
	for i, txt := range s.Data.Texts {
		order[i], _ = strconv.Atoi(txt)
	}
	return order
}

// outOfOrder counts the updates handled right after one with a higher
// update ID: 0 when the order is update_id order.
func outOfOrder(order []int) int {
	n := 0
	for i := 1; i < len(order); i++ {
		if order[i] < order[i-1] {
			n++
		}
	}
	return n
}

// TestUpdateOrderOfOneChat documents what go-telegram/bot (v1.19) does
// with the updates of one chat, read from its source: one goroutine polls
// getUpdates and puts each update on a channel, in update_id order; the
// workers (bot.WithWorkers, default 1) take them off, and ProcessUpdate
// starts each update's handler chain, middleware included, in a goroutine
// of its own (`go r(ctx, b, upd)`), unless bot.WithNotAsyncHandlers, where
// the worker runs it itself. So by default the handlers of one chat run
// at once and the session middleware serializes them in the order in
// which their goroutines reach its lock, which the scheduler decides, not
// update_id: every update counts, but an older one may be handled after a
// newer one (the inversions are logged). With WithNotAsyncHandlers and one
// worker, updates run one at a time in update_id order, for every chat at
// once; that order is asserted here.
func TestUpdateOrderOfOneChat(t *testing.T) {
	t.Parallel()
	const n = 300
	order := runPolling(t, n, bot.WithNotAsyncHandlers())
	for i, id := range order {
		if id != i+1 {
			t.Fatalf("with WithNotAsyncHandlers, update %d was handled %dth; want update_id order", id, i+1)
		}
	}
	async := runPolling(t, n)
	t.Logf("default (async handlers): %d places where an update of one chat was handled right after a newer one; the first ten handled: %v", outOfOrder(async), async[:10])
}
