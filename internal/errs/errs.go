// Package errs holds the error values of the session manager, so that every
// stage of the way from bytes to a value (internal/format), the write
// protocol (internal/protocol) and the root package return the same
// sentinels; the root package re-exports each one under its public name.
//
// An error is classed once, by its cause, where it is made: a stage that
// only notices another stage's failure passes it on unchanged.
package errs

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/typedsession/session/internal/storeutil"
)

// The sentinels. Their texts begin with "session: " because callers see
// them through the root package.
var (
	Conflict       = errors.New("session: conflict: the session changed since it was loaded")
	Corrupt        = errors.New("session: stored value is corrupt")
	Invalid        = errors.New("session: invalid")
	FutureVersion  = errors.New("session: stored schema version is newer than this binary knows")
	Migration      = errors.New("session: migration failed")
	TooLarge       = errors.New("session: session too large")
	OutcomeUnknown = errors.New("session: outcome unknown: the write may or may not have been stored")
	UnknownKey     = errors.New("session: sealed with a key this binary does not hold")
	UnknownCodec   = errors.New("session: written with a codec or layer this manager does not read")
	NoSession      = errors.New("session: no session in context")
)

// Error joins a sentinel (Kind) with its cause, so that errors.Is finds
// the sentinel and errors.As finds the cause.
type Error struct {
	Kind  error
	Cause error
	// Msg is optional text in place of Cause.Error().
	Msg string
	// Safe is the text for logs and events: Msg without values of the
	// session's data. Empty means Msg (or the cause's text) holds none.
	Safe string
	// Damaged marks a stored value damaged by its content (it does not
	// parse, open or decompress), which Config.Quarantine may move aside.
	// Only the stage that finds the damage sets it.
	Damaged bool
}

// New returns an *Error of kind with a message.
func New(kind error, msg string) *Error { return &Error{Kind: kind, Msg: msg} }

// Wrap returns an *Error of kind with a cause.
func Wrap(kind, cause error) *Error { return &Error{Kind: kind, Cause: cause} }

// Damage returns ErrCorrupt for a value damaged by its content.
func Damage(cause error) *Error { return &Error{Kind: Corrupt, Cause: cause, Damaged: true} }

func (e *Error) Error() string {
	detail := e.Msg
	if detail == "" && e.Cause != nil {
		detail = e.Cause.Error()
	}
	if detail == "" {
		return e.Kind.Error()
	}
	return e.Kind.Error() + ": " + strings.TrimPrefix(detail, "session: ")
}

func (e *Error) Unwrap() []error {
	if e.Cause == nil {
		return []error{e.Kind}
	}
	return []error{e.Kind, e.Cause}
}

// DefiniteConflict reports whether err says another writer changed the
// key and nothing was written: it matches Conflict and not OutcomeUnknown
// (an open outcome can match both: a move whose undo met another writer).
// It is the one test of whether a conflict may be retried or undone.
func DefiniteConflict(err error) bool {
	return errors.Is(err, Conflict) && !errors.Is(err, OutcomeUnknown)
}

// Damaged reports whether err says a stored value is damaged by its
// content: the only failures Config.Quarantine moves aside.
func Damaged(err error) bool {
	var e *Error
	return errors.As(err, &e) && e.Damaged
}

// Safer is implemented by errors whose text may hold data of a session
// and that can say the same without it.
type Safer interface {
	error
	SafeError() string
}

// SafeText returns err's text without values of a session's data: each
// *Error and Safer in err's tree (however it is wrapped) has its text
// replaced by its safe text.
func SafeText(err error) string {
	text := err.Error()
	walk(err, func(e error) {
		switch e := e.(type) {
		case *Error:
			if e.Safe != "" && e.Msg != "" {
				text = strings.ReplaceAll(text, e.Msg, e.Safe)
			}
		case Safer:
			if full := e.Error(); full != "" {
				text = strings.ReplaceAll(text, full, e.SafeError())
			}
		}
	})
	return text
}

// walk calls fn for err and every error it wraps.
func walk(err error, fn func(error)) {
	if err == nil {
		return
	}
	fn(err)
	switch u := err.(type) {
	case interface{ Unwrap() error }:
		walk(u.Unwrap(), fn)
	case interface{ Unwrap() []error }:
		for _, e := range u.Unwrap() {
			walk(e, fn)
		}
	}
}

// Redact returns err's text as logs and events carry it, by the package's
// one redaction rule: no value of a session's data (SafeText) and none of
// keys, in any of the forms an error message holds a key in (quoted, as
// storeutil.QuoteKey shortens it, after a namespace's ':' inside a store
// key, or as it is when it is long enough to tell apart from other words),
// each replaced by <key>, and no file name (a file error's path keeps its
// folder). With no keys it hides the data and the file names only.
func Redact(err error, keys ...string) string {
	if err == nil {
		return ""
	}
	text := SafeText(err)
	// A file name may hold a key (filestore names a file by its key's
	// base32): the paths of file errors keep their folder only.
	walk(err, func(e error) {
		var path string
		switch e := e.(type) {
		case *fs.PathError:
			path = e.Path
		case *os.LinkError:
			text = strings.ReplaceAll(text, e.New, filepath.Join(filepath.Dir(e.New), "<file>"))
			path = e.Old
		}
		if path != "" {
			text = strings.ReplaceAll(text, path, filepath.Join(filepath.Dir(path), "<file>"))
		}
	})
	for _, k := range keys {
		if k == "" {
			continue
		}
		text = strings.ReplaceAll(text, storeutil.QuoteKey(k), "<key>")
		text = strings.ReplaceAll(text, strconv.Quote(k), "<key>")
		text = strings.ReplaceAll(text, ":"+k+`"`, `:<key>"`)
		if len(k) >= 6 {
			text = strings.ReplaceAll(text, k, "<key>")
		}
	}
	return text
}
