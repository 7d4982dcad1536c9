package pgwire

import (
	"context"
	"testing"
	"time"
)

// Found in an operator's review: a session cut by the gateway (a credential
// revoked with --terminate, the end of a shutdown's grace period) left its
// query running on the backend (pg_sleep(30) ran on after a drain):
// PostgreSQL notices a closed connection only when it next reads or writes
// it. The gateway now cancels the query of a session it cuts.
func TestCutSessionsQueryIsCancelled(t *testing.T) {
	relays(t, func(t *testing.T, relay func(*Gateway)) {
		g, addr := newGateway(t, func(g *Gateway) { relay(g); g.PoolSize = 2 })
		admin := superuser(t, g.DefaultDB)
		c := mustLogin(t, addr)
		pid := c.PgConn().PID()
		done := make(chan error, 1)
		go func() {
			_, err := c.Exec(context.Background(), "SELECT pg_sleep(20)")
			done <- err
		}()
		if !waitUntil(10*time.Second, func() bool { return sleeping(t, admin, pid) }) {
			t.Fatal("the query never ran")
		}
		if n := g.Terminate(map[string]bool{"x": true}); n != 1 {
			t.Fatalf("Terminate ended %d sessions, want 1", n)
		}
		select {
		case err := <-done:
			if err == nil {
				t.Fatal("the cut session's query completed")
			}
		case <-time.After(10 * time.Second):
			t.Fatal("the cut session's client still waits")
		}
		if !waitUntil(5*time.Second, func() bool { return !sleeping(t, admin, pid) }) {
			t.Fatalf("the cut session's query still runs on backend %d", pid)
		}
	})
}
