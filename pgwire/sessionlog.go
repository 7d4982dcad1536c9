package pgwire

import (
	"context"
	"log/slog"
)

// sessionLog is a session's logger with what its phases learnt of it
// (with). Logger.With formats its attributes at once, for every login,
// while most sessions write no line at the levels in use; here they are
// formatted only for a line that is written.
type sessionLog struct {
	base  *slog.Logger
	attrs []any
}

// with adds attributes to every later line; only the session's goroutine
// calls it, before the hand-off.
func (l *sessionLog) with(args ...any) { l.attrs = append(l.attrs, args...) }

// log writes one line at level, with the session's attributes first.
func (l *sessionLog) log(ctx context.Context, level slog.Level, msg string, args ...any) {
	if !l.base.Enabled(ctx, level) {
		return
	}
	l.base.With(l.attrs...).Log(ctx, level, msg, args...)
}

// enabled reports whether lines at level are written.
func (l *sessionLog) enabled(level slog.Level) bool {
	return l.base.Enabled(context.Background(), level)
}

func (l *sessionLog) Debug(msg string, args ...any) {
	l.log(context.Background(), slog.LevelDebug, msg, args...)
}

func (l *sessionLog) DebugContext(ctx context.Context, msg string, args ...any) {
	l.log(ctx, slog.LevelDebug, msg, args...)
}

func (l *sessionLog) InfoContext(ctx context.Context, msg string, args ...any) {
	l.log(ctx, slog.LevelInfo, msg, args...)
}

func (l *sessionLog) WarnContext(ctx context.Context, msg string, args ...any) {
	l.log(ctx, slog.LevelWarn, msg, args...)
}

func (l *sessionLog) Error(msg string, args ...any) {
	l.log(context.Background(), slog.LevelError, msg, args...)
}

func (l *sessionLog) ErrorContext(ctx context.Context, msg string, args ...any) {
	l.log(ctx, slog.LevelError, msg, args...)
}
