// Package otel reports what typedsession's managers do as OpenTelemetry
// traces and metrics, through [session.Config].Hook.
//
//	import sessionotel "github.com/typedsession/session/otel"
//
//	hook, err := sessionotel.NewHook() // the global tracer and meter providers
//	if err != nil { ... }
//	m, err := session.New(session.Config[Quiz]{Store: st, Namespace: "quiz", Hook: hook})
//
// It depends only on the OpenTelemetry API (go.opentelemetry.io/otel,
// .../metric, .../trace): the application chooses the SDK and exporters.
// A program that does not import this module does not download OTel.
//
// # Spans
//
// One span per operation of a manager, named "typedsession.load",
// "typedsession.save", "typedsession.delete", "typedsession.update" or "typedsession.migrate",
// of kind internal, a child of the span in the operation's context, timed
// from the operation's start to its end. Attributes: typedsession.operation,
// typedsession.namespace, typedsession.outcome, typedsession.size (bytes stored or read),
// typedsession.version and typedsession.stored_version, typedsession.attempts and
// typedsession.conflicts (update and migrate), error.type on failure; the
// session key (typedsession.key) only with [WithKeys] and Config.LogKeys. A failed operation sets
// the span's status to Error and records the error, whose message names
// the key and, for session.ErrInvalid, quotes the refused value; session
// data reaches a span in no other way.
//
// # Metrics
//
// Instrument names follow OpenTelemetry's conventions for library
// instrumentation (a dotted namespace of the library's own, units in UCUM,
// no unit in the name). The namespace is "typedsession", not "session":
// the semantic conventions own "session" (session.id, a client session),
// and a name of theirs must not mean something else here. The meter's name is this package's import path. Every instrument
// has the attributes typedsession.operation and typedsession.namespace (a constant
// of the application's config, so bounded); the session key, which is
// unbounded, never is one.
//
//	typedsession.operation.duration  histogram, s   each operation, also by typedsession.outcome and error.type
//	typedsession.operations          counter         each operation, by typedsession.outcome
//	typedsession.conflicts           counter         compare-and-swap conflicts met (retried or returned)
//	typedsession.retries             counter         loads of an update or migrate beyond the first
//	typedsession.migrations          counter         loads and writes that migrated, by typedsession.stored_version and typedsession.version
//	typedsession.size                histogram, By   the size of a value read (load) or written (save, update, migrate)
//
// error.type is one of corrupt, invalid, future_version, migration,
// too_large, conflict, outcome_unknown, canceled, deadline_exceeded or
// other: a bounded set.
package otel

import (
	"context"
	"errors"
	"sync"
	"time"

	gotel "go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"

	session "github.com/typedsession/session"
)

// ScopeName is the instrumentation scope of the tracer and the meter: this
// package's import path.
const ScopeName = "github.com/typedsession/session/otel"

// Option configures [NewHook].
type Option func(*config)

type config struct {
	tp   trace.TracerProvider
	mp   metric.MeterProvider
	keys bool
}

// WithTracerProvider sets the tracer provider. Default: the global one
// (otel.GetTracerProvider), read when NewHook is called.
func WithTracerProvider(tp trace.TracerProvider) Option {
	return func(c *config) { c.tp = tp }
}

// WithMeterProvider sets the meter provider. Default: the global one
// (otel.GetMeterProvider), read when NewHook is called.
func WithMeterProvider(mp metric.MeterProvider) Option {
	return func(c *config) { c.mp = mp }
}

// WithKeys puts the session key on spans as typedsession.key. Off by default:
// keys are user identifiers. They never become metric attributes. The
// manager hands its hook the key only with session.Config.LogKeys, so
// WithKeys needs that too; without it spans carry no typedsession.key.
func WithKeys() Option {
	return func(c *config) { c.keys = true }
}

// Attribute keys.
const (
	AttrOperation     = attribute.Key("typedsession.operation")
	AttrNamespace     = attribute.Key("typedsession.namespace")
	AttrOutcome       = attribute.Key("typedsession.outcome")
	AttrSize          = attribute.Key("typedsession.size")
	AttrVersion       = attribute.Key("typedsession.version")
	AttrStoredVersion = attribute.Key("typedsession.stored_version")
	AttrAttempts      = attribute.Key("typedsession.attempts")
	AttrConflicts     = attribute.Key("typedsession.conflicts")
	AttrKey           = attribute.Key("typedsession.key")
	AttrErrorType     = attribute.Key("error.type")
)

