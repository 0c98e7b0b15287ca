// Package format is the whole stored form of a session: bytes ⇄ envelope ⇄
// payload ⇄ value. The root package calls it and knows nothing of framing,
// fast paths or size hints.
//
// # The envelope
//
// With a codec whose payload is JSON (the default), a stored value is one
// JSON object:
//
//	{"typedsession":2,"writes":["hT3kQ0aZr8Ym","Xb1…"],"data":{…}}
//
// A JSON value is an envelope if and only if it is an object with a
// top-level member "typedsession". An envelope must hold exactly the known
// members, each at most once, in any order and with any spacing:
//
//   - "typedsession" (required): the schema version, an integer ≥ 1;
//   - "data" (required): the payload, the codec's output (a JSON value);
//   - "writes": the write identities, newest first: writes[0] identifies
//     this value, the rest the writes it was built on (at most [MaxWrites]);
//   - "codec", "layers", "kid", "dict": reserved for the codecs and layers
//     of a later release (a codec name, the layers applied to the payload
//     in order, the sealing key ID, the compression dictionary ID). A
//     value that uses them is refused by this release with a clear error.
//
// Anything else in an envelope (an unknown or repeated member, a version
// that is not a positive integer, no data) makes the value corrupt. A JSON
// value without a "typedsession" member is version 0: data written by an
// older app or another framework, adopted by a migration step from 0.
// The exact prefix that Append writes is only a fast path of that rule.
//
// With any other codec the value is a binary frame: "\x00TS\x02", the
// schema version (uvarint), the number of write identities (uvarint) and
// each as a length-prefixed string, the reserved codec, layers, key ID and
// dictionary ID as length-prefixed strings (layers: a count first), then
// the payload to the end. "\x00TS\x01" + version + payload, written by
// earlier releases, still loads. Anything else is version 0.
package format

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
)

// MaxWrites is how many write identities an envelope keeps: its own and
// those of the MaxWrites-1 writes before it. A writer whose write landed
// but whose reply was lost can tell that it landed as long as at most
// MaxWrites-1 writes were built on it since.
const MaxWrites = 8

// idLen is the length of a write identity: 72 random bits in base64url.
const idLen = 12

const (
	jsonPrefix = `{"typedsession":`
	jsonWrites = `,"writes":[`
	jsonData   = `,"data":`
	binV1      = "\x00TS\x01"
	binV2      = "\x00TS\x02"
	maxVersion = 1 << 30
)

// ErrMalformed reports a value that is an envelope but not a valid one.
var ErrMalformed = errors.New("malformed envelope")

// Envelope is a decoded envelope.
type Envelope struct {
	Version int      // schema version; 0 for data without an envelope
	Writes  []string // write identities, newest first
	Codec   string   // reserved: "" means the manager's codec
	Layers  []string // reserved: none
	KeyID   string   // reserved
	DictID  string   // reserved
	Payload []byte   // shares memory with the raw value

	// Checked is false when the fast path split the value: the payload is
	// then proven to be one JSON value only once a strict JSON decoder
	// has read it (see Codec.Unmarshal).
	Checked bool
}

// NewWriteID returns a fresh write identity: 72 random bits, base64url.
// Tests may replace it to pin golden files.
var NewWriteID = func() string {
	var b [9]byte
	binary.LittleEndian.PutUint64(b[:8], rand.Uint64())
	b[8] = byte(rand.Uint32())
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// NextWrites returns the write identities of a value built on one whose
// identities are prev: id first, then prev, MaxWrites in all at most.
func NextWrites(id string, prev []string) []string {
	out := make([]string, 0, min(len(prev)+1, MaxWrites))
	out = append(out, id)
	for _, p := range prev {
		if len(out) == MaxWrites {
			break
		}
		out = append(out, p)
	}
	return out
}

// AppendHeader appends what precedes the payload in the stored form of e.
func AppendHeader(dst []byte, jsonForm bool, e *Envelope) []byte {
	if !jsonForm {
		dst = append(dst, binV2...)
		dst = binary.AppendUvarint(dst, uint64(e.Version))
		dst = binary.AppendUvarint(dst, uint64(len(e.Writes)))
		for _, w := range e.Writes {
			dst = appendBinString(dst, w)
		}
		dst = appendBinString(dst, e.Codec)
		dst = binary.AppendUvarint(dst, uint64(len(e.Layers)))
		for _, l := range e.Layers {
			dst = appendBinString(dst, l)
		}
		dst = appendBinString(dst, e.KeyID)
		return appendBinString(dst, e.DictID)
	}
	dst = append(dst, jsonPrefix...)
	dst = strconv.AppendInt(dst, int64(e.Version), 10)
	if len(e.Writes) > 0 {
		dst = append(dst, jsonWrites...)
		for i, w := range e.Writes {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = strconv.AppendQuote(dst, w)
		}
		dst = append(dst, ']')
	}
	// The reserved members are never set by this release.
	return append(dst, jsonData...)
}

// AppendTrailer appends what follows the payload.
func AppendTrailer(dst []byte, jsonForm bool) []byte {
	if jsonForm {
		return append(dst, '}')
	}
	return dst
}

// Append appends the whole stored form of e (with e.Payload) to dst.
func Append(dst []byte, jsonForm bool, e *Envelope) []byte {
	dst = AppendHeader(dst, jsonForm, e)
	dst = append(dst, e.Payload...)
	return AppendTrailer(dst, jsonForm)
}

func appendBinString(dst []byte, s string) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(s)))
	return append(dst, s...)
}

