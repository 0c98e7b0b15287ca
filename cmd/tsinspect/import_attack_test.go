package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"strings"
	"testing"

	"github.com/typedsession/session/store/filestore"
)

// TestAttackImportRefusesTooLargeAndGoesOn: a value the target store
// refuses for sure (over its size cap: store.ErrTooLarge, nothing
// written) is a refusal of that line, by its cause, as an invalid key is:
// the import goes on with the next line and exits 1. It aborted the whole
// import instead, cancelling the lines still in flight.
func TestAttackImportRefusesTooLargeAndGoesOn(t *testing.T) {
	ctx := context.Background()
	st, err := filestore.New(t.TempDir(), filestore.Options{MaxValueBytes: 64})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	big := strings.Repeat("x", 200)
	in := `{"key":"a","value":"` + b64("small") + `"}
{"key":"b","value":"` + b64(big) + `"}
{"key":"c","value":"` + b64("small too") + `"}
`
	var out bytes.Buffer
	g := &globals{stdin: strings.NewReader(""), stdout: &out, stderr: &out, Workers: 1}
	err = importFrom(ctx, g, &target{Store: st, Kind: "filestore"}, strings.NewReader(in), importOptions{})
	if err == nil || !strings.Contains(err.Error(), "1 entries were refused") {
		t.Errorf("import = %v; want the refusal counted (exit status 1)\n%s", err, out.String())
	}
	for _, k := range []string{"a", "c"} {
		if _, gerr := st.Get(ctx, k); gerr != nil {
			t.Errorf("%s not imported: %v\n%s", k, gerr, out.String())
		}
	}
	if !strings.Contains(out.String(), "2 written") || !strings.Contains(out.String(), "key b: refused") {
		t.Errorf("output:\n%s", out.String())
	}
}

func b64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }
