// Package logsafe is the middleware's default logger: slog.Default() as it
// is when a record is written. What the records say of an error follows
// the session package's one redaction rule (errs.Redact).
package logsafe

import (
	"context"
	"log/slog"
)

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
