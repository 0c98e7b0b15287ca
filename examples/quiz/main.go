// Command quiz is a quiz bot whose per-player state is a typed session: the
// Quiz struct, validated on every load and save and kept in a file store (the
// default), in memory with a snapshot file, or in Redis.
//
// A running quiz is a conversation (package conversation) with a time
// limit per question (-time-limit, default 30 s) that fires even when the
// player never writes again, and after a restart: a sweeper runs in the
// bot, once at its start and then every second.
//
// In the terminal each line is a message. A line "@alice: 2" speaks as
// player alice; other lines speak as "you". With TELEGRAM_BOT_TOKEN set it
// runs as a Telegram bot instead, with the same handler and the same store.
//
//	go run ./examples/quiz                    # file store in the state folder
//	go run ./examples/quiz -store memory      # memory, snapshot on exit
//	go run ./examples/quiz -store redis -redis-url redis://127.0.0.1:6379/0
//	TELEGRAM_BOT_TOKEN=123:abc go run ./examples/quiz
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"

	session "github.com/typedsession/session"
	"github.com/typedsession/session/middleware"
	"github.com/typedsession/session/middleware/redislock"
	"github.com/typedsession/session/migrate"
	"github.com/typedsession/session/store"
	"github.com/typedsession/session/store/filestore"
	"github.com/typedsession/session/store/memstore"
	"github.com/typedsession/session/store/redisstore"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdin, os.Stdout); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return // -help printed the usage, as the flag package does
		}
		fmt.Fprintln(os.Stderr, "quiz:", err)
		os.Exit(1)
	}
}

// options are the command line flags, each with an environment fallback.
type options struct {
	store     string // file, memory or redis
	dir       string
	backup    string
	redisURL  string
	namespace string
	token     string
	apiURL    string
	timeLimit time.Duration

	// now is the clock of the quiz's time limits (tests set it; nil:
	// time.Now).
	now func() time.Time

	// locker, set by openStore for Redis, serializes the updates of one
	// player across replicas of the bot (nil: the in-process default).
	locker middleware.Locker
}

func parseFlags(args []string, out io.Writer) (options, error) {
	var o options
	fs := flag.NewFlagSet("quiz", flag.ContinueOnError)
	fs.SetOutput(out)
	fs.StringVar(&o.store, "store", env("QUIZ_STORE", "file"), "where sessions live: file, memory or redis (env QUIZ_STORE)")
	fs.StringVar(&o.dir, "dir", env("QUIZ_DIR", defaultDir()), "folder of the file store and of the memory snapshot (env QUIZ_DIR)")
	fs.StringVar(&o.backup, "backup", env("QUIZ_BACKUP", ""), "snapshot file of the memory store; empty: <dir>/memstore.snap, \"off\": none (env QUIZ_BACKUP)")
	fs.StringVar(&o.redisURL, "redis-url", env("REDIS_URL", "redis://127.0.0.1:6379/0"), "Redis server of -store redis (env REDIS_URL)")
	fs.StringVar(&o.namespace, "namespace", env("QUIZ_NAMESPACE", "quiz"), "session namespace: keys are <namespace>:<player> (env QUIZ_NAMESPACE)")
	fs.StringVar(&o.token, "token", "", "Telegram bot token; empty: terminal mode (env TELEGRAM_BOT_TOKEN)")
	fs.DurationVar(&o.timeLimit, "time-limit", envDuration("QUIZ_TIME_LIMIT", 30*time.Second), "time to answer a question; 0: no limit (env QUIZ_TIME_LIMIT)")
	fs.StringVar(&o.apiURL, "telegram-api", env("TELEGRAM_API_URL", "https://api.telegram.org"), "Telegram Bot API server (env TELEGRAM_API_URL)")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected argument %q; see -help", fs.Arg(0))
	}
	if o.token == "" {
		// Read here, not as the flag's default, so -help never prints it.
		o.token = os.Getenv("TELEGRAM_BOT_TOKEN")
	}
	return o, nil
}

func envDuration(name string, def time.Duration) time.Duration {
	if d, err := time.ParseDuration(os.Getenv(name)); err == nil {
		return d
	}
	return def
}

