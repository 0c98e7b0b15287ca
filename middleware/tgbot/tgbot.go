// Package tgbot adapts the session middleware to github.com/go-telegram/bot:
// [New] returns a bot.Middleware that loads the typed session of each update
// before the handler and saves it after, and handlers read it with
// session.From.
//
//	m, _ := session.New(session.Config[Quiz]{Store: st, Namespace: "quiz"})
//	b, _ := bot.New(token,
//		bot.WithMiddlewares(tgbot.New(m, tgbot.UserInChatKey, middleware.Options{})),
//		bot.WithDefaultHandler(tgbot.Handler(func(ctx context.Context, b *bot.Bot, u *models.Update) error {
//			s, err := session.From[Quiz](ctx)
//			if err != nil {
//				return err // ErrNoSession: an update without a user, such as a channel post
//			}
//			s.Data.Score++
//			_, err = b.SendMessage(ctx, &bot.SendMessageParams{ChatID: u.Message.Chat.ID, Text: "..."})
//			return err // an error discards the session changes
//		})),
//	)
//
// # Keys
//
// A key function names the session of an update: [ChatKey] (one session per
// chat: a group shares it), [UserKey] (one per user, in every chat),
// [UserInChatKey] (one per user in each chat), [TopicKey] (one per forum
// topic) and [UserInTopicKey] (one per user in each forum topic). Each
// understands every kind of update that carries what it needs (messages,
// edited messages, channel and business posts, business connections,
// callback queries, inline queries, chat member updates, join requests,
// reactions, boosts, and more; see each function), and returns an error
// wrapping [middleware.ErrNoKey] for one that does not, such as an inline
// query for ChatKey or a channel post for UserKey. The handler then runs
// without a session and session.From reports session.ErrNoSession. Any
// function with the signature of a [middleware.KeyFunc] of *models.Update
// will do. The rules are those of the telebot and telego adapters, key for
// key (one table of updates is run against all three).
//
// Two conversations never share a session. A chat of a business account
// that the bot serves through a business connection (business_message,
// the edits and deletions in it, and callback queries on its messages)
// carries the customer's ID, the same number as the bot's own private
// chat with that customer, and the same through every other business
// connection; its keys begin with "business:<business_connection_id>:"
// (ChatKey "business:AbC123:42" where the bot's own chat is "42"). UserKey
// alone stays one session per person, business chats included.
//
// A message sent on behalf of a chat (an anonymous group admin, an
// automatic forward from a linked channel, a message as a channel) is
// keyed by its sender_chat in UserKey, UserInChatKey and UserInTopicKey,
// not by the placeholder user in its from field, so distinct senders never
// share a session; see [UserKey].
//
// Several bots may share one store and namespace: [ForBot] puts
// "bot<ID>:" in front of every key. A handler learns its session's key
// without loading it with [middleware.KeyFrom].
//
// # Concurrency and order
//
// go-telegram/bot (v1.19, read from its source) polls getUpdates in one
// goroutine and queues the updates in update_id order; its workers
// (bot.WithWorkers, default 1) take them off the queue, and for each one
// start the handler chain, this middleware included, in a goroutine of its
// own, unless bot.WithNotAsyncHandlers. So by default two messages of one
// user that arrive together are handled at the same time, in an order the
// Go scheduler picks: within one middleware returned by [New], updates of
// the same key are serialized (unless [middleware.Options].NoLock), so each
// sees the session as the other saved it and both count, but not in
// update_id order (in 5 runs of 300 updates of one chat, 10 to 22 were
// handled right after a newer one, and the newest was often handled first;
// TestUpdateOrderOfOneChat). Different keys run in parallel. When the
// order matters (a conversation whose steps must follow the messages),
// create the bot with bot.WithNotAsyncHandlers() and one worker: updates
// then run one at a time, in update_id order, for every chat at once. With
// a webhook, Telegram may also send updates over several connections at
// once (setWebhook's max_connections, 40 by default), so their order is
// kept only with max_connections 1 as well.
//
// Across bot processes sharing a store (or two middleware values), updates
// are not serialized unless [middleware.Options].Locker spans them: the
// store's compare-and-swap turns a race into session.ErrConflict on the
// later save, which is reported to OnError and saves nothing, so that
// update's change does not count, and nothing is lost silently.
//
// # Errors
//
// A bot.HandlerFunc returns nothing, so the middleware cannot tell success
// from failure by itself. Wrap a handler that returns an error with
// [Handler]: when it returns an error, its session changes are not saved.
// A plain bot.HandlerFunc always counts as a success. Errors of the session
// machinery (key, lock, load, save) go to [middleware.Options].OnError
// and Logger; when both are nil, they are logged to slog.Default() (which
// writes to the standard logger unless the program set another, like
// go-telegram/bot's own errors), without session data and without the
// key (see [middleware.Options].Logger and LogKeys); when the session cannot be loaded the handler does not run
// (unless [middleware.Options].Lazy or ContinueOnLoadError, where
// session.From returns the error to the handler, and nothing is saved).
package tgbot

