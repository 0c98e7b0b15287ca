package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"

	session "github.com/typedsession/session"
	"github.com/typedsession/session/store"
)

// record is one line of an export: a store key, its value (base64 in
// JSON) and its absolute expiry (absent: none). ExpiryUnknown is set when
// the source store cannot tell a key's TTL; import then writes it without
// expiry.
type record struct {
	Key           string     `json:"key"`
	Value         []byte     `json:"value"`
	ExpiresAt     *time.Time `json:"expires_at,omitempty"`
	ExpiryUnknown bool       `json:"expiry_unknown,omitempty"`
}

func exportCmd(g *globals) *cobra.Command {
	var out string
	c := &cobra.Command{
		Use:   "export [KEYPREFIX]",
		Short: "Write the values under a prefix as JSON Lines, with their absolute expiry",
		Long: `export writes one JSON object per key under --namespace and KEYPREFIX:
{"key":"quiz:42","value":"<base64 of the stored bytes>","expires_at":"2026-12-01T10:00:00.123Z"}
(no expires_at: no expiry). Values are exported byte for byte, damaged ones
too. With -o FILE the lines go to FILE.partial, renamed to FILE when the
export is complete, so an interrupted export never looks complete.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.withStore(cmd, false, func(ctx context.Context, t *target) error {
				return export(ctx, g, t, g.scanPrefix(args), out)
			})
		},
	}
	c.Flags().StringVarP(&out, "output", "o", "-", "file to write (-: standard output)")
	return c
}

func export(ctx context.Context, g *globals, t *target, prefix, out string) (err error) {
	var w io.Writer = g.stdout
	var f *os.File
	if out != "-" {
		f, err = os.OpenFile(out+".partial", os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
		if err != nil {
			return fmt.Errorf("export: %w", err)
		}
		defer func() {
			if f != nil {
				f.Close()
			}
		}()
		w = f
	}
	bw := bufio.NewWriterSize(w, 256<<10)
	enc := json.NewEncoder(bw)
	bar := g.progress(-1, "export")
	n, gone := 0, 0
	err = walk(ctx, t, prefix, g.Workers, func(e entry) error {
		bar.Add(1)
		if e.Gone {
			gone++
			return nil
		}
		if e.Raw == nil && e.Status == StatusCorrupt {
			return fmt.Errorf("key %q: the store cannot read it back: %w", e.Key, e.Err)
		}
		r := record{Key: e.Key, Value: e.Raw, ExpiryUnknown: !e.TTLKnown}
		if at := expiresAt(time.Now(), e.TTL, e.TTLKnown); !at.IsZero() {
			at = at.UTC().Truncate(time.Millisecond)
			r.ExpiresAt = &at
		}
		n++
		return enc.Encode(r)
	})
	bar.Finish()
	if ferr := bw.Flush(); err == nil {
		err = ferr
	}
	if err != nil {
		if f != nil {
			return fmt.Errorf("export: %d keys written to %s, which is incomplete: %w", n, out+".partial", err)
		}
		return fmt.Errorf("export: after %d keys: %w", n, err)
	}
	if f != nil {
		if err := f.Sync(); err != nil {
			return fmt.Errorf("export: %w", err)
		}
		if err := f.Close(); err != nil {
			return fmt.Errorf("export: %w", err)
		}
		f = nil
		if err := os.Rename(out+".partial", out); err != nil {
			return fmt.Errorf("export: %w", err)
		}
	}
	fmt.Fprintf(g.stderr, "exported %d keys", n)
	if gone > 0 {
		fmt.Fprintf(g.stderr, " (%d expired or were deleted during the export)", gone)
	}
	fmt.Fprintln(g.stderr)
	return nil
}

func importCmd(g *globals) *cobra.Command {
	var overwrite, dryRun, create, quarantine bool
	c := &cobra.Command{
		Use:   "import FILE",
		Short: "Write the values of a JSON Lines export into the store",
		Long: `import reads an export (FILE, or - for standard input) and writes each value
with the time it has left until its recorded expiry; entries already expired
are skipped. By default it writes only keys that are absent (compare-and-swap
with "absent"), so it never replaces a session; with --overwrite it replaces
a present value by compare-and-swap against the value it read, so a session
written meanwhile by the running app is reported as a conflict, not lost.
--dry-run reads and reports without writing. --create creates a missing
table, folder, or SQLite file (a path ending in .db, .sqlite or .sqlite3;
any other missing path becomes a filestore folder).

An export is input like any other: with --namespace only the keys of that
namespace are imported (NAMESPACE:...), and the quarantine copies that
Config.Quarantine keeps (:quarantine:...) only with --quarantine. Every
other line, and a line that is not an export line or holds an invalid key,
is refused with a message naming it, and the import goes on with the next
one; the summary counts them, and the exit status is 1 when any was refused.
So is a value the store refuses for its size (a cap of the store's).`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.withStore(cmd, create && !dryRun, func(ctx context.Context, t *target) error {
				if !dryRun {
					if err := t.writable(); err != nil {
						return err
					}
				}
				var r io.Reader = g.stdin
				if args[0] != "-" {
					f, err := os.Open(args[0])
					if err != nil {
						return fmt.Errorf("import: %w", err)
					}
					defer f.Close()
					r = f
				}
				return importFrom(ctx, g, t, r, importOptions{Overwrite: overwrite, DryRun: dryRun, Quarantine: quarantine})
			})
		},
	}
	c.Flags().BoolVar(&overwrite, "overwrite", false, "replace present values (compare-and-swap against the value read)")
	c.Flags().BoolVar(&dryRun, "dry-run", false, "report what would be written; write nothing")
	c.Flags().BoolVar(&create, "create", false, "create a missing table, folder or SQLite file")
	c.Flags().BoolVar(&quarantine, "quarantine", false, "also import quarantine copies (:quarantine:... keys); refused otherwise")
	return c
}

