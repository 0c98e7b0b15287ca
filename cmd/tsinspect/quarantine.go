package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	session "github.com/typedsession/session"
	"github.com/typedsession/session/internal/format"
	"github.com/typedsession/session/internal/protocol"
	"github.com/typedsession/session/store"
)

// quarantined is one value that Config.Quarantine moved aside.
type quarantined struct {
	Key      string    // the quarantine key
	Original string    // the value's store key before the move; "" when Key does not parse
	Moved    time.Time // when it was moved; zero when Key does not parse
	Size     int
	Occupied bool // Original holds a value now
}

// parseQuarantineKey splits a quarantine key, QuarantinePrefix + Unix
// nanoseconds + ":" + store key, into the time of the move and the
// original store key; ok is false for a key of another form.
func parseQuarantineKey(key string) (moved time.Time, original string, ok bool) {
	rest, ok := strings.CutPrefix(key, session.QuarantinePrefix)
	if !ok {
		return time.Time{}, "", false
	}
	nanos, original, ok := strings.Cut(rest, ":")
	if !ok || original == "" || nanos == "" || strings.TrimLeft(nanos, "0123456789") != "" {
		return time.Time{}, "", false
	}
	ns, err := strconv.ParseInt(nanos, 10, 64)
	if err != nil {
		return time.Time{}, "", false
	}
	return time.Unix(0, ns).UTC(), original, true
}

// movedText is the MOVED column: UTC to the second, or "-".
func movedText(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.Format("2006-01-02 15:04:05")
}

