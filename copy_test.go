package session_test

import (
	"errors"
	"math"
	"testing"

	session "github.com/typedsession/session"
)

type copyData struct {
	Tags   map[string]int `json:"tags"`
	List   []string       `json:"list"`
	Ptr    *int           `json:"ptr"`
	Secret string         `json:"-"`
	F      float64        `json:"f"`
}

// Manager.Copy gives a value that shares nothing with the original, as
// the codec stores it.
func TestManagerCopy(t *testing.T) {
	m, err := session.New(session.Config[copyData]{Store: newMem(t)})
	if err != nil {
		t.Fatal(err)
	}
	n := 7
	v := copyData{Tags: map[string]int{"a": 1}, List: []string{"x"}, Ptr: &n, Secret: "s", F: 1.5}
	c, err := m.Copy(&v)
	if err != nil {
		t.Fatal(err)
	}
	c.Tags["a"], c.List[0], *c.Ptr = 2, "y", 8
	if v.Tags["a"] != 1 || v.List[0] != "x" || *v.Ptr != 7 {
		t.Fatalf("the copy shares memory with the original: %+v", v)
	}
	if c.Secret != "" || c.F != 1.5 {
		t.Fatalf("copy: %+v (a field the codec does not store is zero; the rest as stored)", c)
	}
	v.F = math.NaN()
	if _, err := m.Copy(&v); !errors.Is(err, session.ErrInvalid) {
		t.Fatalf("Copy of a value JSON cannot hold: %v, want ErrInvalid", err)
	}
}
