package tgbot

import (
	"context"
	"testing"

	"github.com/go-telegram/bot"
	"github.com/go-telegram/bot/models"

	session "github.com/typedsession/session"
	"github.com/typedsession/session/middleware"
	"github.com/typedsession/session/store/memstore"
)

// BenchmarkUpdate measures one update through the middleware on memstore:
// key, lock, load, handler change, save.
func BenchmarkUpdate(b *testing.B) {
	st, err := memstore.New(memstore.Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { st.Close() })
	m, err := session.New(session.Config[counter]{Store: st, Namespace: "c"})
	if err != nil {
		b.Fatal(err)
	}
	tb, err := bot.New("1:bench", bot.WithSkipGetMe(), bot.WithNotAsyncHandlers(),
		bot.WithMiddlewares(New(m, UserInChatKey, middleware.Options{})),
		bot.WithDefaultHandler(Handler(func(ctx context.Context, _ *bot.Bot, _ *models.Update) error {
			s, err := session.From[counter](ctx)
			if err != nil {
				return err
			}
			s.Data.N = (s.Data.N + 1) % 1000
			return nil
		})))
	if err != nil {
		b.Fatal(err)
	}
	u := message(1, 5, 6, "x")
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		tb.ProcessUpdate(ctx, u)
	}
	if s, _ := m.Load(ctx, "5:6"); s.IsNew() {
		b.Fatal("nothing saved")
	}
}