func quarantineCmd(g *globals) *cobra.Command {
	var asJSON bool
	c := &cobra.Command{
		Use:   "quarantine [KEYPREFIX]",
		Short: "List the values Config.Quarantine moved aside",
		Long: `quarantine lists the values that Config.Quarantine moved aside because they
could not be decoded, opened or migrated, oldest move first: the value's size
in bytes, when it was moved (UTC, from the key), whether its original key
holds a value now (occupied: the user has a new session since; empty), the
original store key, and the quarantine key to give to restore.

KEYPREFIX and --namespace select by the original key: with -n quiz, the
values moved from the quiz namespace. (ls shows the same values with status
quarantined, by their quarantine keys, which lie outside every namespace.)
It holds one short line per quarantined value in memory, to sort them.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.withStore(cmd, false, func(ctx context.Context, t *target) error {
				return listQuarantine(ctx, g, t, g.scanPrefix(args), asJSON)
			})
		},
	}
	c.Flags().BoolVar(&asJSON, "json", false, "print one JSON object per value (key, original_key, moved_at, size, original_occupied)")
	return c
}

// quarantineLine is a line of quarantine --json.
type quarantineLine struct {
	Key              string     `json:"key"`
	OriginalKey      string     `json:"original_key"`      // "": the key does not parse
	MovedAt          *time.Time `json:"moved_at"`          // null: the key does not parse
	Size             int        `json:"size"`              // bytes
	OriginalOccupied bool       `json:"original_occupied"` // the original key holds a value now
}

func listQuarantine(ctx context.Context, g *globals, t *target, prefix string, asJSON bool) error {
	var qs []quarantined
	err := walk(ctx, t, session.QuarantinePrefix, g.Workers, func(e entry) error {
		if e.Gone {
			return nil
		}
		q := quarantined{Key: e.Key, Size: e.Size}
		q.Moved, q.Original, _ = parseQuarantineKey(e.Key)
		if prefix != "" && !strings.HasPrefix(q.Original, prefix) {
			return nil
		}
		qs = append(qs, q)
		return nil
	})
	if err != nil {
		return fmt.Errorf("quarantine: %w", err)
	}
	for i := range qs {
		if qs[i].Original == "" {
			continue
		}
		if qs[i].Occupied, err = occupied(ctx, t, qs[i].Original); err != nil {
			return fmt.Errorf("quarantine: reading %s: %w", keyText(qs[i].Original), err)
		}
	}
	slices.SortFunc(qs, func(a, b quarantined) int {
		if c := a.Moved.Compare(b.Moved); c != 0 {
			return c
		}
		return strings.Compare(a.Key, b.Key)
	})
	w := bufio.NewWriter(g.stdout)
	defer w.Flush()
	if asJSON {
		enc := json.NewEncoder(w)
		for _, q := range qs {
			l := quarantineLine{Key: q.Key, OriginalKey: q.Original, Size: q.Size, OriginalOccupied: q.Occupied}
			if !q.Moved.IsZero() {
				l.MovedAt = &q.Moved
			}
			if err := enc.Encode(l); err != nil {
				return err
			}
		}
		return nil
	}
	if len(qs) == 0 {
		fmt.Fprintln(w, "no quarantined values")
		return nil
	}
	width := len("ORIGINAL KEY")
	for _, q := range qs {
		width = max(width, len(keyText(q.Original)))
	}
	fmt.Fprintf(w, "%9s  %-19s  %-8s  %-*s  %s\n", "SIZE", "MOVED (UTC)", "KEY NOW", width, "ORIGINAL KEY", "QUARANTINE KEY")
	for _, q := range qs {
		now, orig := "empty", keyText(q.Original)
		switch {
		case q.Original == "":
			now, orig = "-", "?"
		case q.Occupied:
			now = "occupied"
		}
		fmt.Fprintf(w, "%9d  %-19s  %-8s  %-*s  %s\n", q.Size, movedText(q.Moved), now, width, orig, keyText(q.Key))
	}
	return nil
}

// occupied reports whether key holds a value (a value the store cannot
// read back counts).
func occupied(ctx context.Context, t *target, key string) (bool, error) {
	_, err := t.Store.Get(ctx, key)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return false, nil
	case err == nil || errors.Is(err, store.ErrCorrupt):
		return true, nil
	}
	return false, err
}

// restoreOptions are the flags of restore.
type restoreOptions struct {
	To     string // the store key to write to; "" for the original key
	Yes    bool   // do not ask
	DryRun bool   // check and say what would happen, change nothing
	Force  bool   // write without compare-and-swap where the store has none
}

func restoreCmd(g *globals) *cobra.Command {
	var o restoreOptions
	c := &cobra.Command{
		Use:   "restore QUARANTINE-KEY",
		Short: "Write a quarantined value back under its original key",
		Long: `restore writes the value under QUARANTINE-KEY (as tsinspect quarantine lists
it) back under its original store key, or under --to KEY (with --namespace,
a session key of that namespace), and then removes the quarantine copy. It
asks first (answer y), unless --yes.

It writes only where nothing is stored: when the user got a new session since
the move, restore refuses; restore to another key with --to, or delete the
new session with rm first. The write is a compare-and-swap against "absent",
so a session the running application writes between the check and the write
is kept and restore fails. On a store without compare-and-swap restore
refuses unless --force (the check and the write are then not atomic). The
quarantine copy is removed with compare-and-delete against the value read,
where the store has it; if it changed since it was read, the restored copy
is removed again and nothing is restored. Lost replies are resent and
settled as the session manager settles its own moves.

The value is written without expiry, as the quarantine copy has none.
Config.Quarantine moves aside only damaged bytes (they do not parse, open or
decompress): restore a value once it is repaired, or to another key (--to) to
look at it; a manager with Config.Quarantine moves a value it still cannot
read aside again at its next Load. --dry-run checks everything and changes nothing.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.withStore(cmd, false, func(ctx context.Context, t *target) error {
				if err := t.writable(); err != nil {
					return err
				}
				if o.To != "" {
					o.To = g.storeKey(o.To)
				}
				return restore(ctx, g, t, args[0], o)
			})
		},
	}
	f := c.Flags()
	f.StringVar(&o.To, "to", "", "write to this key instead of the original one (with --namespace, a session key)")
	f.BoolVarP(&o.Yes, "yes", "y", false, "restore without asking")
	f.BoolVar(&o.DryRun, "dry-run", false, "check and say what restore would do; change nothing")
	f.BoolVar(&o.Force, "force", false, "on a store without compare-and-swap, write after a plain check for an absent key")
	return c
}

