package codec_test

import (
	"testing"

	"github.com/typedsession/session/codec"
)

func TestJSON(t *testing.T) {
	type doc struct {
		HTML string         `json:"html"`
		M    map[string]int `json:"m"`
	}
	in := doc{HTML: "<b>&</b>", M: map[string]int{"b": 2, "a": 1}}
	var c codec.Codec = codec.JSON{}
	out, err := c.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"html":"<b>&</b>","m":{"a":1,"b":2}}`; string(out) != want {
		t.Fatalf("Marshal = %s, want %s (no HTML escaping, sorted keys, no newline)", out, want)
	}
	var back doc
	if err := c.Unmarshal(out, &back); err != nil || back.HTML != in.HTML || back.M["b"] != 2 {
		t.Fatalf("Unmarshal = %+v, %v", back, err)
	}
	if err := c.Unmarshal([]byte(`{"html":`), &back); err == nil {
		t.Fatal("Unmarshal of truncated JSON succeeded")
	}
	if _, err := c.Marshal(func() {}); err == nil {
		t.Fatal("Marshal of a func succeeded")
	}
}

func TestJSONAppendMarshalMatchesMarshal(t *testing.T) {
	var c codec.Appender = codec.JSON{}
	for _, v := range []any{
		map[string]any{"z": 1, "a": "<&>"},
		[]string{"x", "y"},
		struct {
			N int `json:"n"`
		}{7},
		nil,
	} {
		want, err := c.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		got, err := c.AppendMarshal([]byte("prefix:"), v)
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != "prefix:"+string(want) {
			t.Errorf("AppendMarshal(%v) = %q, want %q", v, got, "prefix:"+string(want))
		}
	}
	if _, err := c.AppendMarshal([]byte("p"), func() {}); err == nil {
		t.Fatal("AppendMarshal of a func succeeded")
	}
}
