package bench

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/typedsession/session"
	"github.com/typedsession/session/codec"
	"github.com/typedsession/session/codecs/cbor"
	"github.com/typedsession/session/codecs/msgpack"
	"github.com/typedsession/session/layers/zstd"
	"github.com/typedsession/session/store/memstore"
)

// Answer and History are a quiz bot's session: a growing history of
// answers, the kind of session that gets large.
type Answer struct {
	Question int       `json:"q"`
	Text     string    `json:"text"`
	Correct  bool      `json:"correct"`
	At       time.Time `json:"at"`
	Score    float64   `json:"score"`
}

type History struct {
	UserID  int64          `json:"user_id"`
	Name    string         `json:"name"`
	Lang    string         `json:"lang"`
	Step    string         `json:"step"`
	Answers []Answer       `json:"answers"`
	Tags    map[string]int `json:"tags"`
}

// history returns a History whose JSON encoding is about size bytes.
func history(size int) History {
	h := History{UserID: 1265476890672672808, Name: "Ada Lovelace", Lang: "en", Step: "question", Tags: map[string]int{"geo": 3, "math": 7, "music": 1}}
	t0 := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	for i := 0; ; i++ {
		b, _ := json.Marshal(h)
		if len(b) >= size {
			return h
		}
		h.Answers = append(h.Answers, Answer{
			Question: 1000 + i, Text: fmt.Sprintf("answer %d: the capital is city number %d", i, i*7%13),
			Correct: i%3 != 0, At: t0.Add(time.Duration(i) * 37 * time.Second), Score: float64(i%10) / 4,
		})
	}
}

var codecs = []struct {
	name string
	c    codec.Codec
}{{"json", nil}, {"cbor", cbor.Codec{}}, {"msgpack", msgpack.Codec{}}}

func layers(b *testing.B) []struct {
	name string
	c    codec.Compressor
} {
	z, err := zstd.New(zstd.Options{})
	if err != nil {
		b.Fatal(err)
	}
	return []struct {
		name string
		c    codec.Compressor
	}{{"none", nil}, {"zstd", z}, {"deflate", codec.Deflate{}}}
}

// BenchmarkLoadSave is one Load and one Save of a changed session. The
// compressors apply above 256 bytes (Config.CompressAbove; the default is
// 1,024), so that the 500 B session is compressed too.
func BenchmarkLoadSave(b *testing.B) {
	for _, size := range []int{500, 5000, 50000} {
		for _, cd := range codecs {
			for _, l := range layers(b) {
				b.Run(fmt.Sprintf("size=%d/codec=%s/layer=%s", size, cd.name, l.name), func(b *testing.B) {
					st, err := memstore.New(memstore.Options{CleanupInterval: -1})
					if err != nil {
						b.Fatal(err)
					}
					defer st.Close()
					m, err := session.New(session.Config[History]{Store: st, Namespace: "b", Codec: cd.c, Compressor: l.c, CompressAbove: 256})
					if err != nil {
						b.Fatal(err)
					}
					ctx := b.Context()
					h := history(size)
					if _, err := m.Update(ctx, "k", func(x *History) error { *x = h; return nil }); err != nil {
						b.Fatal(err)
					}
					raw, err := st.Get(ctx, "b:k")
					if err != nil {
						b.Fatal(err)
					}
					b.ReportAllocs()
					b.ResetTimer()
					for i := 0; b.Loop(); i++ {
						s, err := m.Load(ctx, "k")
						if err != nil {
							b.Fatal(err)
						}
						s.Data.Answers[0].Question = i
						if err := m.Save(ctx, s); err != nil {
							b.Fatal(err)
						}
					}
					b.ReportMetric(float64(len(raw)), "stored-B")
				})
			}
		}
	}
}

// BenchmarkCodec is the codec alone: Marshal and Unmarshal of the session.
func BenchmarkCodec(b *testing.B) {
	for _, size := range []int{500, 5000, 50000} {
		for _, cd := range codecs {
			c := cd.c
			if c == nil {
				c = codec.JSON{}
			}
			b.Run(fmt.Sprintf("size=%d/codec=%s", size, cd.name), func(b *testing.B) {
				h := history(size)
				var n int
				b.ReportAllocs()
				for b.Loop() {
					out, err := c.Marshal(&h)
					if err != nil {
						b.Fatal(err)
					}
					var back History
					if err := c.Unmarshal(out, &back); err != nil {
						b.Fatal(err)
					}
					n = len(out)
				}
				b.ReportMetric(float64(n), "payload-B")
			})
		}
	}
}
