package msgpack

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
)

// scanner walks one MessagePack value without recursion deeper than
// MaxNestedLevels, checking every length against the input. With write
// set it appends the value to out with the entries of every map in the
// canonical order (see the package doc).
type scanner struct {
	b     []byte
	write bool
	out   []byte
	spans []span // the entries of the maps being walked, innermost last
	tmp   []byte // scratch for reordering a map's entries
}

// span is one map entry: key at [k, v), value at [v, end) of b, or of out
// when writing.
type span struct{ k, v, end int }

var errTruncated = errors.New("truncated value")

// all walks b, which must hold exactly one value.
func (s *scanner) all() error {
	if len(s.b) == 0 {
		return errTruncated
	}
	end, err := s.value(0, 0)
	if err != nil {
		return err
	}
	if end != len(s.b) {
		return fmt.Errorf("%d bytes after the value", len(s.b)-end)
	}
	return nil
}

// header returns, for the value whose code is at b[i], the length of its
// header and of its body, or for an array or map (n >= 0) its header
// length and element count.
func (s *scanner) header(i int) (hdr, body, n int, err error) {
	c := s.b[i]
	arg := func(w int) (int, error) {
		if i+1+w > len(s.b) {
			return 0, errTruncated
		}
		p := s.b[i+1 : i+1+w]
		switch w {
		case 1:
			return int(p[0]), nil
		case 2:
			return int(binary.BigEndian.Uint16(p)), nil
		default:
			return int(binary.BigEndian.Uint32(p)), nil
		}
	}
	n = -1
	switch {
	case c <= 0x7f || c >= 0xe0 || c == 0xc0 || c == 0xc2 || c == 0xc3:
		return 1, 0, -1, nil
	case c <= 0x8f:
		return 1, 0, int(c & 0x0f), nil // fixmap
	case c <= 0x9f:
		return 1, 0, int(c & 0x0f), nil // fixarray
	case c <= 0xbf:
		return 1, int(c & 0x1f), -1, nil // fixstr
	}
	switch c {
	case 0xc4, 0xd9: // bin8, str8
		body, err = arg(1)
		return 2, body, n, err
	case 0xc5, 0xda:
		body, err = arg(2)
		return 3, body, n, err
	case 0xc6, 0xdb:
		body, err = arg(4)
		return 5, body, n, err
	case 0xc7: // ext8: length, type
		body, err = arg(1)
		return 3, body, n, err
	case 0xc8:
		body, err = arg(2)
		return 4, body, n, err
	case 0xc9:
		body, err = arg(4)
		return 6, body, n, err
	case 0xca, 0xce, 0xd2:
		return 1, 4, n, nil
	case 0xcb, 0xcf, 0xd3:
		return 1, 8, n, nil
	case 0xcc, 0xd0:
		return 1, 1, n, nil
	case 0xcd, 0xd1:
		return 1, 2, n, nil
	case 0xd4, 0xd5, 0xd6, 0xd7, 0xd8: // fixext 1, 2, 4, 8, 16 with a type byte
		return 2, 1 << (c - 0xd4), n, nil
	case 0xdc, 0xde:
		n, err = arg(2)
		return 3, 0, n, err
	case 0xdd, 0xdf:
		n, err = arg(4)
		return 5, 0, n, err
	}
	return 0, 0, 0, fmt.Errorf("reserved code 0x%02x", c)
}

func isMap(c byte) bool { return c&0xf0 == 0x80 || c == 0xde || c == 0xdf }

// value walks the value at b[i] and returns where it ends.
func (s *scanner) value(i, depth int) (int, error) {
	if i >= len(s.b) {
		return 0, errTruncated
	}
	hdr, body, n, err := s.header(i)
	if err != nil {
		return 0, err
	}
	if n < 0 {
		end := i + hdr + body
		if end > len(s.b) || end < i {
			return 0, errTruncated
		}
		if s.write {
			s.out = append(s.out, s.b[i:end]...)
		}
		return end, nil
	}
	if depth >= MaxNestedLevels {
		return 0, fmt.Errorf("nested more than %d levels deep", MaxNestedLevels)
	}
	if n > MaxElements {
		return 0, fmt.Errorf("%d elements in one array or map, the limit is %d", n, MaxElements)
	}
	m := isMap(s.b[i])
	items := n
	if m {
		items = 2 * n
	}
	j := i + hdr
	if j > len(s.b) || items > len(s.b)-j {
		return 0, errTruncated
	}
	if s.write {
		s.out = append(s.out, s.b[i:j]...)
	}
	if !m {
		for range n {
			if j, err = s.value(j, depth+1); err != nil {
				return 0, err
			}
		}
		return j, nil
	}
	base := len(s.spans)
	start := len(s.out)
	for range n {
		var sp span
		sp.k = j
		if s.write {
			sp.k = len(s.out)
		}
		if j, err = s.value(j, depth+1); err != nil {
			return 0, err
		}
		sp.v = j
		if s.write {
			sp.v = len(s.out)
		}
		if j, err = s.value(j, depth+1); err != nil {
			return 0, err
		}
		sp.end = j
		if s.write {
			sp.end = len(s.out)
		}
		s.spans = append(s.spans, sp)
	}
	if s.write {
		s.order(start, s.spans[base:])
	}
	s.spans = s.spans[:base]
	return j, nil
}

// order puts the entries of the map written at out[start:] in the
// canonical order.
func (s *scanner) order(start int, entries []span) {
	sorted := true
	for k := 1; k < len(entries); k++ {
		if compareEntries(s.out, entries[k], entries[k-1]) < 0 {
			sorted = false
			break
		}
	}
	if sorted {
		return
	}
	slices.SortStableFunc(entries, func(a, b span) int { return compareEntries(s.out, a, b) })
	// The entries' children are done, so one scratch buffer serves every
	// map.
	s.tmp = append(s.tmp[:0], s.out[start:]...)
	s.out = s.out[:start]
	for _, e := range entries {
		s.out = append(s.out, s.tmp[e.k-start:e.end-start]...)
	}
}

// compareEntries orders map entries: text-string keys first, by their
// bytes; then other keys by their encoding; equal keys by their values'
// encodings.
func compareEntries(buf []byte, a, b span) int {
	ka, kb := buf[a.k:a.v], buf[b.k:b.v]
	sa, oka := strBody(ka)
	sb, okb := strBody(kb)
	var c int
	switch {
	case oka && okb:
		c = bytes.Compare(sa, sb)
	case oka:
		c = -1
	case okb:
		c = 1
	default:
		c = bytes.Compare(ka, kb)
	}
	if c != 0 {
		return c
	}
	return bytes.Compare(buf[a.v:a.end], buf[b.v:b.end])
}

// strBody returns the bytes of the string encoded in x, a whole value.
func strBody(x []byte) ([]byte, bool) {
	switch c := x[0]; {
	case c >= 0xa0 && c <= 0xbf:
		return x[1:], true
	case c == 0xd9:
		return x[2:], true
	case c == 0xda:
		return x[3:], true
	case c == 0xdb:
		return x[5:], true
	}
	return nil, false
}
