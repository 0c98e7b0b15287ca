package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"
)

var errUsage = errors.New("usage")

// globals are the flags every command takes.
type globals struct {
	Store      string
	Prefix     string
	Namespace  string
	Table      string
	Workers    int
	Wait       time.Duration
	NoProgress bool

	stdin          io.Reader
	stdout, stderr io.Writer
	warnMu         sync.Mutex // one warning at a time on stderr
}

// open opens the store; create allows a missing table, folder or file.
func (g *globals) open(ctx context.Context, create bool) (*target, error) {
	if strings.Contains(g.Namespace, ":") {
		return nil, fmt.Errorf("%w: --namespace %q: a namespace has no ':'", errUsage, g.Namespace)
	}
	return openStore(ctx, g.Store, openOptions{Prefix: g.Prefix, Table: g.Table, Create: create, Wait: g.Wait, Warn: g.warn})
}

// warn prints what a store reports through its error hook (an entry a
// listing cannot name) on stderr: the listing goes on, but the user learns
// of it.
func (g *globals) warn(err error) {
	g.warnMu.Lock()
	defer g.warnMu.Unlock()
	fmt.Fprintf(g.stderr, "tsinspect: warning: %v\n", err)
}

// storeKey returns the store key of a session key: Namespace + ":" + key,
// or key alone without --namespace.
func (g *globals) storeKey(key string) string {
	if g.Namespace == "" {
		return key
	}
	return g.Namespace + ":" + key
}

// progress returns a progress bar on stderr when stderr is a terminal and
// --no-progress is not given, or a bar that draws nothing. total < 0: an
// unknown total (a spinner with a count and a rate).
func (g *globals) progress(total int64, what string) *progressbar.ProgressBar {
	w := io.Discard
	if f, ok := g.stderr.(*os.File); ok && !g.NoProgress {
		if fi, err := f.Stat(); err == nil && fi.Mode()&os.ModeCharDevice != 0 {
			w = f
		}
	}
	return progressbar.NewOptions64(total,
		progressbar.OptionSetWriter(w),
		// No bar at all where it would draw nothing, and no spinner
		// timer: progressbar v3.19.1's timer goroutine reads the bar's
		// state without its lock while Add writes it (a data race the
		// race detector reports); the spinner turns on each Add instead.
		progressbar.OptionSetVisibility(w != io.Discard),
		progressbar.OptionSetSpinnerChangeInterval(0),
		progressbar.OptionSetDescription(what),
		progressbar.OptionShowCount(),
		progressbar.OptionShowIts(),
		progressbar.OptionSetItsString("keys"),
		progressbar.OptionThrottle(100*time.Millisecond),
		progressbar.OptionSpinnerType(14),
		progressbar.OptionClearOnFinish(),
	)
}

// newRoot builds the command tree, reading and writing the given streams.
func newRoot(stdin io.Reader, stdout, stderr io.Writer) *cobra.Command {
	g := &globals{stdin: stdin, stdout: stdout, stderr: stderr}
	root := &cobra.Command{
		Use:   "tsinspect",
		Short: "Look inside typedsession stores: ls, get, stats, export, import, rm, quarantine, restore",
		Long: `tsinspect lists, reads, counts, exports, imports and deletes the sessions of
typedsession on any store the library has, without the application's types.

The store (--store or TSINSPECT_STORE) is a URL or a path:
  redis://[user:pass@]host:port/db, rediss://...   one Redis node (--prefix)
  redis-cluster://h1:p1,h2:p2, rediss-cluster://.. a Redis Cluster by its seeds
  postgres://user@host/db                          a sqlstore table (--table)
  sqlite://file.db, or a .db file                  a sqlstore table in SQLite
  file:///var/lib/bot/sessions, or a directory     a filestore folder
  memstore://snapshot, or a snapshot file          a memstore snapshot (read-only)

Keys are store keys (namespace:key); with --namespace, KEY arguments are
the session keys of that namespace and listings stay inside it.`,
		SilenceErrors: true,
		SilenceUsage:  true,
	}
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return fmt.Errorf("%w: %v", errUsage, err) })
	f := root.PersistentFlags()
	f.StringVarP(&g.Store, "store", "s", os.Getenv("TSINSPECT_STORE"), "the store: a URL or a path (default $TSINSPECT_STORE)")
	f.StringVar(&g.Prefix, "prefix", "", "Redis key prefix (redisstore Options.Prefix)")
	f.StringVarP(&g.Namespace, "namespace", "n", "", "session namespace (Config.Namespace): keys are namespace:key")
	f.StringVar(&g.Table, "table", "", "SQL table (sqlstore Options.Table; default sessions)")
	f.IntVar(&g.Workers, "workers", 8, "concurrent reads while listing")
	f.DurationVar(&g.Wait, "wait", 5*time.Second, "how long to wait for a server to answer")
	f.BoolVar(&g.NoProgress, "no-progress", false, "never draw a progress bar")
	root.AddCommand(lsCmd(g), getCmd(g), statsCmd(g), exportCmd(g), importCmd(g), rmCmd(g), purgeCmd(g), quarantineCmd(g), restoreCmd(g))
	return root
}

// inNamespace reports whether the store key k lies in --namespace (any key
// does without one).
func (g *globals) inNamespace(k string) bool {
	return g.Namespace == "" || strings.HasPrefix(k, g.Namespace+":")
}

// scanPrefix is the store-key prefix of a listing: the namespace and the
// optional key prefix argument.
func (g *globals) scanPrefix(args []string) string {
	p := ""
	if len(args) > 0 {
		p = args[0]
	}
	if g.Namespace == "" {
		return p
	}
	return g.Namespace + ":" + p
}

// withStore opens the store, runs fn and closes the store.
func (g *globals) withStore(cmd *cobra.Command, create bool, fn func(ctx context.Context, t *target) error) error {
	ctx := cmd.Context()
	t, err := g.open(ctx, create)
	if err != nil {
		return err
	}
	err = fn(ctx, t)
	if cerr := t.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("closing the store: %w", cerr)
	}
	return err
}
