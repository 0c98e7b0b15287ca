package format

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
)

// The unknown-member merge is checked against encoding/json through the
// eyes of a newer binary: mT is the session type, wT the same type with
// members mT lacks at every level (x). A payload stored by the newer
// binary is loaded as mT, changed (n+1) and merged back; decoded as wT the
// result must be the stored data decoded as wT with that change and no
// other: no member of wT lost, changed or shadowed by a duplicate that
// encoding/json reads as another one.

type (
	mSub struct {
		V int `json:"v"`
	}
	mItem struct {
		Name string `json:"name"`
		Sub  *mSub  `json:"sub,omitempty"`
	}
	mEmb struct{ E int }
	mT   struct {
		N     int              `json:"n"`
		P     mSub             `json:"p"`
		Items []mItem          `json:"items"`
		ByNum map[int]mItem    `json:"bynum"`
		ByStr map[string]mItem `json:"bystr"`
		Q     mSub             `json:"q,omitzero"`
		mEmb
	}

	wSub struct {
		V int `json:"v"`
		X int `json:"x"`
	}
	wItem struct {
		Name string `json:"name"`
		Sub  *wSub  `json:"sub,omitempty"`
		X    int    `json:"x"`
	}
	wEmb struct {
		E int
		X int `json:"ex"`
	}
	wT struct {
		N     int              `json:"n"`
		P     wSub             `json:"p"`
		Items []wItem          `json:"items"`
		ByNum map[int]wItem    `json:"bynum"`
		ByStr map[string]wItem `json:"bystr"`
		Q     wSub             `json:"q,omitzero"`
		wEmb
		X int `json:"x"`
	}
)

// docGen writes a JSON object for mT/wT from a byte stream: member names
// from a pool of spellings (case variants, escapes, duplicates).
type docGen struct {
	b []byte
	i int
}

func (g *docGen) next(n int) int {
	if g.i >= len(g.b) {
		return 0
	}
	c := int(g.b[g.i])
	g.i++
	return c % n
}

func (g *docGen) pick(names ...string) string { return names[g.next(len(names))] }

func (g *docGen) num() string { return []string{"1", "2", "3", "0", "null", "-4"}[g.next(6)] }

func (g *docGen) object(member func() string) string {
	n := g.next(5)
	parts := make([]string, 0, n)
	for range n {
		parts = append(parts, member())
	}
	return "{" + strings.Join(parts, ",") + "}"
}

func (g *docGen) sub() string {
	if g.next(6) == 0 {
		return "null"
	}
	return g.object(func() string {
		return `"` + g.pick("v", "V", `\u0076`, "x", "X", `\u0078`) + `":` + g.num()
	})
}

func (g *docGen) item() string {
	if g.next(8) == 0 {
		return "null"
	}
	return g.object(func() string {
		switch g.next(3) {
		case 0:
			return `"` + g.pick("name", "Name", "NAME", `n\u0061me`) + `":"` + g.pick("a", "b", "c") + `"`
		case 1:
			return `"` + g.pick("sub", "Sub", "SUB") + `":` + g.sub()
		}
		return `"` + g.pick("x", "X") + `":` + g.num()
	})
}

func (g *docGen) doc() string {
	return g.object(func() string {
		switch g.next(9) {
		case 0:
			return `"` + g.pick("n", "N", `\u006e`) + `":` + g.num()
		case 1:
			return `"` + g.pick("p", "P") + `":` + g.sub()
		case 2:
			n := g.next(4)
			items := make([]string, n)
			for i := range items {
				items[i] = g.item()
			}
			return `"` + g.pick("items", "Items", "ITEMS") + `":[` + strings.Join(items, ",") + "]"
		case 3:
			return `"` + g.pick("bynum", "ByNum") + `":` + g.object(func() string {
				return `"` + g.pick("1", "01", "+1", "2", "-0", "0") + `":` + g.item()
			})
		case 4:
			return `"` + g.pick("bystr", "BYSTR") + `":` + g.object(func() string {
				return `"` + g.pick("a", "A", `\u0061`, "b", "\xff", `\ufffd`) + `":` + g.item()
			})
		case 5:
			return `"` + g.pick("E", "e", "ex", "EX") + `":` + g.num()
		case 6:
			return `"` + g.pick("q", "Q") + `":` + g.sub()
		}
		return `"` + g.pick("x", "X", `\u0058`) + `":` + g.num()
	})
}

