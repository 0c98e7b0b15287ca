package migrate_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/typedsession/session/codec"
	"github.com/typedsession/session/migrate"
)

func noop(map[string]any) error { return nil }

func TestNewRejectsBadPlans(t *testing.T) {
	tests := []struct {
		name  string
		steps []migrate.Step
		want  []string
	}{
		{"gap", []migrate.Step{migrate.Raw(1, noop), migrate.Raw(3, noop)}, []string{"gap: no step from version 2 to 3"}},
		{"duplicate", []migrate.Step{migrate.Raw(1, noop), migrate.Raw(1, noop)}, []string{"two steps from version 1"}},
		{"negative", []migrate.Step{migrate.Raw(-1, noop), migrate.Raw(0, noop)}, []string{"version -1", "cannot be negative"}},
		{"nil function", []migrate.Step{migrate.Raw(1, nil)}, []string{"no function"}},
		{"several problems", []migrate.Step{migrate.Raw(0, noop), migrate.Raw(0, noop), migrate.Raw(5, noop)}, []string{"two steps from version 0", "gap: no step from version 1 to 2"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := migrate.New(tc.steps...)
			if err == nil {
				t.Fatal("New accepted a bad plan")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not name %q", err, w)
				}
			}
		})
	}
}

func TestLatest(t *testing.T) {
	var nilPlan *migrate.Plan
	if nilPlan.Latest() != 1 {
		t.Fatalf("nil plan Latest = %d, want 1", nilPlan.Latest())
	}
	p, err := migrate.New(migrate.Raw(2, noop), migrate.Raw(0, noop), migrate.Raw(1, noop)) // any order
	if err != nil {
		t.Fatal(err)
	}
	if p.Latest() != 3 || p.Oldest() != 0 {
		t.Fatalf("Latest, Oldest = %d, %d; want 3, 0", p.Latest(), p.Oldest())
	}
}

func TestRawKeepsLargeIntegers(t *testing.T) {
	p := migrate.MustNew(migrate.Raw(0, func(doc map[string]any) error {
		doc["copy"] = doc["chat_id"]
		return nil
	}))
	in := []byte(`{"chat_id":9007199254740993,"neg":-9223372036854775808,"f":0.1}`)
	out, err := p.Up(codec.JSON{}, 0, 1, in)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"chat_id":9007199254740993`, `"copy":9007199254740993`, `"neg":-9223372036854775808`, `"f":0.1`} {
		if !strings.Contains(string(out), want) {
			t.Errorf("migrated document %s lost %s", out, want)
		}
	}
}

func TestStepErrors(t *testing.T) {
	boom := errors.New("boom")
	p := migrate.MustNew(
		migrate.Raw(1, noop),
		migrate.Typed(2, func(struct{ A int }) (struct{ B int }, error) { return struct{ B int }{}, boom }),
	)
	_, err := p.Up(codec.JSON{}, 1, 3, []byte(`{"A":1}`))
	var se *migrate.StepError
	if !errors.As(err, &se) || se.From != 2 || se.To != 3 || !errors.Is(err, boom) {
		t.Fatalf("Up = %v, want a StepError 2→3 wrapping the step's error", err)
	}
	_, err = p.Up(codec.JSON{}, 0, 3, []byte(`{}`))
	if !errors.Is(err, migrate.ErrNoStep) || !strings.Contains(err.Error(), "0→1") {
		t.Fatalf("Up from a version without a step = %v, want ErrNoStep naming 0→1", err)
	}
	_, err = p.Up(codec.JSON{}, 1, 2, []byte(`[1,2]`))
	if err == nil || !strings.Contains(err.Error(), "raw step 1→2") {
		t.Fatalf("a raw step on a non-object = %v, want an error naming the step", err)
	}
	if err := p.CanWrite(2); err == nil || !strings.Contains(err.Error(), "no down function") {
		t.Fatalf("CanWrite(2) = %v, want an error about the missing down function", err)
	}
}

func TestReversible(t *testing.T) {
	type v1 struct {
		Lang string `json:"lang"`
	}
	type v2 struct {
		Language string `json:"language"`
	}
	p := migrate.MustNew(migrate.TypedReversible(1,
		func(o v1) (v2, error) { return v2{Language: o.Lang}, nil },
		func(n v2) (v1, error) { return v1{Lang: n.Language}, nil },
	))
	if err := p.CanWrite(1); err != nil {
		t.Fatal(err)
	}
	down, err := p.Down(codec.JSON{}, 2, 1, []byte(`{"language":"de"}`))
	if err != nil || string(down) != `{"lang":"de"}` {
		t.Fatalf("Down = %s, %v", down, err)
	}
	up, err := p.Up(codec.JSON{}, 1, 2, down)
	if err != nil || string(up) != `{"language":"de"}` {
		t.Fatalf("Up = %s, %v", up, err)
	}
}
