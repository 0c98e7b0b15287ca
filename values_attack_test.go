package session_test

// Tests for the faults an outside attack on the values work found: each
// lost or changed data, or refused a valid value.

import (
	"context"
	"encoding/json"
	"errors"
	"math"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/typedsession/session"
	"github.com/typedsession/session/migrate"
	"github.com/typedsession/session/store"
)

type Lang struct {
	Language string `json:"language"`
	N        int    `json:"n"`
}

func TestUnknownMembersSurviveMigrationAndMove(t *testing.T) {
	ctx := t.Context()
	plan := migrate.MustNew(migrate.Raw(1, func(map[string]any) error { return nil }))
	st := newMem(t)
	m := newManager(t, session.Config[Lang]{Store: st, Namespace: "t", Migrations: plan})
	stored := `{"typedsession":1,"data":{"lang":"fr","n":1}}`
	check := func(key string) {
		t.Helper()
		raw, err := st.Get(ctx, key)
		if err != nil || !strings.Contains(string(raw), `"lang":"fr"`) {
			t.Fatalf("%s: stored %s, %v: the member lang was lost", key, raw, err)
		}
	}
	// An unchanged session saved at a newer version.
	st.Set(ctx, "t:a", []byte(stored), 0)
	s, _ := m.Load(ctx, "a")
	if err := m.Save(ctx, s); err != nil {
		t.Fatal(err)
	}
	check("t:a")
	// MigrateAll.
	st.Set(ctx, "t:b", []byte(stored), 0)
	if r, err := m.MigrateAll(ctx, session.MigrateOptions{}); err != nil || r.Extra == 0 {
		t.Fatalf("MigrateAll = %+v, %v", r, err)
	}
	check("t:b")
	// MoveTo of an unchanged session.
	st.Set(ctx, "t:c", []byte(`{"typedsession":2,"data":{"lang":"fr","n":1}}`), 0)
	s, _ = m.Load(ctx, "c")
	s.MoveTo("c2")
	if err := m.Save(ctx, s); err != nil {
		t.Fatal(err)
	}
	check("t:c2")
}

type Node struct {
	Name string  `json:"name"`
	Kids []*Node `json:"kids"`
}

type Tree struct {
	Root *Node `json:"root"`
	N    int   `json:"n"`
}

func TestUnknownMembersInRecursiveTypes(t *testing.T) {
	ctx := t.Context()
	st := newMem(t)
	st.Set(ctx, "t:k", []byte(`{"typedsession":1,"data":{"root":{"name":"r","kids":[{"name":"k","kids":null,"extra":"kid"}]},"n":0}}`), 0)
	m := newManager(t, session.Config[Tree]{Store: st, Namespace: "t"})
	if _, err := m.Update(ctx, "k", func(tr *Tree) error { tr.N++; return nil }); err != nil {
		t.Fatal(err)
	}
	if raw, _ := st.Get(ctx, "t:k"); !strings.Contains(string(raw), `"extra":"kid"`) {
		t.Fatalf("stored %s: the member of a kid was lost", raw)
	}
	strict := newManager(t, session.Config[Tree]{Store: st, Namespace: "t", ExtraMembers: session.RejectExtra})
	if _, err := strict.Load(ctx, "k"); err == nil || !strings.Contains(err.Error(), "root.kids[0].extra") {
		t.Fatalf("RejectExtra = %v, want it to name root.kids[0].extra", err)
	}
}

type Item struct {
	ID int `json:"id"`
}

type Cart struct {
	Items []Item `json:"items"`
}

