package session_test

import (
	"reflect"
	"testing"
	"time"

	session "github.com/typedsession/session"
)

type noTags struct {
	Name   string
	When   time.Time
	List   []struct{ A, B int }
	Map    map[string]*struct{ C string }
	hidden int
}

type selfRef struct {
	Next     *selfRef
	Children []selfRef
}

type deepTag struct {
	Map map[string][]*struct {
		Inner [2]struct {
			Code string `validate:"required"`
		}
	}
}

type keyTag struct {
	Map map[struct {
		K string `validate:"min=1"`
	}]int
}

type withAny struct {
	Extra any
}

type emptyTag struct {
	A string `validate:""`
}

type hiddenTag struct {
	inner struct {
		B int `validate:"min=1"`
	}
}

// TestMayHaveTags: the default validator is skipped only for types that
// cannot hold a validate tag anywhere.
func TestMayHaveTags(t *testing.T) {
	for _, tc := range []struct {
		name string
		typ  reflect.Type
		want bool
	}{
		{"fields, slices, maps, pointers and time.Time without tags", reflect.TypeFor[noTags](), false},
		{"a type that refers to itself", reflect.TypeFor[selfRef](), false},
		{"a tag deep in a map of slices of pointers to arrays of structs", reflect.TypeFor[deepTag](), true},
		{"a tag in a map key", reflect.TypeFor[keyTag](), true},
		{"an interface, whose value may have tags", reflect.TypeFor[withAny](), true},
		{"an empty validate tag", reflect.TypeFor[emptyTag](), true},
		{"a tag in an unexported field", reflect.TypeFor[hiddenTag](), true},
		{"a pointer to a tagged struct", reflect.TypeFor[*deepTag](), true},
	} {
		if got := session.MayHaveTags(tc.typ); got != tc.want {
			t.Errorf("%s: MayHaveTags(%v) = %v, want %v", tc.name, tc.typ, got, tc.want)
		}
	}
}
