package telegosession

import (
	"context"

	"github.com/mymmrac/telego"
	th "github.com/mymmrac/telego/telegohandler"

	session "github.com/typedsession/session"
	"github.com/typedsession/session/middleware"
)

// New returns a telegohandler middleware that binds the session of type T,
// kept by m under the key that key returns, to the context of each update,
// and saves it after the handlers unless they returned an error. Handlers
// read it with session.From[T](ctx): *th.Context is a context.Context. The
// options are those of [middleware.New].
//
// Install it with BotHandler.Use or HandlerGroup.Use. Updates through one
// returned middleware share its per-key lock table, wherever it is
// installed.
//
// Errors of the session machinery (key, lock, load, save) are returned up
// the chain, to the BotHandler's error handler (th.WithErrorHandler; by
// default the bot's logger); [middleware.Options].OnError, when set, sees
// them first. A handler's own error is returned as it is.
//
// New panics if m or key is nil.
func New[T any](m *session.Manager[T], key middleware.KeyFunc[*telego.Update], opts middleware.Options) th.Handler {
	if key == nil {
		panic("session/adapters/telego: nil key function; pass telegosession.UserKey, ChatKey, UserInChatKey or TopicKey")
	}
	mw := middleware.New(m, func(ctx context.Context, c *call) (string, error) {
		return key(ctx, &c.u)
	}, opts)
	h := mw.Wrap(func(ctx context.Context, c *call) error {
		// The rest of the chain runs on a *th.Context whose
		// context.Context carries the binding, as th.Timeout does it.
		return c.ctx.WithContext(ctx).Next(c.u)
	})
	return func(ctx *th.Context, u telego.Update) error {
		return h(ctx, &call{ctx: ctx, u: u})
	}
}

// call is one update passing through one session middleware.
type call struct {
	ctx *th.Context
	u   telego.Update
}
