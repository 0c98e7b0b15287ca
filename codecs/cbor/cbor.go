// Package cbor is a session codec writing CBOR (RFC 8949) with
// github.com/fxamacker/cbor/v2, for session.Config.Codec.
//
// # Encoding
//
// Encodings are deterministic ("core deterministic encoding", RFC 8949
// section 4.2.1): map keys sorted bytewise by their encoding, the shortest
// form of every integer, length and float that keeps its value (a float64
// that a float16 holds exactly is written as a float16), no indefinite
// lengths, NaN as 0xf97e00. So an unchanged session encodes to the same
// bytes and its Save writes nothing.
//
// Struct fields are named by their `json` tags (name, omitempty, omitzero,
// "-"); a `cbor` tag, when present, takes precedence. A struct needs no new
// tags. Methods MarshalJSON and UnmarshalJSON are not used: a type that keeps
// its state in unexported fields behind them must implement
// encoding.BinaryMarshaler and encoding.BinaryUnmarshaler (used as a CBOR
// byte string) or cbor.Marshaler and cbor.Unmarshaler instead.
//
// A time.Time is written as an RFC 3339 text string in UTC with nanoseconds:
// the instant is exact, the zone is not kept (Load gives the time in UTC;
// t.Equal holds). JSON keeps a whole-minute offset instead and refuses one
// with seconds; CBOR's RFC 3339 form with the offset would silently move
// such a time, so the zone is dropped rather than the instant. Years must
// lie within 0 to 9999 in UTC (Marshal fails otherwise). Strings are written
// as they are: a string that is not valid UTF-8 comes back byte for byte
// (JSON refuses it).
//
// # Members the session type lacks
//
// session.Config.ExtraMembers applies to codecs whose payload is JSON:
// with this codec, members of a stored value that T does not have (a field
// added by a newer binary during a rolling deploy) are ignored on Load and
// are not written back by the next Save. Deploy a new field to every binary
// before any binary writes it, or keep JSON during such a deploy.
//
// # Decoding
//
// Decoding is strict and bounded, for values read from a store that others
// can write: exactly one CBOR data item with nothing after it, no duplicate
// map keys, no indefinite lengths, at most [MaxNestedLevels] levels of
// arrays, maps and tags, at most [MaxArrayElements] elements in one array
// and [MaxMapPairs] pairs in one map. The limits are checked over the whole
// input before anything is allocated for it. Marshal checks its own output
// against the same limits, so that a Save never writes what Load would
// refuse: it fails instead.
//
// # Types in interface values and in raw migration steps
//
// Decoded into a field of type any (or map[string]any, []any):
//
//   - a map is a map[string]any (a map with keys other than text strings is
//     an error there; typed map fields, map[int64]T say, decode as usual);
//   - an integer is a uint64 when it is 0 or more and an int64 when it is
//     negative (both exact, whatever their size);
//   - a float is a float64, a byte string a []byte, a text string a string,
//     a time (an RFC 3339 string) a string, like JSON.
//
// The document of a migrate.Raw step (decoded into a map[string]any by
// Unmarshal) gets the same types except for integers, which are all int64
// there, and uint64 only above math.MaxInt64: doc["score"].(int64) works
// whatever the sign. Either form encodes to the same bytes, so a step that
// leaves a number alone leaves its encoding alone. JSON's documents hold
// json.Number instead: a step meant for both codecs must accept both.
package cbor

import (
	"fmt"
	"reflect"

	fxcbor "github.com/fxamacker/cbor/v2"

	"github.com/typedsession/session/codec"
)

// The decoder's limits (see the package doc).
const (
	// MaxNestedLevels bounds the nesting of arrays, maps and tags: 10,000,
	// the JSON codec's limit, so a session that JSON stores converts.
	MaxNestedLevels = 10000
	// MaxArrayElements bounds the elements of one array: 1<<20.
	MaxArrayElements = 1 << 20
	// MaxMapPairs bounds the key-value pairs of one map: 1<<20.
	MaxMapPairs = 1 << 20
)

// Codec is the CBOR codec. Its zero value is ready to use and safe for
// concurrent use.
type Codec struct{}

var (
	encMode fxcbor.EncMode
	decMode fxcbor.DecMode
)

func init() {
	eo := fxcbor.CoreDetEncOptions()
	eo.Time = fxcbor.TimeRFC3339NanoUTC
	eo.TimeTag = fxcbor.EncTagNone
	var err error
	if encMode, err = eo.EncMode(); err != nil {
		panic("cbor: encoding options: " + err.Error())
	}
	do := fxcbor.DecOptions{
		DupMapKey:        fxcbor.DupMapKeyEnforcedAPF,
		IndefLength:      fxcbor.IndefLengthForbidden,
		MaxNestedLevels:  MaxNestedLevels,
		MaxArrayElements: MaxArrayElements,
		MaxMapPairs:      MaxMapPairs,
		DefaultMapType:   reflect.TypeFor[map[string]any](),
		IntDec:           fxcbor.IntDecConvertNone,
		UTF8:             fxcbor.UTF8DecodeInvalid,
	}
	if decMode, err = do.DecMode(); err != nil {
		panic("cbor: decoding options: " + err.Error())
	}
}

// Name returns "cbor", the name the session envelope records.
func (Codec) Name() string { return "cbor" }

// Marshal returns the deterministic CBOR encoding of v. It fails for a
// value whose encoding the decoder would refuse (nested too deep, an array
// or map over the limits), for a time outside years 0 to 9999, and for
// values CBOR cannot hold (channels, functions, complex numbers).
func (Codec) Marshal(v any) ([]byte, error) {
	out, err := encMode.Marshal(v)
	if err != nil {
		return nil, err
	}
	if err := decMode.Wellformed(out); err != nil {
		return nil, fmt.Errorf("cbor: the encoding would not decode: %w", err)
	}
	return out, nil
}

// Unmarshal decodes exactly one CBOR data item from data into the value v
// points to, within the limits of the package doc. Data after the item is
// an error. A *map[string]any or *any target gets integers as int64 (uint64
// above math.MaxInt64), the form migrate.Raw steps see.
func (Codec) Unmarshal(data []byte, v any) error {
	if err := decMode.Unmarshal(data, v); err != nil {
		return err
	}
	switch p := v.(type) {
	case *map[string]any:
		normalizeMap(*p)
	case *any:
		*p = normalize(*p)
	}
	return nil
}

// normalize turns the uint64 values in x that an int64 holds into int64.
func normalize(x any) any {
	switch x := x.(type) {
	case uint64:
		if x <= 1<<63-1 {
			return int64(x)
		}
	case map[string]any:
		normalizeMap(x)
	case []any:
		for i, e := range x {
			x[i] = normalize(e)
		}
	}
	return x
}

func normalizeMap(m map[string]any) {
	for k, e := range m {
		m[k] = normalize(e)
	}
}

var (
	_ codec.Codec = Codec{}
	_ codec.Named = Codec{}
)
