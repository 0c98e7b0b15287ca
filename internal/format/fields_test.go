package format

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode"
	"unicode/utf8"
)

// The field walk (Fields) is tested against encoding/json itself: for
// many struct types, the members it gives must be the names json.Marshal
// writes (in its order, recursively, also with empty values left out by
// omitempty and omitzero), and each name json.Unmarshal accepts must
// change the field the walk says, and no other; names the walk does not
// have must change nothing.

// Named types for the hand-written corpus: embeddings reflect.StructOf
// cannot build (unexported embedded types, named types, cycles).
type (
	Leaf  int
	leaf  int
	inner struct {
		X int
		Y string `json:"y"`
	}
	Inner struct {
		X int
		Z string
	}
	A  struct{ X int }
	B1 struct{ A }
	B2 struct{ A }
	// Ambiguous embeds A through two paths at one depth: X is no member.
	Ambiguous struct {
		B1
		B2
	}
	AmbiguousTop struct {
		B1
		B2
		X string `json:"x2"`
	}
	Tagged1 struct {
		V int `json:"V"`
	}
	Tagged2 struct {
		V int `json:"V"`
	}
	Untagged struct{ V int }
	// TaggedWins: of two fields named v at one depth, the tagged one.
	TaggedWins struct {
		Tagged1
		Untagged
	}
	// Shallow: a field at depth 0 hides those below.
	Shallow struct {
		Tagged1
		V string
	}
	// UnexportedEmbed promotes the exported fields of unexported structs,
	// by value and behind a pointer (which decoding cannot allocate).
	UnexportedEmbed struct {
		inner
		leaf
		Leaf
		W int
	}
	UnexportedPtr struct {
		*inner
		W int
	}
	ExportedPtr struct {
		*Inner
		W int
	}
	// NamedEmbed: an embedded struct with a tag name is one member.
	NamedEmbed struct {
		Inner `json:"in"`
		W     int
	}
	Cycle struct {
		*Cycle
		N    int
		Next *Cycle `json:"next,omitempty"`
	}
	Options struct {
		I   int     `json:",string"`
		P   *int    `json:"p,string"`
		S   []int   `json:"s,string"`
		Bad int     `json:"a'b"`
		Dsh int     `json:"-,"`
		No  int     `json:"-"`
		Kel int     `json:"K"` // U+212A KELVIN SIGN, which folds to k
		K2  int     `json:"k2"`
		Sp  string  `json:"with space"`
		Om  []int   `json:"om,omitempty"`
		Oz  Inner   `json:"oz,omitzero"`
		Ozp *Inner  `json:"ozp,omitzero"`
		F   float64 `json:"f,omitempty,string"`
	}
	Deep struct {
		B1
		Mid
	}
	Mid struct {
		A `json:"a"`
		Inner
	}
	Folded struct {
		Ab int `json:"ab"`
		AB int
		X  int `json:"aB"`
	}
)

// bothTagged has two tagged fields named V at one depth, so neither is a
// member. (Built by reflect.StructOf: go vet refuses the repeated tag in
// source.)
var bothTagged = reflect.StructOf([]reflect.StructField{
	{Name: "Tagged1", Type: reflect.TypeFor[Tagged1](), Anonymous: true},
	{Name: "Tagged2", Type: reflect.TypeFor[Tagged2](), Anonymous: true},
})

func corpus() []reflect.Type {
	return []reflect.Type{
		reflect.TypeFor[Ambiguous](), reflect.TypeFor[AmbiguousTop](), reflect.TypeFor[TaggedWins](),
		bothTagged, reflect.TypeFor[Shallow](), reflect.TypeFor[UnexportedEmbed](),
		reflect.TypeFor[UnexportedPtr](), reflect.TypeFor[ExportedPtr](), reflect.TypeFor[NamedEmbed](),
		reflect.TypeFor[Cycle](), reflect.TypeFor[Options](), reflect.TypeFor[Deep](), reflect.TypeFor[Folded](),
	}
}

// typeGen makes random struct types with reflect.StructOf: names from a
// small pool (so that they collide at every depth), tags with names,
// omitempty, omitzero, string, "-", "-," and invalid names, unexported
// fields, embedded structs (reused, so that one type is embedded through
// several paths), by value or behind a pointer, and nested structs.
type typeGen struct {
	r    *rand.Rand
	pool []reflect.Type
}

