package format

import (
	"bytes"
	"errors"
	"fmt"
	"reflect"
	"strconv"
	"strings"
)

// CheckType returns an error naming the first part of t that Save would
// write but Load would not read back as it was, found once, at New:
//
//   - with a codec whose payload is JSON, the rules of encoding/json read
//     from the type (checkType): a type with MarshalJSON (or MarshalText)
//     but not the matching unmarshal method, a non-empty interface, a map
//     key type that decoding cannot make, a channel, function or complex
//     number, a struct whose embedded field's MarshalJSON (or
//     UnmarshalJSON) hides its other fields, a type whose MarshalJSON (or
//     MarshalText) has a pointer receiver where encoding/json meets it
//     unaddressable (in a map value or key), so that it writes the value
//     by its kind and reads it back by its method;
//   - with every codec (storable): a struct that stores nothing although
//     it holds data (it has fields, at least one of them unexported, and no
//     member by Fields and no encoding of its own, so the codec writes it
//     as {}), and a member promoted from an embedded pointer to an
//     unexported struct type, which no decoder can allocate;
//   - with every codec, a round trip through the format (AppendPayload,
//     then Unmarshal into a new value) of a sample of t whose members (by
//     Fields, in every struct reached) hold distinct non-zero values
//     (probe): the first member that fails to encode or decode, or comes
//     back different, is named.
//
// Values of types with encoding methods of their own (a method named
// Marshal…, Unmarshal…, Encode…, Decode… or Gob…) stay zero in the sample:
// the probe cannot know what they accept; a panic in such a method is
// left for Save and Load to report.
func (f *Format) CheckType(t reflect.Type) error {
	if f.jsonForm {
		if err := checkType(t, t.String(), map[typeAt]bool{}, ""); err != nil {
			return err
		}
	}
	if err := f.storable(t, t.String(), map[reflect.Type]bool{}); err != nil {
		return err
	}
	return f.probe(t)
}

// Where encoding/json meets a value that is not addressable.
const (
	mapKey   = "a map key"
	mapValue = "a map value"
)

// typeAt is a type where encoding/json meets it: at is "" where the value
// is addressable, else what holds it ("a map value", "a map key").
type typeAt struct {
	t  reflect.Type
	at string
}

// checkType checks t, met at path; at is "" where encoding/json writes
// the value addressable (it then uses t's pointer methods too), else what
// holds it: a map's keys and values, and what they hold up to a pointer or
// a slice's elements, are not addressable (encode.go condAddrEncoder).
func checkType(t reflect.Type, path string, seen map[typeAt]bool, at string) error {
	if seen[typeAt{t, at}] {
		return nil
	}
	seen[typeAt{t, at}] = true
	if at != "" && t.Kind() != reflect.Pointer && t.Kind() != reflect.Interface && (at != mapKey || t.Kind() != reflect.String) {
		for _, m := range []struct {
			iface reflect.Type
			name  string
		}{{jsonMarshaler, "MarshalJSON"}, {textMarshaler, "MarshalText"}} {
			if !t.Implements(m.iface) && reflect.PointerTo(t).Implements(m.iface) {
				return fmt.Errorf("%s (%s) is in %s, which encoding/json does not write by its pointer method %s (that needs an addressable value): Save would write it by its kind, and Load read that with its decoding method; give %s a value receiver, or store a pointer", path, t, at, m.name, m.name)
			}
		}
	}
	pt := reflect.PointerTo(t)
	if t.Kind() == reflect.Pointer {
		pt = t
	}
	marshalsJSON := t.Implements(jsonMarshaler) || pt.Implements(jsonMarshaler)
	unmarshalsJSON := pt.Implements(jsonUnmarshaler)
	marshalsText := t.Implements(textMarshaler) || pt.Implements(textMarshaler)
	unmarshalsText := pt.Implements(textUnmarshaler)
	if t.Kind() == reflect.Struct {
		if err := checkPromoted(t, path); err != nil {
			return err
		}
	}
	switch {
	case marshalsJSON && !unmarshalsJSON && t.Kind() != reflect.Struct && t.Kind() != reflect.Interface:
		// (A struct's own fields still decode it; a value of another kind
		// written as something else does not read back.)
		return fmt.Errorf("%s (%s) has MarshalJSON but no UnmarshalJSON: Load could not read back what Save writes", path, t)
	case !marshalsJSON && marshalsText && !unmarshalsText && t.Kind() != reflect.Interface:
		return fmt.Errorf("%s (%s) has MarshalText but no UnmarshalText: Load could not read back what Save writes", path, t)
	case marshalsJSON || (marshalsText && unmarshalsText):
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
		return checkType(t.Elem(), path, seen, "")
	case reflect.Slice:
		return checkType(t.Elem(), path+"[]", seen, "")
	case reflect.Array:
		return checkType(t.Elem(), path+"[]", seen, at)
	case reflect.Map:
		k := t.Key()
		switch k.Kind() {
		case reflect.String, reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
			reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		default:
			if !reflect.PointerTo(k).Implements(textUnmarshaler) {
				return fmt.Errorf("%s has keys of type %s, which Load cannot make from JSON (it needs a string or integer kind, or UnmarshalText)", path, k)
			}
		}
		if reflect.PointerTo(k).Implements(textMarshaler) || k.Implements(textMarshaler) {
			if err := checkType(k, path+" (key)", seen, mapKey); err != nil {
				return err
			}
		}
		return checkType(t.Elem(), path+"[]", seen, mapValue)
	case reflect.Struct:
		for _, f := range Fields(t) {
			if err := checkType(f.Type, path+"."+f.GoName, seen, promotedAt(t, f.Index, at)); err != nil {
				return err
			}
		}
	}
	return nil
}

