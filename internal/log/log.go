// Package log carries a *slog.Logger in a context. It owns nothing else:
// callers choose handlers and levels in cmd/.
package log

import (
	"context"
	"log/slog"
)

type loggerKey struct{}

// G returns the logger carried by ctx, or slog.Default() when there is none.
func G(ctx context.Context) *slog.Logger {
	if l, ok := ctx.Value(loggerKey{}).(*slog.Logger); ok {
		return l
	}
	return slog.Default()
}

// WithLogger returns a copy of ctx carrying l.
func WithLogger(ctx context.Context, l *slog.Logger) context.Context {
	return context.WithValue(ctx, loggerKey{}, l)
}

// With returns a copy of ctx whose logger has attrs added.
func With(ctx context.Context, attrs ...any) context.Context {
	return WithLogger(ctx, G(ctx).With(attrs...))
}

// ParseLevel turns "debug", "info", "warn" or "error" into a slog.Level.
func ParseLevel(s string) (slog.Level, error) {
	var l slog.Level
	err := l.UnmarshalText([]byte(s))
	return l, err
}
