package format

import (
	"bytes"
	"cmp"
	"reflect"
	"slices"
	"strings"
	"sync"
	"unicode"
)

// Field is one member of a struct type's JSON form: what encoding/json
// writes for a field and the name it decodes into it. Fields gives them;
// every walk of a type's fields in this package goes through it, so that
// what is checked, merged or probed is exactly what is stored.
type Field struct {
	// Name is the member name: the tag's name when it is valid, else the
	// Go field name.
	Name string
	// GoName is the Go name of the field (of the last field of Index),
	// which is how error messages name it.
	GoName string
	// Index is the field's index path from the struct, as for
	// reflect.Value.FieldByIndex: more than one element for a field
	// promoted from an embedded struct, which may be behind a pointer.
	Index []int
	// Type is the field's Go type.
	Type reflect.Type
	// Tagged is true when Name comes from the tag.
	Tagged bool
	// OmitEmpty and OmitZero are the tag's options; Quoted is true when
	// the "string" option applies (to a bool, number or string, or a
	// pointer to one).
	OmitEmpty, OmitZero, Quoted bool
	// Unsettable is true when Index goes through an embedded pointer to
	// an unexported struct type: decoding cannot allocate it, so where it
	// is nil a member of this name fails to decode (encoding/json: "cannot
	// set embedded pointer to unexported struct").
	Unsettable bool
	// viaPointer is true when Index goes through an embedded pointer.
	viaPointer bool
}

// structInfo is what Fields keeps of a struct type.
type structInfo struct {
	fields []Field
	byName map[string]int // exact name → index in fields
}

var structInfos sync.Map // reflect.Type → *structInfo

// Fields returns the members of struct type t in the order encoding/json
// writes them (the order of their index paths), decided as encoding/json
// decides them (Go 1.26, encoding/json/encode.go typeFields): exported
// fields, and the fields of embedded structs (exported or not, behind a
// pointer or not) promoted breadth first unless the embedded field has a
// tag name; a field tagged "-" or unexported and not embedded is left out;
// an invalid tag name falls back to the Go name; of several fields with
// one name the shallowest wins, then the only tagged one among the
// shallowest, and a name still ambiguous, or reached twice through the same
// embedded type at one depth, is left out altogether. The result is cached
// and must not be modified. Fields panics if t is not a struct type.
func Fields(t reflect.Type) []Field { return infoOf(t).fields }

func infoOf(t reflect.Type) *structInfo {
	if v, ok := structInfos.Load(t); ok {
		return v.(*structInfo)
	}
	fields := typeFields(t)
	info := &structInfo{fields: fields, byName: make(map[string]int, len(fields))}
	for i, f := range fields {
		info.byName[f.Name] = i
	}
	v, _ := structInfos.LoadOrStore(t, info)
	return v.(*structInfo)
}

// lookup returns the index in the fields of the member that a JSON member
// named key decodes into, or -1: the member of exactly that name, else the
// first one, in index order, whose name equals key under Unicode case
// folding (encoding/json/decode.go object, byExactName then byFoldedName).
// It does not allocate.
func (s *structInfo) lookup(key []byte) int {
	if i, ok := s.byName[string(key)]; ok {
		return i
	}
	ascii := isASCII(key)
	for i := range s.fields {
		n := s.fields[i].Name
		// Two ASCII names are equal under folding only at equal lengths.
		if (len(n) == len(key) || !ascii || !isASCII([]byte(n))) && bytes.EqualFold([]byte(n), key) {
			return i
		}
	}
	return -1
}

// queued is an embedded struct type still to scan, as typeFields keeps it.
type queued struct {
	typ        reflect.Type
	index      []int
	unsettable bool
	viaPointer bool
}

