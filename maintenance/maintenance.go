// Package maintenance is the store's periodic upkeep while shiftkey
// serves: credentials and STS sessions go a day after they expired, and
// every backend revokes the session grants that no live session holds
// (what a crash or a lost connection left behind) and those whose group
// turned unsafe while held.
package maintenance

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/shiftkey/shiftkey"
)

// Store is what the sweep deletes from.
type Store interface {
	DeleteExpiredCredentials(ctx context.Context, before time.Time) (int, error)
	DeleteExpiredSessions(ctx context.Context, before time.Time) (int, error)
}

// Reconciler revokes the session grants no live session holds, and those
// whose group turned unsafe while held (*pgbackend.Backend).
type Reconciler interface {
	Reconcile(ctx context.Context) (int, error)
}

// Interval is the time between two sweeps; Retention how long expired
// credentials and sessions are kept (for audit and `policy why`).
const (
	Interval  = time.Minute
	Retention = 24 * time.Hour
)

// Sweeper runs the sweep.
type Sweeper struct {
	Store Store
	// Backends are the backends to reconcile, asked for at each sweep:
	// gateways come and go.
	Backends func() []Reconciler
	Logger   *slog.Logger     // nil: discard
	Now      func() time.Time // nil: time.Now
	// Every is the time between two sweeps (0: Interval). Replicas
	// sharing a store with leased grants sweep within a lease, so that a
	// dead replica's grants are revoked soon after its lease ran out.
	Every time.Duration

	// mu orders sweeps, and guards what the failing parts are: a store
	// outage or a backend that cannot be reached is a warning once and a
	// note when it works again, not a warning every sweep.
	mu               sync.Mutex
	store, reconcile shiftkey.OutageLog
}

// Run sweeps at once, then every s.Every until ctx is done. Every replica
// runs it: the deletes are idempotent statements, and a grant is revoked
// only by its owner or, once its lease ran out, by any replica (REVOKE of
// a membership already gone is a no-op).
func (s *Sweeper) Run(ctx context.Context) {
	every := s.Every
	if every <= 0 {
		every = Interval
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		s.Sweep(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Sweep runs one sweep. Failures are logged, not returned: the next sweep
// tries again.
func (s *Sweeper) Sweep(ctx context.Context) {
	logger, now := s.Logger, s.Now
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if now == nil {
		now = time.Now
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	// The credential and session sweeps fail together when the store
	// does: one part.
	creds, err := s.Store.DeleteExpiredCredentials(ctx, now().Add(-Retention))
	sessions, serr := s.Store.DeleteExpiredSessions(ctx, now().Add(-Retention))
	if ctx.Err() != nil {
		return
	}
	s.store.Tell(ctx, logger, "expired credential and session sweep", errors.Join(err, serr))
	if creds > 0 {
		logger.Info("expired credentials deleted", "count", creds)
	}
	if sessions > 0 {
		logger.Info("expired STS sessions deleted", "count", sessions)
	}
	if s.Backends != nil {
		var errs []error
		for _, b := range s.Backends() {
			if _, err := b.Reconcile(ctx); err != nil {
				errs = append(errs, err)
			}
		}
		if ctx.Err() != nil {
			return
		}
		s.reconcile.Tell(ctx, logger, "grant reconciliation", errors.Join(errs...))
	}
}