type hook struct {
	sets      sync.Map // setKey -> *measureOpts
	tracer    trace.Tracer
	keys      bool
	duration  metric.Float64Histogram
	ops       metric.Int64Counter
	conflicts metric.Int64Counter
	retries   metric.Int64Counter
	migration metric.Int64Counter
	size      metric.Int64Histogram
}

// NewHook returns a function for [session.Config].Hook that records every
// operation as a span and in the metrics listed in the package doc. It
// returns an error only when the meter refuses to create an instrument.
// The hook is safe for concurrent use and may be shared by many managers.
func NewHook(opts ...Option) (func(context.Context, session.Event), error) {
	var c config
	for _, o := range opts {
		o(&c)
	}
	if c.tp == nil {
		c.tp = gotel.GetTracerProvider()
	}
	if c.mp == nil {
		c.mp = gotel.GetMeterProvider()
	}
	meter := c.mp.Meter(ScopeName)
	h := &hook{tracer: c.tp.Tracer(ScopeName), keys: c.keys}
	var errs [6]error
	h.duration, errs[0] = meter.Float64Histogram("typedsession.operation.duration",
		metric.WithUnit("s"), metric.WithDescription("Duration of session operations, store round trips included."),
		metric.WithExplicitBucketBoundaries(0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10))
	h.ops, errs[1] = meter.Int64Counter("typedsession.operations",
		metric.WithUnit("{operation}"), metric.WithDescription("Session operations, by outcome."))
	h.conflicts, errs[2] = meter.Int64Counter("typedsession.conflicts",
		metric.WithUnit("{conflict}"), metric.WithDescription("Compare-and-swap conflicts met by saves, updates and migrations."))
	h.retries, errs[3] = meter.Int64Counter("typedsession.retries",
		metric.WithUnit("{retry}"), metric.WithDescription("Loads of an update or migration beyond the first, after a conflict."))
	h.migration, errs[4] = meter.Int64Counter("typedsession.migrations",
		metric.WithUnit("{migration}"), metric.WithDescription("Loads and writes of a session stored at an older schema version."))
	h.size, errs[5] = meter.Int64Histogram("typedsession.size",
		metric.WithUnit("By"), metric.WithDescription("Size of the stored value read by a load or written by a save."),
		metric.WithExplicitBucketBoundaries(64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304))
	if err := errors.Join(errs[:]...); err != nil {
		return nil, err
	}
	return h.record, nil
}

// setKey identifies a cached attribute set: every field comes from a
// bounded set (the namespace is a constant of a manager's config).
type setKey struct {
	op, namespace, outcome, errType string
	withOutcome                     bool
}

// measureOpts are the options of a measurement with one attribute set,
// as the slices Record and Add take, so that passing them allocates
// nothing.
type measureOpts struct {
	rec []metric.RecordOption
	add []metric.AddOption
}

// opts returns the measurement options of k's attribute set, built once.
func (h *hook) opts(k setKey) *measureOpts {
	if o, ok := h.sets.Load(k); ok {
		return o.(*measureOpts)
	}
	kvs := []attribute.KeyValue{AttrOperation.String(k.op), AttrNamespace.String(k.namespace)}
	if k.withOutcome {
		kvs = append(kvs, AttrOutcome.String(k.outcome))
		if k.errType != "" {
			kvs = append(kvs, AttrErrorType.String(k.errType))
		}
	}
	opt := metric.WithAttributeSet(attribute.NewSet(kvs...))
	o, _ := h.sets.LoadOrStore(k, &measureOpts{rec: []metric.RecordOption{opt}, add: []metric.AddOption{opt}})
	return o.(*measureOpts)
}

// Span options that never change, made once.
var (
	internalKind = trace.WithSpanKind(trace.SpanKindInternal)
)

