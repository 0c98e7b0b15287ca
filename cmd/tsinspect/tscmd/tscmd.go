// Package tscmd adds typed session commands to an application's own
// binary: validate every session, migrate them all with progress, show
// one decoded into the application's type. The inspector (tsinspect)
// cannot do these, since it does not know the Go types; the application
// does.
//
//	admin := tscmd.Commands[Quiz]{Manager: m, Store: st, Namespace: "quiz"}
//	if len(os.Args) > 1 && os.Args[1] == "sessions" {
//		if err := admin.Run(ctx, os.Args[2:]); err != nil {
//			log.Fatal(err)
//		}
//		return
//	}
//
// Then "mybot sessions validate", "mybot sessions migrate" and "mybot
// sessions show 42". The package uses only the standard library and the
// core, so it adds no dependency and no CLI library to the application:
// Run takes the arguments, and the three methods can be wired into any
// CLI library instead.
package tscmd

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	session "github.com/typedsession/session"
	"github.com/typedsession/session/store"
)

// Commands are the typed commands for the sessions of one manager. Store
// and Namespace must be those of the manager's Config.
type Commands[T any] struct {
	Manager   *session.Manager[T]
	Store     store.Store
	Namespace string
	// Out receives the reports; nil: os.Stdout. Progress goes to Progress;
	// nil: os.Stderr.
	Out, Progress io.Writer
}

func (c Commands[T]) out() io.Writer {
	if c.Out == nil {
		return os.Stdout
	}
	return c.Out
}

func (c Commands[T]) progress() io.Writer {
	if c.Progress == nil {
		return os.Stderr
	}
	return c.Progress
}

// Usage is the text Run prints for a missing or unknown command.
const Usage = `commands:
  validate      load every session of the namespace: decode, migrate, validate (read only)
  migrate       rewrite every session stored below the latest schema version
  show KEY      print one session decoded into the application's type`

// Run runs the command in args: "validate", "migrate" or "show KEY". It
// returns an error for an unknown command (with Usage), a failed command,
// and, for validate and migrate, when any session failed.
func (c Commands[T]) Run(ctx context.Context, args []string) error {
	if len(args) == 0 {
		return fmt.Errorf("no command given\n%s", Usage)
	}
	switch {
	case args[0] == "validate" && len(args) == 1:
		r, err := c.ValidateAll(ctx)
		fmt.Fprintf(c.out(), "validate: %d sessions, %d valid, %d failed\n", r.Scanned, r.Valid, len(r.Failed))
		for _, f := range r.Failed {
			fmt.Fprintf(c.out(), "  %s: %v\n", f.Key, f.Err)
		}
		if err == nil && len(r.Failed) > 0 {
			err = fmt.Errorf("%d sessions do not load", len(r.Failed))
		}
		return err
	case args[0] == "migrate" && len(args) == 1:
		r, err := c.MigrateAll(ctx)
		fmt.Fprintf(c.out(), "migrate: %d scanned, %d migrated, %d current, %d gone, %d failed", r.Scanned, r.Migrated, r.Current, r.Gone, len(r.Failed))
		if r.Quarantined > 0 {
			fmt.Fprintf(c.out(), ", %d damaged and quarantined", r.Quarantined)
		}
		fmt.Fprintln(c.out())
		for _, f := range r.Failed {
			fmt.Fprintf(c.out(), "  %s: %v\n", f.Key, f.Err)
		}
		if err == nil && len(r.Failed) > 0 {
			err = fmt.Errorf("%d sessions were not migrated", len(r.Failed))
		}
		return err
	case args[0] == "show" && len(args) == 2:
		return c.Show(ctx, args[1])
	}
	return fmt.Errorf("unknown command %q\n%s", strings.Join(args, " "), Usage)
}

// ValidateReport is what ValidateAll found.
type ValidateReport struct {
	Scanned int // keys of the namespace
	Valid   int // loaded cleanly
	Gone    int // expired or deleted during the walk
	// Failed lists the keys that do not load (at most MaxFailures; the
	// count is Scanned - Valid - Gone), with Load's error: ErrCorrupt,
	// ErrMigration, ErrInvalid, ErrFutureVersion, ...
	Failed []session.MigrateFailure
}

// MaxFailures bounds the failures a report lists, so memory stays flat.
const MaxFailures = 1000

