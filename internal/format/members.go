package format

import (
	"bytes"
	"encoding/json"
	"reflect"
	"strconv"
	"unicode/utf8"
)

// A shape is what encoding/json makes of a Go type, as far as unknown
// members go: a struct has a fixed set of members (Fields, matched as the
// decoder matches them); a map takes any name; a slice repeats its element;
// anything else (scalars, interfaces, types with their own UnmarshalJSON or
// UnmarshalText) is opaque: every member is known.
type shape struct {
	kind   shapeKind
	info   *structInfo // struct: its members
	fields []*shape    // struct: the shape of each member, as info.fields
	elem   *shape      // map, list
	// elemType is a list's element type.
	elemType reflect.Type
	// key is a map's key type when encoding/json may write a key back
	// spelled otherwise than it was read (see mapKey); nil when it reads
	// and writes every key as it is (string kind, no UnmarshalText).
	key reflect.Type
}

type shapeKind uint8

const (
	opaque shapeKind = iota
	object
	dict
	list
)

var opaqueShape = &shape{}

func shapeOf(t reflect.Type) *shape { return buildShape(t, map[reflect.Type]*shape{}) }

func buildShape(t reflect.Type, cache map[reflect.Type]*shape) *shape {
	if s, ok := cache[t]; ok {
		return s
	}
	if t.Kind() == reflect.Pointer {
		return buildShape(t.Elem(), cache) // pointers are transparent
	}
	pt := reflect.PointerTo(t)
	if pt.Implements(jsonUnmarshaler) || pt.Implements(textUnmarshaler) || pt.Implements(jsonMarshaler) || pt.Implements(textMarshaler) {
		return opaqueShape // a custom encoding: its members are its own
	}
	switch t.Kind() {
	case reflect.Slice, reflect.Array:
		if t.Elem().Kind() == reflect.Uint8 {
			return opaqueShape
		}
		s := &shape{kind: list, elemType: t.Elem()}
		cache[t] = s
		s.elem = buildShape(t.Elem(), cache)
		if s.elem.kind == opaque {
			s.kind = opaque
		}
		return s
	case reflect.Map:
		s := &shape{kind: dict}
		if k := t.Key(); k.Kind() != reflect.String || reflect.PointerTo(k).Implements(textUnmarshaler) {
			s.key = k
		}
		cache[t] = s
		s.elem = buildShape(t.Elem(), cache)
		if s.elem.kind == opaque {
			s.kind = opaque
		}
		return s
	case reflect.Struct:
		s := &shape{kind: object, info: infoOf(t)}
		cache[t] = s
		s.fields = make([]*shape, len(s.info.fields))
		for i, f := range s.info.fields {
			s.fields[i] = buildShape(f.Type, cache)
		}
		return s
	}
	return opaqueShape
}

// field returns the member name of s that key decodes into, as
// encoding/json matches it (exact, then case-insensitive), and its shape.
func (s *shape) field(key string) (string, *shape, bool) { return s.fieldBytes([]byte(key)) }

// fieldBytes is field for a name held in bytes; it does not allocate.
func (s *shape) fieldBytes(key []byte) (string, *shape, bool) {
	i := s.info.lookup(key)
	if i < 0 {
		return "", nil, false
	}
	return s.info.fields[i].Name, s.fields[i], true
}

// mapKey returns the key under which encoding/json writes the map entry
// that it reads from a member named key, for a map of shape s: key itself
// for keys of string kind, else what encoding/json itself makes of it, the
// key read into the key type and written back ("01" and "+1" are the int
// 1, written "1"; a key type's UnmarshalText may respell a key). A key
// that does not read is returned as it is (the payload then does not
// decode at all).
func (s *shape) mapKey(key string) string {
	if s.key == nil {
		return key
	}
	return respell(s.key, key)
}

var emptyStructType = reflect.TypeFor[struct{}]()

func respell(kt reflect.Type, key string) (out string) {
	defer func() {
		if recover() != nil {
			out = key // a panic in the key type's own method
		}
	}()
	q, err := json.Marshal(key)
	if err != nil {
		return key
	}
	m := reflect.New(reflect.MapOf(kt, emptyStructType))
	obj := append(append(append(make([]byte, 0, len(q)+5), '{'), q...), ":{}}"...)
	if json.Unmarshal(obj, m.Interface()) != nil || m.Elem().Len() != 1 {
		return key
	}
	b, err := json.Marshal(m.Elem().Interface())
	if err != nil {
		return key
	}
	var back map[string]struct{}
	if json.Unmarshal(b, &back) != nil || len(back) != 1 {
		return key
	}
	for k := range back {
		out = k
	}
	return out
}

