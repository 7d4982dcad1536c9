package pgwire

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/shiftkey/shiftkey/internal/pgtest"
)

// Found in review: a login while the backend PostgreSQL was starting up (a
// restart, a failover) got the backend's 57P03 ("the database system is
// starting up") at once, though the backend accepted connections a
// moment later. The gateway now tries the backend again within the
// login's deadline: the login succeeds once the backend is up; one that
// outlasts the deadline fails with the backend's 57P03.
func TestLoginDuringBackendStartup(t *testing.T) {
	_, addr, srv := dedicatedGateway(t, func(g *Gateway) { g.AuthTimeout = 30 * time.Second })
	ctx := context.Background()
	c := mustLogin(t, addr)
	simple(t, c, "SELECT 1")
	c.Close(ctx)
	pgtest.PgCtl(t, srv, "stop", "-m", "fast", "-w", "-t", "60", "-s")
	pgtest.StartInRecovery(t, srv)

	type result struct {
		c   *pgx.Conn
		err error
	}
	done := make(chan result, 1)
	go func() {
		c, err := login(addr)
		done <- result{c, err}
	}()
	// Without waiting, the login failed within milliseconds.
	select {
	case r := <-done:
		t.Fatalf("the login returned while the backend was starting up: %v", r.err)
	case <-time.After(time.Second):
	}
	pgtest.PgCtl(t, srv, "promote", "-w", "-t", "60", "-s")
	var r result
	select {
	case r = <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("the login did not end within 30 s of the backend's promotion")
	}
	if r.err != nil {
		t.Fatalf("the login during the backend's startup, once it accepts connections: %v", r.err)
	}
	defer r.c.Close(ctx)
	simple(t, r.c, "SELECT 1")
}

// A backend still starting up when the login's deadline comes: the
// client gets the backend's own answer (SQLSTATE 57P03, which drivers and
// poolers know as "try later"), after the gateway tried until then;
// whether it was the admin pool's check of the role (a role not seen
// yet) or the session's own connection (a role seen a moment before) that
// met it.
func TestLoginOutlastedByBackendStartup(t *testing.T) {
	for _, tc := range []struct {
		name      string
		roleKnown bool
	}{{"role not seen yet", false}, {"role seen before", true}} {
		t.Run(tc.name, func(t *testing.T) {
			_, addr, srv := dedicatedGateway(t, func(g *Gateway) { g.AuthTimeout = 2 * time.Second })
			if tc.roleKnown {
				c := mustLogin(t, addr)
				c.Close(context.Background())
			}
			pgtest.PgCtl(t, srv, "stop", "-m", "fast", "-w", "-t", "60", "-s")
			pgtest.StartInRecovery(t, srv)
			start := time.Now()
			c, err := login(addr)
			took := time.Since(start)
			if err == nil {
				c.Close(context.Background())
				t.Fatal("a login succeeded while the backend was in recovery")
			}
			if code(err) != "57P03" {
				t.Errorf("the login got %v; want the backend's 57P03", err)
			}
			if took < time.Second {
				t.Errorf("the login gave up after %v; want after trying until near its 2 s deadline", took)
			}
		})
	}
}
