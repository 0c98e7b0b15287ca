package main

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/spf13/cobra"
)

func getCmd(g *globals) *cobra.Command {
	var raw bool
	var limit int
	c := &cobra.Command{
		Use:   "get KEY",
		Short: "Show one value: envelope, version, writes, layers, size, TTL and data",
		Long: `get prints the value under KEY (with --namespace, the session key of that
namespace): its envelope (schema version, write identities, codec, layers
and key ID), size, TTL left and data, and for each running conversation
(package conversation) in the data, its flows and step, next deadline and
last update on a line of its own. JSON data is indented; other bytes are
shown as a quoted string when they are text, as a hex dump otherwise. A
value that is not an envelope is shown as it is, and get exits with status 1
saying why.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.withStore(cmd, false, func(ctx context.Context, t *target) error {
				return get(ctx, g, t, g.storeKey(args[0]), raw, limit)
			})
		},
	}
	c.Flags().BoolVar(&raw, "raw", false, "print the stored bytes exactly, nothing else")
	c.Flags().IntVar(&limit, "limit", 64<<10, "show at most this many bytes of binary data (0: all)")
	return c
}

func get(ctx context.Context, g *globals, t *target, key string, raw bool, limit int) error {
	e, err := read(ctx, t, key)
	if err != nil {
		return fmt.Errorf("get %q: %w", key, err)
	}
	if e.Gone {
		return fmt.Errorf("get %q: not found (absent or expired) in %s %s", key, t.Kind, t.Where)
	}
	if raw {
		_, err := g.stdout.Write(e.Raw)
		return err
	}
	w := g.stdout
	fmt.Fprintf(w, "key:      %s\n", keyText(key))
	fmt.Fprintf(w, "size:     %d bytes\n", e.Size)
	fmt.Fprintf(w, "ttl:      %s\n", ttlText(e.TTL, e.TTLKnown))
	fmt.Fprintf(w, "status:   %s\n", e.Status)
	if e.Err != nil {
		fmt.Fprintf(w, "error:    %v\n", e.Err)
	}
	if e.Status == StatusOK || e.Status == StatusV0 || (e.Status == StatusQuarantined && e.Err == nil) {
		env := e.Env
		switch {
		case env.Version == 0:
			fmt.Fprintf(w, "envelope: none (version 0: data written without typedsession's envelope)\n")
		case e.Binary:
			fmt.Fprintf(w, "envelope: binary frame\n")
		default:
			fmt.Fprintf(w, "envelope: JSON\n")
		}
		fmt.Fprintf(w, "version:  %d\n", env.Version)
		if n := env.Writes.Len(); n > 0 {
			ids := make([]string, n)
			for i := range n {
				ids[i] = env.Writes.At(i)
			}
			fmt.Fprintf(w, "writes:   %d, newest first: %s\n", n, strings.Join(ids, " "))
		} else if env.Version > 0 {
			fmt.Fprintf(w, "writes:   none\n")
		}
		if env.Codec != "" {
			fmt.Fprintf(w, "codec:    %s\n", env.Codec)
		}
		if len(env.Layers) > 0 {
			fmt.Fprintf(w, "layers:   %s\n", strings.Join(env.Layers, ", "))
		}
		if env.KeyID != "" {
			fmt.Fprintf(w, "key id:   %s\n", env.KeyID)
		}
		if env.DictID != "" {
			fmt.Fprintf(w, "dict id:  %s\n", env.DictID)
		}
		fmt.Fprintf(w, "data:     %d bytes", len(env.Payload))
		if len(env.Layers) > 0 {
			fmt.Fprintf(w, " (the layers' output: open it with the application's keys)")
		}
		fmt.Fprintln(w)
		showData(w, env.Payload, len(env.Layers) == 0, limit)
		if len(env.Layers) == 0 {
			showConversations(w, env.Payload)
		}
	} else {
		fmt.Fprintf(w, "value:\n")
		showData(w, e.Raw, true, limit)
	}
	switch e.Status {
	case StatusCorrupt:
		return fmt.Errorf("get %q: the value is corrupt: %w", key, errOr(e.Err))
	case StatusNotEnvelope:
		return fmt.Errorf("get %q: %w", key, errOr(e.Err))
	}
	return nil
}

func errOr(err error) error {
	if err == nil {
		return errors.New("unreadable")
	}
	return err
}

// showData prints b indented: indented JSON, a quoted string for text, a
// hex dump for anything else (at most limit bytes; 0: all).
func showData(w io.Writer, b []byte, tryJSON bool, limit int) {
	if tryJSON && json.Valid(b) {
		var out bytes.Buffer
		if json.Indent(&out, b, "  ", "  ") == nil {
			fmt.Fprintf(w, "  %s\n", out.Bytes())
			return
		}
	}
	cut := b
	if limit > 0 && len(cut) > limit {
		cut = cut[:limit]
	}
	if isText(cut) {
		fmt.Fprintf(w, "  %q\n", cut)
	} else {
		for _, line := range strings.SplitAfter(strings.TrimSuffix(hex.Dump(cut), "\n"), "\n") {
			fmt.Fprintf(w, "  %s", line)
		}
		fmt.Fprintln(w)
	}
	if len(cut) < len(b) {
		fmt.Fprintf(w, "  … %d more bytes (--limit 0 shows all)\n", len(b)-len(cut))
	}
}

// isText reports whether b is UTF-8 text without control characters other
// than tab and newline.
func isText(b []byte) bool {
	if !utf8.Valid(b) {
		return false
	}
	for _, r := range string(b) {
		if unicode.IsControl(r) && r != '\n' && r != '\t' && r != '\r' {
			return false
		}
	}
	return true
}

// showConversations prints a line for each top-level member of JSON data
// that holds a running conversation (package conversation's State: a
// "frames" array of objects with "flow" and "step"): its flows and steps,
// outermost first, its next deadline and the last update applied.
func showConversations(w io.Writer, data []byte) {
	var members map[string]json.RawMessage
	if json.Unmarshal(data, &members) != nil {
		return
	}
	names := make([]string, 0, len(members))
	for name := range members {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		var st struct {
			Frames []struct {
				Flow string `json:"flow"`
				Step string `json:"step"`
			} `json:"frames"`
			Deadline   string `json:"deadline"`
			LastUpdate int64  `json:"last_update"`
		}
		if json.Unmarshal(members[name], &st) != nil || len(st.Frames) == 0 {
			continue
		}
		steps := make([]string, 0, len(st.Frames))
		for _, f := range st.Frames {
			if f.Flow == "" || f.Step == "" {
				steps = nil
				break
			}
			steps = append(steps, f.Flow+"."+f.Step)
		}
		if steps == nil {
			continue
		}
		line := fmt.Sprintf("conversation %q: %s", name, strings.Join(steps, " > "))
		if st.Deadline != "" {
			line += ", deadline " + st.Deadline
		}
		if st.LastUpdate != 0 {
			line += fmt.Sprintf(", last update %d", st.LastUpdate)
		}
		fmt.Fprintln(w, line)
	}
}