import (
	"context"
	"sync"

	"github.com/go-telegram/bot"
	"github.com/go-telegram/bot/models"

	session "github.com/typedsession/session"
	"github.com/typedsession/session/internal/logsafe"
	"github.com/typedsession/session/middleware"
)

// New returns a bot.Middleware that binds the session of type T, kept by m
// under the key that key returns, to the context of each update, and saves
// it after the handler unless the handler (wrapped with [Handler]) returned
// an error. The options are those of [middleware.New]; with neither
// OnError nor Logger set, errors are logged to slog.Default(). Pass the result to bot.WithMiddlewares; updates
// through one returned Middleware share its per-key lock table.
//
// New panics if m or key is nil.
func New[T any](m *session.Manager[T], key middleware.KeyFunc[*models.Update], opts middleware.Options) bot.Middleware {
	if key == nil {
		panic("session/middleware/tgbot: nil key function; pass tgbot.UserKey, tgbot.ChatKey, tgbot.UserInChatKey or tgbot.TopicKey")
	}
	if opts.OnError == nil && opts.Logger == nil {
		opts.Logger = logsafe.Default()
	}
	mw := middleware.New(m, func(ctx context.Context, c *call) (string, error) {
		return key(ctx, c.u)
	}, opts)
	return func(next bot.HandlerFunc) bot.HandlerFunc {
		h := mw.Wrap(func(ctx context.Context, c *call) error {
			next(context.WithValue(ctx, callKey{}, c), c.b, c.u)
			return c.result()
		})
		return func(ctx context.Context, b *bot.Bot, u *models.Update) {
			if err := h(ctx, &call{b: b, u: u}); err != nil {
				// An outer session middleware must not save either.
				if outer, ok := ctx.Value(callKey{}).(*call); ok {
					outer.fail(err)
				}
			}
		}
	}
}

// callKey is the context key of the update's *call.
type callKey struct{}

// call is one update passing through one session middleware: what the
// generic wrapper's handler needs, and the handler's result.
type call struct {
	b *bot.Bot
	u *models.Update

	mu  sync.Mutex
	err error // the first failure reported by Handler or an inner middleware
}

func (c *call) fail(err error) {
	c.mu.Lock()
	if c.err == nil {
		c.err = err
	}
	c.mu.Unlock()
}

func (c *call) result() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

// HandlerFunc is a bot handler that reports failure: see [Handler].
type HandlerFunc func(ctx context.Context, b *bot.Bot, u *models.Update) error

// Handler adapts h to a bot.HandlerFunc. When h returns an error, the
// session middlewares around it (see [New]) discard its session changes:
// nothing is saved. Log the error in h if you want it logged; the
// middleware does not report a handler's own errors. Outside a session
// middleware the error is dropped.
func Handler(h HandlerFunc) bot.HandlerFunc {
	if h == nil {
		panic("session/middleware/tgbot: Handler(nil)")
	}
	return func(ctx context.Context, b *bot.Bot, u *models.Update) {
		if err := h(ctx, b, u); err != nil {
			if c, ok := ctx.Value(callKey{}).(*call); ok {
				c.fail(err)
			}
		}
	}
}
