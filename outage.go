package shiftkey

import (
	"context"
	"log/slog"
)

// OutageLog tells a background job's failures (a store or backend that
// cannot be reached, tried again every few hundred milliseconds or every
// sweep) the way an operator can read them: the first failure a warning,
// those after it debug lines, the first success after them a note. Its
// zero value has seen no failure; it is not safe for concurrent use.
type OutageLog struct{ failing bool }

// Tell logs the outcome of one try of what (err nil: it worked).
func (o *OutageLog) Tell(ctx context.Context, logger *slog.Logger, what string, err error, attrs ...any) {
	switch {
	case err != nil && o.failing:
		logger.DebugContext(ctx, what+" failed", append(attrs, "error", err)...)
	case err != nil:
		o.failing = true
		logger.WarnContext(ctx, what+" failed; tried again while it fails (logged at debug level) until it works", append(attrs, "error", err)...)
	case o.failing:
		o.failing = false
		logger.InfoContext(ctx, what+" works again", attrs...)
	}
}