// ValidateAll loads every session of the namespace as Load does (decode,
// migrate in memory, validate) and writes nothing, except that Load may
// extend the TTL of a session near its expiry. Use a manager without
// Config.Quarantine: with it a damaged value would be moved aside. It
// stops when ctx ends, returning the report so far and ctx's error.
func (c Commands[T]) ValidateAll(ctx context.Context) (ValidateReport, error) {
	var r ValidateReport
	sc, ok := c.Store.(store.Scanner)
	if !ok {
		return r, errors.New("tscmd: the store cannot list its keys (no store.Scanner)")
	}
	prefix := ""
	if c.Namespace != "" {
		prefix = c.Namespace + ":"
	}
	tick := time.Now()
	err := sc.Scan(ctx, prefix, func(k string) error {
		if prefix == "" && strings.HasPrefix(k, session.QuarantinePrefix) {
			// Not a session: a copy Config.Quarantine moved aside, which
			// MigrateAll passes over too.
			return nil
		}
		r.Scanned++
		key := strings.TrimPrefix(k, prefix)
		s, err := c.Manager.Load(ctx, key)
		switch {
		case err != nil && ctx.Err() != nil:
			return ctx.Err()
		case err != nil:
			if len(r.Failed) < MaxFailures {
				r.Failed = append(r.Failed, session.MigrateFailure{Key: key, Err: err})
			}
		case s.IsNew():
			r.Gone++
		default:
			r.Valid++
		}
		if time.Since(tick) > 200*time.Millisecond {
			tick = time.Now()
			fmt.Fprintf(c.progress(), "\rvalidate: %d sessions, %d valid", r.Scanned, r.Valid)
		}
		return nil
	})
	if r.Scanned > 0 {
		fmt.Fprintf(c.progress(), "\rvalidate: %d sessions, %d valid\n", r.Scanned, r.Valid)
	}
	return r, err
}

// MigrateAll runs the manager's MigrateAll, printing its progress at most
// five times a second.
func (c Commands[T]) MigrateAll(ctx context.Context) (session.MigrateReport, error) {
	tick := time.Now()
	r, err := c.Manager.MigrateAll(ctx, session.MigrateOptions{
		AllKeys: c.Namespace == "",
		Progress: func(r session.MigrateReport) {
			if time.Since(tick) > 200*time.Millisecond {
				tick = time.Now()
				fmt.Fprintf(c.progress(), "\rmigrate: %d scanned, %d migrated, %d failed", r.Scanned, r.Migrated, len(r.Failed))
			}
		},
	})
	if r.Scanned > 0 {
		fmt.Fprintf(c.progress(), "\rmigrate: %d scanned, %d migrated, %d failed\n", r.Scanned, r.Migrated, len(r.Failed))
	}
	return r, err
}

// Info is what Describe reports of one stored session, without its data.
type Info struct {
	Size int // bytes in the store; 0 when absent
	// TTL is the time left, store.NoExpiry for none, or -2 when the store
	// cannot tell (no store.TTLGetter) or the key is absent.
	TTL time.Duration
}

// TTLUnknown is Info.TTL when the store cannot tell.
const TTLUnknown time.Duration = -2

// Describe reads the size and TTL left of the session key, in the store
// under namespace: what a /debug command shows next to the session
// itself. An absent key gives a zero Size and TTLUnknown.
func Describe(ctx context.Context, st store.Store, namespace, key string) (Info, error) {
	k := key
	if namespace != "" {
		k = namespace + ":" + key
	}
	var (
		raw []byte
		ttl = TTLUnknown
		err error
	)
	if g, ok := st.(store.TTLGetter); ok {
		raw, ttl, err = g.GetWithTTL(ctx, k)
	} else {
		raw, err = st.Get(ctx, k)
	}
	if errors.Is(err, store.ErrNotFound) {
		return Info{TTL: TTLUnknown}, nil
	}
	if err != nil {
		return Info{}, err
	}
	return Info{Size: len(raw), TTL: ttl}, nil
}

// String prints the info as "312 bytes, 23h59m left" ("no expiry",
// "TTL unknown").
func (i Info) String() string {
	switch {
	case i.Size == 0 && i.TTL == TTLUnknown:
		return "not stored"
	case i.TTL == store.NoExpiry:
		return fmt.Sprintf("%d bytes, no expiry", i.Size)
	case i.TTL < 0:
		return fmt.Sprintf("%d bytes, TTL unknown", i.Size)
	}
	return fmt.Sprintf("%d bytes, %v left", i.Size, i.TTL.Truncate(time.Second))
}

// Show prints the session key decoded into T, as indented JSON, with its
// schema version (after migration), size and TTL left. A key that does not
// load is an error saying why.
func (c Commands[T]) Show(ctx context.Context, key string) error {
	s, err := c.Manager.Load(ctx, key)
	if err != nil {
		return err
	}
	if s.IsNew() {
		return fmt.Errorf("session %q: not stored (absent or expired)", key)
	}
	info, err := Describe(ctx, c.Store, c.Namespace, key)
	if err != nil {
		return err
	}
	data, err := json.MarshalIndent(s.Data, "  ", "  ")
	if err != nil {
		return err
	}
	fmt.Fprintf(c.out(), "session: %s\nversion: %d\nstored:  %s\ndata:\n  %s\n", key, s.Version(), info, data)
	return nil
}
