package zstd_test

import (
	"bytes"
	"context"
	"fmt"
	"strings"

	"github.com/typedsession/session"
	"github.com/typedsession/session/layers/zstd"
	"github.com/typedsession/session/store/memstore"
)

type Quiz struct {
	Answers []string `json:"answers"`
}

// Sessions over 1,024 bytes (Config.CompressAbove) are stored compressed;
// smaller ones as they are. Values written before the Compressor was set
// still load.
func Example() {
	st, err := memstore.New(memstore.Options{})
	if err != nil {
		panic(err)
	}
	defer st.Close()
	z, err := zstd.New(zstd.Options{})
	if err != nil {
		panic(err)
	}
	m, err := session.New(session.Config[Quiz]{Store: st, Namespace: "quiz", Compressor: z})
	if err != nil {
		panic(err)
	}
	ctx := context.Background()
	for _, n := range []int{3, 300} {
		key := fmt.Sprint("user-", n)
		if _, err := m.Update(ctx, key, func(q *Quiz) error {
			for i := range n {
				q.Answers = append(q.Answers, strings.Repeat("yes", i%4))
			}
			return nil
		}); err != nil {
			panic(err)
		}
		raw, _ := st.Get(ctx, "quiz:"+key)
		fmt.Printf("%d answers: compressed %v, under 1 KB %v\n", n, bytes.Contains(raw, []byte(`"zstd"`)), len(raw) < 1024)
	}
	// Output:
	// 3 answers: compressed false, under 1 KB true
	// 300 answers: compressed true, under 1 KB true
}
