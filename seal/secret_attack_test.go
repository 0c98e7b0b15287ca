package seal_test

import (
	"strings"
	"testing"

	"github.com/typedsession/session/seal"
)

// TestAttackNewRefusesZeroSecret: a Secret of KeySize zero bytes (a
// make([]byte, 32) never filled from crypto/rand, a key variable read
// from an empty environment and decoded into a zeroed buffer) was
// accepted: every session was "encrypted" with a key anyone can guess.
// New refuses it, naming the key.
func TestAttackNewRefusesZeroSecret(t *testing.T) {
	_, err := seal.New(key("good", 1), seal.Key{ID: "2026-06", Secret: make([]byte, seal.KeySize)})
	if err == nil || !strings.Contains(err.Error(), `"2026-06"`) || !strings.Contains(err.Error(), "zero") {
		t.Fatalf("New with an all-zero secret: err = %v, want one naming the key and the zero secret", err)
	}
}