// Decode splits raw. A value without an envelope is version 0 with raw as
// its payload. An envelope that breaks the rules gives an error wrapping
// ErrMalformed. For the JSON form, Decode returns with Checked false only
// from the fast path, for the exact form Append writes; the caller must then
// decode the payload strictly (one JSON value, nothing after it) or call
// Check.
func Decode(raw []byte, jsonForm bool) (Envelope, error) {
	if !jsonForm {
		return decodeBinary(raw)
	}
	if bytes.HasPrefix(raw, []byte(jsonPrefix)) {
		if e, ok := fastJSON(raw); ok {
			return e, nil
		}
	}
	return slowJSON(raw)
}

// Check proves a fast-path split: the payload must be exactly one JSON
// value. It is what the slow path would have decided.
func Check(raw []byte, e *Envelope) error {
	if e.Checked {
		return nil
	}
	if json.Valid(e.Payload) {
		e.Checked = true
		return nil
	}
	_, err := slowJSON(raw)
	if err == nil {
		err = fmt.Errorf("%w: data is not one JSON value", ErrMalformed)
	}
	return err
}

// fastJSON splits the exact form that Append writes without scanning the
// payload.
func fastJSON(raw []byte) (Envelope, bool) {
	rest := raw[len(jsonPrefix):]
	i := 0
	for i < len(rest) && i < 10 && rest[i] >= '0' && rest[i] <= '9' {
		i++
	}
	if i == 0 || rest[0] == '0' {
		return Envelope{}, false
	}
	v, err := strconv.Atoi(string(rest[:i]))
	if err != nil || v < 1 || v > maxVersion {
		return Envelope{}, false
	}
	rest = rest[i:]
	var writes []string
	if bytes.HasPrefix(rest, []byte(jsonWrites)) {
		rest = rest[len(jsonWrites):]
		for {
			if len(rest) < idLen+2 || rest[0] != '"' || rest[idLen+1] != '"' || len(writes) == MaxWrites {
				return Envelope{}, false
			}
			id := rest[1 : idLen+1]
			for _, c := range id {
				if !isBase64URL(c) {
					return Envelope{}, false
				}
			}
			writes = append(writes, string(id))
			rest = rest[idLen+2:]
			if len(rest) > 0 && rest[0] == ',' {
				rest = rest[1:]
				continue
			}
			if len(rest) > 0 && rest[0] == ']' {
				rest = rest[1:]
				break
			}
			return Envelope{}, false
		}
	}
	if !bytes.HasPrefix(rest, []byte(jsonData)) || len(rest) < len(jsonData)+2 || rest[len(rest)-1] != '}' {
		return Envelope{}, false
	}
	return Envelope{Version: v, Writes: writes, Payload: rest[len(jsonData) : len(rest)-1]}, true
}

func isBase64URL(c byte) bool {
	return c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_'
}

