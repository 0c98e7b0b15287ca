package main

import (
	"bytes"
	"strings"
	"testing"
)

func TestStory(t *testing.T) {
	var out bytes.Buffer
	if err := run(t.Context(), nil, &out); err != nil {
		t.Fatalf("run: %v\n%s", err, out.String())
	}
	got := out.String()
	for _, want := range []string{
		`prefs:bob      {"typedsession":1,"writes":[…],"data":{"lang":"de","theme":"dark"}}`,
		`MigrateAll: scanned 3, migrated 3, already current 0, failed 0`,
		`prefs:bob      {"typedsession":2,"writes":[…],"data":{"language":"de","theme":2,"per_page":20}}`,
		`v1 refuses alice: session: load "alice": stored schema version is newer`,
		`v1 tries to change alice's theme: session: update "alice": stored schema version is newer`,
	} {
		if !strings.Contains(got, want) {
			t.Errorf("output lacks %q", want)
		}
	}
	// The refused change left alice as version 2 wrote her.
	if !strings.HasSuffix(strings.TrimSpace(got), `prefs:chloé    {"typedsession":2,"writes":[…],"data":{"language":"fr","theme":2,"per_page":20}}`) {
		t.Errorf("final store state is not version 2:\n%s", got)
	}
	if strings.Contains(got[strings.Index(got, "4. "):], `"theme":"light"`) {
		t.Error("version 1 wrote over version 2 data")
	}
}

func TestSteps(t *testing.T) {
	dir := t.TempDir()
	for _, args := range [][]string{
		{"-dir", dir, "-app", "v1", "seed"},
		{"-dir", dir, "-app", "v2", "-write", "1", "show"},
		{"-dir", dir, "-app", "v2", "migrate"},
		{"-dir", dir, "-app", "v1", "show"},
	} {
		var out bytes.Buffer
		if err := run(t.Context(), args, &out); err != nil {
			t.Fatalf("run %q: %v\n%s", args, err, out.String())
		}
	}
	var out bytes.Buffer
	if err := run(t.Context(), []string{"-dir", dir, "-app", "v3", "show"}, &out); err == nil {
		t.Fatal("an unknown -app was accepted")
	}
	if err := run(t.Context(), []string{"seed"}, &out); err == nil {
		t.Fatal("a step without -dir was accepted")
	}
}
