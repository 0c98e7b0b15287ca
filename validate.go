package session

import (
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"runtime/debug"
	"strings"
	"sync"

	"github.com/go-playground/validator/v10"

	"github.com/typedsession/session/internal/errs"
	"github.com/typedsession/session/internal/format"
)

// Validatable is implemented by session types with rules that tags cannot
// express. Validate is called on load and on save, after the tags.
type Validatable interface {
	Validate() error
}

// defaultValidator is shared by every Manager that does not bring its own:
// a validator caches each struct's parsed tags, so one instance is fast.
var defaultValidator = sync.OnceValue(func() *validator.Validate {
	return validator.New(validator.WithRequiredStructEnabled())
})

// ValidateFunc returns the check that a Manager of V whose
// Config.Validator is v (nil: the shared default validator) applies to its
// data on every Load and Save: the validate tags when V is a struct, then
// V's Validate method ([Validatable]). The check returns nil, or an error
// matching ErrInvalid that names each field and rule (not the value); a
// panic in a Validate method becomes ErrInvalid too. It is for typed data
// kept inside a session in encoded form, which the session's own check
// does not reach: package conversation checks each step's data with it.
func ValidateFunc[V any](v *validator.Validate) func(*V) error {
	return guarded(newValidateFunc[V](v, false))
}

// guarded returns fn with a panic in it (a Validate method's) turned into
// ErrInvalid.
func guarded[V any](fn func(*V) error) func(*V) error {
	return func(data *V) (err error) {
		defer func() {
			if p := recover(); p != nil {
				err = &errs.Error{Kind: ErrInvalid, Msg: fmt.Sprintf("Validate panicked: %v", p), Cause: &format.PanicError{Value: p, Stack: debug.Stack()}}
			}
		}()
		return fn(data)
	}
}

// newValidateFunc returns the check for T: validate tags when T is a struct
// (or a pointer to one), then a Validate method on T or *T.
func newValidateFunc[T any](v *validator.Validate, skipTags bool) func(*T) error {
	typ := reflect.TypeFor[T]()
	isStruct := typ.Kind() == reflect.Struct || (typ.Kind() == reflect.Pointer && typ.Elem().Kind() == reflect.Struct)
	useTags := isStruct && !skipTags
	if useTags && v == nil {
		// The default validator checks tags only: a type without any
		// has nothing to check, and walking the value anyway cost about
		// a tenth of an update's CPU with 64 in flight (BENCHMARKS.md,
		// issue 28). A validator of the caller's may have struct-level
		// rules, so it always runs.
		useTags = mayHaveTags(typ, map[reflect.Type]bool{})
		v = defaultValidator()
	}
	// *T's method set includes T's, so this finds Validate on either;
	// when T is itself a pointer or interface, T may implement it.
	_, ptrMethod := any(new(T)).(Validatable)
	valMethod := !ptrMethod && typ.Implements(reflect.TypeFor[Validatable]())
	hasMethod := ptrMethod || valMethod
	if !useTags && !hasMethod {
		return func(*T) error { return nil }
	}
	return func(data *T) error {
		if useTags {
			var err error
			if typ.Kind() == reflect.Pointer {
				if rv := reflect.ValueOf(*data); !rv.IsNil() {
					err = v.Struct(*data)
				}
			} else {
				err = v.Struct(data)
			}
			if err != nil {
				return invalid(err)
			}
		}
		var err error
		switch {
		case ptrMethod:
			err = any(data).(Validatable).Validate()
		case valMethod && !isNilPointer(*data):
			err = any(*data).(Validatable).Validate()
		}
		if err != nil {
			return errs.Wrap(ErrInvalid, err)
		}
		return nil
	}
}

// mayHaveTags reports whether a value of typ may hold a field with a
// `validate` tag: typ, or a type reachable from it through struct fields
// (exported or not), pointers, arrays, slices and maps, has one, or holds
// an interface, whose dynamic value may. seen holds the types already
// visited (a type that refers to itself ends there).
func mayHaveTags(typ reflect.Type, seen map[reflect.Type]bool) bool {
	if seen[typ] {
		return false
	}
	seen[typ] = true
	switch typ.Kind() {
	case reflect.Interface:
		return true
	case reflect.Pointer, reflect.Array, reflect.Slice:
		return mayHaveTags(typ.Elem(), seen)
	case reflect.Map:
		return mayHaveTags(typ.Key(), seen) || mayHaveTags(typ.Elem(), seen)
	case reflect.Struct:
		for i := range typ.NumField() {
			f := typ.Field(i)
			if _, ok := f.Tag.Lookup("validate"); ok || mayHaveTags(f.Type, seen) {
				return true
			}
		}
	}
	return false
}

func isNilPointer(v any) bool {
	rv := reflect.ValueOf(v)
	return rv.Kind() == reflect.Pointer && rv.IsNil()
}

// invalid turns a validator error into ErrInvalid with a message that names
// each failing field, its rule and its value, and wraps the validator's
// error for errors.As.
func invalid(err error) error {
	var verrs validator.ValidationErrors
	if !errors.As(err, &verrs) {
		return errs.Wrap(ErrInvalid, err)
	}
	parts := make([]string, 0, len(verrs))
	safe := make([]string, 0, len(verrs))
	for _, fe := range verrs {
		rule := fe.Tag()
		if fe.Param() != "" {
			rule += "=" + fe.Param()
		}
		parts = append(parts, fmt.Sprintf("%s: failed %q (value %s)", fe.Namespace(), rule, shortValue(fe.Value())))
		safe = append(safe, fmt.Sprintf("%s: failed %q", fe.Namespace(), rule))
	}
	return &errs.Error{Kind: ErrInvalid, Cause: err, Msg: strings.Join(parts, "; "), Safe: strings.Join(safe, "; ")}
}

func shortValue(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprintf("%v", v)
	}
	if len(b) > 40 {
		return string(b[:37]) + "..."
	}
	return string(b)
}