func TestUnknownMembersFollowTheirElements(t *testing.T) {
	ctx := t.Context()
	st := newMem(t)
	m := newManager(t, session.Config[Cart]{Store: st, Namespace: "t"})
	for _, tc := range []struct {
		name string
		fn   func(*Cart)
		want string
	}{
		{"reversed", func(c *Cart) { slices.Reverse(c.Items) }, `[{"id":2,"note":"for id 2"},{"id":1,"note":"for id 1"}]`},
		{"first removed, one appended", func(c *Cart) { c.Items = append(c.Items[1:], Item{ID: 3}) }, `[{"id":2,"note":"for id 2"},{"id":3}]`},
		{"edited in place", func(c *Cart) { c.Items[0].ID = 9 }, `[{"id":9,"note":"for id 1"},{"id":2,"note":"for id 2"}]`},
		{"appended", func(c *Cart) { c.Items = append(c.Items, Item{ID: 3}) }, `[{"id":1,"note":"for id 1"},{"id":2,"note":"for id 2"},{"id":3}]`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st.Set(ctx, "t:k", []byte(`{"typedsession":1,"data":{"items":[{"id":1,"note":"for id 1"},{"id":2,"note":"for id 2"}]}}`), 0)
			if _, err := m.Update(ctx, "k", func(c *Cart) error { tc.fn(c); return nil }); err != nil {
				t.Fatal(err)
			}
			raw, _ := st.Get(ctx, "t:k")
			if want := `{"typedsession":1,"data":{"items":` + tc.want + `}}`; stripWrites(raw) != want {
				t.Fatalf("stored\n got %s\nwant %s", stripWrites(raw), want)
			}
		})
	}
}

// Basket's MarshalJSON adds a computed member.
type Basket struct {
	Prices []int `json:"prices"`
}

func (b Basket) MarshalJSON() ([]byte, error) {
	type alias Basket
	sum := 0
	for _, p := range b.Prices {
		sum += p
	}
	return json.Marshal(struct {
		alias
		Total int `json:"total"`
	}{alias(b), sum})
}

type Shop struct {
	Basket Basket `json:"basket"`
}

type Inner struct {
	X struct{ A int } `json:"x"`
}

// Shadow's X hides Inner.X, as encoding/json's rules say.
type Shadow struct {
	Inner
	X map[string]int `json:"x"`
}

type Amb1 struct{ Name string }
type Amb2 struct{ Name string }

// Ambiguous has two embedded Name fields: encoding/json ignores both.
type Ambiguous struct {
	Amb1
	Amb2
	N int `json:"n"`
}

func TestComputedShadowedAndAmbiguousMembers(t *testing.T) {
	ctx := t.Context()
	st := newMem(t)
	shop := newManager(t, session.Config[Shop]{Store: st, Namespace: "shop"})
	for i := range 4 {
		if _, err := shop.Update(ctx, "k", func(s *Shop) error { s.Basket.Prices = append(s.Basket.Prices, 10*(i+1)); return nil }); err != nil {
			t.Fatal(err)
		}
	}
	if raw, _ := st.Get(ctx, "shop:k"); strings.Count(string(raw), `"total"`) != 1 {
		t.Fatalf("a computed member repeated: %s", raw)
	}
	sh := newManager(t, session.Config[Shadow]{Store: st, Namespace: "sh"})
	sh.Update(ctx, "k", func(s *Shadow) error { s.X = map[string]int{"foo": 1, "bar": 2}; return nil })
	got, err := sh.Update(ctx, "k", func(s *Shadow) error { delete(s.X, "foo"); return nil })
	if err != nil || len(got.X) != 1 {
		t.Fatalf("after delete: %+v, %v", got, err)
	}
	if raw, _ := st.Get(ctx, "sh:k"); strings.Contains(string(raw), "foo") {
		t.Fatalf("a deleted map entry came back: %s", raw)
	}
	st.Set(ctx, "amb:k", []byte(`{"typedsession":1,"data":{"Name":"kept?","n":1}}`), 0)
	amb := newManager(t, session.Config[Ambiguous]{Store: st, Namespace: "amb"})
	if _, err := amb.Update(ctx, "k", func(a *Ambiguous) error { a.N++; return nil }); err != nil {
		t.Fatal(err)
	}
	if raw, _ := st.Get(ctx, "amb:k"); !strings.Contains(string(raw), `"Name":"kept?"`) {
		t.Fatalf("an ambiguous member was dropped: %s", raw)
	}
}

