package session_test

import (
	"errors"
	"strings"
	"testing"

	session "github.com/typedsession/session"
)

type checkedStep struct {
	N int `validate:"lte=10"`
}

type panickyStep struct{ X int }

func (panickyStep) Validate() error { panic("boom") }

// TestValidateFunc: the check of a Manager's data, for data of another
// type: tags name the field and rule, a Validate method that panics is
// ErrInvalid.
func TestValidateFunc(t *testing.T) {
	check := session.ValidateFunc[checkedStep](nil)
	if err := check(&checkedStep{N: 3}); err != nil {
		t.Fatalf("valid data: %v", err)
	}
	err := check(&checkedStep{N: 11})
	if !errors.Is(err, session.ErrInvalid) || !strings.Contains(err.Error(), "lte") {
		t.Fatalf("invalid data: %v, want ErrInvalid naming the rule", err)
	}
	if err := session.ValidateFunc[panickyStep](nil)(&panickyStep{}); !errors.Is(err, session.ErrInvalid) || !strings.Contains(err.Error(), "panicked") {
		t.Fatalf("a Validate that panics: %v, want ErrInvalid", err)
	}
}
