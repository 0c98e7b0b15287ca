package middleware

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"net/http"
)

// tokenBytes is the size of a cookie token: 256 bits from crypto/rand.
const tokenBytes = 32

// tokenLen is the length of a token in unpadded base64url.
var tokenLen = base64.RawURLEncoding.EncodedLen(tokenBytes)

// newToken returns a fresh random token in unpadded base64url.
func newToken() string {
	var b [tokenBytes]byte
	rand.Read(b[:]) // never returns an error; it crashes the program if the OS has no randomness
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// validToken reports whether tok is a token this package could have made:
// 43 characters of base64url that decode, canonically, to 32 bytes.
func validToken(tok string) bool {
	if len(tok) != tokenLen {
		return false
	}
	b, err := base64.RawURLEncoding.Strict().DecodeString(tok)
	return err == nil && len(b) == tokenBytes
}

// tokenKey returns the store key of a token: its SHA-256 in hex. A store
// key that leaks (a log line, a store dump) does not give a valid cookie.
func tokenKey(tok string) string {
	sum := sha256.Sum256([]byte(tok))
	return hex.EncodeToString(sum[:])
}

// requestToken returns the first well-formed token among the request's
// cookies named name: a Cookie header may carry the name twice (a stale
// cookie for a parent path or domain next to the current one), and a
// malformed one must not hide a good one.
func requestToken(r *http.Request, name string) (string, bool) {
	for _, c := range r.CookiesNamed(name) {
		if validToken(c.Value) {
			return c.Value, true
		}
	}
	return "", false
}