var (
	goNames  = []string{"A", "B", "X", "Y", "Ab", "AB", "K"}
	tagNames = []string{"a", "A", "x", "X", "ab", "aB", "y", "K", "k", "a'b", "-", "with space", "é", ""}
	tagOpts  = []string{"", ",omitempty", ",omitzero", ",string", ",omitempty,string"}
	leaves   = []reflect.Type{
		reflect.TypeFor[int](), reflect.TypeFor[string](), reflect.TypeFor[bool](), reflect.TypeFor[float64](),
		reflect.TypeFor[*int](), reflect.TypeFor[[]int](), reflect.TypeFor[map[string]int](), reflect.TypeFor[*string](),
		reflect.TypeFor[uint8](), reflect.TypeFor[[]byte](), reflect.TypeFor[Leaf](), reflect.TypeFor[[2]string](),
		reflect.TypeFor[Inner](), reflect.TypeFor[*Inner](), reflect.TypeFor[time.Time](), reflect.TypeFor[*time.Time](),
	}
)

func (g *typeGen) structType(depth int) reflect.Type {
	var fields []reflect.StructField
	used := map[string]bool{}
	for i := range 1 + g.r.IntN(5) {
		var sf reflect.StructField
		switch c := g.r.IntN(10); {
		case c < 3 && depth > 0:
			var et reflect.Type
			if len(g.pool) > 0 && g.r.IntN(2) == 0 {
				et = g.pool[g.r.IntN(len(g.pool))]
			} else {
				et = g.structType(depth - 1)
			}
			if g.r.IntN(3) == 0 {
				et = reflect.PointerTo(et)
			}
			sf = reflect.StructField{Name: "E" + strconv.Itoa(g.r.IntN(3)), Type: et, Anonymous: true}
			if g.r.IntN(6) == 0 {
				sf.Name, sf.Type = "Leaf", reflect.TypeFor[Leaf]()
			}
		case c < 4:
			sf = reflect.StructField{Name: "u" + strconv.Itoa(i), PkgPath: "example.com/gen", Type: leaves[g.r.IntN(len(leaves))]}
		default:
			sf = reflect.StructField{Name: goNames[g.r.IntN(len(goNames))], Type: leaves[g.r.IntN(len(leaves))]}
			if depth > 0 && g.r.IntN(4) == 0 {
				sf.Type = g.structType(depth - 1)
				switch g.r.IntN(3) {
				case 0:
					sf.Type = reflect.PointerTo(sf.Type)
				case 1:
					sf.Type = reflect.SliceOf(sf.Type)
				}
			}
		}
		if g.r.IntN(5) < 2 {
			name := tagNames[g.r.IntN(len(tagNames))]
			if name == "-" && g.r.IntN(2) == 0 {
				name = "-,"
			}
			sf.Tag = reflect.StructTag(`json:"` + name + tagOpts[g.r.IntN(len(tagOpts))] + `"`)
		}
		if used[sf.Name] {
			continue
		}
		used[sf.Name] = true
		fields = append(fields, sf)
	}
	t := reflect.StructOf(fields)
	g.pool = append(g.pool, t)
	return t
}

// filler sets distinct non-zero values everywhere it can: numbers and
// strings from a counter, one element in each slice and map, every
// settable pointer allocated. With zeros set, it leaves some values zero
// (for omitempty and omitzero) and some pointers nil.
type filler struct {
	n     int
	zeros *rand.Rand
}

func (fl *filler) fill(v reflect.Value, depth int) {
	if fl.zeros != nil && fl.zeros.IntN(4) == 0 {
		return
	}
	fl.n++
	if v.Type() == timeType {
		// A time that IsZero although reflect finds it non-zero (its
		// location is set): omitzero asks IsZero.
		tm := time.Time{}.In(time.FixedZone("z", 3600))
		if fl.zeros == nil || fl.zeros.IntN(2) == 0 {
			tm = time.Unix(int64(fl.n), 0).UTC()
		}
		v.Set(reflect.ValueOf(tm))
		return
	}
	switch v.Kind() {
	case reflect.Int, reflect.Int64:
		v.SetInt(int64(fl.n))
	case reflect.Uint8:
		v.SetUint(uint64(fl.n%250 + 1))
	case reflect.Float64:
		v.SetFloat(float64(fl.n) + 0.5)
	case reflect.Bool:
		v.SetBool(true)
	case reflect.String:
		v.SetString("s" + strconv.Itoa(fl.n))
	case reflect.Pointer:
		if depth > 4 || !v.CanSet() {
			return
		}
		v.Set(reflect.New(v.Type().Elem()))
		fl.fill(v.Elem(), depth+1)
	case reflect.Slice:
		if depth > 4 {
			return
		}
		v.Set(reflect.MakeSlice(v.Type(), 1, 1))
		fl.fill(v.Index(0), depth+1)
	case reflect.Array:
		for i := range v.Len() {
			fl.fill(v.Index(i), depth+1)
		}
	case reflect.Map:
		v.Set(reflect.MakeMap(v.Type()))
		e := reflect.New(v.Type().Elem()).Elem()
		fl.fill(e, depth+1)
		v.SetMapIndex(reflect.ValueOf("k"+strconv.Itoa(fl.n)), e)
	case reflect.Struct:
		for i := range v.NumField() {
			// (The exported fields of an unexported embedded struct are
			// settable; the struct itself is not.)
			if f := v.Field(i); f.CanSet() || (v.Type().Field(i).Anonymous && f.Kind() == reflect.Struct) {
				fl.fill(f, depth+1)
			}
		}
	}
}

