// Command soak runs issue 22's simulation (package internal/sim) against
// real stores for longer than the quick run: memstore, filestore, Redis,
// PostgreSQL (store/sqlstore) and NATS JetStream (store/natsstore). It
// prints, per store, the histories checked, operations, faults injected and
// time, and the report of every violation found; it exits 1 when it found
// one.
//
//	cd internal/sim/soak
//	go run . -stores=memstore,filestore,redis,postgres,nats -duration=2m
//	go run . -stores=redis -seeds=100 -clients=16 -ops=100
//	go test -tags soak -run TestSoak -timeout 0 . -args -- -stores=redis -duration=1m   # the same as a Go test
//
// The servers are found as the tests find them: REDIS_URL
// (redis://127.0.0.1:6379/0), DATABASE_URL
// (postgres://postgres@127.0.0.1:5432/test), NATS_URL
// (nats://127.0.0.1:4222). Each seed runs on keys, a table or a bucket of
// its own, removed afterwards. A store restart (the Restart fault) closes
// and reopens memstore (with a snapshot file), filestore, sqlstore and
// natsstore over the same data, and a new redisstore over the same client.
package main

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/redis/go-redis/v9"

	"github.com/typedsession/session/internal/sim"
	"github.com/typedsession/session/store"
	"github.com/typedsession/session/store/filestore"
	"github.com/typedsession/session/store/memstore"
	"github.com/typedsession/session/store/natsstore"
	"github.com/typedsession/session/store/redisstore"
	"github.com/typedsession/session/store/sqlstore"
)

func main() {
	os.Exit(run(context.Background(), os.Args[1:], os.Stdout))
}

// options are the command's flags.
type options struct {
	stores          []string
	seeds           int
	first           uint64
	duration        time.Duration
	clients, ops    int
	slots           int
	rates           sim.Rates
	disable         []string
	historiesDir    string
	stopOnViolation bool
}

func parse(args []string, out io.Writer) (options, error) {
	fs := flag.NewFlagSet("soak", flag.ContinueOnError)
	fs.SetOutput(out)
	stores := fs.String("stores", "memstore,filestore,redis,postgres,nats", "stores to run against, comma-separated")
	seeds := fs.Int("seeds", 0, "seeds per store (0: as many as -duration allows)")
	first := fs.Uint64("seed", 1, "the first seed")
	duration := fs.Duration("duration", time.Minute, "how long to run each store when -seeds is 0")
	clients := fs.Int("clients", 8, "concurrent clients")
	ops := fs.Int("ops", 100, "operations per client per seed")
	slots := fs.Int("slots", 4, "sessions (each a family of keys moves link)")
	faults := fs.String("faults", "", "fault rates, name:rate,... over sim.DefaultRates")
	disable := fs.String("disable", "", "kinds of operation not to run, comma-separated (see sim.Config.Disable)")
	hist := fs.String("histories", "", "write each failing history whole into this folder")
	stop := fs.Bool("stop", false, "stop a store's run at its first seed with a violation")
	check := fs.Duration("check", 20*time.Second, "bound of each linearizability check (sim.CheckTimeout): the soak's histories are longer than the CI run's")
	if err := fs.Parse(args); err != nil {
		return options{}, err
	}
	if *check > 0 {
		sim.CheckTimeout = *check
	}
	o := options{stores: split(*stores), seeds: *seeds, first: *first, duration: *duration, clients: *clients, ops: *ops,
		slots: *slots, disable: split(*disable), historiesDir: *hist, stopOnViolation: *stop, rates: sim.DefaultRates}
	for _, kv := range split(*faults) {
		name, val, ok := strings.Cut(kv, ":")
		f, err := sim.ParseFault(name)
		if err != nil || !ok {
			return o, fmt.Errorf("-faults %q: want name:rate pairs: %v", kv, err)
		}
		if o.rates[f], err = strconv.ParseFloat(val, 64); err != nil {
			return o, fmt.Errorf("-faults %q: %v", kv, err)
		}
	}
	return o, nil
}

func split(s string) []string {
	return strings.FieldsFunc(s, func(r rune) bool { return r == ',' })
}

// run runs the soak with args and returns the exit code.
func run(ctx context.Context, args []string, out io.Writer) int {
	o, err := parse(args, out)
	if err != nil {
		fmt.Fprintln(out, err)
		return 2
	}
	code := 0
	for _, name := range o.stores {
		open, ok := openers[name]
		if !ok {
			fmt.Fprintf(out, "soak: no store %q (one of memstore, filestore, redis, postgres, nats)\n", name)
			return 2
		}
		sum, err := soakStore(ctx, o, name, open, out)
		if err != nil {
			fmt.Fprintf(out, "soak %s: %v\n", name, err)
			return 2
		}
		fmt.Fprintf(out, "soak %s: %s\n", name, sum)
		if sum.violations > 0 {
			code = 1
		}
	}
	return code
}