func (h *hook) record(ctx context.Context, e session.Event) {
	end := time.Now()
	errType := errorType(e)

	// The span, back-dated to the operation's start. Its attributes are
	// built only when it records (not with a no-op or unsampled tracer).
	_, span := h.tracer.Start(ctx, spanName(e.Op), trace.WithTimestamp(end.Add(-e.Duration)), internalKind)
	if span.IsRecording() {
		attrs := []attribute.KeyValue{
			AttrOperation.String(e.Op), AttrNamespace.String(e.Namespace),
			AttrOutcome.String(string(e.Outcome)),
			AttrVersion.Int(e.Version), AttrStoredVersion.Int(e.StoredVersion),
		}
		if e.Bytes > 0 {
			attrs = append(attrs, AttrSize.Int(e.Bytes))
		}
		if e.Attempts > 0 {
			attrs = append(attrs, AttrAttempts.Int(e.Attempts), AttrConflicts.Int(e.Conflicts))
		}
		if h.keys && e.Key != "" { // empty unless Config.LogKeys
			attrs = append(attrs, AttrKey.String(e.Key))
		}
		if errType != "" {
			attrs = append(attrs, AttrErrorType.String(errType))
			span.RecordError(e.Err)
			span.SetStatus(codes.Error, errType)
		}
		span.SetAttributes(attrs...)
	}
	span.End(trace.WithTimestamp(end))

	// The metrics: never the key.
	full := h.opts(setKey{op: e.Op, namespace: e.Namespace, outcome: string(e.Outcome), errType: errType, withOutcome: true})
	h.duration.Record(ctx, e.Duration.Seconds(), full.rec...)
	h.ops.Add(ctx, 1, full.add...)
	conflicts := e.Conflicts
	if conflicts == 0 && e.Outcome == session.OutcomeConflict {
		conflicts = 1
	}
	migrated := e.StoredVersion != e.Version && (e.Outcome == session.OutcomeFound || e.Outcome == session.OutcomeWritten)
	if conflicts == 0 && e.Attempts <= 1 && !migrated && e.Bytes == 0 {
		return
	}
	base := h.opts(setKey{op: e.Op, namespace: e.Namespace})
	if conflicts > 0 {
		h.conflicts.Add(ctx, int64(conflicts), base.add...)
	}
	if e.Attempts > 1 {
		h.retries.Add(ctx, int64(e.Attempts-1), base.add...)
	}
	if migrated {
		h.migration.Add(ctx, 1, metric.WithAttributes(AttrOperation.String(e.Op), AttrNamespace.String(e.Namespace),
			AttrStoredVersion.Int(e.StoredVersion), AttrVersion.Int(e.Version)))
	}
	if e.Bytes > 0 {
		h.size.Record(ctx, int64(e.Bytes), base.rec...)
	}
}

// spanName returns "typedsession."+op without building the string for
// the operations the manager has.
func spanName(op string) string {
	switch op {
	case "load":
		return "typedsession.load"
	case "save":
		return "typedsession.save"
	case "delete":
		return "typedsession.delete"
	case "update":
		return "typedsession.update"
	case "migrate":
		return "typedsession.migrate"
	}
	return "typedsession." + op
}

// errorType names the kind of e's error from a bounded set, or "" when
// the operation did not fail.
func errorType(e session.Event) string {
	if e.Err == nil {
		return ""
	}
	switch err := e.Err; {
	case e.Outcome == session.OutcomeQuarantined:
		return "corrupt" // the caller got a new session; the value was damaged
	case errors.Is(err, session.ErrOutcomeUnknown):
		return "outcome_unknown"
	case errors.Is(err, session.ErrConflict):
		return "conflict"
	case errors.Is(err, session.ErrCorrupt):
		return "corrupt"
	case errors.Is(err, session.ErrInvalid):
		return "invalid"
	case errors.Is(err, session.ErrFutureVersion):
		return "future_version"
	case errors.Is(err, session.ErrMigration):
		return "migration"
	case errors.Is(err, session.ErrTooLarge):
		return "too_large"
	case errors.Is(err, context.Canceled):
		return "canceled"
	case errors.Is(err, context.DeadlineExceeded):
		return "deadline_exceeded"
	}
	return "other"
}
