package format

import "bytes"

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

// scanOutput reports whether the encoder's output b may nest deeper than
// maxDepth (then the exact depth) and whether it contains U+FFFD (a sign
// that the encoder replaced invalid UTF-8, to be confirmed on the value
// itself). Both first use whole-buffer searches the runtime vectorizes: a
// buffer with at most maxDepth brackets in all cannot nest deeper, and
// U+FFFD can only be in a string, raw or escaped (\ufffd, also inside a
// string option's escaped escape).
func scanOutput(b []byte) (depth int, fffd bool) {
	fffd = bytes.Contains(b, []byte("\xef\xbf\xbd")) || bytes.Contains(b, []byte(`\ufffd`)) || bytes.Contains(b, []byte(`\uFFFD`))
	if bytes.Count(b, []byte{'['})+bytes.Count(b, []byte{'{'}) <= maxDepth {
		return 0, fffd
	}
	d := 0
	for i := 0; i < len(b); i++ {
		switch b[i] {
		case '"':
			i = skipString(b, i) - 1
		case '{', '[':
			d++
			depth = max(depth, d)
		case '}', ']':
			d--
		}
	}
	return depth, fffd
}