// summary adds up a store's seeds.
type summary struct {
	seeds, histories, ops, env, violations, failedSeeds int
	undecided                                           int // checks that ran out of their bound: no verdict, not a violation
	calls, faults, restarts                             int64
	took                                                time.Duration
}

func (s summary) String() string {
	return fmt.Sprintf("%d seeds, %d histories checked (%d undecided: the check ran out of its bound), %d operations (+%d changes behind the managers' back), %d store calls, %d faults injected (%d restarts), %d violations in %d seeds, %v (%.0f operations/s)",
		s.seeds, s.histories, s.undecided, s.ops, s.env, s.calls, s.faults, s.restarts, s.violations, s.failedSeeds, s.took.Round(time.Millisecond), float64(s.ops)/s.took.Seconds())
}

func soakStore(ctx context.Context, o options, name string, open opener, out io.Writer) (summary, error) {
	var sum summary
	start := time.Now()
	for i := 0; ; i++ {
		if o.seeds > 0 && i >= o.seeds || o.seeds == 0 && i > 0 && time.Since(start) >= o.duration {
			break
		}
		seed := o.first + uint64(i)
		st, reopen, cleanup, err := open(ctx)
		if err != nil {
			return sum, err
		}
		r, err := sim.Run(ctx, sim.Config{
			Seed: seed, Store: st, Reopen: reopen,
			Caps:    sim.Profiles[seed%uint64(len(sim.Profiles))],
			TTL:     []time.Duration{0, time.Hour, 200 * 365 * 24 * time.Hour}[(seed+seed/uint64(len(sim.Profiles)))%3],
			Clients: o.clients, Ops: o.ops, Slots: o.slots, Rates: o.rates, Disable: o.disable,
		})
		cerr := cleanup()
		if err != nil {
			return sum, err
		}
		if cerr != nil {
			fmt.Fprintf(out, "soak %s: cleanup after seed %d: %v\n", name, seed, cerr)
		}
		sum.seeds++
		sum.histories += r.Parts
		sum.ops += r.Ops
		sum.env += r.Env
		sum.calls += r.Stats.Calls
		sum.faults += r.Stats.Injected()
		sum.restarts += r.Stats.Restarts
		fmt.Fprintf(out, "soak %s: %s\n", name, r.Figures())
		// A check that ran out of its bound (-check) decided nothing: it is
		// counted and printed, but only a violation fails the soak, whose
		// histories are longer than the quick run's and whose machine may
		// be busy with other suites.
		violations := 0
		for _, f := range r.Findings {
			if f.Kind == "check-timeout" {
				sum.undecided++
			} else {
				violations++
			}
		}
		if r.Failed() {
			sum.violations += violations
			if violations > 0 {
				sum.failedSeeds++
			}
			fmt.Fprint(out, r.Report(fmt.Sprintf("cd internal/sim/soak && go run . -stores=%s -seed=%d -seeds=1 -clients=%d -ops=%d -slots=%d", name, seed, o.clients, o.ops, o.slots)))
			if o.historiesDir != "" {
				for _, f := range r.Findings {
					if f.Kind == "linearizability" {
						if path, err := f.WriteHistory(o.historiesDir, seed); err == nil {
							fmt.Fprintf(out, "  whole history: %s\n", path)
						}
					}
				}
			}
			if o.stopOnViolation {
				break
			}
		}
	}
	sum.took = time.Since(start)
	return sum, nil
}

// An opener opens an empty store of its kind, with how to restart it and
// how to remove what the run left.
type opener func(ctx context.Context) (st store.Store, reopen func(store.Store) (store.Store, error), cleanup func() error, err error)

var openers = map[string]opener{
	"memstore":  openMem,
	"filestore": openFile,
	"redis":     openRedis,
	"postgres":  openPostgres,
	"nats":      openNATS,
}

func unique(name string) string {
	b := make([]byte, 6)
	rand.Read(b)
	return name + "_" + hex.EncodeToString(b)
}