func env(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

// defaultDir is $XDG_STATE_HOME/typedsession-quiz, or
// ~/.local/state/typedsession-quiz: outside any checkout, so a fresh clone
// stays clean, and the same folder from wherever the program is started.
func defaultDir() string {
	if d := os.Getenv("XDG_STATE_HOME"); d != "" {
		return filepath.Join(d, "typedsession-quiz")
	}
	if h, err := os.UserHomeDir(); err == nil {
		return filepath.Join(h, ".local", "state", "typedsession-quiz")
	}
	return filepath.Join(os.TempDir(), "typedsession-quiz")
}

// openStore opens the store that o names. It returns the store, a sentence
// saying where sessions are kept, and the function that closes the store
// (writing the memory snapshot).
func openStore(ctx context.Context, o *options) (store.Store, string, func() error, error) {
	switch o.store {
	case "file":
		st, err := filestore.New(o.dir, filestore.Options{})
		if err != nil {
			return nil, "", nil, fmt.Errorf("open the file store: %w", err)
		}
		return st, "in files under " + st.Dir(), st.Close, nil
	case "memory":
		backup := o.backup
		if backup == "" {
			backup = filepath.Join(o.dir, "memstore.snap")
		}
		where := "in memory, lost on exit (-backup off)"
		if backup == "off" {
			backup = ""
		} else {
			if err := os.MkdirAll(filepath.Dir(backup), 0o700); err != nil {
				return nil, "", nil, fmt.Errorf("create the folder of the snapshot: %w", err)
			}
			where = "in memory, saved to " + backup + " every minute and on exit"
		}
		st, err := memstore.New(memstore.Options{BackupPath: backup})
		if err != nil {
			return nil, "", nil, fmt.Errorf("open the memory store: %w", err)
		}
		return st, where, st.Close, nil
	case "redis":
		ropts, err := redis.ParseURL(o.redisURL)
		if err != nil {
			return nil, "", nil, fmt.Errorf("-redis-url %q: %w", o.redisURL, err)
		}
		ropts.ContextTimeoutEnabled = true // honour ctx deadlines (README: the recommended client)
		client := redis.NewClient(ropts)
		pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		if err := client.Ping(pctx).Err(); err != nil {
			client.Close()
			return nil, "", nil, fmt.Errorf("redis at %s does not answer: %w", ropts.Addr, err)
		}
		// Several replicas of the bot on one Redis handle a player's
		// messages one after the other: a lock that spans processes.
		lock := redislock.New(client, redislock.Options{Prefix: o.namespace + ":lock:"})
		o.locker = lock
		closeAll := func() error { return errors.Join(lock.Close(), client.Close()) }
		return redisstore.New(client, redisstore.Options{}), "in Redis at " + ropts.Addr + " db " + fmt.Sprint(ropts.DB), closeAll, nil
	}
	return nil, "", nil, fmt.Errorf("-store %q: want file, memory or redis", o.store)
}

// newManager returns the session manager both modes share. An idle session
// expires after 30 days.
func newManager(st store.Store, namespace string) (*session.Manager[Quiz], error) {
	plan, err := migrate.New(quizV1)
	if err != nil {
		return nil, err
	}
	return session.New(session.Config[Quiz]{Store: st, Namespace: namespace, TTL: 30 * 24 * time.Hour, Migrations: plan})
}

func run(ctx context.Context, args []string, in io.Reader, out io.Writer) error {
	o, err := parseFlags(args, out)
	if err != nil {
		return err
	}
	return runWith(ctx, o, in, out)
}

// runWith runs the bot with the options o.
func runWith(ctx context.Context, o options, in io.Reader, out io.Writer) (err error) {
	st, where, closeStore, err := openStore(ctx, &o)
	if err != nil {
		return err
	}
	defer func() {
		if cerr := closeStore(); cerr != nil && err == nil {
			err = fmt.Errorf("close the store: %w", cerr)
		}
	}()
	m, err := newManager(st, o.namespace)
	if err != nil {
		return err
	}
	ctx = withDebug(ctx, st, o.namespace) // for /debug
	if o.token != "" {
		return telegram(ctx, m, st, o, where, out)
	}
	return terminal(ctx, m, st, o, where, in, out)
}

// sweep runs the time limits that have run out, once now and then every
// second until ctx ends, in the background; the returned function stops it
// and waits for it.
func sweep(ctx context.Context, f *quizFlow, logf func(format string, args ...any)) (stop func()) {
	report := func(err error) { logf("time limits: %v", err) }
	rep, err := f.Sweep(ctx) // the time limits that ran out while the bot was down
	if err != nil {
		report(err)
	}
	for _, err := range rep.Failed {
		report(err)
	}
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		f.RunSweeper(ctx, time.Second, report)
	}()
	return func() { cancel(); <-done }
}

