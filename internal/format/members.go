package format

import (
	"bytes"
	"encoding/json"
	"reflect"
	"strconv"
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
		s := &shape{kind: list}
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
			escaped := bytes.IndexByte(name, '\\') >= 0
			if escaped {
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

func decodeKey(q []byte) string {
	if bytes.IndexByte(q, '\\') < 0 {
		return string(q[1 : len(q)-1])
	}
	var s string
	if err := json.Unmarshal(q, &s); err != nil {
		return string(q)
	}
	return s
}

// matchElems pairs each new list element with the old element whose
// unknown members it should carry, or -1: first an old element whose known
// members equal the new element's (the element moved: reordered, or others
// were removed or added around it), then the old element at the same
// position (edited in place). It returns nil when no old element holds
// unknown members. An old element matched by neither was removed by the
// handler, and its unknown members go with it.
func matchElems(pb []byte, olds [][2]int, nb []byte, news [][2]int, elem *shape) []int {
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
	for k, n := range news {
		for i, o := range olds {
			if holds[i] && !used[i] && sameKnown(pb[o[0]:o[1]], nb[n[0]:n[1]], elem) {
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

// sameKnown reports whether the old element, without the members its shape
// does not have, holds the same data as the new one.
func sameKnown(prev, next []byte, s *shape) bool {
	var o, n any
	if UnmarshalJSON(prev, &o, true) != nil || UnmarshalJSON(next, &n, true) != nil {
		return false
	}
	return reflect.DeepEqual(project(o, s), n)
}

// project returns v, a decoded document, without the members that shape s
// does not have and with members renamed to the names s gives them.
func project(v any, s *shape) any {
	switch s.kind {
	case object:
		m, ok := v.(map[string]any)
		if !ok {
			return v
		}
		out := make(map[string]any, len(m))
		for k, x := range m {
			if name, c, ok := s.field(k); ok {
				out[name] = project(x, c)
			}
		}
		return out
	case dict:
		m, ok := v.(map[string]any)
		if !ok {
			return v
		}
		out := make(map[string]any, len(m))
		for k, x := range m {
			out[s.mapKey(k)] = project(x, s.elem)
		}
		return out
	case list:
		l, ok := v.([]any)
		if !ok {
			return v
		}
		out := make([]any, len(l))
		for i, x := range l {
			out[i] = project(x, s.elem)
		}
		return out
	}
	return v
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
			if !present || used[name] {
				return // known, and absent from next (omitempty): gone
			}
			used[name] = true
			sep()
			dst = append(dst, sp.rawKey...)
			dst = append(dst, ':')
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
		match := matchElems(pb, olds, nb, news, s.elem)
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
