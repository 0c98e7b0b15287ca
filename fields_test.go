package session_test

import (
	"context"
	"errors"
	"math"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/typedsession/session"
)

// What Save checks is what encoding/json writes, decided by one walk of
// the type's fields (internal/format.Fields): issue 27's examples 2 and 3.

// Person's Born is never stored: a time in a zone whose offset has seconds
// (local mean time before about 1900), which JSON could not keep, is no
// reason to refuse a Save.
type Person struct {
	Name string    `json:"name"`
	Born time.Time `json:"-"`
	born time.Time
	// Seen is left out when zero (omitzero asks time.Time.IsZero), even in
	// such a zone.
	Seen time.Time `json:"seen,omitzero"`
}

func TestSaveChecksOnlyWhatIsStored(t *testing.T) {
	ams, err := time.LoadLocation("Europe/Amsterdam")
	if err != nil {
		t.Skipf("no time zone database: %v", err)
	}
	born := time.Date(1850, 3, 1, 12, 0, 0, 0, ams)
	if _, off := born.Zone(); off%60 == 0 {
		t.Fatalf("Amsterdam in 1850 has offset %ds, want one with seconds", off)
	}
	ctx := t.Context()
	m := newManager(t, session.Config[Person]{Store: newMem(t), Namespace: "p"})
	if _, err := m.Update(ctx, "1", func(p *Person) error {
		p.Name, p.Born, p.born, p.Seen = "Ada", born, born, time.Time{}.In(ams)
		return nil
	}); err != nil {
		t.Fatalf("Update with a time that is never stored = %v, want nil", err)
	}
	s, err := m.Load(ctx, "1")
	if err != nil {
		t.Fatal(err)
	}
	if s.Data.Name != "Ada" || !s.Data.Born.IsZero() || !s.Data.Seen.IsZero() {
		t.Fatalf("Load = %+v, want the name and a zero Born", s.Data)
	}
	// A stored time in such a zone is still refused, naming the field.
	_, err = m.Update(ctx, "1", func(p *Person) error { p.Seen = born; return nil })
	if !errors.Is(err, session.ErrInvalid) || !strings.Contains(err.Error(), "Seen") {
		t.Fatalf("Update storing the time = %v, want ErrInvalid naming Seen", err)
	}
}

// A value left out by encoding/json is not what makes an encoding fail:
// the error names the field that does.
type hiddenNaN struct {
	F float64   `json:"-"`
	T time.Time `json:"t"`
}

func TestUnencodableNamesTheStoredField(t *testing.T) {
	m := newManager(t, session.Config[hiddenNaN]{Store: newMem(t), Namespace: "n"})
	_, err := m.Update(t.Context(), "1", func(v *hiddenNaN) error {
		v.F, v.T = math.NaN(), time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)
		return nil
	})
	if !errors.Is(err, session.ErrInvalid) || !strings.Contains(err.Error(), "T is a time in the year 10000") {
		t.Fatalf("Update = %v, want ErrInvalid naming T", err)
	}
}

type (
	Embedded struct{ X int }
	Path1    struct{ Embedded }
	Path2    struct{ Embedded }
	// TwoPaths embeds Embedded through two paths at one depth: its X is
	// ambiguous, and encoding/json neither writes nor reads it.
	TwoPaths struct {
		Path1
		Path2
		N int `json:"n"`
	}
	withX struct {
		X int
		N int `json:"n"`
	}
)