func isASCII(b []byte) bool {
	for _, c := range b {
		if c >= 0x80 {
			return false
		}
	}
	return true
}

// Unknown returns the paths of the members of the JSON payload that the
// type does not have ("lang", "profile.nick", "items[2].x"), or nil. The
// payload must be valid JSON.
func (f *Format) Unknown(payload []byte) []string {
	if !f.jsonForm || f.shape.kind == opaque {
		return nil
	}
	var out []string
	unknown(payload, skipSpace(payload, 0), f.shape, "", &out)
	return out
}

func unknown(b []byte, i int, s *shape, path string, out *[]string) {
	if i >= len(b) {
		return
	}
	switch {
	case s.kind == object && b[i] == '{':
		eachMemberRaw(b, i, func(_ string, rawKey []byte, vs, ve int) {
			name := rawKey[1 : len(rawKey)-1]
			if !plainKey(name) {
				name = []byte(decodeKey(rawKey))
			}
			if n, c, ok := s.fieldBytes(name); !ok {
				*out = append(*out, joinPath(path, string(name)))
			} else if c.kind != opaque {
				unknown(b, vs, c, joinPath(path, n), out)
			}
		})
	case s.kind == dict && b[i] == '{':
		eachMember(b, i, func(key string, vs, ve int) {
			unknown(b, vs, s.elem, path+"["+strconv.Quote(key)+"]", out)
		})
	case s.kind == list && b[i] == '[':
		n := 0
		eachElem(b, i, func(vs, ve int) {
			unknown(b, vs, s.elem, path+"["+strconv.Itoa(n)+"]", out)
			n++
		})
	}
}

// eachMember calls fn for each member of the object at b[i] with its
// decoded name and the span of its value.
func eachMember(b []byte, i int, fn func(key string, vs, ve int)) {
	eachMemberRawDecode(b, i, true, func(key string, _ []byte, vs, ve int) { fn(key, vs, ve) })
}

// eachMemberRaw is eachMember that also gives the name as written, and
// decodes the name only for eachMember.
func eachMemberRaw(b []byte, i int, fn func(key string, rawKey []byte, vs, ve int)) {
	eachMemberRawDecode(b, i, false, fn)
}

func eachMemberRawDecode(b []byte, i int, decode bool, fn func(key string, rawKey []byte, vs, ve int)) {
	i = skipSpace(b, i+1)
	for i < len(b) && b[i] != '}' {
		ke := skipValue(b, i)
		rawKey := b[i:ke]
		var key string
		if decode {
			key = decodeKey(rawKey)
		}
		i = skipSpace(b, ke)
		i = skipSpace(b, i+1) // ':'
		ve := skipValue(b, i)
		fn(key, rawKey, i, ve)
		i = skipSpace(b, ve)
		if i < len(b) && b[i] == ',' {
			i = skipSpace(b, i+1)
		}
	}
}

func eachElem(b []byte, i int, fn func(vs, ve int)) {
	i = skipSpace(b, i+1)
	for i < len(b) && b[i] != ']' {
		ve := skipValue(b, i)
		fn(i, ve)
		i = skipSpace(b, ve)
		if i < len(b) && b[i] == ',' {
			i = skipSpace(b, i+1)
		}
	}
}

// plainKey reports whether encoding/json reads the member name written as
// "name" as those very bytes: no escape, and valid UTF-8 (it reads an
// invalid byte as U+FFFD).
func plainKey(name []byte) bool { return bytes.IndexByte(name, '\\') < 0 && utf8.Valid(name) }

// decodeKey returns the member name q (quotes included) as encoding/json
// reads it.
func decodeKey(q []byte) string {
	if plainKey(q[1 : len(q)-1]) {
		return string(q[1 : len(q)-1])
	}
	var s string
	if err := json.Unmarshal(q, &s); err != nil {
		return string(q)
	}
	return s
}

