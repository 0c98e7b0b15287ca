package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/spf13/cobra"
	"github.com/typedsession/session/store"
)

func lsCmd(g *globals) *cobra.Command {
	var asJSON bool
	c := &cobra.Command{
		Use:   "ls [KEYPREFIX]",
		Short: "List keys with size, schema version, TTL left and status",
		Long: `ls lists the keys under --namespace and KEYPREFIX, one line each, as the
store reports them (in no particular order): the value's size in bytes, its
schema version (0: data without an envelope, -: not decodable), the time it
has left (none: no expiry; unknown: the store cannot tell), and its status:
ok, v0 (no envelope), corrupt, foreign (not a typedsession value) or
quarantined (moved aside by Config.Quarantine). It streams: memory stays
flat on any number of keys.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.withStore(cmd, false, func(ctx context.Context, t *target) error {
				return ls(ctx, g, t, g.scanPrefix(args), asJSON)
			})
		},
	}
	c.Flags().BoolVar(&asJSON, "json", false, "print one JSON object per key (key, size, version, ttl_ms, status)")
	return c
}

// lsLine is a line of ls --json.
type lsLine struct {
	Key     string `json:"key"`
	Size    int    `json:"size"`
	Version *int   `json:"version"`          // null: not decodable
	TTLMs   *int64 `json:"ttl_ms,omitempty"` // absent: unknown; -1: no expiry
	Status  Status `json:"status"`
	Writes  int    `json:"writes,omitempty"`
}

func ls(ctx context.Context, g *globals, t *target, prefix string, asJSON bool) error {
	w := bufio.NewWriter(g.stdout)
	defer w.Flush()
	enc := json.NewEncoder(w)
	if !asJSON {
		fmt.Fprintf(w, "%9s  %7s  %-9s  %-11s  %s\n", "SIZE", "VERSION", "TTL", "STATUS", "KEY")
	}
	n := 0
	err := walk(ctx, t, prefix, g.Workers, func(e entry) error {
		if e.Gone {
			return nil
		}
		n++
		if n%256 == 0 {
			w.Flush()
		}
		if !asJSON {
			_, err := fmt.Fprintf(w, "%9d  %7s  %-9s  %-11s  %s\n", e.Size, e.versionText(), ttlText(e.TTL, e.TTLKnown), e.Status, keyText(e.Key))
			return err
		}
		l := lsLine{Key: e.Key, Size: e.Size, Status: e.Status, Writes: e.Env.Writes.Len()}
		if e.Status == StatusOK || e.Status == StatusV0 {
			v := e.Env.Version
			l.Version = &v
		}
		if e.TTLKnown {
			ms := int64(store.NoExpiry)
			if e.TTL >= 0 {
				ms = e.TTL.Milliseconds()
			}
			l.TTLMs = &ms
		}
		return enc.Encode(l)
	})
	w.Flush()
	if err != nil {
		return fmt.Errorf("ls: after %d keys: %w", n, err)
	}
	return nil
}

// expiresAt returns the absolute expiry of a value read at now with ttl
// left, or the zero time when it has none or its TTL is unknown.
func expiresAt(now time.Time, ttl time.Duration, known bool) time.Time {
	if !known || ttl < 0 {
		return time.Time{}
	}
	return now.Add(ttl)
}