// checkPromoted refuses a struct whose MarshalJSON, MarshalText,
// UnmarshalJSON or UnmarshalText comes from an embedded field while it has
// members outside that field: encoding/json then writes (or reads) only
// the embedded value, and the other members are never stored (or never
// read back).
func checkPromoted(t reflect.Type, path string) error {
	for _, name := range []string{"MarshalJSON", "MarshalText", "UnmarshalJSON", "UnmarshalText"} {
		if _, ok := reflect.PointerTo(t).MethodByName(name); !ok {
			continue
		}
		for i := range t.NumField() {
			sf := t.Field(i)
			if !sf.Anonymous {
				continue
			}
			et := sf.Type
			if et.Kind() == reflect.Pointer {
				et = et.Elem()
			}
			if _, ok := reflect.PointerTo(et).MethodByName(name); !ok {
				continue
			}
			for _, f := range Fields(t) {
				if f.Index[0] != i {
					return fmt.Errorf("%s (%s) embeds %s, whose %s becomes its own: %s would never be stored or read back; name the embedded field", path, t, sf.Type, name, f.GoName)
				}
			}
		}
	}
	return nil
}

// storable refuses what no codec reads back, in t or the types its
// members reach: a struct that the codec writes as {} although it holds
// data (no member, no encoding of its own, and an unexported field of its
// own or of a struct it embeds), and a member promoted from an embedded
// pointer to an unexported struct type, which Save writes when the pointer
// is set but which decoding cannot allocate (encoding/json, cbor and
// msgpack all fail: reflection cannot set an unexported field).
func (f *Format) storable(t reflect.Type, path string, seen map[reflect.Type]bool) error {
	if seen[t] {
		return nil
	}
	seen[t] = true
	if f.jsonForm && mayMarshalItself(t) || !f.jsonForm && ownEncoding(t) {
		return nil // written by a method of its own
	}
	switch t.Kind() {
	case reflect.Pointer:
		return f.storable(t.Elem(), path, seen)
	case reflect.Slice, reflect.Array, reflect.Map:
		return f.storable(t.Elem(), path+"[]", seen)
	case reflect.Struct:
		fields := Fields(t)
		if len(fields) == 0 && !f.encodesItself(t) {
			if name := unexportedData(t, map[reflect.Type]bool{}); name != "" {
				return fmt.Errorf("%s (%s) would be stored as {}: its field %s is unexported, and it has no exported field and no encoding of its own; export the fields to store, or tag the field json:\"-\" if it is not to be stored", path, t, name)
			}
		}
		for _, m := range fields {
			if m.Unsettable {
				return fmt.Errorf("%s.%s is promoted from an embedded pointer to an unexported struct type: Save writes it when the pointer is set, but Load cannot allocate that pointer (cannot set embedded pointer to unexported struct); embed the struct by value or export its type", path, m.GoName)
			}
			if err := f.storable(m.Type, path+"."+m.GoName, seen); err != nil {
				return err
			}
		}
	}
	return nil
}