// members returns the member names of a JSON object in order, and their
// values.
func members(t *testing.T, raw []byte) ([]string, map[string]json.RawMessage) {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(raw))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		t.Fatalf("not an object: %s", raw)
	}
	var names []string
	vals := map[string]json.RawMessage{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			t.Fatal(err)
		}
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			t.Fatal(err)
		}
		names = append(names, tok.(string))
		vals[tok.(string)] = v
	}
	return names, vals
}

// checkWritten compares the members Fields says are written in v with
// those json.Marshal wrote (raw), in order, and recurses into struct
// values.
func checkWritten(t *testing.T, v reflect.Value, raw []byte, path string) {
	t.Helper()
	for v.Kind() == reflect.Pointer || v.Kind() == reflect.Interface {
		if v.IsNil() {
			return
		}
		v = v.Elem()
	}
	switch v.Kind() {
	case reflect.Struct:
		if mayMarshalItself(v.Type()) {
			return
		}
		gotNames, vals := members(t, raw)
		var want []string
		var written []reflect.Value
		var quoted []bool
		for _, f := range Fields(v.Type()) {
			if fv, ok := f.Written(v); ok {
				want = append(want, f.Name)
				written = append(written, fv)
				quoted = append(quoted, f.Quoted)
			}
		}
		if !slices.Equal(want, gotNames) {
			t.Fatalf("%s (%s): Fields writes %q, encoding/json wrote %q (%s)", path, v.Type(), want, gotNames, raw)
		}
		for i, name := range want {
			if !quoted[i] {
				checkWritten(t, written[i], vals[name], path+"."+name)
			}
		}
	case reflect.Slice, reflect.Array:
		if byteSlice(v.Type()) {
			return
		}
		var elems []json.RawMessage
		if err := json.Unmarshal(raw, &elems); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		for i := range v.Len() {
			checkWritten(t, v.Index(i), elems[i], path+"["+strconv.Itoa(i)+"]")
		}
	}
}

// checkAccepted decodes one member at a time into a new value of struct
// type st and checks that the field Fields matches the name with
// (structInfo.lookup) is the one encoding/json set, and the only one.
func checkAccepted(t *testing.T, st reflect.Type, raw []byte) {
	t.Helper()
	info := infoOf(st)
	_, vals := members(t, raw)
	rawOf := func(f Field) json.RawMessage {
		if r, ok := vals[f.Name]; ok {
			return r
		}
		v := reflect.New(f.Type).Elem()
		(&filler{}).fill(v, 0)
		b, err := json.Marshal(v.Interface())
		if err != nil {
			t.Fatal(err)
		}
		if f.Quoted {
			b, _ = json.Marshal(string(b))
		}
		return b
	}
	changed := func(dst reflect.Value) []string {
		var out []string
		for _, f := range info.fields {
			if fv, ok := f.Value(dst); ok && !fv.IsZero() {
				out = append(out, f.Name)
			}
		}
		return out
	}
	for _, name := range candidateNames(st) {
		doc := func(r json.RawMessage) []byte {
			k, _ := json.Marshal(name)
			return []byte("{" + string(k) + ":" + string(r) + "}")
		}
		if i := info.lookup([]byte(name)); i >= 0 {
			f := info.fields[i]
			dst := reflect.New(st)
			err := json.Unmarshal(doc(rawOf(f)), dst.Interface())
			if f.Unsettable {
				if err == nil || !strings.Contains(err.Error(), "cannot set embedded pointer") {
					t.Fatalf("%s: %q into %s (behind an unexported embedded pointer): err %v, want encoding/json's refusal", st, name, f.Name, err)
				}
				continue
			}
			if err != nil {
				t.Fatalf("%s: %q, which Fields matches with %s, does not decode: %v", st, name, f.Name, err)
			}
			got := changed(dst.Elem())
			if len(got) == 0 && decodesToZero(rawOf(f), f) {
				continue // {} into a struct of unexported fields, say: nothing to see
			}
			if !slices.Equal(got, []string{f.Name}) {
				t.Fatalf("%s: %s set %q; Fields matches it with %q (%+v)", st, doc(rawOf(f)), got, f.Name, f)
			}
			continue
		}
		for _, f := range info.fields {
			dst := reflect.New(st)
			if err := json.Unmarshal(doc(rawOf(f)), dst.Interface()); err != nil {
				t.Fatalf("%s: %q, no member for Fields, fails to decode with %s's value: %v", st, name, f.Name, err)
			}
			if got := changed(dst.Elem()); len(got) > 0 {
				t.Fatalf("%s: %q, no member for Fields, set %q", st, name, got)
			}
		}
	}
}