// importOptions are the flags of import.
type importOptions struct {
	Overwrite  bool // replace present values
	DryRun     bool // write nothing
	Quarantine bool // import quarantine copies too
}

// refusal is a line of an export that import does not write: outside the
// namespace, a quarantine copy not asked for, not an export line. It is
// reported for its line, and the import goes on.
type refusal struct{ err error }

func (r refusal) Error() string { return r.err.Error() }
func (r refusal) Unwrap() error { return r.err }

func refuse(format string, args ...any) error { return refusal{fmt.Errorf(format, args...)} }

// admit checks that rec may be imported under g's scope: a valid key, in
// --namespace when one is given, not a quarantine copy unless asked for,
// with a value. It returns a refusal otherwise.
func (g *globals) admit(rec record, o importOptions) error {
	if err := store.CheckKey(rec.Key); err != nil {
		return refuse("%w", err)
	}
	if strings.HasPrefix(rec.Key, session.QuarantinePrefix) {
		if !o.Quarantine {
			return refuse("a quarantine copy (%s...); import it only with --quarantine", session.QuarantinePrefix)
		}
		if g.Namespace != "" {
			if _, orig, ok := parseQuarantineKey(rec.Key); !ok || !g.inNamespace(orig) {
				return refuse("a quarantine copy whose original key is outside namespace %q", g.Namespace)
			}
		}
	} else if g.Namespace != "" && !g.inNamespace(rec.Key) {
		return refuse("outside namespace %q (keys %s:...)", g.Namespace, g.Namespace)
	}
	if rec.Value == nil {
		return refuse(`no "value"`)
	}
	return nil
}

// importCounts is what an import did, or would do.
type importCounts struct {
	Written, Replaced, Unchanged, Present, Expired, Conflicts, Refused int
}

