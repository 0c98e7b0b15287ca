package tgbot

import (
	"context"
	"testing"

	"github.com/go-telegram/bot"
	"github.com/go-telegram/bot/models"

	session "github.com/typedsession/session"
	"github.com/typedsession/session/internal/convtest"
	"github.com/typedsession/session/middleware"
	"github.com/typedsession/session/store"
	"github.com/typedsession/session/store/memstore"
)

// TestConversation runs a conversation through this middleware
// (conversation.Flow.Apply on the session it binds): the adapter cases
// of internal/convtest, which telebot and telego run too.
func TestConversation(t *testing.T) {
	convtest.RunAdapter(t, func(t testing.TB) store.Store {
		st, err := memstore.New(memstore.Options{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		return st
	}, func(t *testing.T, p *convtest.Proc) (convtest.Sender, string) {
		b := newBot(t, Handler(func(ctx context.Context, _ *bot.Bot, u *models.Update) error {
			s, err := session.From[convtest.Bot](ctx)
			if err != nil {
				return err
			}
			_, err = p.Flow.Apply(ctx, s, u.ID, convtest.Msg{Text: u.Message.Text})
			return err
		}), bot.WithNotAsyncHandlers(), bot.WithMiddlewares(New(p.M, ChatKey, middleware.Options{RepeatOnConflict: true})))
		return func(id int64, text string) {
			b.ProcessUpdate(context.Background(), message(id, 77, 5, text))
		}, "77"
	})
}
