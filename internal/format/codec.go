package format

import (
	"bytes"
	"encoding"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"reflect"
	"runtime/debug"
	"strconv"
	"sync"
	"time"
	"unicode/utf8"

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
	f.numbers = hasInterface(t, map[reflect.Type]bool{})
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
		if path := invalidUTF8(reflect.ValueOf(v), "", 0); path != "" {
			return fmt.Errorf("%w: %s holds a string that is not valid UTF-8", ErrUnreadable, path)
		}
	}
	if f.times {
		if path, off := secondsOffset(reflect.ValueOf(v), "", 0); path != "" {
			return fmt.Errorf("%w: %s is a time whose zone offset (%v) has seconds, which RFC 3339 (JSON's time format) cannot keep; convert it with .UTC() or to a zone with a whole-minute offset", ErrUnreadable, path, time.Duration(off)*time.Second)
		}
	}
	return nil
}

var timeType = reflect.TypeFor[time.Time]()

var holdsTime sync.Map // reflect.Type → bool

// canHoldTime reports whether values of t can hold a time.Time other than
// inside an interface (where it reads back as a string, the same JSON
// value).
func canHoldTime(t reflect.Type) bool {
	if v, ok := holdsTime.Load(t); ok {
		return v.(bool)
	}
	holdsTime.Store(t, false) // cycles
	r := false
	switch t.Kind() {
	case reflect.Struct:
		if t == timeType {
			r = true
			break
		}
		for i := range t.NumField() {
			if t.Field(i).IsExported() || t.Field(i).Anonymous {
				r = r || canHoldTime(t.Field(i).Type)
			}
		}
	case reflect.Map:
		r = canHoldTime(t.Key()) || canHoldTime(t.Elem())
	case reflect.Pointer, reflect.Slice, reflect.Array:
		r = canHoldTime(t.Elem())
	}
	holdsTime.Store(t, r)
	return r
}