// restore moves the value under qkey back to its original key or o.To.
func restore(ctx context.Context, g *globals, t *target, qkey string, o restoreOptions) error {
	moved, original, ok := parseQuarantineKey(qkey)
	if !strings.HasPrefix(qkey, session.QuarantinePrefix) {
		return fmt.Errorf("%w: %s is not a quarantine key (they begin with %q; tsinspect quarantine lists them)", errUsage, keyText(qkey), session.QuarantinePrefix)
	}
	if err := store.CheckKey(qkey); err != nil {
		return fmt.Errorf("restore %s: %w", keyText(qkey), err)
	}
	dest := o.To
	if dest == "" {
		if !ok {
			return fmt.Errorf("%w: %s does not name its original key (%sNANOSECONDS:KEY); give one with --to", errUsage, keyText(qkey), session.QuarantinePrefix)
		}
		dest = original
	}
	if strings.HasPrefix(dest, session.QuarantinePrefix) {
		return fmt.Errorf("%w: --to %s is itself a quarantine key", errUsage, keyText(dest))
	}
	if !g.inNamespace(dest) {
		return fmt.Errorf("%w: %s names the original key %s, outside namespace %q; restore it without --namespace, or into the namespace with --to", errUsage, keyText(qkey), keyText(dest), g.Namespace)
	}
	if err := store.CheckKey(dest); err != nil {
		return fmt.Errorf("restore to %s: %w", keyText(dest), err)
	}
	sw, _ := t.Store.(store.Swapper)
	if sw == nil && !o.Force {
		return fmt.Errorf("restore: %s store has no compare-and-swap, so a session written at %s between the check and the write would be overwritten; stop the application or pass --force", t.Kind, keyText(dest))
	}

	raw, err := t.Store.Get(ctx, qkey)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return fmt.Errorf("restore: %s: not found (tsinspect quarantine lists the quarantined values)", keyText(qkey))
	case err != nil:
		return fmt.Errorf("restore: reading %s: %w", keyText(qkey), err)
	}
	taken, err := occupied(ctx, t, dest)
	if err != nil {
		return fmt.Errorf("restore: reading %s: %w", keyText(dest), err)
	}
	if taken {
		return occupiedError(dest, o.To != "")
	}
	status := describe(dest, raw).Status
	what := fmt.Sprintf("%s (%d bytes, %s", keyText(qkey), len(raw), status)
	if !moved.IsZero() {
		what += ", moved " + movedText(moved) + " UTC"
	}
	what += ") to " + keyText(dest)
	if o.DryRun {
		fmt.Fprintf(g.stdout, "would restore %s; nothing changed (dry run)\n", what)
		return nil
	}
	if !o.Yes {
		fmt.Fprintf(g.stdout, "restore %s in %s %s? [y/N] ", what, t.Kind, t.Where)
		answer, _ := bufio.NewReader(g.stdin).ReadString('\n')
		if a := strings.ToLower(strings.TrimSpace(answer)); a != "y" && a != "yes" {
			fmt.Fprintln(g.stdout, "nothing restored")
			return nil
		}
	}

	// The session manager's own two-key move (internal/protocol): the
	// value is written under dest only if nothing is there, the quarantine
	// copy removed only if it still holds what was read, the write undone
	// only after a definite conflict, resends and lost replies settled as
	// the manager settles them.
	w, _ := format.WritesOf(raw)
	id := ""
	if w.Len() > 0 {
		id = w.At(0)
	}
	err = protocol.New(t.Store).Move(ctx, qkey, protocol.Old{Raw: raw, Writes: w}, dest, protocol.Value{Raw: raw, ID: id})
	switch {
	case errors.Is(err, session.ErrOutcomeUnknown):
		return fmt.Errorf("restore: %s to %s: %w (both keys may hold it now; look with tsinspect get)", keyText(qkey), keyText(dest), err)
	case errors.Is(err, protocol.ErrKeyTaken):
		return fmt.Errorf("restore: %s was written meanwhile (the application is running); nothing restored, the new value kept", keyText(dest))
	case errors.Is(err, session.ErrConflict):
		return fmt.Errorf("restore: the quarantine copy %s changed since it was read; nothing restored, both keys as they were: %w", keyText(qkey), err)
	case err != nil:
		return fmt.Errorf("restore: %s to %s: %w", keyText(qkey), keyText(dest), err)
	}
	fmt.Fprintf(g.stdout, "restored %s; quarantine copy removed\n", what)
	if status != StatusOK && status != StatusV0 {
		fmt.Fprintf(g.stdout, "note: the value is %s as tsinspect reads it; a manager with Config.Quarantine that still cannot read it moves it aside again\n", status)
	}
	return nil
}

// occupiedError is the refusal to restore over a stored value.
func occupiedError(dest string, to bool) error {
	if to {
		return fmt.Errorf("restore: %s holds a value now; nothing restored (choose another --to key, or remove it with tsinspect rm first)", keyText(dest))
	}
	return fmt.Errorf("restore: %s holds a value now (a new session since the move?); nothing restored: restore with --to ANOTHER-KEY, or remove it with tsinspect rm %s first", keyText(dest), keyText(dest))
}
