// Command tgbotapi is a note-keeping Telegram bot on
// github.com/go-telegram-bot-api/telegram-bot-api/v5, a library with no
// middleware of its own: it hands the bot a channel of updates. The
// generic middleware.New wraps the bot's handler, and the update loop
// calls it once per update, each in its own goroutine.
//
//	TELEGRAM_TOKEN=123:abc go run . [-sessions notes.db]
//
// Sessions live in a file store under -sessions, so notes survive a
// restart. Stop the bot with Ctrl-C: it stops polling and lets the updates
// in progress finish and save.
package main

import (
	"context"
	"flag"
	"log"
	"os"
	"os/signal"
	"sync"
	"syscall"

	tgbotapi "github.com/go-telegram-bot-api/telegram-bot-api/v5"

	session "github.com/typedsession/session"
	"github.com/typedsession/session/middleware"
	"github.com/typedsession/session/store/filestore"
)

func main() {
	dir := flag.String("sessions", "sessions", "directory of the session store")
	flag.Parse()
	token := os.Getenv("TELEGRAM_TOKEN")
	if token == "" {
		log.Fatal("set TELEGRAM_TOKEN to the bot's token from @BotFather")
	}

	st, err := filestore.New(*dir, filestore.Options{})
	if err != nil {
		log.Fatal(err)
	}
	defer st.Close()
	m, err := session.New(session.Config[Notes]{Store: st, Namespace: "notes"})
	if err != nil {
		log.Fatal(err)
	}

	bot, err := tgbotapi.NewBotAPI(token)
	if err != nil {
		log.Fatal(err)
	}
	log.Printf("authorized as @%s", bot.Self.UserName)

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		<-ctx.Done()
		bot.StopReceivingUpdates() // closes the updates channel: serve returns
	}()

	serve(ctx, bot.GetUpdatesChan(tgbotapi.UpdateConfig{Timeout: 30}), newHandler(m, bot), func(err error) { log.Print(err) })
}

// newHandler wraps the bot's handler with the session middleware: one
// session of Notes per sender in each chat. Updates of one key are
// serialized by the middleware's per-key lock. The wrapped handler returns
// the handler's own errors and those of the session machinery (a failed
// load or save, each naming its op and key).
func newHandler(m *session.Manager[Notes], bot Sender) middleware.Handler[*tgbotapi.Update] {
	return middleware.New(m, userInChatKey, middleware.Options{}).Wrap(handle(bot))
}

// serve runs h on every update from updates, each in its own goroutine,
// until updates is closed, then waits for the updates in progress. The
// handlers run on a context that shutdown does not cancel, so that an
// update that has started also saves its session; errors go to onError.
func serve(ctx context.Context, updates <-chan tgbotapi.Update, h middleware.Handler[*tgbotapi.Update], onError func(error)) {
	ctx = context.WithoutCancel(ctx)
	var wg sync.WaitGroup
	defer wg.Wait()
	for u := range updates {
		wg.Go(func() {
			if err := h(ctx, &u); err != nil {
				onError(err)
			}
		})
	}
}