// decodesToZero reports whether raw, the value of member f, decodes to the
// zero value of its type.
func decodesToZero(raw json.RawMessage, f Field) bool {
	if string(raw) == "null" {
		return true
	}
	if f.Quoted {
		var s string
		if json.Unmarshal(raw, &s) != nil {
			return false
		}
		raw = json.RawMessage(s)
	}
	v := reflect.New(f.Type)
	return json.Unmarshal(raw, v.Interface()) == nil && v.Elem().IsZero()
}

// candidateNames returns the names worth trying on st: its members, their
// case variants, and every Go name and tag name of its fields and of the
// structs it embeds.
func candidateNames(st reflect.Type) []string {
	set := map[string]bool{"-": true, "": true}
	var walk func(t reflect.Type, depth int)
	walk = func(t reflect.Type, depth int) {
		if t.Kind() == reflect.Pointer {
			t = t.Elem()
		}
		if t.Kind() != reflect.Struct || depth > 6 {
			return
		}
		for i := range t.NumField() {
			sf := t.Field(i)
			set[sf.Name] = true
			if n, _, _ := strings.Cut(sf.Tag.Get("json"), ","); n != "" {
				set[n] = true
			}
			if sf.Anonymous {
				walk(sf.Type, depth+1)
			}
		}
	}
	walk(st, 0)
	for _, f := range Fields(st) {
		set[f.Name] = true
	}
	for n := range set {
		set[strings.ToUpper(n)], set[strings.ToLower(n)] = true, true
		if r, size := utf8.DecodeRuneInString(n); size > 0 {
			set[string(unicode.SimpleFold(r))+n[size:]] = true
		}
	}
	out := make([]string, 0, len(set))
	for n := range set {
		out = append(out, n)
	}
	slices.Sort(out)
	return out
}

// structsIn returns the struct types reached from t by members,
// elements and pointers, t included.
func structsIn(t reflect.Type, seen map[reflect.Type]bool) {
	for t.Kind() == reflect.Pointer || t.Kind() == reflect.Slice || t.Kind() == reflect.Array || t.Kind() == reflect.Map {
		t = t.Elem()
	}
	if t.Kind() != reflect.Struct || seen[t] || mayMarshalItself(t) {
		return
	}
	seen[t] = true
	for _, f := range Fields(t) {
		structsIn(f.Type, seen)
	}
}

func checkAgainstStdlib(t *testing.T, typ reflect.Type, seed uint64) {
	t.Helper()
	v := reflect.New(typ).Elem()
	(&filler{}).fill(v, 0)
	raw, err := json.Marshal(v.Interface())
	if err != nil {
		t.Fatalf("%s: %v", typ, err)
	}
	checkWritten(t, v, raw, typ.String())
	// With empty values and nil pointers here and there: omitempty,
	// omitzero and nil embedded pointers.
	for i := range 3 {
		z := reflect.New(typ).Elem()
		(&filler{zeros: rand.New(rand.NewPCG(seed, uint64(i)))}).fill(z, 0)
		zraw, err := json.Marshal(z.Interface())
		if err != nil {
			t.Fatalf("%s: %v", typ, err)
		}
		checkWritten(t, z, zraw, typ.String())
	}
	structs := map[reflect.Type]bool{}
	structsIn(typ, structs)
	for st := range structs {
		sv := reflect.New(st).Elem()
		(&filler{}).fill(sv, 0)
		sraw, err := json.Marshal(sv.Interface())
		if err != nil {
			t.Fatal(err)
		}
		checkAccepted(t, st, sraw)
	}
}

