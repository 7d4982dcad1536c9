package postgres

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"time"
)

// A transaction the server rolls back for another one's sake (a
// serialization failure or a deadlock) committed nothing and may commit
// when run again: the writes that can meet one (a group-commit write
// retried alone, a policy's version writes) run again here, a bounded
// number of times, before the caller is told (ServiceUnavailable, which
// the SDKs retry: classify).

// conflict is whether err is a serialization failure (40001) or a
// deadlock (40P01): the server rolled the transaction back because of
// another one, and the same writes may commit when sent again.
func conflict(err error) bool {
	return isCode(err, "40001") || isCode(err, "40P01")
}

// conflictRetries bounds how many times a write is run again after
// conflicts (a group-commit write alone: the writer's other writes wait
// meanwhile).
const conflictRetries = 5

// retryConflicts runs f, and again while it fails with a conflict, up to
// retries times, each after a pause (conflictBackoff). It returns f's
// last error, still a conflict when every retry met one, or callerLeft's
// when ctx ends during a pause: then f is not run again, as nobody would
// be told that it committed. what names the write in the log.
func retryConflicts(ctx context.Context, what string, retries int, f func() error) error {
	err := f()
	for n := 0; conflict(err); n++ {
		if n == retries {
			slog.Warn("postgres store: a write met a conflicting transaction at every retry; it fails with ServiceUnavailable",
				"write", what, "retries", n, "error", err)
			break
		}
		if !pause(ctx, conflictBackoff(n)) {
			return callerLeft(ctx)
		}
		err = f()
	}
	return err
}

// conflictBackoff is the pause before the n-th retry (from 0) of a write
// that met a conflict: 2 ms doubling, jittered down to half, so that two
// replicas' writes that conflicted do not meet again in step.
func conflictBackoff(n int) time.Duration {
	d := 2 * time.Millisecond << n
	return d/2 + rand.N(d/2+1)
}

// pause waits d, false when ctx ends first.
func pause(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// callerLeft is the error of a write whose caller has left (ctx ended),
// nil while ctx goes on.
func callerLeft(ctx context.Context) error {
	if ctx.Err() == nil {
		return nil
	}
	return fmt.Errorf("%w: %w", errCallerLeft, context.Cause(ctx))
}
