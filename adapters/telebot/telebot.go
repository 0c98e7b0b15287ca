package telebotsession

import (
	"context"

	tele "gopkg.in/telebot.v4"

	session "github.com/typedsession/session"
	"github.com/typedsession/session/middleware"
)

// New returns a tele.MiddlewareFunc that binds the session of type T, kept
// by m under the key that key returns, to each update, and saves it after
// the handler unless the handler returned an error. Handlers read the
// session with [From]. The options are those of [middleware.New].
//
// Use it with b.Use (every handler), a group's Use, or as the last
// argument of b.Handle. Updates through one returned MiddlewareFunc share
// its per-key lock table, wherever it is installed.
//
// Errors of the session machinery (key, lock, load, save) are returned to
// telebot, which passes them to Settings.OnError (telebot's default logs
// them); [middleware.Options].OnError, when set, sees them first. A
// handler's own error is returned as it is.
//
// New panics if m or key is nil.
func New[T any](m *session.Manager[T], key middleware.KeyFunc[tele.Context], opts middleware.Options) tele.MiddlewareFunc {
	if key == nil {
		panic("session/adapters/telebot: nil key function; pass telebotsession.UserKey, ChatKey, UserInChatKey or TopicKey")
	}
	mw := middleware.New(m, key, opts)
	return func(next tele.HandlerFunc) tele.HandlerFunc {
		h := mw.Wrap(func(ctx context.Context, c tele.Context) error {
			return next(&boundContext{Context: c, ctx: ctx})
		})
		return func(c tele.Context) error {
			return h(Context(c), c)
		}
	}
}

// boundContext is the tele.Context a handler receives from the middleware:
// the update's own context with the context.Context that carries the
// session bindings. Wrapping, rather than c.Set, gives each handler run its
// own bindings: telebot runs two handlers on one Context for one update
// (a forwarded text message reaches OnForward and OnText, in parallel
// unless Settings.Synchronous), and each must load and save on its own.
type boundContext struct {
	tele.Context
	ctx context.Context
}

func (c *boundContext) sessionContext() context.Context { return c.ctx }

// Context returns the context.Context that the session middlewares around
// c bound their sessions to: pass it to session.From, or to code that
// takes a context.Context and reads sessions. For a c that went through no
// session middleware it returns context.Background(), where session.From
// reports session.ErrNoSession.
//
// A middleware that replaces the tele.Context with a type of its own,
// between the session middleware and the handler, hides the bindings:
// install such middleware before (outside) the session middleware.
func Context(c tele.Context) context.Context {
	if bc, ok := c.(interface{ sessionContext() context.Context }); ok {
		return bc.sessionContext()
	}
	return context.Background()
}

// From returns the session of type T that a middleware made by [New]
// bound to c: session.From[T](Context(c)). It returns an error matching
// session.ErrNoSession when there is none (no middleware for T, or an
// update without a key, such as a channel post under [UserKey]), and the
// load's error in lazy mode.
//
// The session is the handler's until it returns: changes made after that
// (in a goroutine the handler started) are not saved, and From then
// reports session.ErrNoSession.
func From[T any](c tele.Context) (*session.Session[T], error) {
	return session.From[T](Context(c))
}
