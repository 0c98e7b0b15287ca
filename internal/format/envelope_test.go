package format

import (
	"bytes"
	"errors"
	"testing"
)

func TestRoundTrip(t *testing.T) {
	for _, jsonForm := range []bool{true, false} {
		for _, v := range []int{1, 2, 9, 10, 12345, 1 << 30} {
			for _, writes := range []Writes{"", "AAAAAAAAAAAA", Writes("0123456789-_ZZZZZZZZZZZZ").Next("abcdefghijk_")} {
				in := Envelope{Version: v, Writes: writes, Payload: []byte(`{"a":[1,2,{"b":"}"}]}`)}
				enc := Append(nil, jsonForm, &in)
				if h := HeaderLen(jsonForm, &in); h != len(AppendHeader(nil, jsonForm, &in)) {
					t.Errorf("HeaderLen = %d, header is %d bytes", h, len(AppendHeader(nil, jsonForm, &in)))
				}
				got, err := Decode(enc, jsonForm)
				if err == nil && jsonForm {
					err = Check(enc, &got)
				}
				if err != nil || got.Version != v || !bytes.Equal(got.Payload, in.Payload) || got.Writes != writes {
					t.Errorf("jsonForm=%v v=%d: Decode(%q) = %+v, %v", jsonForm, v, enc, got, err)
				}
			}
		}
	}
}

func TestLayersRoundTrip(t *testing.T) {
	for _, jsonForm := range []bool{true, false} {
		in := Envelope{Version: 3, Writes: "AAAAAAAAAAAA", Layers: []string{"deflate", "aes-256-gcm"}, KeyID: "k-2026", DictID: "d1", Payload: []byte("\x00\xff sealed \"bytes\"")}
		enc := Append(nil, jsonForm, &in)
		if h := HeaderLen(jsonForm, &in); h != len(AppendHeader(nil, jsonForm, &in)) {
			t.Errorf("HeaderLen = %d, header is %d bytes", h, len(AppendHeader(nil, jsonForm, &in)))
		}
		got, err := Decode(enc, jsonForm)
		if err != nil || got.Version != 3 || string(got.Payload) != string(in.Payload) || got.KeyID != "k-2026" || got.DictID != "d1" || len(got.Layers) != 2 || got.Writes != in.Writes {
			t.Fatalf("jsonForm=%v: Decode(%q) = %+v, %v", jsonForm, enc, got, err)
		}
	}
	for _, bad := range []string{
		`{"typedsession":1,"layers":["aes-256-gcm"],"kid":"k","data":{"a":1}}`,
		`{"typedsession":1,"layers":["aes-256-gcm"],"kid":"k","data":"not base64!"}`,
		`{"typedsession":1,"kid":"k","data":{"a":1}}`,
		`{"typedsession":1,"layers":"aes-256-gcm","data":"AA=="}`,
	} {
		if _, err := Decode([]byte(bad), true); !errors.Is(err, ErrMalformed) {
			t.Errorf("Decode(%s) = %v, want ErrMalformed", bad, err)
		}
	}
}

func TestNextWritesKeepsMaxWrites(t *testing.T) {
	var w Writes
	var ids []string
	for i := range 20 {
		id := NewWriteID()
		if !validID(id) {
			t.Fatalf("NewWriteID() = %q, not %d base64url characters", id, idLen)
		}
		ids = append([]string{id}, ids...)
		w = w.Next(id)
		if want := min(i+1, MaxWrites); w.Len() != want {
			t.Fatalf("after %d writes: %d identities, want %d", i+1, w.Len(), want)
		}
		for k := range w.Len() {
			if w.At(k) != ids[k] || w.Index(ids[k]) != k {
				t.Fatalf("identity %d is %q, want %q", k, w.At(k), ids[k])
			}
		}
	}
}