// keepOmitted reports whether the stored value v of the member of field f
// (shape c), which the new encoding leaves out, is to be kept: it holds
// members the type does not have, and the type reads it as a value that
// encoding/json leaves out too (omitempty empty, omitzero zero), so that
// the handler cannot have emptied it. Not behind an embedded pointer,
// whose nil would then be read back as set.
func keepOmitted(v []byte, f *Field, c *shape) bool {
	if f.viaPointer || !(f.OmitEmpty || f.OmitZero) || c.kind == opaque {
		return false
	}
	var unk []string
	if unknown(v, 0, c, "", &unk); len(unk) == 0 {
		return false
	}
	x := reflect.New(f.Type)
	if UnmarshalJSON(v, x.Interface(), true) != nil {
		return false
	}
	return (f.OmitEmpty && isEmptyValue(x.Elem())) || (f.OmitZero && isZeroValue(x.Elem()))
}

// dupes is what occurrences finds: for each member of an object stored
// more than once (under encoding/json's matching), its value as
// encoding/json reads the occurrences together.
type dupes map[string][]byte

// occurrences returns, for the object at pb[pi] of shape s (an object
// shape), the members that occur more than once, each with one value that
// encoding/json reads as it reads the occurrences in turn (see combine),
// or nil.
func occurrences(pb []byte, pi int, s *shape) dupes {
	var all map[string][]int
	seen := map[string]int{}
	eachMemberRawDecode(pb, pi, true, func(key string, _ []byte, vs, _ int) {
		i := s.info.lookup([]byte(key))
		if i < 0 {
			return
		}
		name := s.info.fields[i].Name
		first, ok := seen[name]
		if !ok {
			seen[name] = vs
			return
		}
		if all == nil {
			all = map[string][]int{}
		}
		if all[name] == nil {
			all[name] = []int{first}
		}
		all[name] = append(all[name], vs)
	})
	if all == nil {
		return nil
	}
	d := make(dupes, len(all))
	for name, vss := range all {
		i := s.info.byName[name]
		vals := make([][]byte, len(vss))
		for k, vs := range vss {
			vals[k] = pb[vs:skipValue(pb, vs)]
		}
		d[name] = combine(vals, s.info.fields[i].Type, s.fields[i])
	}
	return d
}

// combine returns one JSON value that encoding/json, decoding into a value
// of type t (shape c), reads as it reads the values vals in turn into the
// same place, as it does with the occurrences of a member stored more
// than once. It decodes each into what the earlier ones left: a struct
// keeps the members a later one lacks and a map its entries (their
// members joined into one object), a slice its elements (joined element
// by element; a Go array is zeroed past a shorter one's length); null
// resets a pointer, map, slice or interface and is nothing to another
// type, [] resets a slice; any other value replaces what was there. A
// newer type with members this one lacks thus reads them as it did.
func combine(vals [][]byte, t reflect.Type, c *shape) []byte {
	from := 0
	for k, v := range vals {
		if resets(v, t) {
			from = k
		}
	}
	vals = vals[from:]
	if len(vals) > 1 && string(vals[0]) == "null" {
		vals = vals[1:]
	}
	var keep [][]byte
	for _, v := range vals {
		if string(v) != "null" {
			keep = append(keep, v)
		}
	}
	switch len(keep) {
	case 0:
		return vals[len(vals)-1]
	case 1:
		return keep[0]
	}
	vals = keep
	open := vals[0][0]
	for _, v := range vals {
		if v[0] != open {
			return vals[len(vals)-1]
		}
	}
	switch {
	case (c.kind == object || c.kind == dict) && open == '{':
		out := []byte{'{'}
		for _, v := range vals {
			eachMemberRawDecode(v, 0, false, func(_ string, rawKey []byte, vs, ve int) {
				if len(out) > 1 {
					out = append(out, ',')
				}
				out = append(out, rawKey...)
				out = append(out, ':')
				out = append(out, v[vs:ve]...)
			})
		}
		return append(out, '}')
	case c.kind == list && open == '[':
		et := deref(t).Elem()
		fixed := deref(t).Kind() == reflect.Array
		elems := make([][][]byte, len(vals))
		for k, v := range vals {
			eachElem(v, 0, func(vs, ve int) { elems[k] = append(elems[k], v[vs:ve]) })
		}
		out := []byte{'['}
		for i := range elems[len(elems)-1] {
			var at [][]byte
			for _, e := range elems {
				switch {
				case i < len(e):
					at = append(at, e[i])
				case fixed:
					at = at[:0] // zeroed past a shorter array
				}
			}
			if i > 0 {
				out = append(out, ',')
			}
			out = append(out, combine(at, et, c.elem)...)
		}
		return append(out, ']')
	}
	return vals[len(vals)-1]
}

