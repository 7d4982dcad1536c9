package groupcommit

import (
	"fmt"
	"sync/atomic"
	"time"
)

// Health remembers whether a writer's batches fail (a full disk, a store
// that does not answer), for a readiness check: reads may still succeed
// while no write can. Err reports the last failure while no batch has
// committed since, for at most HealthFor after it: a replica taken out of
// rotation for it gets no writes that could show it has recovered, so it
// is let back in to find out.
type Health struct {
	last atomic.Pointer[failure]
}

// HealthFor is how long a failure counts without a later one.
const HealthFor = 30 * time.Second

type failure struct {
	err error
	at  time.Time
}

// Failed records a batch's (or a write's) failure that is the store's,
// not the op's (a constraint is the op's).
func (h *Health) Failed(err error) { h.last.Store(&failure{err: err, at: time.Now()}) }

// Committed records a batch that committed.
func (h *Health) Committed() {
	if h.last.Load() != nil {
		h.last.Store(nil)
	}
}

// Err is the last failure, nil once a batch has committed since or
// HealthFor has passed.
func (h *Health) Err() error {
	f := h.last.Load()
	if f == nil {
		return nil
	}
	ago := time.Since(f.at)
	if ago > HealthFor {
		return nil
	}
	return fmt.Errorf("the last write failed %v ago, none has committed since: %w", ago.Round(time.Second), f.err)
}