// secondsOffset returns the path of the first time.Time in v whose zone
// offset is not a whole number of minutes, and that offset in seconds.
func secondsOffset(v reflect.Value, path string, depth int) (string, int) {
	if !v.IsValid() || depth > maxDepth || !canHoldTime(v.Type()) {
		return "", 0
	}
	if v.Type() == timeType {
		if !v.CanInterface() {
			return "", 0
		}
		if _, off := v.Interface().(time.Time).Zone(); off%60 != 0 {
			return orRoot(path), off
		}
		return "", 0
	}
	switch v.Kind() {
	case reflect.Pointer:
		if !v.IsNil() {
			return secondsOffset(v.Elem(), path, depth+1)
		}
	case reflect.Struct:
		t := v.Type()
		for i := range t.NumField() {
			if sf := t.Field(i); !sf.IsExported() && !sf.Anonymous {
				continue
			}
			if p, off := secondsOffset(v.Field(i), joinPath(path, t.Field(i).Name), depth+1); p != "" {
				return p, off
			}
		}
	case reflect.Map:
		iter := v.MapRange()
		for iter.Next() {
			at := path + "[" + strconv.Quote(fmt.Sprint(iter.Key().Interface())) + "]"
			if p, off := secondsOffset(iter.Key(), at+" (a map key)", depth+1); p != "" {
				return p, off
			}
			if p, off := secondsOffset(iter.Value(), at, depth+1); p != "" {
				return p, off
			}
		}
	case reflect.Slice, reflect.Array:
		for i := range v.Len() {
			if p, off := secondsOffset(v.Index(i), path+"["+strconv.Itoa(i)+"]", depth+1); p != "" {
				return p, off
			}
		}
	}
	return "", 0
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

var (
	jsonMarshaler = reflect.TypeFor[json.Marshaler]()
	textMarshaler = reflect.TypeFor[encoding.TextMarshaler]()
)

// invalidUTF8 returns the path of the first string in v that is not valid
// UTF-8, or "".
func invalidUTF8(v reflect.Value, path string, depth int) string {
	if !v.IsValid() || depth > maxDepth {
		return ""
	}
	t := v.Type()
	if t.Implements(jsonMarshaler) || t.Implements(textMarshaler) {
		return ""
	}
	switch v.Kind() {
	case reflect.String:
		if !utf8.ValidString(v.String()) {
			return orRoot(path)
		}
	case reflect.Pointer, reflect.Interface:
		if !v.IsNil() {
			return invalidUTF8(v.Elem(), path, depth+1)
		}
	case reflect.Struct:
		for i := range t.NumField() {
			sf := t.Field(i)
			if !sf.IsExported() && !sf.Anonymous {
				continue
			}
			name := sf.Name
			if p := invalidUTF8(v.Field(i), joinPath(path, name), depth+1); p != "" {
				return p
			}
		}
	case reflect.Map:
		iter := v.MapRange()
		for iter.Next() {
			k := iter.Key()
			if k.Kind() == reflect.String && !utf8.ValidString(k.String()) {
				return orRoot(path) + " (a map key)"
			}
			if p := invalidUTF8(iter.Value(), path+"["+strconv.Quote(fmt.Sprint(k.Interface()))+"]", depth+1); p != "" {
				return p
			}
		}
	case reflect.Slice, reflect.Array:
		if t.Elem().Kind() == reflect.Uint8 {
			return "" // []byte is base64
		}
		for i := range v.Len() {
			if p := invalidUTF8(v.Index(i), path+"["+strconv.Itoa(i)+"]", depth+1); p != "" {
				return p
			}
		}
	}
	return ""
}

func joinPath(path, name string) string {
	if path == "" {
		return name
	}
	return path + "." + name
}

func orRoot(path string) string {
	if path == "" {
		return "the value"
	}
	return path
}

// hasInterface reports whether values of t can hold an interface value
// that encoding/json fills by itself (where numbers become float64).
func hasInterface(t reflect.Type, seen map[reflect.Type]bool) bool {
	if seen[t] {
		return false
	}
	seen[t] = true
	switch t.Kind() {
	case reflect.Interface:
		return true
	case reflect.Pointer, reflect.Slice, reflect.Array, reflect.Map:
		return hasInterface(t.Elem(), seen)
	case reflect.Struct:
		for i := range t.NumField() {
			if hasInterface(t.Field(i).Type, seen) {
				return true
			}
		}
	}
	return false
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
	if path, why := badValue(reflect.ValueOf(v), "", 0); path != "" {
		return fmt.Errorf("%w: %s %s (%v)", ErrUnreadable, path, why, err)
	}
	return err
}

var (
	numberType = reflect.TypeFor[json.Number]()
	rawType    = reflect.TypeFor[json.RawMessage]()
)

func badValue(v reflect.Value, path string, depth int) (string, string) {
	if !v.IsValid() || depth > maxDepth {
		return "", ""
	}
	switch t := v.Type(); {
	case t == timeType:
		if v.CanInterface() {
			if y := v.Interface().(time.Time).Year(); y < 0 || y > 9999 {
				return orRoot(path), fmt.Sprintf("is a time in the year %d, outside the years 0-9999 that RFC 3339 (JSON's time format) can hold", y)
			}
		}
		return "", ""
	case t == numberType:
		if s := v.String(); s != "" && !json.Valid([]byte(s)) {
			return orRoot(path), fmt.Sprintf("is json.Number(%q), which is not a number", s)
		}
		return "", ""
	case t == rawType:
		if b := v.Bytes(); len(b) > 0 && !json.Valid(b) {
			return orRoot(path), "is a json.RawMessage that is not JSON"
		}
		return "", ""
	}
	switch v.Kind() {
	case reflect.Float32, reflect.Float64:
		if f := v.Float(); math.IsNaN(f) || math.IsInf(f, 0) {
			return orRoot(path), fmt.Sprintf("is %v, which JSON cannot hold", f)
		}
	case reflect.Pointer, reflect.Interface:
		if !v.IsNil() {
			return badValue(v.Elem(), path, depth+1)
		}
	case reflect.Struct:
		t := v.Type()
		for i := range t.NumField() {
			if sf := t.Field(i); !sf.IsExported() && !sf.Anonymous {
				continue
			}
			if p, why := badValue(v.Field(i), joinPath(path, t.Field(i).Name), depth+1); p != "" {
				return p, why
			}
		}
	case reflect.Map:
		iter := v.MapRange()
		for iter.Next() {
			if p, why := badValue(iter.Value(), path+"["+strconv.Quote(fmt.Sprint(iter.Key().Interface()))+"]", depth+1); p != "" {
				return p, why
			}
		}
	case reflect.Slice, reflect.Array:
		if v.Type().Elem().Kind() == reflect.Uint8 {
			return "", ""
		}
		for i := range v.Len() {
			if p, why := badValue(v.Index(i), path+"["+strconv.Itoa(i)+"]", depth+1); p != "" {
				return p, why
			}
		}
	}
	return "", ""
}

var (
	textUnmarshalerType = reflect.TypeFor[encoding.TextUnmarshaler]()
	jsonUnmarshalerType = reflect.TypeFor[json.Unmarshaler]()
)

// CheckType returns an error naming the first part of t that the JSON
// codecs can write but not read back, found once from the type: a type
// with MarshalJSON (or MarshalText) but not the matching unmarshal method,
// a non-empty interface, a map key type that decoding cannot make, a
// channel, function or complex number, or a struct whose embedded field's
// MarshalJSON hides its other fields. For other codecs it returns nil.
func (f *Format) CheckType(t reflect.Type) error {
	if !f.jsonForm {
		return nil
	}
	return checkType(t, t.String(), map[reflect.Type]bool{})
}

func checkType(t reflect.Type, path string, seen map[reflect.Type]bool) error {
	if seen[t] {
		return nil
	}
	seen[t] = true
	pt := reflect.PointerTo(t)
	if t.Kind() == reflect.Pointer {
		pt = t
	}
	marshalsJSON := t.Implements(jsonMarshaler) || pt.Implements(jsonMarshaler)
	unmarshalsJSON := pt.Implements(jsonUnmarshalerType)
	marshalsText := t.Implements(textMarshaler) || pt.Implements(textMarshaler)
	unmarshalsText := pt.Implements(textUnmarshalerType)
	switch {
	case marshalsJSON && !unmarshalsJSON && t.Kind() != reflect.Struct && t.Kind() != reflect.Interface:
		// (A struct's own fields still decode it; a value of another kind
		// written as something else does not read back.)
		return fmt.Errorf("%s (%s) has MarshalJSON but no UnmarshalJSON: Load could not read back what Save writes", path, t)
	case !marshalsJSON && marshalsText && !unmarshalsText && t.Kind() != reflect.Interface:
		return fmt.Errorf("%s (%s) has MarshalText but no UnmarshalText: Load could not read back what Save writes", path, t)
	case marshalsJSON || (marshalsText && unmarshalsText):
		if t.Kind() == reflect.Struct {
			return checkPromoted(t, path)
		}
		return nil // a custom encoding that reads itself back
	}
	switch t.Kind() {
	case reflect.Interface:
		if t.NumMethod() > 0 {
			return fmt.Errorf("%s is the interface %s: Load cannot decode into an interface with methods; use a concrete type or any", path, t)
		}
	case reflect.Chan, reflect.Func, reflect.Complex64, reflect.Complex128, reflect.UnsafePointer:
		return fmt.Errorf("%s is a %s, which JSON cannot hold", path, t.Kind())
	case reflect.Pointer:
		return checkType(t.Elem(), path, seen)
	case reflect.Slice, reflect.Array:
		return checkType(t.Elem(), path+"[]", seen)
	case reflect.Map:
		k := t.Key()
		switch k.Kind() {
		case reflect.String, reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
			reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		default:
			if !reflect.PointerTo(k).Implements(textUnmarshalerType) {
				return fmt.Errorf("%s has keys of type %s, which Load cannot make from JSON (it needs a string or integer kind, or UnmarshalText)", path, k)
			}
		}
		if reflect.PointerTo(k).Implements(textMarshaler) || k.Implements(textMarshaler) {
			if err := checkType(k, path+" (key)", seen); err != nil {
				return err
			}
		}
		return checkType(t.Elem(), path+"[]", seen)
	case reflect.Struct:
		for _, f := range jsonFields(t) {
			if err := checkType(f.typ, path+"."+f.name, seen); err != nil {
				return err
			}
		}
	}
	return nil
}

// checkPromoted refuses a struct whose MarshalJSON (or MarshalText) comes
// from an embedded field while it has fields of its own: encoding/json then
// writes only the embedded value, and the other fields are never stored.
func checkPromoted(t reflect.Type, path string) error {
	if _, own := t.MethodByName("MarshalJSON"); !own {
		if _, own = reflect.PointerTo(t).MethodByName("MarshalJSON"); !own {
			if _, own = t.MethodByName("MarshalText"); !own {
				return nil
			}
		}
	}
	var embedded string
	others := 0
	for i := range t.NumField() {
		sf := t.Field(i)
		ft := sf.Type
		if ft.Kind() == reflect.Pointer {
			ft = ft.Elem()
		}
		if sf.Anonymous && (ft.Implements(jsonMarshaler) || reflect.PointerTo(ft).Implements(jsonMarshaler) || ft.Implements(textMarshaler)) {
			embedded = sf.Type.String()
			continue
		}
		if sf.IsExported() && sf.Tag.Get("json") != "-" {
			others++
		}
	}
	if embedded != "" && others > 0 {
		return fmt.Errorf("%s (%s) embeds %s, whose MarshalJSON becomes its own: its other fields would never be stored; name the embedded field", path, t, embedded)
	}
	return nil
}
