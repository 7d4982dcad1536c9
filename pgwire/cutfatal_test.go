package pgwire

import (
	"context"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"
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

// stallingBackend's Prepare waits until the login is cut: a session cut
// while still logging in.
type stallingBackend struct {
	*fakeBackend
	entered chan struct{}
}

func (b stallingBackend) Prepare(ctx context.Context, role string, autoCreate bool, groups []string) (Lease, []string, error) {
	b.entered <- struct{}{}
	<-ctx.Done()
	return nil, nil, ctx.Err()
}

// A session cut while it still logs in (its credential revoked while the
// backend readies its role, or the gateway's grace period over while it
// is in the SCRAM exchange) is told why, as a relayed one is, with one
// FATAL 57P01 and nothing before it.
func TestSessionsCutWhileLoggingInGetFatal(t *testing.T) {
	for _, tc := range []struct {
		reason, says, login string
		cut                 func(g *Gateway)
	}{
		{shiftkey.EndRevoked, "credential was revoked", shiftkey.LoginRevoked, func(g *Gateway) { g.Terminate(map[string]bool{"x": true}) }},
		{shiftkey.EndShutdown, "shutting down", shiftkey.LoginShutdown, func(g *Gateway) { go g.Close() }},
	} {
		t.Run(tc.reason, func(t *testing.T) {
			be := stallingBackend{&fakeBackend{}, make(chan struct{}, 1)}
			logins := &loginLog{}
			g, addr := newGateway(t, func(g *Gateway) { g.Backend, g.Observer = be, logins })
			host, port, _ := net.SplitHostPort(addr)
			done := make(chan error, 1)
			go func() {
				c, err := pgx.Connect(context.Background(), "host="+host+" port="+port+" user=IAM:u password=pw sslmode=disable connect_timeout=20")
				if err == nil {
					c.Close(context.Background())
				}
				done <- err
			}()
			select {
			case <-be.entered:
			case <-time.After(10 * time.Second):
				t.Fatal("the login never reached the backend")
			}
			tc.cut(g)
			select {
			case err := <-done:
				wantFatal(t, "logging-in", err, tc.says)
			case <-time.After(10 * time.Second):
				t.Fatal("the cut login's client still waits")
			}
			if e := logins.reported(t, 1)[0]; e.OK || e.Reason != tc.login || e.CredentialID != "x" {
				t.Fatalf("the cut login reported as %+v, want %s with credential x", e, tc.login)
			}
		})
	}
	t.Run("in the SCRAM exchange", func(t *testing.T) {
		g, addr := newGateway(t, nil)
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		fe := pgproto3.NewFrontend(c, c)
		fe.Send(&pgproto3.StartupMessage{ProtocolVersion: pgproto3.ProtocolVersionNumber, Parameters: map[string]string{"user": "IAM:u"}})
		if err := fe.Flush(); err != nil {
			t.Fatal(err)
		}
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		if m, err := fe.Receive(); err != nil {
			t.Fatal(err)
		} else if _, ok := m.(*pgproto3.AuthenticationSASL); !ok {
			t.Fatalf("got %T, want AuthenticationSASL", m)
		}
		go g.Close()
		m, err := fe.Receive()
		if e, ok := m.(*pgproto3.ErrorResponse); err != nil || !ok || e.Severity != "FATAL" || e.Code != codeAdminShutdown || !strings.Contains(e.Message, "shutting down") {
			t.Fatalf("a client in the SCRAM exchange at the end of the grace period got %#v, %v; want FATAL 57P01 saying the gateway shuts down", m, err)
		}
	})
}

// A login that runs out of its time (AuthTimeout) while the gateway waits
// for the backend is told so with a FATAL, as any other failed login is.
// The client's socket shared the login's deadline, so the error was
// written after it had passed and never sent: the client saw the
// connection close without a word ("unexpected EOF").
func TestLoginTimeoutIsTold(t *testing.T) {
	be := stallingBackend{&fakeBackend{}, make(chan struct{}, 1)}
	_, addr := newGateway(t, func(g *Gateway) { g.Backend, g.AuthTimeout = be, time.Second })
	host, port, _ := net.SplitHostPort(addr)
	_, err := pgx.Connect(context.Background(), "host="+host+" port="+port+" user=IAM:u password=pw sslmode=disable connect_timeout=20")
	var pe *pgconn.PgError
	if !errors.As(err, &pe) || pe.Severity != "FATAL" {
		t.Fatalf("a login past its deadline got %v, want a FATAL error response", err)
	}
}
