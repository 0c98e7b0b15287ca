// Package seal encrypts stored sessions at rest with AES-256-GCM from the
// standard library, under keys that can be rotated.
//
// A [Keyring] holds one or more keys, each with an ID. The first key seals
// every new value; every key in the ring opens the values sealed with it.
// The ID of the sealing key is recorded next to each sealed value (the
// envelope's "kid" member), so opening never tries keys in turn.
//
// Each value is sealed with a fresh random 96-bit nonce. NIST SP 800-38D
// (section 8.3) limits one AES-GCM key to 2^32 messages with random nonces;
// a session store that rewrites a session on every change reaches that
// after about four billion writes: rotate the key well before (a yearly
// rotation covers a bot writing a hundred values a second).
//
// AES-256-GCM rather than XChaCha20-Poly1305: it is in the standard
// library (no dependency for the core), runs on the AES instructions of
// every server CPU, and the rotation procedure keeps each key far below its
// message limit.
//
// The associated data binds a sealed value to its (namespace, key) pair, so
// a value copied to another user's key, or to another session type, does
// not open. It is built by the session manager, not by the store, so an
// export to another store with another prefix still opens.
//
// # Rotation
//
//  1. Add the new key to every binary's Keyring, after the current one
//     (it opens, nothing seals with it yet). Deploy.
//  2. Move the new key first: it seals from now on; the old one still
//     opens. Deploy.
//  3. Re-seal every stored session: Manager.MigrateAll with
//     MigrateOptions.Reseal rewrites each value sealed with another key.
//  4. Remove the old key. Deploy.
package seal

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"errors"
	"fmt"
	"strings"
)

// Name is the layer name recorded in the envelope of a sealed value.
const Name = "aes-256-gcm"

// KeySize is the size of a key's secret: 32 bytes (AES-256).
const KeySize = 32

// Key is one encryption key.
type Key struct {
	// ID names the key in every value it seals: 1 to 64 characters of
	// letters, digits, '-', '_' and '.', unique in the ring. It is not
	// secret.
	ID string
	// Secret is the key itself: KeySize random bytes (crypto/rand), kept
	// out of the code and the store.
	Secret []byte
}

// Errors of Open, matched with errors.Is.
var (
	// ErrUnknownKey: the value was sealed with a key ID this ring does not
	// hold (removed too early, or not added yet). The value is intact.
	ErrUnknownKey = errors.New("seal: sealed with a key this keyring does not hold")
	// ErrOpen: the value does not open with its key: tampered with,
	// truncated, or moved to another key or namespace.
	ErrOpen = errors.New("seal: the value does not open (tampered, truncated, or moved from another key)")
)

// Keyring seals with its first key and opens with any of its keys. It is
// safe for concurrent use.
type Keyring struct {
	sealID string
	aeads  map[string]cipher.AEAD
}

// New returns a keyring of keys, the first of which seals. It returns an
// error for no keys, a secret that is not KeySize bytes or is all zero
// bytes (a buffer never filled), an invalid or repeated ID.
func New(keys ...Key) (*Keyring, error) {
	if len(keys) == 0 {
		return nil, errors.New("seal: New needs at least one key")
	}
	r := &Keyring{sealID: keys[0].ID, aeads: make(map[string]cipher.AEAD, len(keys))}
	for _, k := range keys {
		if err := checkID(k.ID); err != nil {
			return nil, err
		}
		if _, dup := r.aeads[k.ID]; dup {
			return nil, fmt.Errorf("seal: key ID %q appears twice", k.ID)
		}
		if len(k.Secret) != KeySize {
			return nil, fmt.Errorf("seal: key %q has a %d-byte secret; it must be %d random bytes", k.ID, len(k.Secret), KeySize)
		}
		if allZero(k.Secret) {
			return nil, fmt.Errorf("seal: key %q has a secret of %d zero bytes, a buffer never filled; it must be random bytes (crypto/rand)", k.ID, KeySize)
		}
		block, err := aes.NewCipher(k.Secret)
		if err != nil {
			return nil, err
		}
		aead, err := cipher.NewGCM(block)
		if err != nil {
			return nil, err
		}
		r.aeads[k.ID] = aead
	}
	return r, nil
}

// allZero reports whether every byte of b is zero.
func allZero(b []byte) bool {
	var or byte
	for _, c := range b {
		or |= c
	}
	return or == 0
}

func checkID(id string) error {
	if id == "" || len(id) > 64 || strings.Trim(id, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.") != "" {
		return fmt.Errorf("seal: key ID %q must be 1 to 64 letters, digits, '-', '_' or '.'", id)
	}
	return nil
}

// SealingKeyID returns the ID of the key that seals.
func (r *Keyring) SealingKeyID() string { return r.sealID }

// Has reports whether the ring holds a key with this ID.
func (r *Keyring) Has(id string) bool { _, ok := r.aeads[id]; return ok }

// Seal appends the sealed form of plaintext (nonce, ciphertext and tag) to
// dst, bound to ad, and returns it with the ID of the key that sealed it.
func (r *Keyring) Seal(dst, plaintext, ad []byte) ([]byte, string, error) {
	aead := r.aeads[r.sealID]
	n := len(dst)
	dst = append(dst, make([]byte, aead.NonceSize())...)
	nonce := dst[n:]
	if _, err := rand.Read(nonce); err != nil {
		return nil, "", err
	}
	return aead.Seal(dst, nonce, plaintext, ad), r.sealID, nil
}

// Open returns the plaintext of sealed, a value Seal made with the key id
// and the same ad, appended to dst. It returns an error matching
// ErrUnknownKey for an ID the ring lacks, and ErrOpen for a value that does
// not open.
func (r *Keyring) Open(dst, sealed, ad []byte, id string) ([]byte, error) {
	aead, ok := r.aeads[id]
	if !ok {
		return nil, fmt.Errorf("%w (key ID %q)", ErrUnknownKey, id)
	}
	ns := aead.NonceSize()
	if len(sealed) < ns+aead.Overhead() {
		return nil, fmt.Errorf("%w: %d bytes is shorter than a sealed value", ErrOpen, len(sealed))
	}
	out, err := aead.Open(dst, sealed[:ns], sealed[ns:], ad)
	if err != nil {
		return nil, ErrOpen
	}
	return out, nil
}