// typeFields is encoding/json's typeFields (encode.go, Go 1.26) without
// the encoders: the same breadth-first scan with the same rules and the
// same elimination of hidden and ambiguous names.
func typeFields(t reflect.Type) []Field {
	current := []queued{}
	next := []queued{{typ: t}}
	// Count of queued names for the current level and the next: a type
	// queued twice at one level adds its fields twice, so that they
	// eliminate each other.
	var count, nextCount map[reflect.Type]int
	visited := map[reflect.Type]bool{}
	var fields []Field
	for len(next) > 0 {
		current, next = next, current[:0]
		count, nextCount = nextCount, map[reflect.Type]int{}
		for _, q := range current {
			if visited[q.typ] {
				continue
			}
			visited[q.typ] = true
			for i := range q.typ.NumField() {
				sf := q.typ.Field(i)
				if sf.Anonymous {
					et := sf.Type
					if et.Kind() == reflect.Pointer {
						et = et.Elem()
					}
					if !sf.IsExported() && et.Kind() != reflect.Struct {
						continue // an embedded unexported non-struct type
					}
				} else if !sf.IsExported() {
					continue
				}
				tag := sf.Tag.Get("json")
				if tag == "-" {
					continue
				}
				name, opts, _ := strings.Cut(tag, ",")
				if !isValidTag(name) {
					name = ""
				}
				index := make([]int, len(q.index)+1)
				copy(index, q.index)
				index[len(q.index)] = i
				ft := sf.Type
				if ft.Name() == "" && ft.Kind() == reflect.Pointer {
					ft = ft.Elem()
				}
				if name != "" || !sf.Anonymous || ft.Kind() != reflect.Struct {
					f := Field{
						Name:       name,
						GoName:     sf.Name,
						Index:      index,
						Type:       sf.Type,
						Tagged:     name != "",
						OmitEmpty:  hasOption(opts, "omitempty"),
						OmitZero:   hasOption(opts, "omitzero"),
						Quoted:     hasOption(opts, "string") && quotable(ft.Kind()),
						Unsettable: q.unsettable,
						viaPointer: q.viaPointer,
					}
					if f.Name == "" {
						f.Name = sf.Name
					}
					fields = append(fields, f)
					if count[q.typ] > 1 {
						// Reached more than once at this level: a copy
						// makes the name ambiguous below.
						fields = append(fields, f)
					}
					continue
				}
				nextCount[ft]++
				if nextCount[ft] == 1 {
					next = append(next, queued{
						typ:        ft,
						index:      index,
						unsettable: q.unsettable || (sf.Type.Kind() == reflect.Pointer && !sf.IsExported()),
						viaPointer: q.viaPointer || sf.Type.Kind() == reflect.Pointer,
					})
				}
			}
		}
	}
	slices.SortStableFunc(fields, func(a, b Field) int {
		if c := strings.Compare(a.Name, b.Name); c != 0 {
			return c
		}
		if c := cmp.Compare(len(a.Index), len(b.Index)); c != 0 {
			return c
		}
		if a.Tagged != b.Tagged {
			if a.Tagged {
				return -1
			}
			return +1
		}
		return slices.Compare(a.Index, b.Index)
	})
	// Of the fields of one name, the first dominates unless the second is
	// as shallow and as tagged (encoding/json's dominantField): then none.
	out := fields[:0]
	for i := 0; i < len(fields); {
		n := 1
		for i+n < len(fields) && fields[i+n].Name == fields[i].Name {
			n++
		}
		if n == 1 || len(fields[i].Index) != len(fields[i+1].Index) || fields[i].Tagged != fields[i+1].Tagged {
			out = append(out, fields[i])
		}
		i += n
	}
	slices.SortFunc(out, func(a, b Field) int { return slices.Compare(a.Index, b.Index) })
	return slices.Clip(out)
}

// isValidTag is encoding/json's rule for a tag name (encode.go isValidTag):
// letters, digits and the punctuation !#$%&()*+-./:;<=>?@[]^_{|}~ and
// space; not empty.
func isValidTag(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range s {
		switch {
		case strings.ContainsRune("!#$%&()*+-./:;<=>?@[]^_{|}~ ", c):
		case !unicode.IsLetter(c) && !unicode.IsDigit(c):
			return false
		}
	}
	return true
}

// hasOption reports whether the comma-separated options opts include name.
func hasOption(opts, name string) bool {
	for opts != "" {
		var o string
		o, opts, _ = strings.Cut(opts, ",")
		if o == name {
			return true
		}
	}
	return false
}

// quotable reports whether the "string" option applies to a field of kind
// k.
func quotable(k reflect.Kind) bool {
	switch k {
	case reflect.Bool,
		reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr,
		reflect.Float32, reflect.Float64,
		reflect.String:
		return true
	}
	return false
}

// Value returns the field in v, a value of the struct type the field
// belongs to, and true; or false when a nil embedded pointer on the way
// leaves it out of v's encoding.
func (f *Field) Value(v reflect.Value) (reflect.Value, bool) {
	for _, i := range f.Index {
		if v.Kind() == reflect.Pointer {
			if v.IsNil() {
				return reflect.Value{}, false
			}
			v = v.Elem()
		}
		v = v.Field(i)
	}
	return v, true
}

// Written returns the field in v and whether encoding/json writes it: not
// when a nil embedded pointer is on the way, nor when omitempty finds it
// empty or omitzero finds it zero (by its IsZero method when it has one).
func (f *Field) Written(v reflect.Value) (reflect.Value, bool) {
	fv, ok := f.Value(v)
	if !ok || (f.OmitEmpty && isEmptyValue(fv)) || (f.OmitZero && isZeroValue(fv)) {
		return fv, false
	}
	return fv, true
}

// isEmptyValue is encoding/json's omitempty test (encode.go isEmptyValue).
func isEmptyValue(v reflect.Value) bool {
	switch v.Kind() {
	case reflect.Array, reflect.Map, reflect.Slice, reflect.String:
		return v.Len() == 0
	case reflect.Bool,
		reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr,
		reflect.Float32, reflect.Float64,
		reflect.Interface, reflect.Pointer:
		return v.IsZero()
	}
	return false
}

type isZeroer interface{ IsZero() bool }

var isZeroerType = reflect.TypeFor[isZeroer]()

// isZeroValue is encoding/json's omitzero test (encode.go typeFields'
// isZero functions): the field type's IsZero method when it has one (a nil
// pointer or interface is zero without a call), else reflect's IsZero.
func isZeroValue(v reflect.Value) bool {
	t := v.Type()
	switch {
	case t.Kind() == reflect.Interface && t.Implements(isZeroerType):
		return v.IsNil() || (v.Elem().Kind() == reflect.Pointer && v.Elem().IsNil()) || v.Interface().(isZeroer).IsZero()
	case t.Kind() == reflect.Pointer && t.Implements(isZeroerType):
		return v.IsNil() || v.Interface().(isZeroer).IsZero()
	case t.Implements(isZeroerType):
		return v.Interface().(isZeroer).IsZero()
	case reflect.PointerTo(t).Implements(isZeroerType):
		if !v.CanAddr() {
			c := reflect.New(t).Elem()
			c.Set(v)
			v = c
		}
		return v.Addr().Interface().(isZeroer).IsZero()
	}
	return v.IsZero()
}