func checkMergeAgainstNewer(t *testing.T, doc []byte) {
	t.Helper()
	var v mT
	var w wT
	if json.Unmarshal(doc, &v) != nil || json.Unmarshal(doc, &w) != nil {
		return
	}
	f := New(nil, reflect.TypeFor[mT]())
	v.N++
	w.N++
	next, err := f.AppendPayload(nil, &v)
	if err != nil {
		t.Fatal(err)
	}
	merged, err := f.Merge(doc, next)
	if err != nil {
		t.Fatalf("Merge(%s): %v", doc, err)
	}
	var gotV mT
	if err := json.Unmarshal(merged, &gotV); err != nil || !reflect.DeepEqual(gotV, v) {
		t.Errorf("stored %s, saved with n+1 as %s: the session type reads back\n%+v, %v\nwant\n%+v", doc, merged, gotV, err, v)
	}
	var gotW wT
	if err := json.Unmarshal(merged, &gotW); err != nil || !reflect.DeepEqual(gotW, w) {
		t.Errorf("stored %s, saved with n+1 as %s: the newer type reads back\n%+v, %v\nwant\n%+v", doc, merged, gotW, err, w)
	}
}

func FuzzMergeKeepsWhatANewerTypeReads(f *testing.F) {
	for _, s := range []string{"", "\x01\x00\x00", "\x04\x02\x03\x01\x00\x02\x01\x05\x07\x00\x01"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		g := &docGen{b: b}
		checkMergeAgainstNewer(t, []byte(g.doc()))
	})
}

func TestMergeKeepsWhatANewerTypeReads(t *testing.T) {
	for _, doc := range []string{
		`{"n":1,"x":2}`,
		`{"n":1,"X":2,"x":3}`,
		`{"p":{"v":1,"x":2},"p":{"v":3}}`,
		`{"items":[{"name":"a","x":1},{"name":"b","x":2}]}`,
		`{"bynum":{"1":{"name":"a","x":1},"01":{"name":"b"}}}`,
		`{"E":1,"ex":2}`,
		// A member stored more than once: encoding/json decodes each
		// occurrence into what the earlier ones left.
		`{"items":[],"n":1,"items":[{"x":1,"name":"a","name":"a"}]}`,
		`{"p":{"v":1},"p":{"v":3,"x":2}}`,
		`{"p":{"x":1},"p":null,"n":1}`,
		`{"bynum":{"1":{"name":"a","x":1}},"bynum":{"1":null}}`,
		`{"bystr":{"a":{"name":"a","x":1}},"bystr":{},"n":1}`,
		`{"items":[{"name":"a","x":1},{"name":"b"}],"items":[{"name":"c"}]}`,
		// Elements with equal known data: the one in place keeps its own
		// members; an element's duplicate members read last-wins.
		`{"items":[{"name":"a"},{"x":1,"name":"a"}],"n":1}`,
		`{"items":[{"name":"b","name":"a"},{"Name":"b","x":3,"name":"a"}]}`,
		// A member the type reads as a value it leaves out (omitzero)
		// keeps the members it holds that the type does not have.
		`{"q":{"x":5},"n":1}`,
		`{"q":{"v":0,"x":5},"Q":{"x":6}}`,
		`{"q":{"v":1,"x":5},"q":{"v":0}}`,
	} {
		checkMergeAgainstNewer(t, []byte(doc))
	}
}
