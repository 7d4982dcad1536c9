package maintenance_test

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/shiftkey/shiftkey/internal/pgtest"
	"github.com/shiftkey/shiftkey/maintenance"
	"github.com/shiftkey/shiftkey/postgres"
)

// records is a slog handler that keeps every record's level and message.
type records struct {
	mu   sync.Mutex
	list []slog.Record
}

func (r *records) Enabled(context.Context, slog.Level) bool { return true }
func (r *records) Handle(_ context.Context, rec slog.Record) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.list = append(r.list, rec.Clone())
	return nil
}
func (r *records) WithAttrs([]slog.Attr) slog.Handler { return r }
func (r *records) WithGroup(string) slog.Handler      { return r }

// count is how many records are at level and have a message containing
// part.
func (r *records) count(level slog.Level, part string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, rec := range r.list {
		if rec.Level == level && strings.Contains(rec.Message, part) {
			n++
		}
	}
	return n
}

// failingBackend is a backend whose reconciliation fails while down is set.
type failingBackend struct{ down atomic.Bool }

func (b *failingBackend) Reconcile(context.Context) (int, error) {
	if b.down.Load() {
		return 0, errors.New("backend unreachable")
	}
	return 0, nil
}

// While the shared store is down, every sweep failed and warned (twice: the
// credential and the session sweep), for as long as the outage lasted. It
// is one warning per outage and one note when the sweep works again; the
// failures between are debug lines. A backend whose reconciliation fails
// is told the same way, apart from the store.
func TestSweepFailuresAreToldOncePerOutage(t *testing.T) {
	if testing.Short() {
		t.Skip("stops and restarts a PostgreSQL server")
	}
	ctx := context.Background()
	srv := pgtest.Start(t)
	if err := srv.CreateDatabase(ctx, "store"); err != nil {
		t.Fatal(err)
	}
	db, err := postgres.Open(ctx, srv.ConnString(srv.Superuser(), "store"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	var logs records
	backend := &failingBackend{}
	sw := &maintenance.Sweeper{Store: db, Backends: func() []maintenance.Reconciler { return []maintenance.Reconciler{backend} }, Logger: slog.New(&logs)}

	sw.Sweep(ctx)
	if n := logs.count(slog.LevelWarn, ""); n != 0 {
		t.Fatalf("%d warnings from a sweep of a store that answers", n)
	}
	for outage := 1; outage <= 2; outage++ {
		pgtest.PgCtl(t, srv, "stop", "-m", "fast", "-w")
		for range 3 {
			sw.Sweep(ctx)
		}
		if n := logs.count(slog.LevelWarn, ""); n != outage {
			t.Fatalf("%d warnings after %d outages of 3 sweeps each, want %d", n, outage, outage)
		}
		pgtest.PgCtl(t, srv, "start", "-w", "-l", srv.DataDir()+"/restart.log")
		// The pool's connections from before the restart may fail a
		// sweep or two: swept until one works.
		for end := time.Now().Add(60 * time.Second); logs.count(slog.LevelInfo, "works again") < outage; {
			if time.Now().After(end) {
				t.Fatalf("no note that the sweep works again after outage %d (%d warnings)", outage, logs.count(slog.LevelWarn, ""))
			}
			sw.Sweep(ctx)
		}
		if n := logs.count(slog.LevelInfo, "works again"); n != outage {
			t.Fatalf("%d notes that the sweep works again after %d outages, want %d", n, outage, outage)
		}
	}
	if n := logs.count(slog.LevelWarn, ""); n != 2 {
		t.Fatalf("%d warnings after 2 outages, want 2", n)
	}

	// A backend's reconciliation: one warning while it fails, a note when
	// it works again.
	backend.down.Store(true)
	for range 3 {
		sw.Sweep(ctx)
	}
	backend.down.Store(false)
	sw.Sweep(ctx)
	if w, i := logs.count(slog.LevelWarn, "reconciliation"), logs.count(slog.LevelInfo, "reconciliation works again"); w != 1 || i != 1 {
		t.Fatalf("a backend failing 3 sweeps, then working: %d warnings, %d notes it works again, want 1 and 1", w, i)
	}
}
