package format

import (
	"encoding"
	"encoding/json"
	"fmt"
	"math"
	"reflect"
	"sync"
	"time"
	"unicode/utf8"
)

// The checks of a value that Save makes before it writes, so that Load
// never refuses what Save wrote. Each looks only at what encoding/json
// writes (a valueWalk): a field it leaves out (tagged "-", unexported, an
// omitempty empty value, a field hidden by another of the same name) or a
// value written by its own MarshalJSON holds nothing that could fail.

var holdsTime sync.Map // reflect.Type → bool

// canHoldTime reports whether encoding/json may write a time.Time inside a
// value of type t, other than inside an interface (where it reads back as
// a string, the same JSON value).
func canHoldTime(t reflect.Type) bool {
	if v, ok := holdsTime.Load(t); ok {
		return v.(bool)
	}
	// Only the answer for t itself is kept: in a cycle, a type met again
	// counts as holding no time, which is right for t but may not be for
	// the types on the way.
	r := reachesTime(t, map[reflect.Type]bool{})
	holdsTime.Store(t, r)
	return r
}

func reachesTime(t reflect.Type, seen map[reflect.Type]bool) bool {
	if t == timeType {
		return true
	}
	if t.Kind() == reflect.Pointer {
		return reachesTime(t.Elem(), seen) // written as what it points to
	}
	if seen[t] || t.Implements(jsonMarshaler) || t.Implements(textMarshaler) {
		return false // met before, or written by its own method
	}
	seen[t] = true
	switch t.Kind() {
	case reflect.Struct:
		for _, f := range Fields(t) {
			if reachesTime(f.Type, seen) {
				return true
			}
		}
	case reflect.Map:
		return reachesTime(t.Key(), seen) || reachesTime(t.Elem(), seen)
	case reflect.Slice, reflect.Array:
		return reachesTime(t.Elem(), seen)
	}
	return false
}

// secondsOffset returns the path of the first time.Time that encoding/json
// writes in v whose zone offset is not a whole number of minutes, and that
// offset in seconds.
func secondsOffset(v reflect.Value) (string, int) {
	off := 0
	w := valueWalk{
		keys: true,
		skip: func(t reflect.Type) bool { return !canHoldTime(t) },
		visit: func(v reflect.Value, _, _ bool) string {
			if v.Type() != timeType || !v.CanInterface() {
				return ""
			}
			t, _ := reflect.TypeAssert[time.Time](v)
			if _, off = t.Zone(); off%60 != 0 {
				return "seconds"
			}
			return ""
		},
	}
	path, _ := w.run(v)
	return path, off
}

// invalidUTF8 returns the path of the first string that encoding/json
// writes in v (a map key included) that is not valid UTF-8, or "": a
// string, or what a MarshalText method returns (which encoding/json writes
// as a string, invalid UTF-8 replaced by U+FFFD, as it does a string's).
func invalidUTF8(v reflect.Value) string {
	w := valueWalk{
		keys: true,
		visit: func(v reflect.Value, custom, key bool) string {
			if !custom {
				if v.Kind() == reflect.String && !utf8.ValidString(v.String()) {
					return "invalid UTF-8"
				}
				return ""
			}
			if b, ok := marshaledText(v, key); ok && !utf8.Valid(b) {
				return "invalid UTF-8"
			}
			return ""
		},
	}
	path, _ := w.run(v)
	return path
}

// marshaledText returns what MarshalText gives for v, a value (a map key
// when key is true) that encoding/json writes by its own method, when that
// method is MarshalText (encode.go newTypeEncoder, resolveKeyName): not
// when MarshalJSON comes first.
func marshaledText(v reflect.Value, key bool) ([]byte, bool) {
	if !v.CanInterface() {
		return nil, false
	}
	var m encoding.TextMarshaler
	t := v.Type()
	switch {
	case key:
		if v.Kind() == reflect.Pointer && v.IsNil() {
			return nil, false // written ""
		}
		m, _ = v.Interface().(encoding.TextMarshaler)
	case t.Implements(jsonMarshaler), v.CanAddr() && reflect.PointerTo(t).Implements(jsonMarshaler):
		return nil, false
	case t.Implements(textMarshaler):
		m, _ = v.Interface().(encoding.TextMarshaler)
	case v.CanAddr() && reflect.PointerTo(t).Implements(textMarshaler):
		m, _ = v.Addr().Interface().(encoding.TextMarshaler)
	}
	if m == nil {
		return nil, false
	}
	b, err := m.MarshalText()
	return b, err == nil
}

// badValue returns the path of the first value that encoding/json writes
// in v and cannot hold, and why: NaN or an infinity, a time outside years
// 0-9999, a json.Number or json.RawMessage that is not one.
func badValue(v reflect.Value) (string, string) {
	w := valueWalk{
		visit: func(v reflect.Value, custom, _ bool) string {
			switch t := v.Type(); {
			case t == timeType:
				if tm, ok := reflect.TypeAssert[time.Time](v); ok {
					if y := tm.Year(); y < 0 || y > 9999 {
						return fmt.Sprintf("is a time in the year %d, outside the years 0-9999 that RFC 3339 (JSON's time format) can hold", y)
					}
				}
				return ""
			case t == numberType:
				if s := v.String(); s != "" && !json.Valid([]byte(s)) {
					return fmt.Sprintf("is json.Number(%q), which is not a number", s)
				}
				return ""
			case t == rawType:
				if b := v.Bytes(); len(b) > 0 && !json.Valid(b) {
					return "is a json.RawMessage that is not JSON"
				}
				return ""
			}
			if !custom && (v.Kind() == reflect.Float32 || v.Kind() == reflect.Float64) {
				if f := v.Float(); math.IsNaN(f) || math.IsInf(f, 0) {
					return fmt.Sprintf("is %v, which JSON cannot hold", f)
				}
			}
			return ""
		},
	}
	return w.run(v)
}

// hasInterface reports whether encoding/json may decode into an interface
// value inside a value of type t by itself (where numbers become float64
// unless the decoder is told UseNumber): not inside a type that decodes
// itself (UnmarshalJSON, UnmarshalText), nor in a field it leaves out.
func hasInterface(t reflect.Type) bool { return reachesInterface(t, map[reflect.Type]bool{}) }

func reachesInterface(t reflect.Type, seen map[reflect.Type]bool) bool {
	if seen[t] {
		return false
	}
	seen[t] = true
	if t.Kind() != reflect.Pointer && t.Kind() != reflect.Interface {
		if pt := reflect.PointerTo(t); pt.Implements(jsonUnmarshaler) || pt.Implements(textUnmarshaler) {
			return false
		}
	}
	switch t.Kind() {
	case reflect.Interface:
		return true
	case reflect.Pointer, reflect.Slice, reflect.Array, reflect.Map:
		return reachesInterface(t.Elem(), seen)
	case reflect.Struct:
		for _, f := range Fields(t) {
			if reachesInterface(f.Type, seen) {
				return true
			}
		}
	}
	return false
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
