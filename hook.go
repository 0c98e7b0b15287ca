package session

import (
	"context"
	"errors"
	"log/slog"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/typedsession/session/internal/errs"
)

// Event describes one operation of a Manager, for Config.Hook: what a
// metrics, tracing or logging integration needs, and nothing of the
// session's data.
type Event struct {
	// Op is "load", "save", "delete", "update" or "migrate" (one key of
	// MigrateAll).
	Op string
	// Namespace is Config.Namespace. Key is the key as the caller gave it,
	// only with Config.LogKeys (else ""): a user identifier, unbounded;
	// never use it as a metric attribute.
	Namespace, Key string
	// Outcome says what happened; Err is the error returned, or nil,
	// redacted by the package's one rule (see Config.LogKeys): its text
	// holds no key without LogKeys and no value of the session's data;
	// errors.Is matches the same sentinels as the error returned.
	Outcome Outcome
	Err     error
	// Duration is the operation's wall time, store round trips included.
	Duration time.Duration
	// Bytes is the size of the stored value read (load) or written (save,
	// update, migrate), 0 when there was none.
	Bytes int
	// StoredVersion is the schema version found in the store (0 for data
	// without an envelope); Version is the version of the data after the
	// operation (the latest after a load, the write version after a
	// write). They differ when a migration ran.
	StoredVersion, Version int
	// Attempts counts the loads of an update or of a key in MigrateAll (1
	// without a conflict); Conflicts counts the conflicts among them.
	Attempts, Conflicts int
	// Extra lists the stored members that the session type does not
	// have, met by a save ("lang", "profile.nick", "items[].note": map
	// keys and list indexes left out, as they are data), per
	// Config.ExtraMembers.
	Extra []string
	// Handoff marks a load that read nothing from the store: the session
	// was handed on from the previous update of the key (Session.Handoff,
	// which the middleware uses for queued updates of one key).
	Handoff bool
}

// Outcome is what an operation did.
type Outcome string

// The outcomes of an Event.
const (
	OutcomeFound     Outcome = "found"     // load: a stored session
	OutcomeNew       Outcome = "new"       // load: nothing stored; a new session
	OutcomeWritten   Outcome = "written"   // save, update, migrate: stored
	OutcomeUnchanged Outcome = "unchanged" // save, update, migrate: nothing to write
	OutcomeDeleted   Outcome = "deleted"   // save of a destroyed session, delete
	OutcomeConflict  Outcome = "conflict"  // ErrConflict
	OutcomeUnknown   Outcome = "unknown"   // ErrOutcomeUnknown: may or may not be stored
	OutcomeError     Outcome = "error"     // any other error
	// OutcomeQuarantined: load: the stored value was damaged and
	// Config.Quarantine moved it aside; Err says why, and the caller got a
	// new session.
	OutcomeQuarantined Outcome = "quarantined"
)

// outcomeOf returns the outcome of an operation that failed with err.
func outcomeOf(err error) Outcome {
	switch {
	case errors.Is(err, ErrOutcomeUnknown):
		return OutcomeUnknown
	case errors.Is(err, ErrConflict):
		return OutcomeConflict
	}
	return OutcomeError
}

// observing reports whether operations are observed (a hook or a logger);
// when they are not, the manager does no work for them at all.
func (m *Manager[T]) observing() bool { return m.hook != nil || m.logger != nil }

// emit delivers e to the hook and the logger, redacted (see redact);
// others are more keys the operation touched (a MoveTo's new key).
func (m *Manager[T]) emit(ctx context.Context, e Event, others ...string) {
	e.Namespace = m.namespace
	if e.Err != nil && e.Outcome != OutcomeQuarantined && (e.Outcome == "" || e.Outcome == OutcomeFound || e.Outcome == OutcomeNew) {
		e.Outcome = outcomeOf(e.Err)
	}
	e.Err = m.redact(e.Err, e.Key, others...)
	if !m.logKeys {
		e.Key = ""
	}
	e.Extra = memberNames(e.Extra)
	if m.hook != nil {
		m.hook(ctx, e)
	}
	if m.logger != nil {
		m.log(ctx, e)
	}
}