// lostDelete executes a compare-and-delete and then loses its reply once.
type lostDelete struct {
	store.Store
	fails int
}

func (l *lostDelete) CompareAndSwap(ctx context.Context, key string, old, value []byte, ttl time.Duration) (bool, error) {
	return l.Store.(store.Swapper).CompareAndSwap(ctx, key, old, value, ttl)
}

func (l *lostDelete) CompareAndDelete(ctx context.Context, key string, old []byte) (bool, error) {
	ok, err := l.Store.(store.Deleter).CompareAndDelete(ctx, key, old)
	if err == nil && l.fails > 0 {
		l.fails--
		return false, errors.New("connection reset by peer")
	}
	return ok, err
}

func TestMoveAndDestroyThroughALostReply(t *testing.T) {
	ctx := t.Context()
	st := newMem(t)
	ld := &lostDelete{Store: st}
	m := newManager(t, session.Config[Quiz]{Store: ld, Namespace: "c"})
	m.Update(ctx, "old", func(q *Quiz) error { q.Score = 5; return nil })
	s, _ := m.Load(ctx, "old")
	s.MoveTo("new")
	ld.fails = 1
	// The resent delete finds the old key gone: deleted by the first
	// attempt or by another writer, which an exact delete cannot tell
	// apart (CompareAndDelete reports only its own deletes), so the
	// outcome is open; the move is never undone then.
	if err := m.Save(ctx, s); err != nil && !errors.Is(err, session.ErrOutcomeUnknown) {
		t.Fatalf("MoveTo through a lost delete reply = %v; want nil or ErrOutcomeUnknown", err)
	}
	if got, err := m.Load(ctx, "new"); err != nil || got.Data.Score != 5 {
		t.Fatalf("the moved session: %+v, %v", got, err)
	}
	s, _ = m.Load(ctx, "new")
	s.Destroy()
	ld.fails = 1
	if err := m.Save(ctx, s); err != nil {
		t.Fatalf("Destroy through a lost delete reply = %v", err)
	}
}

type StringOpt struct {
	S string `json:"s,string"`
}

type TimeKeys struct {
	M map[time.Time]int `json:"m"`
}

type Floats struct {
	F float64 `json:"f"`
}

func TestMoreValuesThatWouldChange(t *testing.T) {
	ctx := t.Context()
	st := newMem(t)
	so := newManager(t, session.Config[StringOpt]{Store: st, Namespace: "so"})
	if _, err := so.Update(ctx, "k", func(v *StringOpt) error { v.S = "a\xffb"; return nil }); !errors.Is(err, session.ErrInvalid) {
		t.Fatalf("a ,string field with invalid UTF-8: %v, want ErrInvalid", err)
	}
	paris, _ := time.LoadLocation("Europe/Paris")
	tk := newManager(t, session.Config[TimeKeys]{Store: st, Namespace: "tk"})
	if paris != nil {
		old := time.Date(1890, 1, 1, 0, 0, 0, 0, paris)
		if _, off := old.Zone(); off%60 != 0 {
			if _, err := tk.Update(ctx, "k", func(v *TimeKeys) error { v.M = map[time.Time]int{old: 1}; return nil }); !errors.Is(err, session.ErrInvalid) {
				t.Fatalf("a map key with a seconds offset: %v, want ErrInvalid", err)
			}
		}
	}
	fl := newManager(t, session.Config[Floats]{Store: st, Namespace: "fl"})
	_, err := fl.Update(ctx, "k", func(v *Floats) error { v.F = math.NaN(); return nil })
	if !errors.Is(err, session.ErrInvalid) || !strings.Contains(err.Error(), "F is NaN") {
		t.Fatalf("NaN: %v, want ErrInvalid naming F", err)
	}
	ch := newManager(t, session.Config[Chat]{Store: st, Namespace: "ch"})
	st.Set(ctx, "ch:k", []byte(`{"typedsession":1,"data":{"name":"a"}}}`), 0)
	if _, err := ch.Load(ctx, "k"); !errors.Is(err, session.ErrCorrupt) {
		t.Fatalf("trailing bytes with an interface field: %v, want ErrCorrupt", err)
	}
	st.Set(ctx, "ch:w", []byte(`{"typedsession":1,"data":{"name":"a"},"writes":["AAAAAAAAAAAA"]}`), 0)
	if s, err := ch.Load(ctx, "w"); err != nil || s.Data.Name != "a" {
		t.Fatalf("an envelope with writes after data: %v, %v", s, err)
	}
}

