// Package telebotsession adapts the typed session middleware to telebot
// (gopkg.in/telebot.v4): [New] returns a tele.MiddlewareFunc that loads
// the typed session of each update before the handler and saves it after,
// and handlers read it with [From].
//
//	m, _ := session.New(session.Config[Quiz]{Store: st, Namespace: "quiz"})
//	b, _ := tele.NewBot(tele.Settings{Token: token, Poller: &tele.LongPoller{Timeout: 10 * time.Second}})
//	b.Use(telebotsession.New(m, telebotsession.UserInChatKey, middleware.Options{}))
//	b.Handle(tele.OnText, func(c tele.Context) error {
//		s, err := telebotsession.From[Quiz](c)
//		if err != nil {
//			return err // ErrNoSession: an update without a user, such as a channel post
//		}
//		s.Data.Score++
//		return c.Send("...") // an error discards the session changes
//	})
//	b.Start()
//
// The import path is github.com/typedsession/session/adapters/telebot; the
// package is named telebotsession so that it does not clash with telebot's
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
// run against the three Telegram adapters), on telebot's types, and give the
// same keys for the same updates. Each returns an error wrapping
// [middleware.ErrNoKey] for an update that lacks what it needs, such as an
// inline query for ChatKey or a channel post for UserKey; the handler then
// runs without a session and From reports session.ErrNoSession. Any
// function with the signature of a [middleware.KeyFunc] of tele.Context will do.
//
// Two conversations never share a session. A chat of a business account
// that the bot serves through a business connection carries the
// customer's ID, the same number as the bot's own private chat with that
// customer, and the same through every other business connection; its keys
// begin with "business:<business_connection_id>:". UserKey alone stays one
// session per person, business chats included.
// In a guest chat (guest_message: the bot called in a chat it is not a
// member of) the keys begin with "guest:" for the same reason.
//
// A message sent on behalf of a chat (an anonymous group admin, an
// automatic forward from a linked channel, a message as a channel) is
// keyed by its sender_chat in UserKey, UserInChatKey and UserInTopicKey,
// not by the placeholder user in its from field (what c.Sender() returns), so distinct senders never
// share a session; see [UserKey].
//
// telebot v4.0.0-beta.10 does not decode direct_messages_topic: in a
// channel's direct messages chat, TopicKey and UserInTopicKey cannot tell
// the users' topics apart, where the other adapters can (see [TopicKey]).
//
// Several bots may share one store and namespace: [ForBot] puts
// "bot<ID>:" in front of every key. A handler learns its session's key
// without loading it with [middleware.KeyFrom].
//
// # Saving
//
// A handler that returns nil has its session saved (nothing is written
// when the data did not change); a handler that returns an error, or
// panics, has its changes discarded. telebot's handlers have no
// context.Context: the middleware starts each update from
// context.Background(), so stopping the bot does not cancel a load or a
// save in progress.
//
// # Concurrency
//
// telebot runs each update's handler in its own goroutine (unless
// Settings.Synchronous), so two messages of one user that arrive together
// are handled at the same time. Within one middleware returned by [New],
// updates of the same key are serialized (unless
// [middleware.Options].NoLock), so each sees the session as the other
// saved it and both count; different keys run in parallel. Across bot
// processes sharing a store they are not serialized unless
// [middleware.Options].Locker spans them: the store's compare-and-swap
// turns a race into session.ErrConflict on the later save, which is
// returned to telebot's OnError and saves nothing, so no update is lost
// silently.
package telebotsession
