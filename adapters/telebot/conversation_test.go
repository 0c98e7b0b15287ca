package telebotsession

import (
	"testing"

	tele "gopkg.in/telebot.v4"

	"github.com/typedsession/session/internal/convtest"
	"github.com/typedsession/session/middleware"
	"github.com/typedsession/session/store"
)

// TestConversation runs a conversation through this middleware
// (conversation.Flow.Apply on the session it binds): the adapter cases
// of internal/convtest, which the go-telegram/bot and telego middleware
// run too.
func TestConversation(t *testing.T) {
	convtest.RunAdapter(t, func(t testing.TB) store.Store {
		return newStore(t.(*testing.T))
	}, func(t *testing.T, p *convtest.Proc) (convtest.Sender, string) {
		var errs botErrors
		b := newBot(t, true, &errs)
		b.Use(New(p.M, ChatKey, middleware.Options{RepeatOnConflict: true}))
		b.Handle(tele.OnText, func(c tele.Context) error {
			s, err := From[convtest.Bot](c)
			if err != nil {
				return err
			}
			_, err = p.Flow.Apply(Context(c), s, int64(c.Update().ID), convtest.Msg{Text: c.Text()})
			return err
		})
		t.Cleanup(func() {
			if e := errs.all(); len(e) > 0 {
				t.Errorf("the bot's errors: %v", e)
			}
		})
		return func(id int64, text string) { b.ProcessUpdate(message(int(id), 77, 5, text)) }, "77"
	})
}
