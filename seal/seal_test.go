package seal_test

import (
	"bytes"
	"errors"
	"testing"

	"github.com/typedsession/session/seal"
)

func key(id string, b byte) seal.Key {
	return seal.Key{ID: id, Secret: bytes.Repeat([]byte{b}, seal.KeySize)}
}

func TestSealOpen(t *testing.T) {
	r, err := seal.New(key("new", 1), key("old", 2))
	if err != nil {
		t.Fatal(err)
	}
	ad := []byte("\x04quiz\x0242")
	sealed, kid, err := r.Seal(nil, []byte("secret"), ad)
	if err != nil || kid != "new" {
		t.Fatalf("Seal = %v, %q", err, kid)
	}
	again, _, _ := r.Seal(nil, []byte("secret"), ad)
	if bytes.Equal(sealed, again) {
		t.Fatal("two seals of one value are equal: the nonce is not fresh")
	}
	if got, err := r.Open(nil, sealed, ad, "new"); err != nil || string(got) != "secret" {
		t.Fatalf("Open = %q, %v", got, err)
	}
	flipped := bytes.Clone(sealed)
	flipped[len(flipped)-1] ^= 1
	for name, tc := range map[string]struct {
		sealed []byte
		ad     []byte
		kid    string
		want   error
	}{
		"flipped bit":   {flipped, ad, "new", seal.ErrOpen},
		"truncated":     {sealed[:10], ad, "new", seal.ErrOpen},
		"other key":     {sealed, ad, "old", seal.ErrOpen},
		"other AD":      {sealed, []byte("\x04quiz\x0243"), "new", seal.ErrOpen},
		"unknown key":   {sealed, ad, "gone", seal.ErrUnknownKey},
		"empty payload": {nil, ad, "new", seal.ErrOpen},
	} {
		if _, err := r.Open(nil, tc.sealed, tc.ad, tc.kid); !errors.Is(err, tc.want) {
			t.Errorf("%s: Open = %v, want %v", name, err, tc.want)
		}
	}
}

func TestNewRefusesBadKeys(t *testing.T) {
	for name, keys := range map[string][]seal.Key{
		"none":        nil,
		"short":       {{ID: "k", Secret: []byte("short")}},
		"empty ID":    {{ID: "", Secret: make([]byte, 32)}},
		"bad ID":      {{ID: "a b", Secret: make([]byte, 32)}},
		"repeated ID": {key("k", 1), key("k", 2)},
	} {
		if _, err := seal.New(keys...); err == nil {
			t.Errorf("%s: New accepted %v", name, keys)
		}
	}
}
