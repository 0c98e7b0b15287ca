package codec_test

import (
	"encoding/json"
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

func TestJSONKeepsLargeIntegersInInterfaces(t *testing.T) {
	var c codec.Codec = codec.JSON{}
	var got map[string]any
	if err := c.Unmarshal([]byte(`{"chat":1265476890672672808}`), &got); err != nil {
		t.Fatal(err)
	}
	if n, ok := got["chat"].(json.Number); !ok || n.String() != "1265476890672672808" {
		t.Fatalf("chat = %#v, want json.Number(\"1265476890672672808\")", got["chat"])
	}
	for _, bad := range []string{`{"a":1} {"b":2}`, `{"a":1}}`, `{"a":1}]`, `1 ]`, `{"a":1} x`} {
		if err := c.Unmarshal([]byte(bad), &got); err == nil {
			t.Errorf("Unmarshal(%s) accepted data after the value", bad)
		}
	}
}
