//go:build soak

package main

import (
	"flag"
	"os"
	"strings"
	"testing"
)

// TestSoak is the soak command as a Go test, behind the soak build tag:
//
//	cd internal/sim/soak && go test -tags soak -run TestSoak -timeout 0 . -args -- -stores=redis,postgres -duration=2m
//	cd internal/sim/soak && SOAK_ARGS="-stores=redis -seeds=20" go test -tags soak -run TestSoak -timeout 0 .
//
// The command's flags come after "-args --" (the test binary takes the
// flags before "--" as its own), or from SOAK_ARGS, split on spaces. With
// none it runs every store for a minute each.
func TestSoak(t *testing.T) {
	args := flag.Args()
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