// unexportedData returns the name of an unexported field of struct type t
// that holds data, its own or that of an embedded struct, or "".
func unexportedData(t reflect.Type, seen map[reflect.Type]bool) string {
	if seen[t] {
		return ""
	}
	seen[t] = true
	for i := range t.NumField() {
		sf := t.Field(i)
		et := sf.Type
		if et.Kind() == reflect.Pointer {
			et = et.Elem()
		}
		switch {
		case sf.Anonymous && et.Kind() == reflect.Struct:
			if n := unexportedData(et, seen); n != "" {
				return n
			}
		case !sf.IsExported():
			return sf.Name
		}
	}
	return ""
}

// encodesItself reports whether the codec writes a value of struct type t
// by a method of its own rather than by its fields: for a JSON payload,
// MarshalJSON or MarshalText (of t or *t); for another codec, a method
// named like an encoding method (ownEncoding), or an encoding of a zero t
// other than that of an empty struct (the codec knows t by a method this
// package cannot name).
func (f *Format) encodesItself(t reflect.Type) (yes bool) {
	if f.jsonForm {
		return mayMarshalItself(t)
	}
	if ownEncoding(t) {
		return true
	}
	defer func() {
		if recover() != nil {
			yes = true // the codec's own business: it cannot be told
		}
	}()
	zero, err1 := f.codec.Marshal(reflect.New(t).Interface())
	empty, err2 := f.codec.Marshal(&struct{}{})
	return err1 != nil || err2 != nil || !bytes.Equal(zero, empty)
}

// ownEncoding reports whether t or *t has a method that a codec may use to
// write or read it in place of its fields: by name, one beginning with
// Marshal, Unmarshal, Encode, Decode or Gob (MarshalJSON, UnmarshalText,
// MarshalBinary, GobEncode, EncodeMsgpack, MarshalCBOR and the like), so
// that no codec's list needs to be known here.
func ownEncoding(t reflect.Type) bool {
	if t.Kind() == reflect.Interface {
		return false
	}
	pt := t
	if t.Kind() != reflect.Pointer {
		pt = reflect.PointerTo(t)
	}
	for i := range pt.NumMethod() {
		n := pt.Method(i).Name
		for _, p := range []string{"Marshal", "Unmarshal", "Encode", "Decode", "Gob"} {
			if strings.HasPrefix(n, p) {
				return true
			}
		}
	}
	return false
}

// probe round-trips a sample of t through the format and returns an error
// naming the first member that does not come back.
func (f *Format) probe(t reflect.Type) error {
	all, different, err := f.roundTrip(t, -1)
	if err == nil || different {
		return err
	}
	var pe *PanicError
	if errors.As(err, &pe) {
		return nil // a method of the user's: Save and Load report it
	}
	// An encoding or decoding error: name the value whose setting makes
	// it fail, the first in fill order (the smallest budget that fails:
	// once set, a failing value keeps failing).
	lo, hi := 0, all.n // roundTrip(hi) fails
	for lo < hi {
		if mid := (lo + hi) / 2; f.failsWith(t, mid) {
			hi = mid
		} else {
			lo = mid + 1
		}
	}
	if hi > 0 {
		p, _, err := f.roundTrip(t, hi)
		if err == nil || errors.As(err, &pe) {
			return nil
		}
		return fmt.Errorf("%s %w", p.last, err)
	}
	// The zero value fails: name the member whose zero value does,
	// unless the fault is in a type that encodes itself (the value
	// Config.Initial gives may be one it accepts).
	if path := f.zeroFailure(t, t.String(), map[reflect.Type]bool{}); path != "" {
		return fmt.Errorf("%s %w", path, err)
	}
	return nil
}

// failsWith reports whether the round trip of a sample of t with budget
// values set fails.
func (f *Format) failsWith(t reflect.Type, budget int) bool {
	_, _, err := f.roundTrip(t, budget)
	return err != nil
}

// roundTrip fills a sample of t with at most budget values (-1: all),
// encodes it with AppendPayload and decodes it with Unmarshal into a new
// value. It returns the prober (what it set, the path of the last value),
// whether the value came back different, and an error saying how it
// failed.
func (f *Format) roundTrip(t reflect.Type, budget int) (p *prober, different bool, err error) {
	p = &prober{budget: budget, onPath: map[reflect.Type]bool{}}
	sample := reflect.New(t)
	p.fill(sample.Elem(), t.String())
	out, err := f.AppendPayload(nil, sample.Interface())
	if err != nil {
		return p, false, fmt.Errorf("does not encode: %w", err)
	}
	back := reflect.New(t)
	if err := f.Unmarshal(nil, nil, out, back.Interface()); err != nil {
		return p, false, fmt.Errorf("does not decode: %w", err)
	}
	if path := same(sample.Elem(), back.Elem(), t.String()); path != "" {
		return p, true, fmt.Errorf("%s does not come back from a round trip through the codec: Load would not return what Save was given; make the codec store it (its tags), or tag it json:\"-\" if it is not to be stored", path)
	}
	return p, false, nil
}