func deref(t reflect.Type) reflect.Type {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	return t
}

// resets reports whether encoding/json, decoding v into a value of type t,
// discards what earlier values put there: null for a pointer, map, slice
// or interface, [] for a slice.
func resets(v []byte, t reflect.Type) bool {
	if string(v) == "null" {
		switch t.Kind() {
		case reflect.Pointer, reflect.Map, reflect.Slice, reflect.Interface:
			return true
		}
		return false
	}
	return deref(t).Kind() == reflect.Slice && v[0] == '[' && skipSpace(v, 1) == len(v)-1
}

// matchElems pairs each new list element with the old element whose
// unknown members it should carry, or -1: first the old element at the
// same position when its known members equal the new element's (left as
// it was), then another old element whose known members equal the new
// element's (the element moved: reordered, or others were removed or
// added around it), then the old element at the same position (edited in
// place). It returns nil when no old element holds
// unknown members. An old element matched by neither was removed by the
// handler, and its unknown members go with it.
func matchElems(pb []byte, olds [][2]int, nb []byte, news [][2]int, s *shape) []int {
	elem := s.elem
	holds := make([]bool, len(olds))
	anyHolds := false
	for i, o := range olds {
		var unk []string
		unknown(pb, o[0], elem, "", &unk)
		holds[i] = len(unk) > 0
		anyHolds = anyHolds || holds[i]
	}
	if !anyHolds {
		return nil
	}
	match := make([]int, len(news))
	used := make([]bool, len(olds))
	for k := range match {
		match[k] = -1
	}
	// An element that holds the same known data at the same position
	// stays where it is, first: of elements with equal known data, the
	// one moved is not the one left in place.
	for k, n := range news {
		if k < len(olds) && holds[k] && sameKnown(pb[olds[k][0]:olds[k][1]], nb[n[0]:n[1]], s.elemType) {
			match[k], used[k] = k, true
		}
	}
	for k, n := range news {
		if match[k] >= 0 {
			continue
		}
		for i, o := range olds {
			if holds[i] && !used[i] && sameKnown(pb[o[0]:o[1]], nb[n[0]:n[1]], s.elemType) {
				match[k], used[i] = i, true
				break
			}
		}
	}
	for k := range news {
		if match[k] < 0 && k < len(olds) && holds[k] && !used[k] {
			match[k], used[k] = k, true
		}
	}
	return match
}

// sameKnown reports whether the old element holds the same data as the
// new one as encoding/json reads both into the element type t: members t
// does not have, member order, spelling and duplicates do not count.
func sameKnown(prev, next []byte, t reflect.Type) bool {
	o, n := reflect.New(t), reflect.New(t)
	if UnmarshalJSON(prev, o.Interface(), true) != nil || UnmarshalJSON(next, n.Interface(), true) != nil {
		return false
	}
	return reflect.DeepEqual(o.Interface(), n.Interface())
}

// Merge returns the payload next with the members of prev that the type
// does not have put back where they were, so that a Save never drops data
// written by a newer binary or left for a later migration step. Objects
// keep prev's member order, with members new in next appended; map entries
// and list elements follow next. Both payloads must be valid JSON.
func (f *Format) Merge(prev, next []byte) ([]byte, error) {
	out := make([]byte, 0, len(prev)+len(next))
	return merge(out, prev, skipSpace(prev, 0), next, skipSpace(next, 0), f.shape, "")
}

