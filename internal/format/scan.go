package format

// Helpers that walk JSON already known to be valid (json.Valid or the
// encoder's own output), without allocating.

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// skipValue returns the index just past the JSON value starting at b[i].
func skipValue(b []byte, i int) int {
	switch b[i] {
	case '"':
		return skipString(b, i)
	case '{', '[':
		depth := 0
		for ; i < len(b); i++ {
			switch b[i] {
			case '"':
				i = skipString(b, i) - 1
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return i + 1
				}
			}
		}
		return i
	default: // number, true, false, null
		for i < len(b) {
			switch b[i] {
			case ',', '}', ']', ' ', '\t', '\n', '\r':
				return i
			}
			i++
		}
		return i
	}
}

// skipString returns the index just past the string starting at b[i].
func skipString(b []byte, i int) int {
	for i++; i < len(b); i++ {
		switch b[i] {
		case '\\':
			i++
		case '"':
			return i + 1
		}
	}
	return i
}

// maxDepth is encoding/json's nesting limit on decode: a value nested
// deeper is refused on Load, so Save refuses it too.
const maxDepth = 10000

// hasReplacement reports whether a string's encoded contents hold U+FFFD,
// raw or as the escape \ufffd that encoding/json writes in place of
// invalid UTF-8.
func hasReplacement(s []byte) bool {
	for k := 0; k < len(s); k++ {
		switch s[k] {
		case 0xef:
			if k+2 < len(s) && s[k+1] == 0xbf && s[k+2] == 0xbd {
				return true
			}
		case '\\':
			// Any backslash, escaped or not: a string option (`json:",string"`)
			// escapes the escape, so \\ufffd must count too. A false alarm
			// only costs a walk of the value.
			if k+5 < len(s) && s[k+1] == 'u' && (s[k+2]|0x20) == 'f' && (s[k+3]|0x20) == 'f' && (s[k+4]|0x20) == 'f' && (s[k+5]|0x20) == 'd' {
				return true
			}
		}
	}
	return false
}

// scanOutput reports the nesting depth of the encoder's output b and
// whether it contains U+FFFD (a sign that the encoder replaced invalid
// UTF-8, to be confirmed on the value itself).
func scanOutput(b []byte) (depth int, fffd bool) {
	d := 0
	for i := 0; i < len(b); i++ {
		switch b[i] {
		case '"':
			j := skipString(b, i)
			if !fffd {
				fffd = hasReplacement(b[i+1 : j])
			}
			i = j - 1
		case '{', '[':
			d++
			depth = max(depth, d)
		case '}', ']':
			d--
		}
	}
	return depth, fffd
}