func importFrom(ctx context.Context, g *globals, t *target, r io.Reader, o importOptions) error {
	br := bufio.NewReaderSize(r, 256<<10)
	sw, _ := t.Store.(store.Swapper)
	var (
		c        importCounts
		mu       sync.Mutex // guards c, firstErr and the refusal messages
		firstErr error
	)
	refused := func(line int, key string, err error) {
		mu.Lock()
		if key == "" {
			fmt.Fprintf(g.stderr, "tsinspect: import: line %d: refused: %v\n", line, err)
		} else {
			fmt.Fprintf(g.stderr, "tsinspect: import: line %d, key %s: refused: %v\n", line, keyText(key), err)
		}
		mu.Unlock()
	}
	parent := ctx
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	fail := func(err error) {
		mu.Lock()
		if firstErr == nil {
			firstErr = err
		}
		mu.Unlock()
		cancel()
	}
	bar := g.progress(-1, "import")
	type job struct {
		line int
		rec  record
	}
	jobs := make(chan job, g.Workers*4)
	var wg sync.WaitGroup
	for range max(g.Workers, 1) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range jobs {
				var one importCounts
				err := g.admit(j.rec, o)
				if err == nil {
					err = importRecord(ctx, t, sw, j.rec, o, &one)
				}
				var ref refusal
				if errors.As(err, &ref) {
					refused(j.line, j.rec.Key, err)
					one = importCounts{Refused: 1}
				} else if err != nil {
					fail(fmt.Errorf("line %d, key %s: %w", j.line, keyText(j.rec.Key), err))
					return
				}
				mu.Lock()
				c.add(one)
				mu.Unlock()
				bar.Add(1)
			}
		}()
	}
	for line := 1; ctx.Err() == nil; line++ {
		text, err := br.ReadBytes('\n')
		if len(bytes.TrimSpace(text)) > 0 {
			rec, derr := decodeRecord(text)
			if derr != nil {
				refused(line, rec.Key, derr)
				mu.Lock()
				c.Refused++
				mu.Unlock()
			} else {
				select {
				case jobs <- job{line, rec}:
				case <-ctx.Done():
				}
			}
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			fail(fmt.Errorf("line %d: %w", line, err))
			break
		}
	}
	close(jobs)
	wg.Wait()
	bar.Finish()
	err := firstErr
	if err == nil {
		err = parent.Err() // interrupted
	}
	verb := "imported"
	if o.DryRun {
		verb = "dry run, nothing written; would have imported"
	}
	fmt.Fprintf(g.stdout, "%s: %d written, %d replaced, %d unchanged, %d present and kept, %d expired and skipped, %d conflicts, %d refused\n",
		verb, c.Written, c.Replaced, c.Unchanged, c.Present, c.Expired, c.Conflicts, c.Refused)
	if err != nil {
		return fmt.Errorf("import: %w", err)
	}
	var errs []error
	if c.Refused > 0 {
		errs = append(errs, fmt.Errorf("import: %d entries were refused and not written (see above)", c.Refused))
	}
	if c.Conflicts > 0 {
		errs = append(errs, fmt.Errorf("import: %d keys were written by someone else while the import ran and were left as they are; run it again to retry them", c.Conflicts))
	}
	return errors.Join(errs...)
}

func (c *importCounts) add(o importCounts) {
	c.Written += o.Written
	c.Replaced += o.Replaced
	c.Unchanged += o.Unchanged
	c.Present += o.Present
	c.Expired += o.Expired
	c.Conflicts += o.Conflicts
	c.Refused += o.Refused
}

// decodeRecord decodes one line of an export. A line that is not one
// (not JSON, a member export does not write, a misspelt expires_at that
// would import a session without its expiry) is a refusal.
func decodeRecord(line []byte) (record, error) {
	var rec record
	dec := json.NewDecoder(bytes.NewReader(line))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&rec); err != nil {
		return rec, refuse("not an export line: %w", err)
	}
	if dec.More() {
		return rec, refuse("not an export line: more than one JSON value on the line")
	}
	return rec, nil
}

// importRecord imports rec (admitted) with the time left to its expiry,
// or counts it as expired.
func importRecord(ctx context.Context, t *target, sw store.Swapper, rec record, o importOptions, c *importCounts) error {
	var ttl time.Duration
	if rec.ExpiresAt != nil {
		ttl = time.Until(*rec.ExpiresAt)
		if ttl <= 0 {
			c.Expired++
			return nil
		}
	}
	return importOne(ctx, t, sw, rec, ttl, o.Overwrite, o.DryRun, c)
}

func importOne(ctx context.Context, t *target, sw store.Swapper, rec record, ttl time.Duration, overwrite, dryRun bool, c *importCounts) error {
	cur, err := t.Store.Get(ctx, rec.Key)
	if errors.Is(err, store.ErrNotFound) {
		cur, err = nil, nil
	}
	if err != nil && !errors.Is(err, store.ErrCorrupt) {
		return err
	}
	present := cur != nil || err != nil
	switch {
	case present && err == nil && bytes.Equal(cur, rec.Value):
		c.Unchanged++
		return nil
	case present && !overwrite:
		c.Present++
		return nil
	case present && err != nil:
		return fmt.Errorf("the present value cannot be read, so it cannot be compared and replaced: %w", err)
	case dryRun && present:
		c.Replaced++
		return nil
	case dryRun:
		c.Written++
		return nil
	}
	var ok bool
	if sw != nil {
		ok, err = sw.CompareAndSwap(ctx, rec.Key, cur, rec.Value, ttl)
	} else {
		// Without compare-and-swap the check above and this write are
		// not atomic: the best this store allows.
		ok, err = true, t.Store.Set(ctx, rec.Key, rec.Value, ttl)
	}
	switch {
	case errors.Is(err, store.ErrTooLarge):
		// Refused for sure, for this value alone: a refusal of its
		// line, as an invalid key is, and the import goes on.
		return refuse("the store refuses the value (%d bytes): %w", len(rec.Value), err)
	case err != nil:
		return err
	case !ok && !present:
		c.Present++ // written by someone else after the read: kept
	case !ok:
		c.Conflicts++
	case present:
		c.Replaced++
	default:
		c.Written++
	}
	return nil
}