func TestDecodeJSON(t *testing.T) {
	tests := []struct {
		name    string
		raw     string
		version int
		payload string
		bad     bool
	}{
		{"legacy object", `{"score":1}`, 0, `{"score":1}`, false},
		{"legacy array", `[1,2]`, 0, `[1,2]`, false},
		{"legacy with a similar member", `{"TypedSession":2,"data":{}}`, 0, `{"TypedSession":2,"data":{}}`, false},
		{"exact", `{"typedsession":2,"data":{"x":1}}`, 2, `{"x":1}`, false},
		{"with writes", `{"typedsession":2,"writes":["AAAAAAAAAAAA"],"data":{"x":1}}`, 2, `{"x":1}`, false},
		{"with no writes", `{"typedsession":2,"writes":[],"data":{"x":1}}`, 2, `{"x":1}`, false},
		{"short write identity", `{"typedsession":2,"writes":["AAA"],"data":{"x":1}}`, 0, "", true},
		{"writes not a list", `{"typedsession":2,"writes":"AAAAAAAAAAAA","data":{"x":1}}`, 0, "", true},
		{"reformatted", `{"typedsession": 2, "data": {"x":1}}`, 2, `{"x":1}`, false},
		{"members reordered (JSONB)", `{"data": {"a": 42, "b": "real"}, "typedsession": 1}`, 1, `{"a": 42, "b": "real"}`, false},
		{"leading space", ` {"typedsession":2,"data":{}}`, 2, `{}`, false},
		{"escaped member name", `{"typed\u0073ession":2,"data":{}}`, 2, `{}`, false},
		{"data null", `{"typedsession":1,"data":null}`, 1, `null`, false},
		{"not JSON", `{"typedsession":1,"data":`, 0, "", true},
		{"garbage", "\xff\x00", 0, "", true},
		{"extra member after data", `{"typedsession":1,"data":{"lang":"fr"},"note":"x"}`, 0, "", true},
		{"duplicate version", `{"typedsession":1,"typedsession":2,"data":{}}`, 0, "", true},
		{"duplicate version reversed", `{"typedsession":2,"data":{},"typedsession":1}`, 0, "", true},
		{"duplicate data", `{"typedsession":1,"data":{},"data":{"a":1}}`, 0, "", true},
		{"version zero", `{"typedsession":0,"data":{}}`, 0, "", true},
		{"negative", `{"typedsession":-1,"data":{}}`, 0, "", true},
		{"fraction", `{"typedsession":1.0,"data":{}}`, 0, "", true},
		{"string version", `{"typedsession":"2","data":{}}`, 0, "", true},
		{"no data", `{"typedsession":2}`, 0, "", true},
		{"leading zero", `{"typedsession":02,"data":{}}`, 0, "", true},
		{"too many writes", `{"typedsession":1,"writes":["AAAAAAAAAAAA","AAAAAAAAAAAB","AAAAAAAAAAAC","AAAAAAAAAAAD","AAAAAAAAAAAE","AAAAAAAAAAAF","AAAAAAAAAAAG","AAAAAAAAAAAH","AAAAAAAAAAAI"],"data":{}}`, 0, "", true},
		{"another framework's member", `{"typedsession":"mine","user":1}`, 0, "", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e, err := Decode([]byte(tc.raw), true)
			if err == nil {
				err = Check([]byte(tc.raw), &e)
			}
			if tc.bad {
				if !errors.Is(err, ErrMalformed) {
					t.Fatalf("Decode = %+v, %v; want ErrMalformed", e, err)
				}
				return
			}
			if err != nil || e.Version != tc.version || string(e.Payload) != tc.payload {
				t.Fatalf("Decode = %d, %q, %v; want %d, %q", e.Version, e.Payload, err, tc.version, tc.payload)
			}
		})
	}
}

func TestDecodeBinary(t *testing.T) {
	// The frame written by earlier releases still loads.
	v1 := append([]byte("\x00TS\x01\x03"), `{"a":1}`...)
	e, err := Decode(v1, false)
	if err != nil || e.Version != 3 || string(e.Payload) != `{"a":1}` {
		t.Fatalf("Decode(v1 frame) = %+v, %v", e, err)
	}
	if e, err := Decode([]byte("plain bytes"), false); err != nil || e.Version != 0 {
		t.Fatalf("Decode(no frame) = %+v, %v; want version 0", e, err)
	}
	for _, bad := range []string{"\x00TS\x02", "\x00TS\x02\x01\x09", "\x00TS\x02\x01\x01\x05ab", "\x00TS\x01\x00"} {
		if _, err := Decode([]byte(bad), false); !errors.Is(err, ErrMalformed) {
			t.Errorf("Decode(%q) = %v, want ErrMalformed", bad, err)
		}
	}
}

// FuzzDecode checks that the fast path and the full rule agree on every
// input, and that every envelope Append writes decodes to itself.
func FuzzDecode(f *testing.F) {
	for _, s := range []string{
		`{"typedsession":1,"data":{}}`,
		`{"typedsession":2,"writes":["AAAAAAAAAAAA","BBBBBBBBBBBB"],"data":{"x":[1,"}"]}}`,
		`{"typedsession":1,"data":{"a":1},"x":2}`,
		`{"typedsession":1,"data":{"a":1}}}`,
		`{"data":1,"typedsession":1}`,
		`{"typedsession":1,"data":"a"} `,
		`{"typedsession":1,"writes":[],"data":1}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		fast, ferr := Decode(raw, true)
		if ferr == nil {
			ferr = Check(raw, &fast)
		}
		slow, serr := slowJSON(raw)
		if (ferr == nil) != (serr == nil) {
			t.Fatalf("fast path and full rule disagree on %q: %v vs %v", raw, ferr, serr)
		}
		if ferr != nil {
			return
		}
		if fast.Version != slow.Version || !bytes.Equal(bytes.TrimSpace(fast.Payload), bytes.TrimSpace(slow.Payload)) || fast.Writes != slow.Writes {
			t.Fatalf("fast path and full rule disagree on %q: %+v vs %+v", raw, fast, slow)
		}
		if fast.Version > 0 {
			again := Append(nil, true, &fast)
			back, err := Decode(again, true)
			if err == nil {
				err = Check(again, &back)
			}
			if err != nil || back.Version != fast.Version {
				t.Fatalf("re-encoded %q as %q: %+v, %v", raw, again, back, err)
			}
		}
		Decode(raw, false)
	})
}