// log writes e to Config.Logger: every operation at debug level, a failed
// one at warn level (a conflict an Update retried is not a failure), a
// session over Config.WarnBytes and stored members T does not have at warn
// level. Keys appear only with Config.LogKeys; data never does.
func (m *Manager[T]) log(ctx context.Context, e Event) {
	attrs := []slog.Attr{
		slog.String("op", e.Op),
		slog.String("outcome", string(e.Outcome)),
		slog.Duration("duration", e.Duration),
		slog.Int("bytes", e.Bytes),
	}
	if e.Namespace != "" {
		attrs = append(attrs, slog.String("namespace", e.Namespace))
	}
	if m.logKeys {
		attrs = append(attrs, slog.String("key", e.Key))
	}
	if e.StoredVersion != e.Version {
		attrs = append(attrs, slog.Int("stored_version", e.StoredVersion), slog.Int("version", e.Version))
	}
	if e.Attempts > 1 {
		attrs = append(attrs, slog.Int("attempts", e.Attempts), slog.Int("conflicts", e.Conflicts))
	}
	level := slog.LevelDebug
	if e.Err != nil {
		attrs = append(attrs, slog.String("error", e.Err.Error()))
		if !errors.Is(e.Err, context.Canceled) {
			level = slog.LevelWarn
		}
	}
	m.logger.LogAttrs(ctx, level, "session: "+e.Op, attrs...)
	if m.warnBytes > 0 && e.Bytes > m.warnBytes && e.Outcome == OutcomeWritten {
		m.logger.LogAttrs(ctx, slog.LevelWarn, "session: stored value over Config.WarnBytes",
			append(attrs[:0:0], slog.String("namespace", e.Namespace), slog.Int("bytes", e.Bytes), slog.Int("warn_bytes", m.warnBytes), keyAttr(m.logKeys, e.Key))...)
	}
	if len(e.Extra) > 0 && m.firstReport(e.Extra) {
		m.logger.LogAttrs(ctx, slog.LevelWarn, "session: stored members that the session type does not have",
			slog.String("namespace", e.Namespace), slog.Any("members", e.Extra), slog.String("policy", m.unknown.String()), keyAttr(m.logKeys, e.Key))
	}
}

// redact returns err as Config.Hook and Config.Logger receive it, by the
// one redaction rule of the package: no key (the key as given, its store
// key, and the other keys the operation touched) unless Config.LogKeys,
// and no value of the session's data ever (a validation message names the
// field and the rule, not the value; see errs.SafeText). The result
// matches the same sentinels as err with errors.Is, but errors.As finds
// none of its causes: they may hold what the rule leaves out.
func (m *Manager[T]) redact(err error, key string, others ...string) error {
	if err == nil {
		return nil
	}
	var text string
	if m.logKeys {
		text = errs.Redact(err)
	} else {
		text = errs.Redact(err, append(others, key)...)
	}
	return &redactedError{text: text, err: err}
}

// redactedError is an error as events and logs carry it: its text
// redacted, errors.Is answered by the error it stands for.
type redactedError struct {
	text string
	err  error
}

func (e *redactedError) Error() string { return e.text }

// Is reports whether the error it stands for matches target.
func (e *redactedError) Is(target error) bool { return errors.Is(e.err, target) }

var indexes = regexp.MustCompile(`\[[^\]]*\]`)

// memberNames returns member paths without their map keys and list
// indexes ("items[].note" for items["ann"].note): map keys are data.
func memberNames(paths []string) []string {
	if len(paths) == 0 {
		return paths
	}
	out := make([]string, 0, len(paths))
	for _, p := range paths {
		out = append(out, indexes.ReplaceAllString(p, "[]"))
	}
	return slices.Compact(out)
}

// firstReport reports whether this set of unknown members is met for the
// first time by this manager, so that a rolling deploy logs it once, not
// on every save. At most 1,000 sets are remembered.
func (m *Manager[T]) firstReport(members []string) bool {
	// Paths differ by map key and slice index from session to session;
	// the set is what T lacks, so those are left out.
	norm := make([]string, len(members))
	for i, p := range members {
		norm[i] = indexes.ReplaceAllString(p, "[]")
	}
	slices.Sort(norm)
	id := strings.Join(slices.Compact(norm), "\x00")
	if _, seen := m.reported.Load(id); seen {
		return false
	}
	if m.reportedN.Add(1) > 1000 {
		return true
	}
	_, seen := m.reported.LoadOrStore(id, true)
	return !seen
}

func keyAttr(logKeys bool, key string) slog.Attr {
	if !logKeys {
		return slog.Attr{}
	}
	return slog.String("key", key)
}

// String returns the policy's name.
func (u ExtraMembers) String() string {
	switch u {
	case KeepExtra:
		return "KeepExtra"
	case RejectExtra:
		return "RejectExtra"
	case DropExtra:
		return "DropExtra"
	}
	return "ExtraMembers(?)"
}
