// Command tsinspect looks inside the stores of typedsession: it lists,
// reads, counts, exports, imports and deletes sessions on any store the
// library has, from the command line and without the application's Go
// types.
//
//	go run github.com/typedsession/session/cmd/tsinspect@latest --store redis://127.0.0.1:6379/0 --prefix mybot: stats
//
// The store is a URL or a path (--store, or TSINSPECT_STORE):
//
//	redis://[user:pass@]host:port/db, rediss://…     one Redis node (--prefix: redisstore Options.Prefix)
//	redis-cluster://h1:p1,h2:p2, rediss-cluster://…  a Redis Cluster, by its seed nodes
//	postgres://user@host/db                           a sqlstore table (--table, default "sessions")
//	sqlite://path/file.db, or path/file.db            a sqlstore table in a SQLite file
//	file:///var/lib/bot/sessions, or a directory      a filestore folder
//	memstore://path/snap, or a snapshot file          a memstore snapshot, opened read-only
//
// Commands: ls, get, stats, export, import, rm, purge, quarantine,
// restore. Run tsinspect help COMMAND for each one's flags. Ctrl-C stops a
// command cleanly: it says how far it got and exits with status 130.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:]))
}

// run runs the command line args and returns the exit status: 0, 1 for
// an error, 2 for a usage error, 130 when interrupted.
func run(ctx context.Context, args []string) int {
	root := newRoot(os.Stdin, os.Stdout, os.Stderr)
	root.SetArgs(args)
	err := root.ExecuteContext(ctx)
	switch {
	case err == nil:
		return 0
	case errors.Is(err, context.Canceled) || ctx.Err() != nil:
		fmt.Fprintln(os.Stderr, "tsinspect: interrupted")
		return 130
	case errors.Is(err, errUsage):
		fmt.Fprintln(os.Stderr, "tsinspect:", err)
		return 2
	}
	fmt.Fprintln(os.Stderr, "tsinspect:", err)
	return 1
}
