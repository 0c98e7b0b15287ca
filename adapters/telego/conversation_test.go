package telegosession

import (
	"testing"

	"github.com/mymmrac/telego"
	th "github.com/mymmrac/telego/telegohandler"

	session "github.com/typedsession/session"
	"github.com/typedsession/session/internal/convtest"
	"github.com/typedsession/session/middleware"
	"github.com/typedsession/session/store"
)

// TestConversation runs a conversation through this middleware
// (conversation.Flow.Apply on the session it binds): the adapter cases
// of internal/convtest, which the go-telegram/bot and telebot middleware
// run too.
func TestConversation(t *testing.T) {
	convtest.RunAdapter(t, func(t testing.TB) store.Store {
		return newStore(t.(*testing.T))
	}, func(t *testing.T, p *convtest.Proc) (convtest.Sender, string) {
		h := newHarness(t, func(bh *th.BotHandler) {
			bh.Use(New(p.M, ChatKey, middleware.Options{RepeatOnConflict: true}))
			bh.Handle(func(ctx *th.Context, u telego.Update) error {
				s, err := session.From[convtest.Bot](ctx)
				if err != nil {
					return err
				}
				_, err = p.Flow.Apply(ctx, s, int64(u.UpdateID), convtest.Msg{Text: u.Message.Text})
				return err
			}, th.AnyMessage())
		})
		t.Cleanup(func() {
			if e := h.errors(); len(e) > 0 {
				t.Errorf("the handler's errors: %v", e)
			}
		})
		return func(id int64, text string) { h.process(message(int(id), 77, 5, text)) }, "77"
	})
}