// zeroFailure returns the path of the innermost member in t (t itself
// when none of its members is to blame) whose zero value the format
// cannot encode, or "" when the failure is in a type with an encoding of
// its own or not in t at all.
func (f *Format) zeroFailure(t reflect.Type, path string, seen map[reflect.Type]bool) string {
	if ownEncoding(t) || seen[t] || !f.zeroFails(t) {
		return ""
	}
	seen[t] = true
	switch t.Kind() {
	case reflect.Struct:
		for _, m := range Fields(t) {
			if m.Unsettable {
				continue
			}
			if f.zeroFails(m.Type) {
				if p := f.zeroFailure(m.Type, path+"."+m.GoName, seen); p != "" {
					return p
				}
				if ownEncoding(m.Type) {
					return ""
				}
				return path + "." + m.GoName
			}
		}
	case reflect.Array:
		if p := f.zeroFailure(t.Elem(), path+"[0]", seen); p != "" {
			return p
		}
		if ownEncoding(t.Elem()) {
			return ""
		}
	}
	return path
}

// zeroFails reports whether the format fails to encode the zero value of
// t (a panic counts as no failure: it is the user's code).
func (f *Format) zeroFails(t reflect.Type) bool {
	_, err := f.AppendPayload(nil, reflect.New(t).Interface())
	var pe *PanicError
	return err != nil && !errors.As(err, &pe)
}

// A prober fills a sample value: each value it sets is one step of its
// budget (-1: no limit); last is the path of the last one set.
type prober struct {
	budget, n int
	last      string
	onPath    map[reflect.Type]bool
}

// take reports whether one more value may be set, and counts it.
func (p *prober) take(path string) bool {
	if p.budget >= 0 && p.n >= p.budget {
		return false
	}
	p.n++
	p.last = path
	return true
}

// fill sets v, a settable zero value, to a sample: distinct non-zero
// numbers and strings ("s3"), one element in each slice and map, every
// pointer allocated, every member of every struct filled; but not a value
// with an encoding of its own (ownEncoding), a non-empty interface, an
// unsafe.Pointer or what its own type holds again (a recursive type is
// filled one level deep).
func (p *prober) fill(v reflect.Value, path string) {
	t := v.Type()
	if t == numberType {
		if p.take(path) {
			v.SetString(strconv.Itoa(p.n))
		}
		return
	}
	if ownEncoding(t) || p.onPath[t] {
		return
	}
	if k := t.Kind(); (k == reflect.Pointer || k == reflect.Slice || k == reflect.Map) && t.Elem() != numberType && ownEncoding(t.Elem()) {
		return // a value of its own encoding would be zero: put none there
	}
	switch t.Kind() {
	case reflect.Bool:
		if p.take(path) {
			v.SetBool(true)
		}
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		if p.take(path) {
			v.SetInt(int64(p.n%100 + 1))
		}
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		if p.take(path) {
			v.SetUint(uint64(p.n%100 + 1))
		}
	case reflect.Float32, reflect.Float64:
		if p.take(path) {
			v.SetFloat(float64(p.n) + 0.5)
		}
	case reflect.Complex64, reflect.Complex128:
		if p.take(path) {
			v.SetComplex(complex(float64(p.n), 1))
		}
	case reflect.String:
		if p.take(path) {
			v.SetString("s" + strconv.Itoa(p.n))
		}
	case reflect.Interface:
		if t.NumMethod() == 0 && p.take(path) {
			v.Set(reflect.ValueOf("s" + strconv.Itoa(p.n)))
		}
	case reflect.Chan:
		if p.take(path) {
			v.Set(reflect.MakeChan(t, 0))
		}
	case reflect.Func:
		if p.take(path) {
			v.Set(reflect.MakeFunc(t, func([]reflect.Value) []reflect.Value {
				out := make([]reflect.Value, t.NumOut())
				for i := range out {
					out[i] = reflect.Zero(t.Out(i))
				}
				return out
			}))
		}
	case reflect.Pointer:
		if p.take(path) {
			v.Set(reflect.New(t.Elem()))
			p.onPath[t] = true
			p.fill(v.Elem(), path)
			delete(p.onPath, t)
		}
	case reflect.Slice:
		if p.take(path + "[0]") {
			v.Set(reflect.MakeSlice(t, 1, 1))
			p.onPath[t] = true
			p.fill(v.Index(0), path+"[0]")
			delete(p.onPath, t)
		}
	case reflect.Array:
		for i := range min(v.Len(), 2) {
			p.fill(v.Index(i), path+"["+strconv.Itoa(i)+"]")
		}
	case reflect.Map:
		k := reflect.New(t.Key()).Elem()
		if !scalar(t.Key().Kind()) || ownEncoding(t.Key()) {
			return // keys the probe cannot make for every codec
		}
		p.fill(k, path+" (a key)")
		if k.IsZero() {
			return
		}
		at := path + "[" + strconv.Quote(fmt.Sprint(k.Interface())) + "]"
		e := reflect.New(t.Elem()).Elem()
		p.onPath[t] = true
		p.fill(e, at)
		delete(p.onPath, t)
		v.Set(reflect.MakeMapWithSize(t, 1))
		v.SetMapIndex(k, e)
	case reflect.Struct:
		for _, f := range Fields(t) {
			if f.Unsettable {
				continue
			}
			fv := v
			for _, i := range f.Index {
				if fv.Kind() == reflect.Pointer {
					if fv.IsNil() {
						fv.Set(reflect.New(fv.Type().Elem()))
					}
					fv = fv.Elem()
				}
				fv = fv.Field(i)
			}
			p.fill(fv, path+"."+f.GoName)
		}
	}
}

