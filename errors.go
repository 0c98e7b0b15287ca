package session

import (
	"errors"
	"strings"

	"github.com/typedsession/session/internal/storeutil"
)

// quoteKey quotes a key for an error message, shortened when it is long.
func quoteKey(key string) string { return storeutil.QuoteKey(key) }

// Errors returned by a Manager, matched with errors.Is. Each is wrapped in an
// *Error that names the operation and the key.
var (
	// ErrConflict: another writer saved the session between this Load and
	// this Save. Nothing was written; load again and reapply the change, or
	// use Manager.Update, which does that for you.
	ErrConflict = errors.New("session: conflict: the session changed since it was loaded")

	// ErrCorrupt: the stored bytes cannot be decoded (not valid for the
	// codec, a malformed envelope, or data that does not fit T). The
	// stored value is left as it is.
	ErrCorrupt = errors.New("session: stored value is corrupt")

	// ErrInvalid: the session failed validation (validate tags or its
	// Validate method). On Save nothing was written. The error also wraps
	// the validator's own error, so errors.As finds
	// validator.ValidationErrors.
	ErrInvalid = errors.New("session: invalid")

	// ErrFutureVersion: the stored schema version is newer than this
	// binary's latest. Nothing was decoded and nothing is written: this
	// binary must not overwrite data it does not understand.
	ErrFutureVersion = errors.New("session: stored schema version is newer than this binary knows")

	// ErrMigration: a migration step is missing or failed. The error
	// wraps a *migrate.StepError naming the step; the stored value is
	// left as it is.
	ErrMigration = errors.New("session: migration failed")

	// ErrTooLarge: the encoded session exceeds Config.MaxBytes. Nothing
	// was written.
	ErrTooLarge = errors.New("session: session too large")

	// ErrOutcomeUnknown: a write failed in a way that does not tell
	// whether it landed (the store did not answer, and did not answer
	// again within the context). The session may hold the new value or
	// the old one; load it to see. Update never retries it, since
	// applying the change again could apply it twice.
	ErrOutcomeUnknown = errors.New("session: outcome unknown: the write may or may not have been stored")

	// ErrUnknownKey: the stored value is sealed with a key ID that
	// Config.Keyring does not hold (removed too early, or not added to
	// this binary yet). The value is intact and left as it is; it is never
	// quarantined.
	ErrUnknownKey = errors.New("session: sealed with a key this binary does not hold")

	// ErrUnknownCodec: the stored value was written with a codec that
	// neither Config.Codec nor Config.ReadCodecs is (a codec change not
	// listed in ReadCodecs, a rollback). The value is intact and left as
	// it is; it is never quarantined.
	ErrUnknownCodec = errors.New("session: written with a codec this manager does not read")

	// ErrNoSession: From found no session for T in the context: no
	// middleware bound one, or the update had no key (no user).
	ErrNoSession = errors.New("session: no session in context")
)

// Error is the type of every error a Manager returns. It records the
// operation ("load", "save", "delete", "update", "migrate"; the middleware
// package adds "key" and "lock") and the key as the caller gave it, and
// wraps the cause: one of the sentinel errors above, a store error, a
// context error, or the error of an Update function.
type Error struct {
	Op  string
	Key string
	Err error
}

func (e *Error) Error() string {
	msg := e.Err.Error()
	msg = strings.TrimPrefix(msg, "session: ")
	return "session: " + e.Op + " " + quoteKey(e.Key) + ": " + msg
}

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Err }

// kindError joins a sentinel with its cause, so that errors.Is finds the
// sentinel and errors.As finds the cause.
type kindError struct {
	kind  error
	cause error
	msg   string // optional text in place of cause.Error()
	// damaged marks a stored value damaged by its content, which
	// Config.Quarantine may move aside.
	damaged bool
}

func (e *kindError) Error() string {
	detail := e.msg
	if detail == "" && e.cause != nil {
		detail = e.cause.Error()
	}
	if detail == "" {
		return e.kind.Error()
	}
	return e.kind.Error() + ": " + detail
}

func (e *kindError) Unwrap() []error {
	if e.cause == nil {
		return []error{e.kind}
	}
	return []error{e.kind, e.cause}
}

func wrapKind(kind, cause error) error { return &kindError{kind: kind, cause: cause} }
