// Command schema demonstrates one deploy that changes a session type,
// without losing or corrupting a single session.
//
// Version 1 of an app stores preferences as {lang, theme}. Version 2 renames
// lang to language, turns the theme string into an enum and adds a per-page
// setting with a default. Version 2 reads version 1 sessions, migrates them
// and writes them back; version 1 then refuses to touch them
// (ErrFutureVersion) instead of overwriting data it does not understand.
//
// Run the whole story in a temporary folder:
//
//	go run ./examples/schema
//
// Or step by step, as two deploys would, on one folder:
//
//	go run ./examples/schema -dir /tmp/schema-demo -app v1 seed     # v1 writes sessions
//	go run ./examples/schema -dir /tmp/schema-demo -app v2 -write 1 show  # v2 reads all, still writes v1 (rolling deploy)
//	go run ./examples/schema -dir /tmp/schema-demo -app v2 migrate  # v2 migrates every session to v2
//	go run ./examples/schema -dir /tmp/schema-demo -app v1 show     # v1 refuses the newer schema
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"regexp"
	"slices"

	"github.com/typedsession/session"
	"github.com/typedsession/session/migrate"
	"github.com/typedsession/session/store/filestore"
)

// PrefsV1 is the session type of version 1 of the app.
type PrefsV1 struct {
	Lang  string `json:"lang"`
	Theme string `json:"theme" validate:"oneof=light dark"`
}

// Theme is version 2's enum of themes.
type Theme int

// The themes of version 2.
const (
	Light Theme = iota + 1
	Dark
)

// PrefsV2 is the session type of version 2.
type PrefsV2 struct {
	Language string `json:"language" validate:"required"`
	Theme    Theme  `json:"theme" validate:"oneof=1 2"`
	PerPage  int    `json:"per_page" validate:"min=5,max=100"`
}

// v2Plan carries version 1 sessions to version 2, and back for the weeks of
// a rolling deploy when version 1 binaries still run.
var v2Plan = migrate.MustNew(migrate.TypedReversible(1,
	func(old PrefsV1) (PrefsV2, error) {
		theme := Light
		switch old.Theme {
		case "dark":
			theme = Dark
		case "light", "":
		default:
			return PrefsV2{}, fmt.Errorf("unknown theme %q", old.Theme)
		}
		return PrefsV2{Language: old.Lang, Theme: theme, PerPage: 20}, nil
	},
	func(n PrefsV2) (PrefsV1, error) {
		theme := "light"
		if n.Theme == Dark {
			theme = "dark"
		}
		return PrefsV1{Lang: n.Language, Theme: theme}, nil
	},
))

var users = []struct{ id, lang, theme string }{
	{"alice", "en", "dark"}, {"bob", "de", "light"}, {"chloé", "fr", "dark"},
}

