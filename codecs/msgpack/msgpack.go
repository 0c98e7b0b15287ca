// Package msgpack is a session codec writing MessagePack with
// github.com/vmihailenco/msgpack/v5, for session.Config.Codec.
//
// # Encoding
//
// Struct fields are named by their `json` tags (name, omitempty, "-"), so a
// struct needs no new tags; options other than omitempty (omitzero,
// string) are ignored, and a field tagged omitzero is always written.
// Methods MarshalJSON and UnmarshalJSON are not used: a type that keeps its
// state in unexported fields behind them must implement msgpack.CustomEncoder
// and msgpack.CustomDecoder, or encoding.BinaryMarshaler and
// encoding.BinaryUnmarshaler, instead.
//
// Encodings are deterministic: after the library has encoded a value,
// Marshal puts the entries of every map in one order, text-string keys
// first, ordered by their bytes (the order of sort.Strings), then other keys
// ordered by their encoding; entries with equal keys are ordered by their
// values. The library sorts only some map types itself (map[string]string,
// map[string]bool, map[string]any); the others, map[string]int64 or
// map[int]T say, come out in Go's random map order, which would make every
// Save of an unchanged session a write. Struct fields, which the library
// writes in declaration order, are put in that same key order (decoding
// finds fields by name). Integers take the shortest form that holds them.
//
// A time.Time is written as a MessagePack timestamp (extension -1): the
// instant is exact, the zone is not kept (Load gives the time in the local
// zone, or UTC for the zero time; t.Equal holds). Strings are written as
// they are: a string that is not valid UTF-8 comes back byte for byte.
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
// can write: the whole input is checked before anything is decoded, with
// exactly one value and nothing after it, no reserved code (0xc1), every
// length within the input, at most [MaxNestedLevels] levels of arrays and
// maps and at most [MaxElements] elements in one array or pairs in one map.
// Marshal checks its own output the same way, so a Save never writes what
// Load would refuse: it fails instead.
//
// # Types in interface values and in raw migration steps
//
// Decoded into a field of type any (or map[string]any, []any), values get
// the types of their encoding: a map is a map[string]any (keys other than
// strings are an error there; typed map fields decode as usual); an integer
// is an int8, int16, int32 or int64 when it was written signed and negative,
// and a uint8 ... uint64 or an int8 (for 0 to 127) otherwise, each the
// smallest that holds it; a float is a float32 or float64 as written; a
// binary is a []byte, a string a string and a timestamp a time.Time.
//
// The document of a migrate.Raw step (decoded into a map[string]any by
// Unmarshal) has every integer as an int64, and as a uint64 only above
// math.MaxInt64: doc["score"].(int64) works whatever the value. Both forms
// encode to the same bytes, so a step that leaves a number alone leaves its
// encoding alone. Floats stay float32 or float64 as written. JSON's
// documents hold json.Number instead: a step meant for both codecs must
// accept both.
package msgpack

import (
	"bytes"
	"fmt"
	"sync"

	vmsgpack "github.com/vmihailenco/msgpack/v5"

	"github.com/typedsession/session/codec"
)

// The decoder's limits (see the package doc).
const (
	// MaxNestedLevels bounds the nesting of arrays and maps: 10,000, the
	// JSON codec's limit, so a session that JSON stores converts.
	MaxNestedLevels = 10000
	// MaxElements bounds the elements of one array and the pairs of one
	// map: 1<<20.
	MaxElements = 1 << 20
)

// Codec is the MessagePack codec. Its zero value is ready to use and safe
// for concurrent use.
type Codec struct{}

// Name returns "msgpack", the name the session envelope records.
func (Codec) Name() string { return "msgpack" }

type encoder struct {
	buf bytes.Buffer
	enc *vmsgpack.Encoder
	s   scanner
}

var encoders = sync.Pool{New: func() any {
	e := new(encoder)
	e.enc = vmsgpack.NewEncoder(&e.buf)
	e.enc.SetCustomStructTag("json")
	e.enc.SetSortMapKeys(true)
	e.enc.UseCompactInts(true)
	return e
}}

type decoder struct {
	r   bytes.Reader
	dec *vmsgpack.Decoder
}

var decoders = sync.Pool{New: func() any {
	d := new(decoder)
	d.dec = vmsgpack.NewDecoder(&d.r)
	d.dec.SetCustomStructTag("json")
	return d
}}

// Marshal returns the deterministic MessagePack encoding of v. It fails for
// values MessagePack cannot hold (channels, functions, complex numbers) and
// for a value whose encoding the decoder would refuse (nested too deep, an
// array or map over the limits).
func (Codec) Marshal(v any) ([]byte, error) {
	e := encoders.Get().(*encoder)
	defer func() {
		if e.buf.Cap() <= 1<<20 && cap(e.s.tmp) <= 1<<20 {
			e.buf.Reset()
			e.s = scanner{spans: e.s.spans[:0], tmp: e.s.tmp[:0]}
			encoders.Put(e)
		}
	}()
	e.buf.Reset()
	if err := e.enc.Encode(v); err != nil {
		return nil, err
	}
	// One pass checks the encoding and puts every map in order.
	raw := e.buf.Bytes()
	e.s = scanner{b: raw, write: true, spans: e.s.spans[:0], tmp: e.s.tmp[:0], out: make([]byte, 0, len(raw))}
	if err := e.s.all(); err != nil {
		return nil, fmt.Errorf("msgpack: the encoding would not decode: %w", err)
	}
	return e.s.out, nil
}

// Unmarshal decodes exactly one MessagePack value from data into the value
// v points to, after checking data within the limits of the package doc.
// A panic of the library on damaged input is returned as an error. A
// *map[string]any or *any target gets integers as int64 (uint64 above
// math.MaxInt64), the form migrate.Raw steps see.
func (Codec) Unmarshal(data []byte, v any) (err error) {
	s := scanner{b: data}
	if err := s.all(); err != nil {
		return fmt.Errorf("msgpack: %w", err)
	}
	d := decoders.Get().(*decoder)
	defer func() {
		// The library panics on some inputs (a map with a duplicate key
		// for an interface field, say): that is damaged data, and the
		// decoder, in an unknown state, is dropped.
		if p := recover(); p != nil {
			err = fmt.Errorf("msgpack: cannot decode: %v", p)
		}
	}()
	d.r.Reset(data)
	if err := d.dec.Decode(v); err != nil {
		return err
	}
	d.r.Reset(nil)
	decoders.Put(d)
	switch p := v.(type) {
	case *map[string]any:
		normalizeMap(*p)
	case *any:
		*p = normalize(*p)
	}
	return nil
}

// normalize turns every integer in x into an int64, or a uint64 above
// math.MaxInt64.
func normalize(x any) any {
	switch x := x.(type) {
	case int8:
		return int64(x)
	case int16:
		return int64(x)
	case int32:
		return int64(x)
	case uint8:
		return int64(x)
	case uint16:
		return int64(x)
	case uint32:
		return int64(x)
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
