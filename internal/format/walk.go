package format

import (
	"encoding"
	"encoding/json"
	"fmt"
	"reflect"
	"strconv"
	"time"
)

// The types whose values encoding/json treats apart.
var (
	jsonMarshaler   = reflect.TypeFor[json.Marshaler]()
	textMarshaler   = reflect.TypeFor[encoding.TextMarshaler]()
	jsonUnmarshaler = reflect.TypeFor[json.Unmarshaler]()
	textUnmarshaler = reflect.TypeFor[encoding.TextUnmarshaler]()
	timeType        = reflect.TypeFor[time.Time]()
	numberType      = reflect.TypeFor[json.Number]()
	rawType         = reflect.TypeFor[json.RawMessage]()
)

// marshalsItself reports whether encoding/json writes v with its own
// MarshalJSON or MarshalText method rather than by its kind: when its type
// has one, or when v is addressable and its pointer type has one
// (encoding/json/encode.go newTypeEncoder and condAddrEncoder).
func marshalsItself(v reflect.Value) bool {
	t := v.Type()
	if t.Implements(jsonMarshaler) || t.Implements(textMarshaler) {
		return true
	}
	if t.Kind() != reflect.Pointer && v.CanAddr() {
		pt := reflect.PointerTo(t)
		return pt.Implements(jsonMarshaler) || pt.Implements(textMarshaler)
	}
	return false
}

// mayMarshalItself reports whether encoding/json may write a value of type
// t with its own method: always when t has one, when addressable when *t
// has one.
func mayMarshalItself(t reflect.Type) bool {
	pt := reflect.PointerTo(t)
	return t.Implements(jsonMarshaler) || t.Implements(textMarshaler) || pt.Implements(jsonMarshaler) || pt.Implements(textMarshaler)
}

// byteSlice reports whether encoding/json writes a value of type t, a
// slice, as a base64 string (encode.go newSliceEncoder).
func byteSlice(t reflect.Type) bool {
	if t.Kind() != reflect.Slice || t.Elem().Kind() != reflect.Uint8 {
		return false
	}
	p := reflect.PointerTo(t.Elem())
	return !p.Implements(jsonMarshaler) && !p.Implements(textMarshaler)
}

// A valueWalk visits the values that encoding/json writes as parts of a
// value, in the order it writes them (map entries in iteration order):
// struct members by Fields (not those it leaves out: a nil embedded
// pointer on the way, omitempty empty, omitzero zero), elements, map keys
// and values, what pointers and interfaces hold. It does not go inside a
// value written by its own MarshalJSON or MarshalText (visit sees it) nor
// inside a []byte (written as base64). The path of what visit finds is
// built only then, on the way back up.
type valueWalk struct {
	// skip reports that no value of type t holds what visit looks for
	// (nil: every type may).
	skip func(t reflect.Type) bool
	// visit returns why v, which encoding/json writes by its own method
	// when custom is true, is what the walk looks for, or "". It sees map
	// keys too when keys is true (key true).
	visit func(v reflect.Value, custom, key bool) string
	keys  bool

	// found is the path of what visit found, innermost step first.
	found []step
}

// step is one part of a path: a member (name), an element (index) or a
// map entry (key).
type step struct {
	name  string
	index int
	key   reflect.Value
	isKey bool // the map key itself, not its value
}

// run returns the path of the first value in v that visit reports ("the
// value" for v itself; "Items[2].Name"; `Tags["x"]`; `Tags["x"] (a map
// key)`) and why, or "", "".
func (w *valueWalk) run(v reflect.Value) (path, why string) {
	if why = w.walk(v, 0); why == "" {
		return "", ""
	}
	p := ""
	for i := len(w.found) - 1; i >= 0; i-- {
		switch s := w.found[i]; {
		case s.name != "":
			p = joinPath(p, s.name)
		case s.key.IsValid():
			p += "[" + strconv.Quote(fmt.Sprint(s.key.Interface())) + "]"
			if s.isKey {
				p += " (a map key)"
			}
		default:
			p += "[" + strconv.Itoa(s.index) + "]"
		}
	}
	return orRoot(p), why
}

func (w *valueWalk) walk(v reflect.Value, depth int) string {
	if !v.IsValid() || depth > maxDepth || (w.skip != nil && w.skip(v.Type())) {
		return ""
	}
	if v.Kind() == reflect.Pointer {
		// A pointer is written as what it points to, by the same method
		// if any (its method set holds the value's; the value it points
		// to is addressable), or as null.
		if v.IsNil() {
			return ""
		}
		return w.walk(v.Elem(), depth+1)
	}
	custom := marshalsItself(v)
	if why := w.visit(v, custom, false); why != "" || custom {
		return why
	}
	switch v.Kind() {
	case reflect.Interface:
		if !v.IsNil() {
			return w.walk(v.Elem(), depth+1)
		}
	case reflect.Struct:
		fields := Fields(v.Type())
		for i := range fields {
			fv, ok := fields[i].Written(v)
			if !ok {
				continue
			}
			if why := w.walk(fv, depth+1); why != "" {
				w.found = append(w.found, step{name: fields[i].GoName})
				return why
			}
		}
	case reflect.Map:
		iter := v.MapRange()
		for iter.Next() {
			k := iter.Key()
			if w.keys && (w.skip == nil || !w.skip(k.Type())) {
				// A key of string kind is written as it is, another by
				// its MarshalText (encode.go resolveKeyName).
				custom := k.Kind() != reflect.String && k.Type().Implements(textMarshaler)
				if why := w.visit(k, custom, true); why != "" {
					w.found = append(w.found, step{key: k, isKey: true})
					return why
				}
			}
			if why := w.walk(iter.Value(), depth+1); why != "" {
				w.found = append(w.found, step{key: k})
				return why
			}
		}
	case reflect.Slice, reflect.Array:
		if byteSlice(v.Type()) {
			return ""
		}
		for i := range v.Len() {
			if why := w.walk(v.Index(i), depth+1); why != "" {
				w.found = append(w.found, step{index: i})
				return why
			}
		}
	}
	return ""
}