func env(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

func openMem(context.Context) (store.Store, func(store.Store) (store.Store, error), func() error, error) {
	dir, err := os.MkdirTemp("", "soak-mem-")
	if err != nil {
		return nil, nil, nil, err
	}
	opts := memstore.Options{BackupPath: filepath.Join(dir, "snapshot"), BackupInterval: -1, CleanupInterval: -1}
	st, err := memstore.New(opts)
	if err != nil {
		return nil, nil, nil, err
	}
	cur := st
	reopen := func(old store.Store) (store.Store, error) {
		if err := old.(*memstore.Store).Close(); err != nil {
			return nil, err
		}
		n, err := memstore.New(opts)
		if err == nil {
			cur = n
		}
		return n, err
	}
	return st, reopen, func() error { cur.Close(); return os.RemoveAll(dir) }, nil
}

func openFile(context.Context) (store.Store, func(store.Store) (store.Store, error), func() error, error) {
	dir, err := os.MkdirTemp("", "soak-file-")
	if err != nil {
		return nil, nil, nil, err
	}
	st, err := filestore.New(dir, filestore.Options{})
	if err != nil {
		return nil, nil, nil, err
	}
	cur := st
	reopen := func(old store.Store) (store.Store, error) {
		if err := old.(*filestore.Store).Close(); err != nil {
			return nil, err
		}
		n, err := filestore.New(dir, filestore.Options{})
		if err == nil {
			cur = n
		}
		return n, err
	}
	return st, reopen, func() error { cur.Close(); return os.RemoveAll(dir) }, nil
}

func openRedis(ctx context.Context) (store.Store, func(store.Store) (store.Store, error), func() error, error) {
	opts, err := redis.ParseURL(env("REDIS_URL", "redis://127.0.0.1:6379/0"))
	if err != nil {
		return nil, nil, nil, err
	}
	opts.ContextTimeoutEnabled = true
	c := redis.NewClient(opts)
	if err := c.Ping(ctx).Err(); err != nil {
		c.Close()
		return nil, nil, nil, fmt.Errorf("no Redis answers (set REDIS_URL): %w", err)
	}
	prefix := unique("soak") + ":"
	ropts := redisstore.Options{Prefix: prefix}
	reopen := func(store.Store) (store.Store, error) { return redisstore.New(c, ropts), nil }
	cleanup := func() error {
		defer c.Close()
		iter := c.Scan(context.Background(), 0, prefix+"*", 500).Iterator()
		for iter.Next(context.Background()) {
			c.Del(context.Background(), iter.Val())
		}
		return iter.Err()
	}
	return redisstore.New(c, ropts), reopen, cleanup, nil
}

func openPostgres(ctx context.Context) (store.Store, func(store.Store) (store.Store, error), func() error, error) {
	db, err := sql.Open("pgx", env("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"))
	if err == nil {
		err = db.PingContext(ctx)
	}
	if err != nil {
		return nil, nil, nil, fmt.Errorf("no PostgreSQL answers (set DATABASE_URL): %w", err)
	}
	opts := sqlstore.Options{Dialect: sqlstore.Postgres, Table: unique("soak")}
	st, err := sqlstore.New(db, opts)
	if err != nil {
		db.Close()
		return nil, nil, nil, err
	}
	cur := st
	reopen := func(old store.Store) (store.Store, error) {
		if err := old.(*sqlstore.Store).Close(); err != nil {
			return nil, err
		}
		n, err := sqlstore.New(db, opts)
		if err == nil {
			cur = n
		}
		return n, err
	}
	cleanup := func() error {
		cur.Close()
		_, err := db.Exec(`DROP TABLE IF EXISTS "` + opts.Table + `"`)
		return errors.Join(err, db.Close())
	}
	return st, reopen, cleanup, nil
}

func openNATS(ctx context.Context) (store.Store, func(store.Store) (store.Store, error), func() error, error) {
	nc, err := nats.Connect(env("NATS_URL", "nats://127.0.0.1:4222"), nats.ReconnectBufSize(-1))
	if err != nil {
		return nil, nil, nil, fmt.Errorf("no NATS answers (set NATS_URL): %w", err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return nil, nil, nil, err
	}
	opts := natsstore.Options{Bucket: unique("soak")}
	st, err := natsstore.New(ctx, js, opts)
	if err != nil {
		nc.Close()
		return nil, nil, nil, err
	}
	cur := st
	reopen := func(old store.Store) (store.Store, error) {
		if err := old.(*natsstore.Store).Close(); err != nil {
			return nil, err
		}
		n, err := natsstore.New(context.Background(), js, opts)
		if err == nil {
			cur = n
		}
		return n, err
	}
	cleanup := func() error {
		cur.Close()
		err := js.DeleteKeyValue(context.Background(), opts.Bucket)
		nc.Close()
		return err
	}
	return st, reopen, cleanup, nil
}
