package pgwire

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/shiftkey/shiftkey"
)

// Found in a review: a session the gateway cut (credentials revoke
// --terminate, the end of a shutdown's grace period,
// limits.max_session_lifetime) just closed, and psql said only "server
// closed the connection unexpectedly". As PostgreSQL does on
// pg_terminate_backend and at shutdown, the client now first gets a FATAL
// that says why, with SQLSTATE 57P01: idle, and while its query runs. On
// every relay, and on the goroutine relay with a TLS client too (relays
// has TLS clients on the loops only); the pool is on, and the cut backends
// must not go back to it.
func TestCutSessionsGetFatal(t *testing.T) {
	relays(t, testCutFatal)
	t.Run("goroutine+tls", func(t *testing.T) {
		cfg, _ := testTLS(t)
		testCutFatal(t, func(g *Gateway) { g.TLS, g.RequireTLS = cfg, true })
	})
}

func testCutFatal(t *testing.T, relay func(*Gateway)) {
	g, addr := newGateway(t, func(g *Gateway) { relay(g); g.PoolSize = 2; g.MaxSessionLifetime = time.Hour })
	admin := superuser(t, g.DefaultDB)
	for _, tc := range []struct {
		reason, says string
		cut          func()
	}{
		{shiftkey.EndRevoked, "credential was revoked", func() { g.Terminate(map[string]bool{"x": true}) }},
		{shiftkey.EndLifetime, "limits.max_session_lifetime (1h0m0s)", func() { cutAll(g, shiftkey.EndLifetime) }},
		// Last: the gateway is closed after it (Close is what
		// Shutdown calls when the grace period runs out).
		{shiftkey.EndShutdown, "shutting down", func() { go g.Close() }},
	} {
		t.Run(tc.reason, func(t *testing.T) {
			idle, busy := mustLogin(t, addr), mustLogin(t, addr)
			pid := busy.PgConn().PID()
			done := make(chan error, 1)
			go func() {
				_, err := busy.Exec(context.Background(), "SELECT pg_sleep(20)")
				done <- err
			}()
			if !waitUntil(10*time.Second, func() bool { return sleeping(t, admin, pid) }) {
				t.Fatal("the query never ran")
			}
			tc.cut()
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			wantFatal(t, "idle", idle.PgConn().WaitForNotification(ctx), tc.says)
			select {
			case err := <-done:
				wantFatal(t, "busy", err, tc.says)
			case <-time.After(10 * time.Second):
				t.Fatal("the busy session's client still waits")
			}
			if !waitUntil(5*time.Second, func() bool { return !sleeping(t, admin, pid) }) {
				t.Fatalf("the cut session's query still runs on backend %d", pid)
			}
			if n := g.pooledCount(); n != 0 {
				t.Fatalf("%d cut backends went back to the pool", n)
			}
		})
	}
}

func wantFatal(t *testing.T, which string, err error, says string) {
	t.Helper()
	var pe *pgconn.PgError
	if !errors.As(err, &pe) || pe.Severity != "FATAL" || pe.Code != codeAdminShutdown || !strings.Contains(pe.Message, says) {
		t.Errorf("%s session: got %v, want FATAL %s saying %q", which, err, codeAdminShutdown, says)
	}
}

// cutAll cuts every session of g for reason, as the lifetime timer does.
func cutAll(g *Gateway, reason string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	for s := range g.sessions {
		s.closeFor(reason)
	}
}