func merge(dst, pb []byte, pi int, nb []byte, ni int, s *shape, path string) ([]byte, error) {
	ne := skipValue(nb, ni)
	if pi >= len(pb) {
		return append(dst, nb[ni:ne]...), nil
	}
	switch {
	case s.kind == object && pb[pi] == '{' && nb[ni] == '{':
		type span struct {
			rawKey []byte
			vs, ve int
		}
		news := map[string]span{}
		var order []string
		eachMemberRawDecode(nb, ni, true, func(key string, rawKey []byte, vs, ve int) {
			news[key] = span{rawKey, vs, ve}
			order = append(order, key)
		})
		occs := occurrences(pb, pi, s)
		used := map[string]bool{}
		dst = append(dst, '{')
		first := true
		sep := func() {
			if !first {
				dst = append(dst, ',')
			}
			first = false
		}
		var err error
		eachMemberRawDecode(pb, pi, true, func(key string, rawKey []byte, vs, ve int) {
			if err != nil {
				return
			}
			name, c, ok := s.field(key)
			if !ok {
				if _, computed := news[key]; computed {
					// Not a field, yet the new encoding has it (a custom
					// MarshalJSON somewhere below): the new value wins.
					name, c = key, opaqueShape
				} else {
					sep()
					dst = append(dst, rawKey...)
					dst = append(dst, ':')
					dst = append(dst, pb[vs:ve]...)
					return
				}
			}
			sp, present := news[name]
			if used[name] {
				return
			}
			if !present {
				// Known, and absent from next: omitted (omitempty,
				// omitzero) or behind a nil embedded pointer; gone, unless
				// the type read it as a value it omits too and it holds
				// members the type does not have (then it is unchanged).
				used[name] = true
				v := pb[vs:ve]
				if d, dup := occs[name]; dup {
					v = d
				}
				if keepOmitted(v, &s.info.fields[s.info.lookup([]byte(name))], c) {
					sep()
					dst = append(dst, rawKey...)
					dst = append(dst, ':')
					dst = append(dst, v...)
				}
				return
			}
			used[name] = true
			sep()
			dst = append(dst, sp.rawKey...)
			dst = append(dst, ':')
			if v, dup := occs[name]; dup {
				// Stored more than once: merged as encoding/json reads
				// the occurrences together.
				dst, err = merge(dst, v, 0, nb, sp.vs, c, joinPath(path, name))
				return
			}
			dst, err = merge(dst, pb, vs, nb, sp.vs, c, joinPath(path, name))
		})
		if err != nil {
			return nil, err
		}
		for _, name := range order {
			if used[name] {
				continue
			}
			sp := news[name]
			sep()
			dst = append(dst, sp.rawKey...)
			dst = append(dst, ':')
			dst = append(dst, nb[sp.vs:sp.ve]...)
		}
		return append(dst, '}'), nil
	case s.kind == dict && pb[pi] == '{' && nb[ni] == '{':
		olds := map[string][2]int{}
		// Keyed as encoding/json writes them back; of several stored keys
		// that read as one, the last is the entry (as it decodes).
		eachMember(pb, pi, func(key string, vs, ve int) { olds[s.mapKey(key)] = [2]int{vs, ve} })
		dst = append(dst, '{')
		first := true
		var err error
		eachMemberRawDecode(nb, ni, true, func(key string, rawKey []byte, vs, ve int) {
			if err != nil {
				return
			}
			if !first {
				dst = append(dst, ',')
			}
			first = false
			dst = append(dst, rawKey...)
			dst = append(dst, ':')
			if o, ok := olds[key]; ok {
				dst, err = merge(dst, pb, o[0], nb, vs, s.elem, path+"["+strconv.Quote(key)+"]")
			} else {
				dst = append(dst, nb[vs:skipValue(nb, vs)]...)
			}
		})
		if err != nil {
			return nil, err
		}
		return append(dst, '}'), nil
	case s.kind == list && pb[pi] == '[' && nb[ni] == '[':
		var olds, news [][2]int
		eachElem(pb, pi, func(vs, ve int) { olds = append(olds, [2]int{vs, ve}) })
		eachElem(nb, ni, func(vs, ve int) { news = append(news, [2]int{vs, ve}) })
		match := matchElems(pb, olds, nb, news, s)
		if match == nil {
			return append(dst, nb[ni:ne]...), nil
		}
		dst = append(dst, '[')
		for k := range news {
			if k > 0 {
				dst = append(dst, ',')
			}
			if o := match[k]; o >= 0 {
				var err error
				dst, err = merge(dst, pb, olds[o][0], nb, news[k][0], s.elem, path+"["+strconv.Itoa(k)+"]")
				if err != nil {
					return nil, err
				}
			} else {
				dst = append(dst, nb[news[k][0]:news[k][1]]...)
			}
		}
		return append(dst, ']'), nil
	}
	return append(dst, nb[ni:ne]...), nil
}
