package envelope

import (
	"bytes"
	"errors"
	"testing"
)

func TestRoundTrip(t *testing.T) {
	for _, jsonForm := range []bool{true, false} {
		for _, v := range []int{1, 2, 9, 10, 12345, 1 << 30} {
			payload := []byte(`{"a":[1,2,{"b":"}"}]}`)
			enc := Encode(nil, jsonForm, v, payload)
			if len(enc) != Size(jsonForm, v, payload) {
				t.Errorf("Size = %d, len(Encode) = %d", Size(jsonForm, v, payload), len(enc))
			}
			gv, gp, err := Decode(enc, jsonForm)
			if err != nil || gv != v || !bytes.Equal(gp, payload) {
				t.Errorf("jsonForm=%v v=%d: Decode(%q) = %d, %q, %v", jsonForm, v, enc, gv, gp, err)
			}
		}
	}
}

func TestDecode(t *testing.T) {
	tests := []struct {
		name    string
		raw     string
		version int
		payload string
		bad     bool
	}{
		{"legacy object", `{"score":1}`, 0, `{"score":1}`, false},
		{"legacy with the key elsewhere", `{"data":{},"typedsession":2}`, 0, `{"data":{},"typedsession":2}`, false},
		{"leading space is legacy", ` {"typedsession":2,"data":{}}`, 0, ` {"typedsession":2,"data":{}}`, false},
		{"exact", `{"typedsession":2,"data":{"x":1}}`, 2, `{"x":1}`, false},
		{"reformatted", `{"typedsession": 2, "data": {"x":1}}`, 2, `{"x":1}`, false},
		{"version zero", `{"typedsession":0,"data":{}}`, 0, "", true},
		{"negative", `{"typedsession":-1,"data":{}}`, 0, "", true},
		{"string version", `{"typedsession":"2","data":{}}`, 0, "", true},
		{"no data", `{"typedsession":2}`, 0, "", true},
		{"truncated", `{"typedsession":2,"data":{"x":`, 0, "", true},
		{"leading zero", `{"typedsession":02,"data":{}}`, 0, "", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			v, p, err := Decode([]byte(tc.raw), true)
			if tc.bad {
				if !errors.Is(err, ErrMalformed) {
					t.Fatalf("Decode = %d, %q, %v; want ErrMalformed", v, p, err)
				}
				return
			}
			if err != nil || v != tc.version || string(p) != tc.payload {
				t.Fatalf("Decode = %d, %q, %v; want %d, %q", v, p, err, tc.version, tc.payload)
			}
		})
	}
}

// The fast path does not scan the payload: a hand-edited envelope with a
// member after data yields a payload the codec rejects, and the manager
// then calls Reparse, which parses the whole value.
func TestReparseExtraMember(t *testing.T) {
	raw := []byte(`{"typedsession":2,"data":{"x":1},"note":"hi"}`)
	_, fast, err := Decode(raw, true)
	if err != nil {
		t.Fatal(err)
	}
	if string(fast) == `{"x":1}` {
		t.Fatal("the fast path now handles extra members; drop the Reparse fallback")
	}
	v, p, err := Reparse(raw)
	if err != nil || v != 2 || string(p) != `{"x":1}` {
		t.Fatalf("Reparse = %d, %q, %v", v, p, err)
	}
}

func FuzzDecode(f *testing.F) {
	f.Add([]byte(`{"typedsession":2,"data":{"x":1}}`), true)
	f.Add([]byte("\x00TS\x01\x02payload"), false)
	f.Add([]byte(`{"typedsession":`), true)
	f.Fuzz(func(t *testing.T, raw []byte, jsonForm bool) {
		v, p, err := Decode(raw, jsonForm)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("Decode error %v is not ErrMalformed", err)
			}
			return
		}
		if v < 0 || (v == 0 && !bytes.Equal(p, raw)) {
			t.Fatalf("Decode(%q) = %d, %q", raw, v, p)
		}
		if v > 0 {
			// What decodes re-encodes to a value that decodes the same.
			again := Encode(nil, jsonForm, v, p)
			v2, p2, err := Decode(again, jsonForm)
			if err != nil || v2 != v || !bytes.Equal(p2, p) {
				t.Fatalf("re-encoding %q gave %q: %d, %q, %v", raw, again, v2, p2, err)
			}
		}
	})
}

func TestAppendHeaderTrailerMatchEncode(t *testing.T) {
	for _, jsonForm := range []bool{true, false} {
		for _, v := range []int{1, 9, 10, 300, 1 << 20} {
			payload := []byte(`{"a":1}`)
			want := Encode([]byte("pre"), jsonForm, v, payload)
			got := AppendTrailer(append(AppendHeader([]byte("pre"), jsonForm, v), payload...), jsonForm)
			if string(got) != string(want) {
				t.Errorf("jsonForm=%v version=%d: header+payload+trailer = %q, Encode = %q", jsonForm, v, got, want)
			}
		}
	}
}
