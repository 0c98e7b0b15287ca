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
//   - "codec": the name of the codec that wrote the payload, when it is
//     not JSON (Append never writes it: a JSON envelope is JSON's);
//   - "layers", "kid", "dict": the layers applied to the payload, in order
//     ("deflate" or "zstd", then "aes-256-gcm"), the sealing key's ID and
//     the compression dictionary's ID. With layers, "data" is the layers'
//     output as a base64 string (standard alphabet, padded); a key or
//     dictionary ID without layers is malformed.
//
// Anything else in an envelope (an unknown or repeated member, a version
// that is not a positive integer, no data) makes the value corrupt. A JSON
// value without a "typedsession" member is version 0: data written by an
// older app or another framework, adopted by a migration step from 0.
// The exact prefix that Append writes is only a fast path of that rule.
//
// With any other codec the value is a binary frame: "\x00TS\x02", the
// schema version (uvarint), the number of write identities (uvarint) and
// each as a length-prefixed string, the codec's name, the layers, the key
// ID and the dictionary ID as length-prefixed strings (layers: a count
// first), then the payload to the end. "\x00TS\x01" + version + payload,
// written by the first development versions, still loads. Anything else
// is version 0.
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
	"strings"
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
	Writes  Writes   // write identities, newest first
	Codec   string   // the codec's name; "" means the manager's codec
	Layers  []string // the layers applied to the payload, in order; none: nil
	KeyID   string   // the sealing key's ID, with the seal layer
	DictID  string   // the compression dictionary's ID, if any
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

// Writes is a list of write identities, newest first, held as one string
// of IDLen-character identities without separators, so that a decode
// costs one allocation whatever the count.
type Writes string

// IDLen is the length of a write identity: 72 random bits in base64url.
const IDLen = idLen

// Len returns the number of identities.
func (w Writes) Len() int { return len(w) / idLen }

// At returns the i-th identity, newest first.
func (w Writes) At(i int) string { return string(w[i*idLen : (i+1)*idLen]) }

// Index returns the position of id in w, or -1.
func (w Writes) Index(id string) int {
	for i := range w.Len() {
		if w.At(i) == id {
			return i
		}
	}
	return -1
}

// Next returns the identities of a value with identity id built on one
// whose identities are w: id first, then w, MaxWrites in all at most.
func (w Writes) Next(id string) Writes {
	keep := min(len(w), (MaxWrites-1)*idLen)
	return Writes(id + string(w[:keep]))
}

// validID reports whether id is a write identity: IDLen base64url
// characters.
func validID(id string) bool {
	if len(id) != idLen {
		return false
	}
	for i := 0; i < len(id); i++ {
		if !isBase64URL(id[i]) {
			return false
		}
	}
	return true
}

// HeaderLen returns len(AppendHeader(nil, jsonForm, e)).
func HeaderLen(jsonForm bool, e *Envelope) int {
	if jsonForm && (len(e.Layers) > 0 || e.KeyID != "" || e.DictID != "" || e.Codec != "") {
		return len(AppendHeader(nil, jsonForm, e))
	}
	return headerLen(jsonForm, e.Version, e.Writes.Len(), e)
}

// HeaderLenFor returns the header length of an envelope of version with
// writes identities and no codec or layer fields, so that a caller can encode the
// payload after room for a header it builds later.
func HeaderLenFor(jsonForm bool, version, writes int) int {
	return headerLen(jsonForm, version, writes, &Envelope{})
}

func headerLen(jsonForm bool, version, n int, e *Envelope) int {
	if jsonForm {
		h := len(jsonPrefix) + decimalLen(version) + len(jsonData)
		if n > 0 {
			h += len(jsonWrites) + n*(idLen+2) + (n - 1) + 1
		}
		return h
	}
	h := len(binV2) + uvarintLen(uint64(version)) + uvarintLen(uint64(n)) + n*(1+idLen)
	h += uvarintLen(uint64(len(e.Codec))) + len(e.Codec) + uvarintLen(uint64(len(e.Layers)))
	for _, l := range e.Layers {
		h += uvarintLen(uint64(len(l))) + len(l)
	}
	return h + uvarintLen(uint64(len(e.KeyID))) + len(e.KeyID) + uvarintLen(uint64(len(e.DictID))) + len(e.DictID)
}

func decimalLen(v int) int {
	n := 1
	for v >= 10 {
		v /= 10
		n++
	}
	return n
}

func uvarintLen(v uint64) int {
	n := 1
	for v >= 0x80 {
		v >>= 7
		n++
	}
	return n
}

