package bench

import (
	"encoding/json"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/typedsession/session/codec"
)

// TestSessions checks the benchmark's sessions: their JSON size is within
// 200 bytes over the target, and every codec gives them back equal.
func TestSessions(t *testing.T) {
	for _, size := range []int{500, 5000, 50000} {
		h := history(size)
		b, _ := json.Marshal(h)
		if len(b) < size || len(b) > size+200 {
			t.Fatalf("history(%d) is %d bytes of JSON", size, len(b))
		}
		for _, cd := range codecs {
			c := cd.c
			if c == nil {
				c = codec.JSON{}
			}
			out, err := c.Marshal(&h)
			if err != nil {
				t.Fatal(err)
			}
			var back History
			if err := c.Unmarshal(out, &back); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(h, back); diff != "" {
				t.Fatalf("%s changed the session (-want +got):\n%s", cd.name, diff)
			}
		}
	}
}
