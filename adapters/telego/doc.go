// Package telegosession adapts the typed session middleware to telego's
// handler package (github.com/mymmrac/telego/telegohandler): [New] returns
// a middleware that loads the typed session of each update before the
// handlers and saves it after, and handlers read it with session.From,
// since telego's *th.Context is a context.Context.
//
//	m, _ := session.New(session.Config[Quiz]{Store: st, Namespace: "quiz"})
//	bh, _ := th.NewBotHandler(bot, updates)
//	bh.Use(telegosession.New(m, telegosession.UserInChatKey, middleware.Options{}))
//	bh.HandleMessage(func(ctx *th.Context, msg telego.Message) error {
//		s, err := session.From[Quiz](ctx)
//		if err != nil {
//			return err // ErrNoSession: an update without a user, such as a channel post
//		}
//		s.Data.Score++
//		_, err = ctx.Bot().SendMessage(ctx, tu.Message(msg.Chat.ChatID(), "..."))
//		return err // an error discards the session changes
//	})
//	bh.Start()
//
// The import path is github.com/typedsession/session/adapters/telego; the
// package is named telegosession so that it does not clash with telego's
// own package name.
//
// # Keys
//
// A key function names the session of an update: [ChatKey] (one session per
// chat: a group shares it), [UserKey] (one per user, in every chat),
// [UserInChatKey] (one per user in each chat), [TopicKey] (one per forum
// topic) and [UserInTopicKey] (one per user in each forum topic). They are
// the key functions of github.com/typedsession/session/middleware/tgbot,
// rule for rule (the rules live in one place, and one table of updates is
// run against the three Telegram adapters), on telego's types, and give the
// same keys for the same updates. Each returns an error wrapping
// [middleware.ErrNoKey] for an update that lacks what it needs, such as an
// inline query for ChatKey or a channel post for UserKey; the handler then
// runs without a session and session.From reports session.ErrNoSession. Any
// function with the signature of a [middleware.KeyFunc] of *telego.Update will do.
//
// Two conversations never share a session. A chat of a business account
// that the bot serves through a business connection carries the
// customer's ID, the same number as the bot's own private chat with that
// customer, and the same through every other business connection; its keys
// begin with "business:<business_connection_id>:". UserKey alone stays one
// session per person, business chats included.
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
// # Saving
//
// When the rest of the chain (the matching handler, and the middlewares
// after this one) returns nil, the session is saved (nothing is written
// when the data did not change); when it returns an error, or panics, the
// changes are discarded. An update that no handler matches returns nil and
// saves what the middlewares after this one changed.
//
// telego cancels the context of every update in progress when the
// BotHandler stops (Stop, StopWithContext). A load or save that has not
// finished by then fails with context.Canceled: the update's changes are
// not saved, and the error goes to the error handler like any other. Stop
// the updates channel first and let the handlers finish if that matters.
//
// # Concurrency
//
// telego runs each update's handlers in a goroutine of its own, so two
// messages of one user that arrive together are handled at the same time.
// Within one middleware returned by [New], updates of the same key are
// serialized (unless [middleware.Options].NoLock), so each sees the session
// as the other saved it and both count; different keys run in parallel.
// Across bot processes sharing a store they are not serialized unless
// [middleware.Options].Locker spans them: the store's compare-and-swap
// turns a race into session.ErrConflict on the later save, which is
// returned to the error handler and saves nothing, so no update is lost
// silently.
package telegosession
