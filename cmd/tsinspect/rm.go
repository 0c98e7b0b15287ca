package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/spf13/cobra"
	"github.com/typedsession/session/store"
)

func rmCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "rm KEY...",
		Short: "Delete the given keys",
		Long: `rm deletes each KEY (with --namespace, the session keys of that namespace)
and says whether it was there.`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.withStore(cmd, false, func(ctx context.Context, t *target) error {
				if err := t.writable(); err != nil {
					return err
				}
				for _, k := range args {
					key := g.storeKey(k)
					if err := store.CheckKey(key); err != nil {
						return fmt.Errorf("rm %q: %w", key, err)
					}
					_, err := t.Store.Get(ctx, key)
					absent := errors.Is(err, store.ErrNotFound)
					if err := t.Store.Delete(ctx, key); err != nil {
						return fmt.Errorf("rm %q: %w", key, err)
					}
					if absent {
						fmt.Fprintf(g.stdout, "absent  %s\n", keyText(key))
					} else {
						fmt.Fprintf(g.stdout, "deleted %s\n", keyText(key))
					}
				}
				return nil
			})
		},
	}
}

func purgeCmd(g *globals) *cobra.Command {
	var yes bool
	c := &cobra.Command{
		Use:   "purge KEYPREFIX",
		Short: "Delete every key under a prefix, after asking",
		Long: `purge counts the keys under --namespace and KEYPREFIX, asks before it deletes
them (answer y), unless --yes, and deletes them. An empty KEYPREFIX with
--namespace deletes the whole namespace; without --namespace a KEYPREFIX is
required.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			prefix := g.scanPrefix(args)
			if prefix == "" {
				return fmt.Errorf("%w: purge needs a KEYPREFIX or --namespace; it never deletes a whole store", errUsage)
			}
			return g.withStore(cmd, false, func(ctx context.Context, t *target) error {
				if err := t.writable(); err != nil {
					return err
				}
				return purge(ctx, g, t, prefix, yes)
			})
		},
	}
	c.Flags().BoolVarP(&yes, "yes", "y", false, "delete without asking")
	return c
}

func purge(ctx context.Context, g *globals, t *target, prefix string, yes bool) error {
	sc, ok := t.Store.(store.Scanner)
	if !ok {
		return fmt.Errorf("%s store cannot list its keys (no Scan)", t.Kind)
	}
	if !yes {
		n := 0
		if err := sc.Scan(ctx, prefix, func(string) error { n++; return nil }); err != nil {
			return fmt.Errorf("purge: counting: %w", err)
		}
		if n == 0 {
			fmt.Fprintf(g.stdout, "no keys under %q\n", prefix)
			return nil
		}
		fmt.Fprintf(g.stdout, "delete %d keys under %q from %s %s? [y/N] ", n, prefix, t.Kind, t.Where)
		answer, _ := bufio.NewReader(g.stdin).ReadString('\n')
		if a := strings.ToLower(strings.TrimSpace(answer)); a != "y" && a != "yes" {
			fmt.Fprintln(g.stdout, "nothing deleted")
			return nil
		}
	}
	bar := g.progress(-1, "purge")
	deleted := 0
	err := sc.Scan(ctx, prefix, func(k string) error {
		if err := t.Store.Delete(ctx, k); err != nil {
			return err
		}
		deleted++
		bar.Add(1)
		return nil
	})
	bar.Finish()
	fmt.Fprintf(g.stdout, "deleted %d keys under %q\n", deleted, prefix)
	if err != nil {
		return fmt.Errorf("purge: %w", err)
	}
	return nil
}
