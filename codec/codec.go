// Package codec turns session values into bytes and back.
//
// A [Codec] is the only part of typedsession that knows how a session's Go
// value looks on the wire. The default, [JSON], keeps stored values readable
// (what `redis-cli GET` shows a person) and is what the envelope and raw
// migration steps are designed around.
package codec

import (
	"encoding/json"
	"sync"
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

// Appender is implemented by codecs that can append an encoding to a
// buffer the caller owns. The session manager uses it to encode straight
// into the envelope it stores, with one allocation and one copy instead of
// three. AppendMarshal(dst, v) must append exactly the bytes that
// Marshal(v) returns, and on error may leave dst's spare capacity
// overwritten.
type Appender interface {
	Codec
	// AppendMarshal appends the encoding of v to dst and returns the
	// extended slice.
	AppendMarshal(dst []byte, v any) ([]byte, error)
}

// JSON is the default codec: encoding/json with HTML escaping turned off
// and no trailing newline. Its zero value is ready to use.
//
// Map keys are sorted by encoding/json, so encodings are deterministic.
type JSON struct{}

// sliceWriter is an io.Writer that appends to b; it never fails.
type sliceWriter struct{ b []byte }

func (w *sliceWriter) Write(p []byte) (int, error) {
	w.b = append(w.b, p...)
	return len(p), nil
}

// jsonEncoder pairs a json.Encoder (HTML escaping off) with the writer it
// writes to, so that both are reused across calls. json.Encoder keeps an
// error only when its writer fails, which sliceWriter never does.
type jsonEncoder struct {
	w   sliceWriter
	enc *json.Encoder
}

var jsonEncoders = sync.Pool{New: func() any {
	e := new(jsonEncoder)
	e.enc = json.NewEncoder(&e.w)
	e.enc.SetEscapeHTML(false)
	return e
}}

// Marshal encodes v as compact JSON without HTML escaping.
func (c JSON) Marshal(v any) ([]byte, error) {
	return c.AppendMarshal(nil, v)
}

// AppendMarshal appends the compact JSON encoding of v, without HTML
// escaping and without a trailing newline, to dst.
func (JSON) AppendMarshal(dst []byte, v any) ([]byte, error) {
	e := jsonEncoders.Get().(*jsonEncoder)
	e.w.b = dst
	err := e.enc.Encode(v)
	out := e.w.b
	e.w.b = nil
	jsonEncoders.Put(e)
	if err != nil {
		return nil, err
	}
	return out[:len(out)-1], nil // Encode appends a newline.
}

// Unmarshal decodes JSON data into v with encoding/json.
func (JSON) Unmarshal(data []byte, v any) error {
	return json.Unmarshal(data, v)
}

// PayloadIsJSON reports true: JSON output is always one JSON value.
func (JSON) PayloadIsJSON() bool { return true }