// AppendHeader appends what precedes the payload in the stored form of e.
func AppendHeader(dst []byte, jsonForm bool, e *Envelope) []byte {
	if !jsonForm {
		dst = append(dst, binV2...)
		dst = binary.AppendUvarint(dst, uint64(e.Version))
		dst = binary.AppendUvarint(dst, uint64(e.Writes.Len()))
		for i := range e.Writes.Len() {
			dst = appendBinString(dst, e.Writes.At(i))
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
	if n := e.Writes.Len(); n > 0 {
		dst = append(dst, jsonWrites...)
		for i := range n {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = append(dst, '"')
			dst = append(dst, e.Writes[i*idLen:(i+1)*idLen]...)
			dst = append(dst, '"')
		}
		dst = append(dst, ']')
	}
	if len(e.Layers) > 0 {
		dst = append(dst, `,"layers":[`...)
		for i, l := range e.Layers {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = strconv.AppendQuote(dst, l)
		}
		dst = append(dst, ']')
	}
	if e.KeyID != "" {
		dst = append(dst, `,"kid":`...)
		dst = strconv.AppendQuote(dst, e.KeyID)
	}
	if e.DictID != "" {
		dst = append(dst, `,"dict":`...)
		dst = strconv.AppendQuote(dst, e.DictID)
	}
	return append(dst, jsonData...)
}

// AppendTrailer appends what follows the payload.
func AppendTrailer(dst []byte, jsonForm bool) []byte {
	if jsonForm {
		return append(dst, '}')
	}
	return dst
}

// Append appends the whole stored form of e (with e.Payload) to dst. With
// layers, the JSON form holds the payload as a base64 string (standard
// alphabet, padded): the layers' output is bytes, not JSON.
func Append(dst []byte, jsonForm bool, e *Envelope) []byte {
	dst = AppendHeader(dst, jsonForm, e)
	if jsonForm && len(e.Layers) > 0 {
		dst = append(dst, '"')
		dst = base64.StdEncoding.AppendEncode(dst, e.Payload)
		dst = append(dst, '"')
	} else {
		dst = append(dst, e.Payload...)
	}
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
	slow, err := slowJSON(raw)
	if err != nil {
		return err
	}
	*e = slow
	return nil
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
	var writes Writes
	if bytes.HasPrefix(rest, []byte(jsonWrites)) {
		rest = rest[len(jsonWrites):]
		// "id","id",...] with n ids is n*(idLen+3) bytes.
		n := 0
		for n < MaxWrites && len(rest) >= (n+1)*(idLen+3) {
			at := rest[n*(idLen+3):]
			if at[0] != '"' || at[idLen+1] != '"' {
				return Envelope{}, false
			}
			for _, c := range at[1 : idLen+1] {
				if !isBase64URL(c) {
					return Envelope{}, false
				}
			}
			n++
			if at[idLen+2] == ']' {
				break
			}
			if at[idLen+2] != ',' {
				return Envelope{}, false
			}
		}
		if n == 0 || rest[n*(idLen+3)-1] != ']' {
			return Envelope{}, false
		}
		var b strings.Builder
		b.Grow(n * idLen)
		for i := range n {
			b.Write(rest[i*(idLen+3)+1 : i*(idLen+3)+1+idLen])
		}
		writes = Writes(b.String())
		rest = rest[n*(idLen+3):]
	}
	if !bytes.HasPrefix(rest, []byte(jsonData)) || len(rest) < len(jsonData)+2 || rest[len(rest)-1] != '}' {
		return Envelope{}, false
	}
	// The payload is proven one JSON value by the strict decoder that
	// reads it (Format.Unmarshal), or by Check; if it is not (other
	// members follow data), the full rule decides then. Scanning it here
	// as well would cost 4% of a Load.
	return Envelope{Version: v, Writes: writes, Payload: rest[len(jsonData) : len(rest)-1]}, true
}

// base64URL marks the bytes of the base64url alphabet.
var base64URL = func() (t [256]bool) {
	for _, c := range []byte("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_") {
		t[c] = true
	}
	return t
}()

func isBase64URL(c byte) bool { return base64URL[c] }

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
			var ids []string
			err = json.Unmarshal(m.value, &ids)
			if err == nil && (len(ids) > MaxWrites || m.value[0] != '[') {
				err = fmt.Errorf("not a list of at most %d write identities", MaxWrites)
			}
			for _, id := range ids {
				if err == nil && !validID(id) {
					err = fmt.Errorf("write identity %q is not %d base64url characters", id, idLen)
				}
			}
			e.Writes = Writes(strings.Join(ids, ""))
		case "codec":
			err = json.Unmarshal(m.value, &e.Codec)
		case "layers":
			err = json.Unmarshal(m.value, &e.Layers)
			if err == nil && (m.value[0] != '[' || len(e.Layers) > 16) {
				err = errors.New("not a list of at most 16 layer names")
			}
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
	if len(e.Layers) > 0 {
		var s string
		if err := json.Unmarshal(e.Payload, &s); err != nil {
			return Envelope{}, fmt.Errorf("%w: the data of a value with layers must be a base64 string", ErrMalformed)
		}
		b, err := base64.StdEncoding.DecodeString(s)
		if err != nil {
			return Envelope{}, fmt.Errorf("%w: data: %v", ErrMalformed, err)
		}
		e.Payload = b
	} else if e.KeyID != "" || e.DictID != "" {
		return Envelope{}, fmt.Errorf("%w: a key or dictionary ID without layers", ErrMalformed)
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
			var ids []string
			for range n {
				id := r.str()
				if !validID(id) {
					r.fail("write identity")
				}
				ids = append(ids, id)
			}
			e.Writes = Writes(strings.Join(ids, ""))
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
