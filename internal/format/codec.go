package format

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"runtime/debug"
	"sync"
	"time"

	"github.com/typedsession/session/codec"
)

// Format is the stored form of one session type: its codec, its envelope
// framing and what is known of the type's JSON shape. It is immutable and
// safe for concurrent use.
type Format struct {
	codec    codec.Codec
	jsonForm bool // payloads are JSON: the JSON envelope, the checks below
	std      bool // the codec is codec.JSON itself: the fast paths apply
	// numbers is true when the type holds an interface somewhere: the
	// standard codec then decodes numbers as json.Number, exactly.
	numbers bool
	// nullable is true when the type itself encodes to null when empty.
	nullable bool
	// times is true when the type has time.Time values outside
	// interfaces, which AppendPayload then checks.
	times bool
	shape *shape
}

// New returns the format for values of type t under c (nil: codec.JSON).
func New(c codec.Codec, t reflect.Type) *Format {
	if c == nil {
		c = codec.JSON{}
	}
	f := &Format{codec: c, shape: shapeOf(t)}
	switch c.(type) {
	case codec.JSON, *codec.JSON:
		f.std, f.jsonForm = true, true
	default:
		if j, ok := c.(codec.JSONPayload); ok {
			f.jsonForm = j.PayloadIsJSON()
		}
	}
	f.numbers = hasInterface(t)
	f.times = canHoldTime(t)
	switch t.Kind() {
	case reflect.Map, reflect.Slice, reflect.Pointer, reflect.Interface:
		f.nullable = true
	}
	return f
}

// Codec returns the codec.
func (f *Format) Codec() codec.Codec { return f.codec }

// Name returns the codec's name (codec.Named), or "".
func (f *Format) Name() string {
	if n, ok := f.codec.(codec.Named); ok {
		return n.Name()
	}
	return ""
}

// JSONForm reports whether payloads are JSON.
func (f *Format) JSONForm() bool { return f.jsonForm }

// Decode splits raw into its envelope.
func (f *Format) Decode(raw []byte) (Envelope, error) { return Decode(raw, f.jsonForm) }

// encoder is a json.Encoder with HTML escaping off, writing to a buffer
// that is swapped in for each call.
type encoder struct {
	w   sliceWriter
	enc *json.Encoder
}

type sliceWriter struct{ b []byte }

func (w *sliceWriter) Write(p []byte) (int, error) {
	w.b = append(w.b, p...)
	return len(p), nil
}

var encoders = sync.Pool{New: func() any {
	e := new(encoder)
	e.enc = json.NewEncoder(&e.w)
	e.enc.SetEscapeHTML(false)
	return e
}}

// AppendPayload appends the codec's encoding of v to dst and checks that
// the result reads back as v (see checkOutput). A panic in the codec (a
// MarshalJSON method, say) becomes an error.
func (f *Format) AppendPayload(dst []byte, v any) (out []byte, err error) {
	defer func() {
		if p := recover(); p != nil {
			out, err = nil, fmt.Errorf("encode: %w", &PanicError{Value: p, Stack: debug.Stack()})
		}
	}()
	start := len(dst)
	if f.std {
		e := encoders.Get().(*encoder)
		e.w.b = dst
		err = e.enc.Encode(v)
		out = e.w.b
		e.w.b = nil
		encoders.Put(e)
		if err != nil {
			return nil, unencodable(v, err)
		}
		out = out[:len(out)-1] // Encode appends a newline
	} else {
		p, err := f.codec.Marshal(v)
		if err != nil {
			return nil, err
		}
		out = append(dst, p...)
	}
	if f.jsonForm {
		if err := f.checkOutput(out[start:], v); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// ErrUnreadable reports a value whose encoding would not read back as the
// same value. The root package reports it as ErrInvalid.
var ErrUnreadable = errors.New("the encoding would not read back as the same value")

// checkOutput refuses an encoding that Load could not read back or that
// would read back different: nested deeper than the decoder allows, or with
// a string the encoder changed (invalid UTF-8 becomes U+FFFD). One pass over
// the output; the value itself is walked only when U+FFFD appears in it.
func (f *Format) checkOutput(out []byte, v any) error {
	depth, fffd := scanOutput(out)
	if depth > maxDepth {
		return fmt.Errorf("%w: nested %d levels deep, the decoder's limit is %d", ErrUnreadable, depth, maxDepth)
	}
	if fffd {
		if path := invalidUTF8(reflect.ValueOf(v)); path != "" {
			return fmt.Errorf("%w: %s holds a string that is not valid UTF-8", ErrUnreadable, path)
		}
	}
	if f.times {
		if path, off := secondsOffset(reflect.ValueOf(v)); path != "" {
			return fmt.Errorf("%w: %s is a time whose zone offset (%v) has seconds, which RFC 3339 (JSON's time format) cannot keep; convert it with .UTC() or to a zone with a whole-minute offset", ErrUnreadable, path, time.Duration(off)*time.Second)
		}
	}
	return nil
}

// Unmarshal decodes a payload into v. For the JSON envelope's fast path
// (e.Checked false) the payload is proven one JSON value here: the standard
// codec's decoder is strict; any other codec gets json.Valid first.
func (f *Format) Unmarshal(raw []byte, e *Envelope, payload []byte, v any) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = &PanicError{Value: p, Stack: debug.Stack()}
		}
	}()
	if f.jsonForm {
		if t := bytes.TrimSpace(payload); len(t) == 4 && string(t) == "null" && !f.nullable {
			return errors.New("data is null, which this session type cannot hold")
		}
	}
	if e != nil && !e.Checked && !f.std {
		if err := Check(raw, e); err != nil {
			return err
		}
	}
	if f.std {
		err = UnmarshalJSON(payload, v, f.numbers)
	} else {
		err = f.codec.Unmarshal(payload, v)
	}
	if err != nil && e != nil && !e.Checked {
		// A fast-path split that does not decode: the full rule decides.
		// A valid envelope in another member order decodes from its
		// payload; anything else is what the rule says is wrong.
		fast := e.Payload
		if cerr := Check(raw, e); cerr != nil {
			return cerr
		}
		if e.Version == 0 || bytes.Equal(e.Payload, fast) || !bytes.Equal(payload, fast) {
			return err
		}
		return f.Unmarshal(raw, e, e.Payload, v)
	}
	return err
}

// UnmarshalJSON is the standard codec's decoding: strict (one JSON value,
// nothing after it) and, when numbers is true, with numbers in interfaces
// decoded as json.Number so that no integer is rounded.
func UnmarshalJSON(data []byte, v any, numbers bool) error {
	if !numbers {
		return json.Unmarshal(data, v)
	}
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

// PanicError is a panic in code of the user's that the format called (a
// MarshalJSON or UnmarshalJSON method): the value and the stack, which
// Error leaves out.
type PanicError struct {
	Value any
	Stack []byte
}

func (e *PanicError) Error() string { return fmt.Sprintf("panic: %v", e.Value) }

// unencodable turns an encoding/json error into ErrUnreadable naming the
// field that JSON cannot hold (NaN or an infinity, a time outside years
// 0-9999, an invalid json.Number or json.RawMessage), when a walk of v
// finds it; otherwise it returns err.
func unencodable(v any, err error) error {
	if path, why := badValue(reflect.ValueOf(v)); path != "" {
		return fmt.Errorf("%w: %s %s (%v)", ErrUnreadable, path, why, err)
	}
	return err
}
