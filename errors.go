package session

import (
	"strings"

	"github.com/typedsession/session/internal/errs"
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
	ErrConflict = errs.Conflict

	// ErrCorrupt: the stored bytes cannot be decoded (not valid for the
	// codec, a malformed envelope, a seal that does not open, data that
	// does not fit T). The stored value is left as it is, or moved aside
	// by Config.Quarantine when the bytes themselves are damaged (see the
	// failure table in the package documentation).
	ErrCorrupt = errs.Corrupt

	// ErrInvalid: the session failed validation (validate tags or its
	// Validate method). On Save nothing was written. The error also wraps
	// the validator's own error, so errors.As finds
	// validator.ValidationErrors.
	ErrInvalid = errs.Invalid

	// ErrFutureVersion: the stored schema version is newer than this
	// binary's latest. Nothing was decoded and nothing is written: this
	// binary must not overwrite data it does not understand.
	ErrFutureVersion = errs.FutureVersion

	// ErrMigration: a migration step is missing or failed. The error
	// wraps a *migrate.StepError naming the step; the stored value is
	// left as it is.
	ErrMigration = errs.Migration

	// ErrTooLarge: the session's payload (the codec's encoding, before
	// compression and sealing) exceeds Config.MaxBytes. Save writes
	// nothing; Load applies the same rule to the same measure and leaves
	// the stored value as it is (never quarantined); a store that caps
	// its values reports the same.
	ErrTooLarge = errs.TooLarge

	// ErrOutcomeUnknown: a write failed in a way that does not tell
	// whether it landed (the store did not answer, and did not answer
	// again within the context). The session may hold the new value or
	// the old one; load it to see. Update never retries it, since
	// applying the change again could apply it twice.
	ErrOutcomeUnknown = errs.OutcomeUnknown

	// ErrNoSealingKey: the stored value is sealed with a key ID that
	// Config.Keyring does not hold (removed too early, or not added to
	// this binary yet). The value is intact and left as it is; it is never
	// quarantined.
	ErrNoSealingKey = errs.UnknownKey

	// ErrUnsupportedCodec: the stored value was written with a codec that
	// neither Config.Codec nor Config.ReadCodecs is (a codec change not
	// listed in ReadCodecs, a rollback), or with a layer (a compressor) or
	// a compression dictionary the manager is not configured for. The
	// value is intact and left as it is; it is never quarantined.
	ErrUnsupportedCodec = errs.UnknownCodec

	// ErrNoSession: From found no session for T in the context: no
	// middleware bound one, or the update had no key (no user).
	ErrNoSession = errs.NoSession
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
