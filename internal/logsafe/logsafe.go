// Package logsafe describes an error for a log record without what it may
// carry of a user: no session data and no keys. An error's own message
// cannot be logged as it is: a session.Error names the key, a validation
// error quotes the refused value, a store's error names the store key and
// a migration step's error is the user's own text.
package logsafe

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"strings"

	"github.com/go-playground/validator/v10"
)

// Describe returns a one-line description of err for a log record, built
// from what it is rather than from its message:
//
//   - the message of the first of kinds that err matches (errors.Is);
//   - for validation errors (validator.ValidationErrors), each failing
//     field with its rule, "Prefs.Theme failed \"oneof=light dark\"",
//     never the value;
//   - for an error that matches none of kinds, or one of also (a kind
//     whose cause is a store's error, such as an outcome unknown), the
//     cause: the first network error in the chain ("dial tcp
//     127.0.0.1:6379: connect: connection refused"), else the innermost
//     error (a driver's or the system's message, a context's error). The
//     wrapping errors above it, which name keys and paths, are skipped.
//
// A nil err gives "".
func Describe(err error, kinds, also []error) string {
	if err == nil {
		return ""
	}
	var b strings.Builder
	var kind error
	for _, k := range kinds {
		if errors.Is(err, k) {
			kind = k
			b.WriteString(k.Error())
			break
		}
	}
	var verrs validator.ValidationErrors
	if errors.As(err, &verrs) {
		for i, fe := range verrs {
			if i == 0 {
				b.WriteString(": ")
			} else {
				b.WriteString("; ")
			}
			rule := fe.Tag()
			if fe.Param() != "" {
				rule += "=" + fe.Param()
			}
			b.WriteString(fe.Namespace() + ` failed "` + rule + `"`)
		}
		return b.String()
	}
	if kind != nil && !isOneOf(kind, also) {
		return b.String()
	}
	if cause := cause(err, kinds); cause != "" {
		if b.Len() > 0 {
			b.WriteString(": ")
		}
		b.WriteString(cause)
	}
	return b.String()
}

func isOneOf(err error, list []error) bool {
	for _, e := range list {
		if err == e {
			return true
		}
	}
	return false
}

// cause returns the message of the first network error in err's chain,
// else of the innermost error that is not one of kinds. Where an error
// wraps several (errors.Join, a kind joined with its cause), the last one
// that is not a kind is followed.
func cause(err error, kinds []error) string {
	for {
		if _, ok := err.(net.Error); ok {
			return err.Error() // addresses, not keys; context.DeadlineExceeded too
		}
		var next error
		switch u := err.(type) {
		case interface{ Unwrap() error }:
			next = u.Unwrap()
		case interface{ Unwrap() []error }:
			for _, e := range u.Unwrap() {
				if e != nil && !isOneOf(e, kinds) {
					next = e
				}
			}
		}
		if next == nil {
			if isOneOf(err, kinds) {
				return ""
			}
			return err.Error()
		}
		err = next
	}
}

// Default returns a logger that writes through slog.Default() as it is
// when a record is written, not as it was when Default was called, so
// that a program may set its default logger after building what logs.
func Default() *slog.Logger { return slog.New(defaultHandler{}) }

type defaultHandler struct{}

func (defaultHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return slog.Default().Handler().Enabled(ctx, l)
}

func (defaultHandler) Handle(ctx context.Context, r slog.Record) error {
	return slog.Default().Handler().Handle(ctx, r)
}

func (defaultHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return slog.Default().Handler().WithAttrs(attrs)
}

func (defaultHandler) WithGroup(name string) slog.Handler {
	return slog.Default().Handler().WithGroup(name)
}
