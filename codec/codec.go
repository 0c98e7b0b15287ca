// Package codec turns session values into bytes and back.
//
// A [Codec] is the only part of typedsession that knows how a session's Go
// value looks on the wire. The default, [JSON], keeps stored values readable
// (what `redis-cli GET` shows a person) and is what the envelope and raw
// migration steps are designed around.
package codec

import (
	"bytes"
	"encoding/json"
	"errors"
)

// Codec encodes and decodes session values. Implementations must be safe for
// concurrent use and deterministic: encoding the same value twice must give
// the same bytes, since the session manager compares encodings to skip
// writes of unchanged sessions.
type Codec interface {
	// Marshal returns the encoding of v. The caller owns the result.
	Marshal(v any) ([]byte, error)
	// Unmarshal decodes data into the value v points to. It must not
	// retain data after it returns.
	Unmarshal(data []byte, v any) error
}

// JSONPayload is implemented by codecs whose output is always a single JSON
// value. The session envelope embeds such payloads as JSON, so that stored
// values stay readable JSON; other codecs get a binary envelope.
type JSONPayload interface {
	Codec
	// PayloadIsJSON reports that every Marshal result is one JSON value.
	PayloadIsJSON() bool
}

// Named is implemented by codecs with a name (JSON's is "json"). The
// binary envelope records the name of the codec that wrote a value, so
// that a manager told about several codecs (session.Config.ReadCodecs)
// reads each value with the codec that wrote it: changing codecs is then a
// deploy, not a flush.
type Named interface {
	Codec
	// Name returns the codec's name: a short, stable identifier such as
	// "cbor" or "msgpack".
	Name() string
}

// JSON is the default codec: encoding/json with HTML escaping turned off,
// no trailing newline, and numbers in interface values (any,
// map[string]any) decoded as json.Number, so that an integer such as the
// chat ID 1265476890672672808 keeps its exact value (encoding/json's
// default, float64, rounds integers above 2^53). Its zero value is ready to
// use.
//
// Map keys are sorted by encoding/json, so encodings are deterministic.
type JSON struct{}

// Marshal encodes v as compact JSON without HTML escaping.
func (JSON) Marshal(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte{'\n'}), nil
}

// Unmarshal decodes JSON data into v with encoding/json, numbers in
// interface values as json.Number. data must be exactly one JSON value
// (white space around it allowed).
func (JSON) Unmarshal(data []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if len(bytes.TrimSpace(data[dec.InputOffset():])) > 0 {
		return errors.New("invalid JSON: data after the value")
	}
	return nil
}

// PayloadIsJSON reports true: JSON output is always one JSON value.
func (JSON) PayloadIsJSON() bool { return true }

// Name returns "json".
func (JSON) Name() string { return "json" }
