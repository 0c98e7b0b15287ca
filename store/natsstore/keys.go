package natsstore

import "strings"

// NATS key-value keys are subject tokens: only the letters, digits and
// "-/_=." are allowed, and a "." splits tokens. A store key is any UTF-8
// text without NUL, so the store encodes it: the letters, digits and
// "-", "_" and "/" stand for themselves, and every other byte (including
// "=" and ".") becomes "=" and two upper-case hex digits. "quiz:42"
// is stored as "quiz=3A42", "a.b" as "a=2Eb", "é" as "=C3=A9".
//
// Each byte has exactly one encoding, so the encoding is one to one, and
// it is a prefix code: encode(p) is a prefix of encode(k) exactly when p is
// a prefix of k. A key of n bytes takes between n and 3n bytes (3,072 for
// the longest key, well inside NATS's 4,096-byte control line).

const hexDigits = "0123456789ABCDEF"

func literal(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_' || c == '/'
}

// encodeKey returns the NATS key of a store key.
func encodeKey(key string) string {
	n := len(key)
	for i := 0; i < len(key); i++ {
		if !literal(key[i]) {
			n += 2
		}
	}
	if n == len(key) {
		return key
	}
	var b strings.Builder
	b.Grow(n)
	for i := 0; i < len(key); i++ {
		c := key[i]
		if literal(c) {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('=')
		b.WriteByte(hexDigits[c>>4])
		b.WriteByte(hexDigits[c&0xF])
	}
	return b.String()
}

// decodeKey returns the store key of a NATS key, and false for a key that
// encodeKey cannot have made (one written into the bucket by other means,
// such as "a.b" or "a=3a"): such keys are not the store's and Scan skips
// them.
func decodeKey(enc string) (string, bool) {
	if strings.IndexByte(enc, '=') < 0 {
		for i := 0; i < len(enc); i++ {
			if !literal(enc[i]) {
				return "", false
			}
		}
		return enc, enc != ""
	}
	var b strings.Builder
	b.Grow(len(enc))
	for i := 0; i < len(enc); i++ {
		c := enc[i]
		switch {
		case literal(c):
			b.WriteByte(c)
		case c == '=' && i+2 < len(enc):
			hi, lo := strings.IndexByte(hexDigits, enc[i+1]), strings.IndexByte(hexDigits, enc[i+2])
			if hi < 0 || lo < 0 {
				return "", false
			}
			d := byte(hi<<4 | lo)
			if literal(d) {
				return "", false // encodeKey writes a literal byte as itself
			}
			b.WriteByte(d)
			i += 2
		default:
			return "", false
		}
	}
	return b.String(), true
}
