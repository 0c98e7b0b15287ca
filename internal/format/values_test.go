package format

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"
)

// The value checks look only at what encoding/json writes.

// addrMarshaler writes itself by a pointer-receiver MarshalJSON, which
// encoding/json uses for an addressable value (a field of the session the
// root passes by pointer): its own S is never written.
type addrMarshaler struct{ S string }

func (*addrMarshaler) MarshalJSON() ([]byte, error) { return []byte(`"fixed"`), nil }

func (a *addrMarshaler) UnmarshalJSON([]byte) error { a.S = ""; return nil }

type lmtHolder struct {
	Note   string        `json:"note"`
	Custom addrMarshaler `json:"custom"`
	Born   time.Time     `json:"-"`
	Seen   time.Time     `json:"seen,omitzero"`
	Hidden struct {
		T time.Time
	} `json:"-"`
	B1
	B2
}

func amsterdam1850(t *testing.T) time.Time {
	t.Helper()
	ams, err := time.LoadLocation("Europe/Amsterdam")
	if err != nil {
		t.Skipf("no time zone database: %v", err)
	}
	return time.Date(1850, 3, 1, 12, 0, 0, 0, ams)
}

func TestChecksSkipWhatIsNotWritten(t *testing.T) {
	lmt := amsterdam1850(t)
	f := New(nil, reflect.TypeFor[lmtHolder]())
	v := lmtHolder{Note: "\ufffd is written as it is", Born: lmt, Seen: time.Time{}.In(lmt.Location())}
	v.Custom.S = "\xff" // not written: MarshalJSON writes "fixed"
	v.Hidden.T = lmt
	v.B1.X, v.B2.X = 1, 2 // ambiguous: not written
	out, err := f.AppendPayload(nil, &v)
	if err != nil {
		t.Fatalf("AppendPayload = %v, want nil: nothing it checks is written", err)
	}
	if want := `{"note":"` + "\ufffd" + ` is written as it is","custom":"fixed"}`; string(out) != want {
		t.Fatalf("wrote %s, want %s", out, want)
	}
	// What is written is still checked.
	v.Seen = lmt
	if _, err := f.AppendPayload(nil, &v); !errors.Is(err, ErrUnreadable) || !strings.Contains(err.Error(), "Seen is a time") {
		t.Fatalf("AppendPayload of a written LMT time = %v, want ErrUnreadable naming Seen", err)
	}
	v.Seen = time.Time{}
	v.Note = "\xff"
	if _, err := f.AppendPayload(nil, &v); !errors.Is(err, ErrUnreadable) || !strings.Contains(err.Error(), "Note holds") {
		t.Fatalf("AppendPayload of a written invalid string = %v, want ErrUnreadable naming Note", err)
	}
}

func TestSecondsOffsetInMapKeysAndElements(t *testing.T) {
	lmt := amsterdam1850(t)
	type T struct {
		ByTime map[time.Time]int                   `json:"by_time"`
		Times  []*time.Time                        `json:"times"`
		Nested map[string][]struct{ At time.Time } `json:"nested"`
	}
	f := New(nil, reflect.TypeFor[T]())
	for _, tc := range []struct {
		v    T
		path string
	}{
		{T{ByTime: map[time.Time]int{lmt: 1}}, "ByTime["},
		{T{Times: []*time.Time{nil, &lmt}}, "Times[1]"},
		{T{Nested: map[string][]struct{ At time.Time }{"k": {{At: lmt}}}}, `Nested["k"][0].At`},
	} {
		if _, err := f.AppendPayload(nil, &tc.v); !errors.Is(err, ErrUnreadable) || !strings.Contains(err.Error(), tc.path) {
			t.Errorf("AppendPayload = %v, want ErrUnreadable naming %s", err, tc.path)
		}
	}
}

// Two types that reach each other: whichever is asked first, both can
// hold a time. (The cache kept the answer of a type met again in a cycle,
// false, for good.)
type (
	cycleA struct {
		B *cycleB
		T time.Time
	}
	cycleB struct{ A *cycleA }
)

func TestCanHoldTimeInCycles(t *testing.T) {
	if !New(nil, reflect.TypeFor[cycleA]()).times || !New(nil, reflect.TypeFor[cycleB]()).times {
		t.Fatal("a type that reaches a time through a cycle is taken for one that holds none")
	}
}

type decodesItself struct{ V any }

func (d *decodesItself) UnmarshalJSON(b []byte) error { return nil }

func TestHasInterfaceFollowsTheDecoder(t *testing.T) {
	for _, tc := range []struct {
		typ  reflect.Type
		want bool
	}{
		{reflect.TypeFor[struct{ A any }](), true},
		{reflect.TypeFor[struct{ M map[string][]any }](), true},
		{reflect.TypeFor[struct {
			A any `json:"-"`
			a any
		}](), false},
		{reflect.TypeFor[struct{ D decodesItself }](), false},
		{reflect.TypeFor[Ambiguous](), false},
	} {
		if got := hasInterface(tc.typ); got != tc.want {
			t.Errorf("hasInterface(%s) = %v, want %v", tc.typ, got, tc.want)
		}
	}
}