func scalar(k reflect.Kind) bool {
	switch k {
	case reflect.String, reflect.Bool,
		reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr,
		reflect.Float32, reflect.Float64:
		return true
	}
	return false
}

// same returns the path of the first part of want, a sample that fill
// made, that got does not hold as it was, or "". Only what fill set is
// compared.
func same(want, got reflect.Value, path string) string {
	t := want.Type()
	if t != numberType && ownEncoding(t) {
		return ""
	}
	switch t.Kind() {
	case reflect.Bool:
		if want.Bool() != got.Bool() {
			return path
		}
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		if want.Int() != got.Int() {
			return path
		}
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		if want.Uint() != got.Uint() {
			return path
		}
	case reflect.Float32, reflect.Float64:
		if want.Float() != got.Float() {
			return path
		}
	case reflect.Complex64, reflect.Complex128:
		if want.Complex() != got.Complex() {
			return path
		}
	case reflect.String:
		if want.String() != got.String() {
			return path
		}
	case reflect.Interface:
		if want.IsNil() {
			return ""
		}
		if got.IsNil() || got.Elem().Kind() != reflect.String || got.Elem().String() != want.Elem().String() {
			return path
		}
	case reflect.Chan, reflect.Func:
		if want.IsNil() != got.IsNil() {
			return path
		}
	case reflect.Pointer:
		if want.IsNil() {
			return ""
		}
		if got.IsNil() {
			return path
		}
		return same(want.Elem(), got.Elem(), path)
	case reflect.Slice:
		if want.Len() == 0 {
			return ""
		}
		if got.Len() != want.Len() {
			return path
		}
		for i := range want.Len() {
			if p := same(want.Index(i), got.Index(i), path+"["+strconv.Itoa(i)+"]"); p != "" {
				return p
			}
		}
	case reflect.Array:
		for i := range want.Len() {
			if p := same(want.Index(i), got.Index(i), path+"["+strconv.Itoa(i)+"]"); p != "" {
				return p
			}
		}
	case reflect.Map:
		iter := want.MapRange()
		for iter.Next() {
			at := path + "[" + strconv.Quote(fmt.Sprint(iter.Key().Interface())) + "]"
			g := got.MapIndex(iter.Key())
			if !g.IsValid() {
				return at
			}
			if p := same(iter.Value(), g, at); p != "" {
				return p
			}
		}
	case reflect.Struct:
		for _, f := range Fields(t) {
			if f.Unsettable {
				continue
			}
			w, ok := f.Value(want)
			if !ok {
				continue
			}
			g, ok := f.Value(got)
			if !ok {
				return path + "." + f.GoName
			}
			if p := same(w, g, path+"."+f.GoName); p != "" {
				return p
			}
		}
	}
	return ""
}

// promotedAt is where encoding/json meets the field at index in struct
// type t, met at at: addressable when an embedded pointer is on the way.
func promotedAt(t reflect.Type, index []int, at string) string {
	for _, i := range index[:len(index)-1] {
		if t = t.Field(i).Type; t.Kind() == reflect.Pointer {
			return ""
		}
	}
	return at
}