func TestAmbiguousMemberIsReportedAndKept(t *testing.T) {
	ctx := t.Context()
	st := newMem(t)
	old := newManager(t, session.Config[withX]{Store: st, Namespace: "a"})
	if _, err := old.Update(ctx, "1", func(v *withX) error { v.X, v.N = 5, 1; return nil }); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var unknown []string
	m := newManager(t, session.Config[TwoPaths]{Store: st, Namespace: "a", Hook: func(_ context.Context, e session.Event) {
		mu.Lock()
		defer mu.Unlock()
		unknown = append(unknown, e.Extra...)
	}})
	got, err := m.Update(ctx, "1", func(v *TwoPaths) error { v.N++; return nil })
	if err != nil || got.N != 2 || got.Path1.X != 0 || got.Path2.X != 0 {
		t.Fatalf("Update = %+v, %v", got, err)
	}
	mu.Lock()
	if !slices.Equal(unknown, []string{"X"}) {
		t.Errorf("reported unknown members %q, want [X]", unknown)
	}
	mu.Unlock()
	raw, err := st.Get(ctx, "a:1")
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"typedsession":1,"data":{"X":5,"n":2}}`; stripWrites(raw) != want {
		t.Fatalf("stored %s, want %s (X kept)", stripWrites(raw), want)
	}
	if back, err := old.Load(ctx, "1"); err != nil || back.Data != (withX{X: 5, N: 2}) {
		t.Fatalf("the older type loads %+v, %v; want X kept", back, err)
	}
	strict := newManager(t, session.Config[TwoPaths]{Store: st, Namespace: "a", ExtraMembers: session.RejectExtra})
	if _, err := strict.Load(ctx, "1"); !errors.Is(err, session.ErrCorrupt) || !strings.Contains(err.Error(), "X") {
		t.Fatalf("RejectExtra Load = %v, want ErrCorrupt naming X", err)
	}
}

// A session type that JSON stores as {} although it holds data (every
// field unexported) is refused at New, as it is with every codec (see
// codec/codectest), and so is one whose data Load would not read back (an
// embedded UnmarshalJSON that takes the whole value, a field behind an
// embedded pointer to an unexported struct); one with no fields at all, or
// whose fields are all tagged "-", is taken as meant.
type (
	cart   struct{ items []string }
	secret struct{ Code int }
	// Decoder decodes itself; a struct that embeds it decodes as it alone.
	Decoder     struct{ V string }
	withDecoder struct {
		Decoder
		N int
	}
)

func (d *Decoder) UnmarshalJSON(b []byte) error { d.V = string(b); return nil }

func TestNewRefusesTypesThatLoseData(t *testing.T) {
	st := newMem(t)
	for name, err := range map[string]error{
		"only unexported fields": func() error {
			_, err := session.New(session.Config[cart]{Store: st})
			return err
		}(),
		"a field whose type has only unexported fields": func() error {
			_, err := session.New(session.Config[struct{ Cart cart }]{Store: st})
			return err
		}(),
		"a map of them": func() error {
			_, err := session.New(session.Config[struct{ Carts map[string]*cart }]{Store: st})
			return err
		}(),
		"an embedded UnmarshalJSON that would decode the whole value": func() error {
			_, err := session.New(session.Config[withDecoder]{Store: st})
			return err
		}(),
		"an embedded pointer to an unexported struct": func() error {
			_, err := session.New(session.Config[struct {
				*secret
				N int
			}]{Store: st})
			return err
		}(),
	} {
		if err == nil || !strings.Contains(err.Error(), "cannot be stored") {
			t.Errorf("%s: New = %v, want a refusal", name, err)
		}
	}
	for name, err := range map[string]error{
		"no fields": func() error { _, err := session.New(session.Config[struct{}]{Store: st}); return err }(),
		"fields all tagged -": func() error {
			_, err := session.New(session.Config[struct {
				A int `json:"-"`
			}]{Store: st})
			return err
		}(),
		"unexported fields beside stored ones": func() error {
			_, err := session.New(session.Config[struct {
				N     int
				cache []string
			}]{Store: st})
			return err
		}(),
		"an embedded mutex beside stored fields": func() error {
			_, err := session.New(session.Config[struct {
				sync.Mutex
				N int
			}]{Store: st})
			return err
		}(),
		"the ambiguous type": func() error { _, err := session.New(session.Config[TwoPaths]{Store: st}); return err }(),
	} {
		if err != nil {
			t.Errorf("%s: New = %v, want nil", name, err)
		}
	}
}
