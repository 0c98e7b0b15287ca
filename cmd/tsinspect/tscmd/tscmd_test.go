package tscmd_test

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	session "github.com/typedsession/session"
	"github.com/typedsession/session/cmd/tsinspect/tscmd"
	"github.com/typedsession/session/migrate"
	"github.com/typedsession/session/store/memstore"
)

type Quiz struct {
	Score int `json:"score" validate:"gte=0"`
}

func TestCommands(t *testing.T) {
	ctx := context.Background()
	st, err := memstore.New(memstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	st.Set(ctx, "quiz:old", []byte(`{"typedsession":1,"data":{"score":3}}`), time.Hour)
	st.Set(ctx, "quiz:bad", []byte(`{"typedsession":1,"data":{"score":"x"}}`), 0)
	st.Set(ctx, "quiz:neg", []byte(`{"typedsession":2,"data":{"score":-1}}`), 0)
	st.Set(ctx, "other:1", []byte(`{}`), 0)
	plan, err := migrate.New(migrate.Raw(1, func(map[string]any) error { return nil }))
	if err != nil {
		t.Fatal(err)
	}
	m, err := session.New(session.Config[Quiz]{Store: st, Namespace: "quiz", Migrations: plan})
	if err != nil {
		t.Fatal(err)
	}
	var out, progress bytes.Buffer
	c := tscmd.Commands[Quiz]{Manager: m, Store: st, Namespace: "quiz", Out: &out, Progress: &progress}

	err = c.Run(ctx, []string{"validate"})
	if err == nil || !strings.Contains(out.String(), "validate: 3 sessions, 1 valid, 2 failed") ||
		!strings.Contains(out.String(), "  bad: ") || !strings.Contains(out.String(), "  neg: ") {
		t.Errorf("validate: %v\n%s", err, out.String())
	}
	if got, _ := st.Get(ctx, "quiz:old"); !bytes.HasPrefix(got, []byte(`{"typedsession":1,`)) {
		t.Errorf("validate wrote quiz:old: %s", got)
	}

	out.Reset()
	err = c.Run(ctx, []string{"migrate"})
	if err == nil || !strings.Contains(out.String(), "migrate: 3 scanned, 1 migrated, 0 current, 0 gone, 2 failed") {
		t.Errorf("migrate: %v\n%s", err, out.String())
	}
	if got, _ := st.Get(ctx, "quiz:old"); !bytes.HasPrefix(got, []byte(`{"typedsession":2,`)) {
		t.Errorf("migrate did not write quiz:old at version 2: %s", got)
	}

	out.Reset()
	if err := c.Run(ctx, []string{"show", "old"}); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"session: old\n", "version: 2\n", "63 bytes, no expiry", "\"score\": 3"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("show: no %q in\n%s", want, out.String())
		}
	}
	if err := c.Run(ctx, []string{"show", "nobody"}); err == nil || !strings.Contains(err.Error(), "not stored") {
		t.Errorf("show of an absent key: %v", err)
	}
	if err := c.Run(ctx, []string{"frobnicate"}); err == nil || !strings.Contains(err.Error(), "validate") {
		t.Errorf("unknown command: %v", err)
	}
	info, err := tscmd.Describe(ctx, st, "quiz", "bad")
	if err != nil || info.Size != 39 || info.String() != "39 bytes, no expiry" {
		t.Errorf("Describe: %+v %q, %v", info, info, err)
	}
}
