//go:build soak

package main

import (
	"os"
	"strings"
	"testing"
)

// TestSoak is the soak command as a Go test, behind the soak build tag:
//
//	cd internal/sim/soak && go test -tags soak -run TestSoak -timeout 0 . -args -stores=redis,postgres -duration=2m
//
// With no arguments after -args it runs every store for a minute each;
// SOAK_ARGS, when set, is split on spaces and used instead.
func TestSoak(t *testing.T) {
	args := flagArgs()
	if s := os.Getenv("SOAK_ARGS"); s != "" {
		args = strings.Fields(s)
	}
	var out strings.Builder
	code := run(t.Context(), args, &out)
	t.Log("\n" + out.String())
	if code != 0 {
		t.Fatalf("soak exited %d", code)
	}
}

// flagArgs returns the arguments given after -args: those the test binary
// did not take as its own flags.
func flagArgs() []string {
	var out []string
	for _, a := range os.Args[1:] {
		if !strings.HasPrefix(a, "-test.") {
			out = append(out, a)
		}
	}
	return out
}