func TestFieldsCorpusMatchesEncodingJSON(t *testing.T) {
	for _, typ := range corpus() {
		t.Run(typ.String(), func(t *testing.T) { checkAgainstStdlib(t, typ, 1) })
	}
}

// generatedTypes is how many random types TestFieldsMatchEncodingJSON
// checks, each with the struct types it holds (1000 make about 3,500).
var (
	generatedTypes = flag.Int("fields.types", 1000, "random struct types TestFieldsMatchEncodingJSON checks against encoding/json")
	generatorSeed  = flag.Uint64("fields.seed", 27, "seed of TestFieldsMatchEncodingJSON's types")
)

func TestFieldsMatchEncodingJSON(t *testing.T) {
	n := *generatedTypes
	if testing.Short() {
		n /= 10
	}
	g := &typeGen{r: rand.New(rand.NewPCG(*generatorSeed, 3))}
	for i := range n {
		typ := g.structType(3)
		if len(g.pool) > 200 {
			g.pool = g.pool[len(g.pool)-100:]
		}
		checkAgainstStdlib(t, typ, uint64(i))
		if t.Failed() {
			return
		}
	}
}

// The examples of issue 27: the same struct embedded through two paths at
// one depth gives no member X (encoding/json drops it as ambiguous), so a
// stored member "X" is unknown and kept.
func TestAmbiguousMemberIsUnknown(t *testing.T) {
	f := New(nil, reflect.TypeFor[Ambiguous]())
	if got := Fields(reflect.TypeFor[Ambiguous]()); len(got) != 0 {
		t.Fatalf("Fields(Ambiguous) = %+v, want none", got)
	}
	prev := []byte(`{"X":5}`)
	if got := f.Unknown(prev); !slices.Equal(got, []string{"X"}) {
		t.Fatalf("Unknown = %q, want [X]", got)
	}
	var v Ambiguous
	if err := f.Unmarshal(nil, nil, prev, &v); err != nil || v.B1.X != 0 || v.B2.X != 0 {
		t.Fatalf("Unmarshal = %+v, %v; want nothing set", v, err)
	}
	next, err := f.AppendPayload(nil, &v)
	if err != nil {
		t.Fatal(err)
	}
	merged, err := f.Merge(prev, next)
	if err != nil || string(merged) != `{"X":5}` {
		t.Fatalf("Merge = %s, %v; want the member kept", merged, err)
	}
}

func TestFieldsExamples(t *testing.T) {
	for _, tc := range []struct {
		typ  reflect.Type
		want string // name:index path, in order
	}{
		{reflect.TypeFor[Ambiguous](), ""},
		{reflect.TypeFor[AmbiguousTop](), "x2:[2]"},
		{reflect.TypeFor[TaggedWins](), "V:[0 0]"},
		{bothTagged, ""},
		{reflect.TypeFor[Shallow](), "V:[1]"},
		{reflect.TypeFor[UnexportedEmbed](), "X:[0 0] y:[0 1] Leaf:[2] W:[3]"},
		{reflect.TypeFor[UnexportedPtr](), "X:[0 0]! y:[0 1]! W:[1]"},
		{reflect.TypeFor[NamedEmbed](), "in:[0] W:[1]"},
		{reflect.TypeFor[Cycle](), "N:[1] next:[2]"},
		{reflect.TypeFor[Options](), "I:[0]\" p:[1]\" s:[2] Bad:[3] -:[4] K:[6] k2:[7] with space:[8] om:[9] oz:[10] ozp:[11] f:[12]\""},
		{reflect.TypeFor[Folded](), "ab:[0] AB:[1] aB:[2]"},
	} {
		var got []string
		for _, f := range Fields(tc.typ) {
			s := fmt.Sprintf("%s:%v", f.Name, f.Index)
			if f.Unsettable {
				s += "!"
			}
			if f.Quoted {
				s += `"`
			}
			got = append(got, s)
		}
		if g := strings.Join(got, " "); g != tc.want {
			t.Errorf("Fields(%s) = %s\nwant %s", tc.typ, g, tc.want)
		}
	}
	// Folded: "AB" is exact; "Ab" folds to the first in index order.
	info := infoOf(reflect.TypeFor[Folded]())
	for key, want := range map[string]string{"ab": "ab", "AB": "AB", "aB": "aB", "Ab": "ab", "k": ""} {
		got := ""
		if i := info.lookup([]byte(key)); i >= 0 {
			got = info.fields[i].Name
		}
		if got != want {
			t.Errorf("lookup(%q) = %q, want %q", key, got, want)
		}
	}
}
