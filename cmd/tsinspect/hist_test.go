package main

import (
	"bytes"
	"context"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/typedsession/session/store"
	"github.com/typedsession/session/store/memstore"
)

// TestHistogramErrorBound: every reported percentile is within histAlpha
// of the true one, for sizes spread over six orders of magnitude.
func TestHistogramErrorBound(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	var h sizeHist
	sizes := make([]int, 100_000)
	for i := range sizes {
		sizes[i] = int(math.Exp(r.Float64() * 14)) // 1 B .. 1.2 MB
		h.add(sizes[i])
	}
	slices.Sort(sizes)
	for _, q := range []float64{0.01, 0.5, 0.9, 0.99, 0.999, 1} {
		rank := int(math.Ceil(q*float64(len(sizes)))) - 1
		want, got := sizes[rank], h.quantile(q)
		if math.Abs(float64(got-want)) > histAlpha*float64(want)+0.5 {
			t.Errorf("p%g = %d, want %d within %g%%", q*100, got, want, histAlpha*100)
		}
	}
	if h.quantile(1) != sizes[len(sizes)-1] {
		t.Errorf("max = %d, want %d", h.quantile(1), sizes[len(sizes)-1])
	}
}

func TestKeyText(t *testing.T) {
	for k, want := range map[string]string{
		"quiz:42":   "quiz:42",
		"a b:ü":     "a b:ü",
		"a\nb":      `"a\nb"`,
		"x\x1b[31m": `"x\x1b[31m"`,
		"tab\there": `"tab\there"`,
	} {
		if got := keyText(k); got != want {
			t.Errorf("keyText(%q) = %s, want %s", k, got, want)
		}
	}
}

func TestTopK(t *testing.T) {
	k := topK{k: 3}
	for i, s := range []int{5, 1, 9, 7, 3, 9} {
		k.add(string(rune('a'+i)), s)
	}
	got := k.sorted()
	want := []sized{{"c", 9}, {"f", 9}, {"d", 7}}
	if !slices.Equal(got, want) {
		t.Errorf("top 3 = %v, want %v", got, want)
	}
}

// minimal is a store with no capability beyond Scan: no TTL to read.
type minimal struct{ st *memstore.Store }

func (m minimal) Get(ctx context.Context, k string) ([]byte, error) { return m.st.Get(ctx, k) }
func (m minimal) Set(ctx context.Context, k string, v []byte, ttl time.Duration) error {
	return m.st.Set(ctx, k, v, ttl)
}
func (m minimal) Delete(ctx context.Context, k string) error { return m.st.Delete(ctx, k) }
func (m minimal) Scan(ctx context.Context, p string, fn func(string) error) error {
	return m.st.Scan(ctx, p, fn)
}

// TestTTLUnknown: a store that cannot tell a TTL shows "unknown", and its
// export says so.
func TestTTLUnknown(t *testing.T) {
	ctx := context.Background()
	st, err := memstore.New(memstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	st.Set(ctx, "k", []byte(`{"typedsession":1,"data":{}}`), 0)
	var _ store.Scanner = minimal{}
	var out bytes.Buffer
	g := &globals{stdout: &out, stderr: &out, Workers: 2}
	tg := &target{Store: minimal{st}, Kind: "custom"}
	if err := ls(ctx, g, tg, "", false); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "  unknown    ok           k\n") {
		t.Errorf("ls:\n%s", out.String())
	}
	out.Reset()
	if err := export(ctx, g, tg, "", "-"); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), `"expiry_unknown":true`) {
		t.Errorf("export:\n%s", out.String())
	}
}