// defaultPlayer speaks the lines that name no player.
const defaultPlayer = "you"

// respond is the bot's handler in both modes: it applies one message (update
// id, 0 for none; chat, 0 in the terminal) to the quiz in the session that
// the middleware bound into ctx and returns the reply. The middleware saves
// the session after it, unless it returns an error.
func respond(ctx context.Context, f *quizFlow, id int64, text string, chat int64) (string, error) {
	s, err := session.From[Quiz](ctx)
	if err != nil {
		return "", err
	}
	if command(strings.TrimSpace(text)) == "/debug" {
		return debug(ctx, s), nil
	}
	var reply string
	_, err = f.Apply(ctx, s, id, message{text: text, chat: chat, reply: &reply})
	return reply, err
}

// line is one message typed in the terminal.
type line struct {
	player, text string
	reply        string // set by the handler
}

// terminal runs the bot on lines of in until EOF, "/quit" or ctx ends.
func terminal(ctx context.Context, m *session.Manager[Quiz], st store.Store, o options, where string, in io.Reader, out io.Writer) error {
	out = &lockedWriter{w: out} // the time limits print from the sweeper
	fmt.Fprintf(out, "Quiz bot. Sessions are kept %s.\n", where)
	fmt.Fprintf(out, "Type /help. Start a line with \"@name: \" to speak as another player. /quit or Ctrl-D quits.\n")
	f, err := newFlow(m, st, o.timeLimit, o.now, func(_ context.Context, key string, _ int64, text string) error {
		printReply(out, strings.TrimPrefix(key, "terminal:"), text)
		return nil
	})
	if err != nil {
		return err
	}
	stop := sweep(ctx, f, func(format string, args ...any) { fmt.Fprintf(out, format+"\n", args...) })
	defer stop()
	// The same middleware as in Telegram mode, keyed by player name.
	// RepeatOnConflict: a time limit saved by the sweeper between the
	// middleware's load and its save runs the handler again.
	mw := middleware.New(m, func(_ context.Context, l *line) (string, error) {
		return "terminal:" + l.player, nil
	}, middleware.Options{RepeatOnConflict: true})
	h := mw.Wrap(func(ctx context.Context, l *line) (err error) {
		l.reply, err = respond(ctx, f, 0, l.text, 0)
		return err
	})

	lines := make(chan string)
	readErr := make(chan error, 1)
	go func() {
		sc := bufio.NewScanner(in)
		for sc.Scan() {
			select {
			case lines <- sc.Text():
			case <-ctx.Done():
				return
			}
		}
		readErr <- sc.Err()
		close(lines)
	}()
	for {
		var text string
		var ok bool
		select {
		case <-ctx.Done():
			return nil
		case text, ok = <-lines:
		}
		if !ok {
			return <-readErr
		}
		player, text := parseLine(text)
		if text == "" {
			continue
		}
		if text == "/quit" || text == "/exit" {
			return nil
		}
		l := &line{player: player, text: text}
		if err := h(ctx, l); err != nil {
			// A broken session is the player's problem, not the bot's:
			// say so and go on with the other players.
			fmt.Fprintf(out, "error for %s: %v\n", player, err)
			continue
		}
		printReply(out, player, l.reply)
	}
}

// printReply prints a reply to player.
func printReply(out io.Writer, player, reply string) {
	if player == defaultPlayer {
		fmt.Fprintf(out, "bot: %s\n", reply)
	} else {
		fmt.Fprintf(out, "bot to @%s: %s\n", player, reply)
	}
}

// parseLine splits "@alice: text" into the player and the text.
func parseLine(line string) (player, text string) {
	line = strings.TrimSpace(line)
	if name, rest, ok := strings.Cut(line, ":"); ok && strings.HasPrefix(name, "@") && len(name) > 1 && !strings.ContainsAny(name, " \t") {
		return name[1:], strings.TrimSpace(rest)
	}
	return defaultPlayer, line
}