type panicUnmarshal struct{ V int }

func (p *panicUnmarshal) UnmarshalJSON([]byte) error { panic("unmarshal bug") }

type PU struct {
	P panicUnmarshal `json:"p"`
}

func TestPanicInUnmarshalJSON(t *testing.T) {
	ctx := t.Context()
	st := newMem(t)
	st.Set(ctx, "pu:k", []byte(`{"typedsession":1,"data":{"p":1}}`), 0)
	m := newManager(t, session.Config[PU]{Store: st, Namespace: "pu"})
	if _, err := m.Load(ctx, "k"); !errors.Is(err, session.ErrCorrupt) || !strings.Contains(err.Error(), "unmarshal bug") {
		t.Fatalf("Load = %v, want ErrCorrupt with the panic", err)
	}
}

func TestWriteVersionRefusesABadDownStepOnSave(t *testing.T) {
	ctx := t.Context()
	up := func(doc map[string]any) error {
		n, _ := doc["euros"].(json.Number).Int64()
		doc["cents"] = json.Number(jsonInt(n * 100))
		delete(doc, "euros")
		return nil
	}
	forgot := migrate.MustNew(migrate.RawReversible(1, up, func(doc map[string]any) error {
		doc["euros"] = doc["cents"]
		delete(doc, "cents")
		return nil
	}))
	st := newMem(t)
	m := newManager(t, session.Config[Money]{Store: st, Namespace: "w", Migrations: forgot, WriteVersion: 1})
	if _, err := m.Update(ctx, "k", func(d *Money) error { d.Cents = 350; return nil }); !errors.Is(err, session.ErrMigration) {
		t.Fatalf("Update through a down step that does not invert up = %v, want ErrMigration", err)
	}
	if _, err := st.Get(ctx, "w:k"); !errors.Is(err, store.ErrNotFound) {
		t.Fatal("the refused value was written")
	}
}

func jsonInt(n int64) string { b, _ := json.Marshal(n); return string(b) }

type Color int

func (c Color) MarshalJSON() ([]byte, error) { return json.Marshal([]string{"red", "green"}[c%2]) }

type textOnly struct{ V int }

func (k textOnly) MarshalText() ([]byte, error) { return []byte("k"), nil }

type Ev struct {
	time.Time
	Name string
}

func TestNewRefusesTypesThatDoNotReadBack(t *testing.T) {
	st := newMem(t)
	for name, err := range map[string]error{
		"enum with MarshalJSON only": func() error {
			_, err := session.New(session.Config[struct{ C Color }]{Store: st})
			return err
		}(),
		"non-empty interface": func() error {
			_, err := session.New(session.Config[struct{ S interface{ String() string } }]{Store: st})
			return err
		}(),
		"map key with MarshalText only": func() error {
			_, err := session.New(session.Config[struct{ M map[textOnly]int }]{Store: st})
			return err
		}(),
		"embedded time.Time hides Name": func() error {
			_, err := session.New(session.Config[Ev]{Store: st})
			return err
		}(),
		"channel": func() error {
			_, err := session.New(session.Config[struct{ C chan int }]{Store: st})
			return err
		}(),
	} {
		if err == nil || !strings.Contains(err.Error(), "cannot be stored") {
			t.Errorf("%s: New = %v, want a refusal", name, err)
		}
	}
	// Types that read back are accepted.
	if _, err := session.New(session.Config[Every]{Store: st}); err != nil {
		t.Fatalf("New(Every) = %v", err)
	}
}
