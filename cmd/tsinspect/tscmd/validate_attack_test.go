package tscmd_test

import (
	"bytes"
	"context"
	"strings"
	"testing"

	session "github.com/typedsession/session"
	"github.com/typedsession/session/cmd/tsinspect/tscmd"
	"github.com/typedsession/session/store/memstore"
)

// TestAttackValidateSkipsQuarantineCopies: with an empty Namespace,
// MigrateAll leaves the quarantine copies (QuarantinePrefix, outside
// every namespace) alone; ValidateAll, the second walk over the same
// keys, loaded them and reported each as a session that does not load.
func TestAttackValidateSkipsQuarantineCopies(t *testing.T) {
	ctx := context.Background()
	st, err := memstore.New(memstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	st.Set(ctx, "k", []byte(`{"typedsession":1,"data":{"score":3}}`), 0)
	st.Set(ctx, session.QuarantinePrefix+"1700000000000000000:k", []byte("\x00\xffdamaged"), 0)
	m, err := session.New(session.Config[Quiz]{Store: st})
	if err != nil {
		t.Fatal(err)
	}
	var out, progress bytes.Buffer
	c := tscmd.Commands[Quiz]{Manager: m, Store: st, Out: &out, Progress: &progress}
	if err := c.Run(ctx, []string{"validate"}); err != nil || !strings.Contains(out.String(), "validate: 1 sessions, 1 valid, 0 failed") {
		t.Errorf("validate: %v\n%s", err, out.String())
	}
	out.Reset()
	if err := c.Run(ctx, []string{"migrate"}); err != nil || !strings.Contains(out.String(), "migrate: 1 scanned, 0 migrated, 1 current, 0 gone, 0 failed") {
		t.Errorf("migrate: %v\n%s", err, out.String())
	}
}