func main() {
	if err := run(context.Background(), os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "schema:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, out io.Writer) error {
	fs := flag.NewFlagSet("schema", flag.ContinueOnError)
	fs.SetOutput(out)
	dir := fs.String("dir", "", "folder of the session files (default: a new temporary folder, removed at the end)")
	app := fs.String("app", "v1", "which version of the app runs: v1 or v2")
	write := fs.Int("write", 0, "schema version v2 writes (0: its latest, 2; 1 during a rolling deploy)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *dir == "" {
		if fs.NArg() > 0 {
			return errors.New("give -dir for a single step, so the next step finds the sessions")
		}
		tmp, err := os.MkdirTemp("", "typedsession-schema-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(tmp)
		return story(ctx, tmp, out)
	}
	if fs.NArg() != 1 {
		return errors.New("give one command: seed, show or migrate")
	}
	return step(ctx, *dir, *app, *write, fs.Arg(0), out)
}

// story runs the whole deploy in one folder.
func story(ctx context.Context, dir string, out io.Writer) error {
	for _, s := range []struct {
		title, app, cmd string
		write           int
	}{
		{"1. Version 1 is deployed and users save their preferences.", "v1", "seed", 0},
		{"2. Version 2 is rolled out but still writes version 1, while version 1 binaries run.", "v2", "show", 1},
		{"3. Every instance runs version 2: it migrates all sessions to version 2.", "v2", "migrate", 0},
		{"4. A version 1 binary (a rollback, a straggler) meets version 2 data and refuses it.", "v1", "show", 0},
	} {
		fmt.Fprintf(out, "\n%s\n", s.title)
		if err := step(ctx, dir, s.app, s.write, s.cmd, out); err != nil {
			return err
		}
	}
	return nil
}

func step(ctx context.Context, dir, app string, write int, cmd string, out io.Writer) error {
	st, err := filestore.New(dir, filestore.Options{})
	if err != nil {
		return err
	}
	defer st.Close()
	switch app {
	case "v1":
		m, err := session.New(session.Config[PrefsV1]{Store: st, Namespace: "prefs"})
		if err != nil {
			return err
		}
		return runV1(ctx, m, st, cmd, out)
	case "v2":
		m, err := session.New(session.Config[PrefsV2]{
			Store: st, Namespace: "prefs", Migrations: v2Plan, WriteVersion: write,
			Initial: func() PrefsV2 { return PrefsV2{Language: "en", Theme: Light, PerPage: 20} },
		})
		if err != nil {
			return err
		}
		return runV2(ctx, m, st, cmd, out)
	default:
		return fmt.Errorf("unknown -app %q: v1 or v2", app)
	}
}

func runV1(ctx context.Context, m *session.Manager[PrefsV1], st *filestore.Store, cmd string, out io.Writer) error {
	switch cmd {
	case "seed":
		for _, u := range users {
			if _, err := m.Update(ctx, u.id, func(p *PrefsV1) error {
				p.Lang, p.Theme = u.lang, u.theme
				return nil
			}); err != nil {
				return err
			}
		}
		return dump(ctx, st, out)
	case "show":
		for _, u := range users {
			s, err := m.Load(ctx, u.id)
			if errors.Is(err, session.ErrFutureVersion) {
				fmt.Fprintf(out, "  v1 refuses %s: %v\n", u.id, err)
				continue
			}
			if err != nil {
				return err
			}
			fmt.Fprintf(out, "  v1 reads %s: %+v\n", u.id, s.Data)
		}
		_, err := m.Update(ctx, "alice", func(p *PrefsV1) error { p.Theme = "light"; return nil })
		fmt.Fprintf(out, "  v1 tries to change alice's theme: %v\n", err)
		return dump(ctx, st, out)
	}
	return fmt.Errorf("v1 knows seed and show, not %q", cmd)
}

func runV2(ctx context.Context, m *session.Manager[PrefsV2], st *filestore.Store, cmd string, out io.Writer) error {
	switch cmd {
	case "show":
		for _, u := range users {
			s, err := m.Load(ctx, u.id)
			if err != nil {
				return err
			}
			fmt.Fprintf(out, "  v2 reads %s (stored as version %d): %+v\n", u.id, s.Version(), s.Data)
		}
		if _, err := m.Update(ctx, "bob", func(p *PrefsV2) error { p.Theme = Dark; return nil }); err != nil {
			return err
		}
		fmt.Fprintln(out, "  v2 switches bob to the dark theme; it is stored in version 1's shape, so v1 binaries still read it")
		return dump(ctx, st, out)
	case "migrate":
		r, err := m.MigrateAll(ctx, session.MigrateOptions{})
		if err != nil {
			return err
		}
		fmt.Fprintf(out, "  MigrateAll: scanned %d, migrated %d, already current %d, failed %d\n",
			r.Scanned, r.Migrated, r.Current, len(r.Failed))
		return dump(ctx, st, out)
	}
	return fmt.Errorf("v2 knows show and migrate, not %q", cmd)
}

// writesMember matches the envelope's write identities, which are random:
// dump shows them as […] so that runs of the story print the same.
var writesMember = regexp.MustCompile(`"writes":\[[^\]]*\]`)

// dump prints what the store holds, as `redis-cli GET` would show it (with
// the write identities masked).
func dump(ctx context.Context, st *filestore.Store, out io.Writer) error {
	var keys []string
	if err := st.Scan(ctx, "prefs:", func(k string) error { keys = append(keys, k); return nil }); err != nil {
		return err
	}
	slices.Sort(keys)
	for _, k := range keys {
		v, err := st.Get(ctx, k)
		if err != nil {
			return err
		}
		fmt.Fprintf(out, "    %-14s %s\n", k, writesMember.ReplaceAll(v, []byte(`"writes":[…]`)))
	}
	return nil
}
