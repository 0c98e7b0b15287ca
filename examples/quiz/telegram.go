package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/go-telegram/bot"
	"github.com/go-telegram/bot/models"

	session "github.com/typedsession/session"
	"github.com/typedsession/session/middleware"
	"github.com/typedsession/session/middleware/tgbot"
	"github.com/typedsession/session/store"
)

// workers is the number of updates handled at once. Updates of one player
// still run one after the other: the session middleware serializes them.
const workers = 8

// telegram runs the bot on the Bot API until ctx ends. Each player has one
// quiz in each chat (tgbot.UserInChatKey), so a group can play together,
// everyone on their own quiz.
func telegram(ctx context.Context, m *session.Manager[Quiz], st store.Store, o options, where string, out io.Writer) error {
	out = &lockedWriter{w: out}
	logf := func(format string, args ...any) { fmt.Fprintf(out, format+"\n", args...) }
	var b *bot.Bot
	f, err := newFlow(m, st, o.timeLimit, o.now, func(ctx context.Context, _ string, chat int64, text string) error {
		if chat == 0 {
			return nil // a player of the terminal, on the same store
		}
		_, err := b.SendMessage(ctx, &bot.SendMessageParams{ChatID: chat, Text: text})
		return err
	})
	if err != nil {
		return err
	}
	sessions := tgbot.New(m, tgbot.UserInChatKey, middleware.Options{
		// RepeatOnConflict: a time limit saved by a sweeper between the
		// middleware's load and its save runs the handler again.
		RepeatOnConflict: true,
		Locker:           o.locker, // with -store redis, one lock across the bot's replicas
		OnError: func(_ context.Context, op, key string, err error) {
			logf("session %s %q: %v", op, key, err)
		},
	})
	b, err = bot.New(o.token,
		bot.WithServerURL(o.apiURL),
		bot.WithSkipGetMe(), // called below, to name the bot
		// Handlers run in the workers, not in a goroutine each, so that
		// Start returns only when no update is being handled: the store
		// is closed after the last save.
		bot.WithNotAsyncHandlers(),
		bot.WithWorkers(workers),
		bot.WithMiddlewares(finishOnShutdown, sessions),
		bot.WithDefaultHandler(tgbot.Handler(onUpdate(f))),
		bot.WithErrorsHandler(func(err error) { logf("telegram: %v", err) }),
	)
	if err != nil {
		return fmt.Errorf("telegram: %w", err)
	}
	mctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	me, err := b.GetMe(mctx)
	cancel()
	if err != nil {
		return fmt.Errorf("telegram: getMe (is TELEGRAM_BOT_TOKEN right?): %w", err)
	}
	logf("Quiz bot @%s is running on Telegram. Sessions are kept %s. Ctrl-C stops it.", me.Username, where)
	stop := sweep(ctx, f, logf)
	defer stop()
	b.Start(ctx)
	logf("Stopped.")
	return nil
}

// finishOnShutdown gives each update a context that ctx's end does not
// cancel, bounded by a timeout: an update being handled at shutdown still
// sends its reply and saves its session.
func finishOnShutdown(next bot.HandlerFunc) bot.HandlerFunc {
	return func(ctx context.Context, b *bot.Bot, u *models.Update) {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		next(ctx, b, u)
	}
}

// onUpdate answers a text message (or a button's callback data) with
// the quiz's reply. An error discards the session changes: a player whose
// reply could not be sent sees the same question again.
func onUpdate(f *quizFlow) tgbot.HandlerFunc {
	return func(ctx context.Context, b *bot.Bot, u *models.Update) error {
		return answer(ctx, f, b, u)
	}
}

func answer(ctx context.Context, f *quizFlow, b *bot.Bot, u *models.Update) error {
	var text string
	var msg *models.Message
	switch {
	case u.Message != nil:
		text, msg = u.Message.Text, u.Message
	case u.CallbackQuery != nil:
		text, msg = u.CallbackQuery.Data, u.CallbackQuery.Message.Message
		if _, err := b.AnswerCallbackQuery(ctx, &bot.AnswerCallbackQueryParams{CallbackQueryID: u.CallbackQuery.ID}); err != nil {
			return err
		}
	}
	if text == "" || msg == nil {
		return nil // a photo, a sticker, a member update: nothing to say
	}
	reply, err := respond(ctx, f, u.ID, text, msg.Chat.ID)
	if errors.Is(err, session.ErrNoSession) {
		return nil // a channel post or an anonymous admin: no player
	}
	if err != nil {
		return err
	}
	params := &bot.SendMessageParams{ChatID: msg.Chat.ID, Text: reply}
	if msg.IsTopicMessage {
		params.MessageThreadID = msg.MessageThreadID
	}
	_, err = b.SendMessage(ctx, params)
	return err
}

// lockedWriter serializes writes from concurrent handlers.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}
