package pgwire

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgproto3"
)

// heldCancels is the real backend, with its cancel requests held until
// the test lets each go: a cancel on its way to PostgreSQL (a slow
// network, a busy postmaster) while its session ends.
type heldCancels struct {
	Backend
	started chan struct{}
	release chan struct{}
	done    chan error
}

func (h heldCancels) Cancel(ctx context.Context, key *pgproto3.BackendKeyData) error {
	h.started <- struct{}{}
	<-h.release
	err := h.Backend.Cancel(ctx, key)
	h.done <- err
	return err
}

// A client cancels (its query just ended, or it was idle) and then says
// Terminate: the cancel is still on its way to PostgreSQL when the session
// ends clean. Its backend must not serve the next session of the role
// before that cancel has landed, or the cancel stops the next session's
// query, which a fresh login's never is.
func TestCancelInFlightDoesNotReachNextSession(t *testing.T) {
	plainRelays(t, func(t *testing.T, relay func(*Gateway)) {
		held := heldCancels{started: make(chan struct{}, 1), release: make(chan struct{}), done: make(chan error, 1)}
		g, addr := newGateway(t, func(g *Gateway) {
			relay(g)
			g.PoolSize = 2
			held.Backend = g.Backend
			g.Backend = held
		})
		admin, b, cancelSent := cancelThenTerminate(t, g, addr, held.started, "the gateway never forwarded the cancel request")
		defer b.Close(context.Background())
		err := sleepWhileCancelling(t, b, admin, func() {
			close(held.release)
			if err := <-held.done; err != nil {
				t.Logf("the held cancel: %v", err)
			}
		})
		<-cancelSent
		if err != nil {
			t.Fatalf("the next session's query ended with %v: the first session's cancel reached it", err)
		}
	})
}

// cancelThenTerminate logs in to the gateway at addr, sends a cancel from
// the idle session and waits until held says the cancel is held on its
// way (failing with notHeld if it never is), then ends the session clean
// (Terminate) and waits until its backend is pooled or closed. It returns
// the superuser connection, the next session of the same role, and the
// channel the held cancel's CancelRequest result arrives on.
func cancelThenTerminate(t *testing.T, g *Gateway, addr string, held <-chan struct{}, notHeld string) (admin, b *pgx.Conn, cancelSent <-chan error) {
	t.Helper()
	ctx := context.Background()
	admin = superuser(t, g.DefaultDB)
	a := mustLogin(t, addr)
	pidA := a.PgConn().PID()
	sent := make(chan error, 1)
	go func() {
		cctx, cancel := context.WithTimeout(ctx, 20*time.Second)
		defer cancel()
		sent <- a.PgConn().CancelRequest(cctx)
	}()
	select {
	case <-held:
	case <-time.After(10 * time.Second):
		t.Fatal(notHeld)
	}
	a.Close(ctx) // Terminate, idle: clean
	// The session's end has settled: its backend pooled, or closed.
	if !waitUntil(10*time.Second, func() bool {
		var n int
		return g.pooledCount() == 1 ||
			admin.QueryRow(ctx, "SELECT count(*) FROM pg_stat_activity WHERE pid = $1", int64(pidA)).Scan(&n) == nil && n == 0
	}) {
		t.Fatal("the session's backend was neither pooled nor closed")
	}
	b = mustLogin(t, addr)
	t.Logf("first session on process %d, next on %d", pidA, b.PgConn().PID())
	return admin, b, sent
}