// slowJSON applies the envelope rule with a full parse of the top level.
func slowJSON(raw []byte) (Envelope, error) {
	if !json.Valid(raw) {
		return Envelope{}, fmt.Errorf("%w: not JSON and not an envelope", ErrMalformed)
	}
	members, ok := topLevel(raw)
	if !ok {
		return Envelope{Payload: raw, Checked: true}, nil // not an object: version 0
	}
	isEnvelope := false
	for _, m := range members {
		if m.name == "typedsession" {
			isEnvelope = true
		}
	}
	if !isEnvelope {
		return Envelope{Payload: raw, Checked: true}, nil
	}
	e := Envelope{Checked: true}
	seen := map[string]bool{}
	for _, m := range members {
		if seen[m.name] {
			return Envelope{}, fmt.Errorf("%w: member %q appears twice", ErrMalformed, m.name)
		}
		seen[m.name] = true
		var err error
		switch m.name {
		case "typedsession":
			e.Version, err = parseVersion(m.value)
		case "data":
			e.Payload = m.value
		case "writes":
			err = json.Unmarshal(m.value, &e.Writes)
			if err == nil && len(e.Writes) > MaxWrites {
				err = fmt.Errorf("more than %d write identities", MaxWrites)
			}
		case "codec":
			err = json.Unmarshal(m.value, &e.Codec)
		case "layers":
			err = json.Unmarshal(m.value, &e.Layers)
		case "kid":
			err = json.Unmarshal(m.value, &e.KeyID)
		case "dict":
			err = json.Unmarshal(m.value, &e.DictID)
		default:
			return Envelope{}, fmt.Errorf("%w: unknown member %q", ErrMalformed, m.name)
		}
		if err != nil {
			return Envelope{}, fmt.Errorf("%w: member %q: %v", ErrMalformed, m.name, err)
		}
	}
	if e.Payload == nil {
		return Envelope{}, fmt.Errorf("%w: no data member", ErrMalformed)
	}
	return e, nil
}

func parseVersion(b []byte) (int, error) {
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, fmt.Errorf("version %s is not a positive integer", b)
		}
	}
	v, err := strconv.Atoi(string(b))
	if err != nil || v < 1 || v > maxVersion || b[0] == '0' {
		return 0, fmt.Errorf("version %s is not a positive integer", b)
	}
	return v, nil
}

type member struct {
	name  string
	value []byte // trimmed raw JSON, sharing memory with the input
}

// topLevel returns the members of raw, which must be valid JSON, when it is
// an object (surrounding white space allowed), in order, duplicates
// included.
func topLevel(raw []byte) ([]member, bool) {
	b := bytes.TrimSpace(raw)
	if len(b) == 0 || b[0] != '{' {
		return nil, false
	}
	var members []member
	i := skipSpace(b, 1)
	if b[i] == '}' {
		return members, true
	}
	for {
		i = skipSpace(b, i)
		end := skipValue(b, i) // the name, a string
		var name string
		if err := json.Unmarshal(b[i:end], &name); err != nil {
			return nil, false
		}
		i = skipSpace(b, end)
		i = skipSpace(b, i+1) // ':'
		end = skipValue(b, i)
		members = append(members, member{name: name, value: b[i:end]})
		i = skipSpace(b, end)
		if b[i] == '}' {
			return members, true
		}
		i++ // ','
	}
}

func decodeBinary(raw []byte) (Envelope, error) {
	switch {
	case bytes.HasPrefix(raw, []byte(binV1)):
		v, n := binary.Uvarint(raw[len(binV1):])
		if n <= 0 || v < 1 || v > maxVersion {
			return Envelope{}, fmt.Errorf("%w: bad version header", ErrMalformed)
		}
		return Envelope{Version: int(v), Payload: raw[len(binV1)+n:], Checked: true}, nil
	case bytes.HasPrefix(raw, []byte(binV2)):
		r := binReader{b: raw[len(binV2):]}
		e := Envelope{Checked: true}
		v := r.uvarint()
		if v < 1 || v > maxVersion {
			r.fail("version")
		}
		e.Version = int(v)
		if n := r.uvarint(); n > MaxWrites {
			r.fail("write identities")
		} else {
			for range n {
				e.Writes = append(e.Writes, r.str())
			}
		}
		e.Codec = r.str()
		if n := r.uvarint(); n > 16 {
			r.fail("layers")
		} else {
			for range n {
				e.Layers = append(e.Layers, r.str())
			}
		}
		e.KeyID = r.str()
		e.DictID = r.str()
		if r.err != nil {
			return Envelope{}, r.err
		}
		e.Payload = r.b
		return e, nil
	}
	return Envelope{Payload: raw, Checked: true}, nil
}

type binReader struct {
	b   []byte
	err error
}

func (r *binReader) fail(what string) {
	if r.err == nil {
		r.err = fmt.Errorf("%w: bad %s in the binary header", ErrMalformed, what)
	}
}

func (r *binReader) uvarint() uint64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.fail("length")
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *binReader) str() string {
	n := r.uvarint()
	if r.err != nil {
		return ""
	}
	if n > uint64(len(r.b)) || n > 255 {
		r.fail("string")
		return ""
	}
	s := string(r.b[:n])
	r.b = r.b[n:]
	return s
}
