package pgwire

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"
	"github.com/shiftkey/shiftkey"
	"github.com/shiftkey/shiftkey/devca"
	"github.com/shiftkey/shiftkey/internal/pgtest"
	"github.com/shiftkey/shiftkey/pgbackend"
	"github.com/shiftkey/shiftkey/pgserver"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// newGateway serves a gateway over the shared test PostgreSQL: login
// IAM:u with password "pw" runs as the server's superuser.
func newGateway(t testing.TB, configure func(*Gateway)) (*Gateway, string) {
	t.Helper()
	srv := pgtest.Server(t)
	db := pgtest.NewDatabase(t)
	// Sessions run as the test server's superuser, as a cluster's master
	// user may; provisioning uses a role of its own, which is never issued.
	if err := srv.EnsureProvisioner(context.Background(), testProvisioner); err != nil {
		t.Fatal(err)
	}
	b, err := pgbackend.New(context.Background(), pgbackend.Config{Host: srv.SocketDir(), Port: srv.Port(), AdminUser: testProvisioner, AdminDatabase: db,
		MasterUser: srv.Superuser(), AllowSuperuser: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	g := &Gateway{Cluster: "c", DefaultDB: db, Backend: b.ForGateway(), Secret: []byte("s"),
		Credentials: memCreds{&shiftkey.Credential{ID: "x", LoginName: "IAM:u", DBUser: srv.Superuser(), StoredKey: fuzzKeys.StoredKey[:], ServerKey: fuzzKeys.ServerKey[:]}}}
	return serveGateway(t, g, configure)
}

// serveGateway configures g and serves it on a loopback port for the rest
// of the test.
func serveGateway(t testing.TB, g *Gateway, configure func(*Gateway)) (*Gateway, string) {
	t.Helper()
	if configure != nil {
		configure(g)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go g.Serve(ln)
	addr := ln.Addr().String()
	if g.RequireTLS {
		tlsOnly.Store(addr, true)
	}
	t.Cleanup(func() { g.Close(); tlsOnly.Delete(addr) })
	return g, addr
}

// tlsOnly holds the addresses of gateways that require TLS.
var tlsOnly sync.Map

// sslMode is the sslmode that logs in to the gateway at addr: require
// where it requires TLS, else disable.
func sslMode(addr string) string {
	if _, ok := tlsOnly.Load(addr); ok {
		return "require"
	}
	return "disable"
}

const testProvisioner = "shiftkey_admin"

// tlsBackendDBs maps the databases made on the shared TLS server
// (useTLSBackend) to it, for superuser.
var tlsBackendDBs sync.Map

// useTLSBackend points g, as newGateway made it, at a fresh database on the
// shared PostgreSQL with TLS, logged in with client certificates signed by
// its CA (pgbackend.Config.ClientCert), as dev mode's and provisioned
// backends are.
func useTLSBackend(t testing.TB, g *Gateway) {
	t.Helper()
	srv, ca := pgtest.TLSServer(t)
	useTLSBackendOn(t, g, srv, ca)
}

// useTLSBackendOn is useTLSBackend on srv, whose TLS certificates ca signs.
func useTLSBackendOn(t testing.TB, g *Gateway, srv *pgserver.Server, ca *devca.CA) {
	t.Helper()
	ctx := context.Background()
	db := fmt.Sprintf("tls%d", tlsDBs.Add(1))
	if err := srv.CreateDatabase(ctx, db); err != nil {
		t.Fatal(err)
	}
	tlsBackendDBs.Store(db, srv)
	t.Cleanup(func() {
		tlsBackendDBs.Delete(db)
		if conn, err := pgx.Connect(ctx, srv.ConnString(srv.Superuser(), "postgres")); err == nil {
			conn.Exec(ctx, "DROP DATABASE "+pgx.Identifier{db}.Sanitize()+" WITH (FORCE)")
			conn.Close(ctx)
		}
	})
	if err := srv.EnsureProvisioner(ctx, testProvisioner); err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(ca.CertPEM)
	b, err := pgbackend.New(ctx, pgbackend.Config{Host: "127.0.0.1", Port: srv.Port(), AdminUser: testProvisioner, AdminDatabase: db,
		MasterUser: srv.Superuser(), AllowSuperuser: true, ClientCert: ca.ClientCert, RootCAs: func() *x509.CertPool { return roots }, ServerName: "127.0.0.1", Logger: g.Logger})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	g.Backend, g.DefaultDB = b.ForGateway(), db
	g.Credentials = memCreds{&shiftkey.Credential{ID: "x", LoginName: "IAM:u", DBUser: srv.Superuser(), StoredKey: fuzzKeys.StoredKey[:], ServerKey: fuzzKeys.ServerKey[:]}}
}

var tlsDBs atomic.Int64

func login(addr string) (*pgx.Conn, error) {
	host, port, _ := net.SplitHostPort(addr)
	return pgx.Connect(context.Background(), fmt.Sprintf("host=%s port=%s user=IAM:u password=pw sslmode=%s connect_timeout=30", host, port, sslMode(addr)))
}

// mustLogin logs in IAM:u for the rest of the test.
func mustLogin(t *testing.T, addr string) *pgx.Conn {
	t.Helper()
	c, err := login(addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close(context.Background()) })
	return c
}

func code(err error) string {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe.Code
	}
	return ""
}

func TestMaxConnections(t *testing.T) {
	g, addr := newGateway(t, func(g *Gateway) { g.MaxConnections = 2 })
	var conns []*pgx.Conn
	for range 2 {
		c, err := login(addr)
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
	}
	if _, err := login(addr); code(err) != "53300" {
		t.Fatalf("third connection: %v, want 53300", err)
	}
	conns[0].Close(context.Background())
	if !waitUntil(10*time.Second, func() bool { return g.sessionCount() == 1 }) {
		t.Fatalf("%d sessions after one of 2 closed", g.sessionCount())
	}
	c, err := login(addr)
	if err != nil {
		t.Fatalf("after one closed: %v", err)
	}
	c.Close(context.Background())
	conns[1].Close(context.Background())
}

func TestMaxSessionLifetime(t *testing.T) {
	relays(t, func(t *testing.T, relay func(*Gateway)) {
		// Long enough for the login and a ping on a loaded machine.
		g, addr := newGateway(t, func(g *Gateway) { relay(g); g.MaxSessionLifetime = time.Second })
		c := mustLogin(t, addr)
		if err := c.Ping(context.Background()); err != nil {
			t.Fatal(err)
		}
		// The client is told why (TestCutSessionsGetFatal).
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := c.PgConn().WaitForNotification(ctx); code(err) != codeAdminShutdown {
			t.Fatalf("at max_session_lifetime the client got %v, want SQLSTATE %s", err, codeAdminShutdown)
		}
		if !waitUntil(10*time.Second, func() bool { return g.sessionCount() == 0 }) {
			t.Fatal("the session is still counted past max_session_lifetime")
		}
		if err := c.Ping(context.Background()); err == nil {
			t.Fatal("session outlived max_session_lifetime")
		}
	})
}

func TestIdleTimeout(t *testing.T) {
	relays(t, func(t *testing.T, relay func(*Gateway)) {
		// Long enough for the query to start after the login on a loaded
		// machine (the backend's idle clock runs from the login).
		g, addr := newGateway(t, func(g *Gateway) { relay(g); g.IdleTimeout = time.Second })
		c := mustLogin(t, addr)
		// A query longer than the idle timeout is not idle.
		if _, err := c.Exec(context.Background(), "SELECT pg_sleep(1.5)"); err != nil {
			t.Fatalf("busy session was cut: %v", err)
		}
		// The backend ends the idle session (idle_session_timeout), and
		// with it the gateway's.
		if !waitUntil(10*time.Second, func() bool { return g.sessionCount() == 0 }) {
			t.Fatal("the idle session is still counted")
		}
		if err := c.Ping(context.Background()); err == nil {
			t.Fatal("idle session was not ended")
		}
	})
}

func TestShutdownLetsSessionsFinish(t *testing.T) {
	relays(t, func(t *testing.T, relay func(*Gateway)) {
		g, addr := newGateway(t, relay)
		c, err := login(addr)
		if err != nil {
			t.Fatal(err)
		}
		pid := c.PgConn().PID()
		done := make(chan error, 1)
		go func() {
			_, err := c.Exec(context.Background(), "SELECT pg_sleep(0.3)")
			c.Close(context.Background())
			done <- err
		}()
		// Shut down while the query runs (or, on a machine too slow to see
		// it running, once it is over).
		admin := superuser(t, g.DefaultDB)
		waitUntil(10*time.Second, func() bool { return len(done) > 0 || sleeping(t, admin, pid) })
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if cut := g.Shutdown(ctx); cut != 0 {
			t.Fatalf("Shutdown cut %d sessions that would have finished", cut)
		}
		if err := <-done; err != nil {
			t.Fatalf("query during shutdown: %v", err)
		}
		if _, err := login(addr); err == nil {
			t.Fatal("accepted a connection after Shutdown")
		}
		// A session that does not finish is cut at the deadline.
		g2, addr2 := newGateway(t, relay)
		mustLogin(t, addr2) // idle until Shutdown cuts it
		ctx2, cancel2 := context.WithTimeout(context.Background(), 200*time.Millisecond)
		defer cancel2()
		if cut := g2.Shutdown(ctx2); cut != 1 {
			t.Fatalf("Shutdown cut %d sessions, want the 1 idle one", cut)
		}
	})
}

func TestFailuresAreThrottled(t *testing.T) {
	var delays []time.Duration
	var mu sync.Mutex
	g, addr := newGateway(t, func(g *Gateway) {
		g.sleep = func(d time.Duration) { mu.Lock(); delays = append(delays, d); mu.Unlock() }
	})
	host, port, _ := net.SplitHostPort(addr)
	for range 8 {
		_, err := pgx.Connect(context.Background(), fmt.Sprintf("host=%s port=%s user=IAM:u password=wrong sslmode=disable", host, port))
		if code(err) != "28P01" {
			t.Fatalf("wrong password: %v", err)
		}
	}
	mu.Lock()
	got := fmt.Sprint(delays)
	mu.Unlock()
	if got != "[100ms 200ms 400ms]" {
		t.Fatalf("delays %s, want none for the first 5 failures, then doubling from 100ms", got)
	}
	if g.Failures() != 8 {
		t.Fatalf("Failures() = %d", g.Failures())
	}
	c, err := login(addr)
	if err != nil {
		t.Fatalf("the right password after failures: %v", err)
	}
	c.Close(context.Background())
}

func testTLS(t *testing.T) (*tls.Config, *x509.CertPool) {
	t.Helper()
	ca, err := devca.LoadOrCreate(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(ca.CertPEM)
	return &tls.Config{GetCertificate: ca.GetCertificate(nil, "127.0.0.1")}, pool
}

func TestCleartextOnlyOverTLS(t *testing.T) {
	cfg, pool := testTLS(t)
	_, addr := newGateway(t, func(g *Gateway) { g.TLS, g.AllowCleartext = cfg, true })
	// Over TLS the gateway asks for the password itself.
	raw, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: pool, ServerName: "127.0.0.1", NextProtos: []string{"postgresql"}})
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	buf, _ := (&pgproto3.StartupMessage{ProtocolVersion: pgproto3.ProtocolVersionNumber, Parameters: map[string]string{"user": "IAM:u"}}).Encode(nil)
	raw.Write(buf)
	if msg, err := pgproto3.NewFrontend(raw, raw).Receive(); err != nil {
		t.Fatal(err)
	} else if _, ok := msg.(*pgproto3.AuthenticationCleartextPassword); !ok {
		t.Fatalf("over TLS got %T, want AuthenticationCleartextPassword", msg)
	}
	host, port, _ := net.SplitHostPort(addr)
	for _, tc := range []struct{ mode, pw, want string }{
		{"sslmode=require", "pw", ""},
		{"sslmode=require", "nope", "28P01"},
		{"sslmode=disable", "pw", ""}, // plaintext: SCRAM, never cleartext
	} {
		c, err := pgx.Connect(context.Background(), fmt.Sprintf("host=%s port=%s user=IAM:u password=%s %s", host, port, tc.pw, tc.mode))
		if code(err) != tc.want || (tc.want == "" && err != nil) {
			t.Fatalf("%s password %s: %v", tc.mode, tc.pw, err)
		}
		if err == nil {
			c.Close(context.Background())
		}
	}
	// Without TLS the first message is the SASL offer.
	plain, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer plain.Close()
	plain.Write(buf)
	if msg, err := pgproto3.NewFrontend(plain, plain).Receive(); err != nil {
		t.Fatal(err)
	} else if _, ok := msg.(*pgproto3.AuthenticationSASL); !ok {
		t.Fatalf("plaintext got %T, want AuthenticationSASL", msg)
	}
}

func simple(t *testing.T, c *pgx.Conn, sql string) string {
	t.Helper()
	res, err := c.PgConn().Exec(context.Background(), sql).ReadAll()
	if err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	last := res[len(res)-1]
	if len(last.Rows) == 0 {
		return ""
	}
	return string(last.Rows[0][0])
}

// superuser is a direct connection to the test server's database db as
// its superuser, closed when the test ends.
func superuser(t *testing.T, db string) *pgx.Conn {
	t.Helper()
	srv := pgtest.Server(t)
	if s, ok := tlsBackendDBs.Load(db); ok {
		srv = s.(*pgserver.Server)
	}
	c, err := pgx.Connect(context.Background(), srv.ConnString(srv.Superuser(), db))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close(context.Background()) })
	return c
}

func loginApp(t *testing.T, addr, app string) *pgx.Conn {
	t.Helper()
	host, port, _ := net.SplitHostPort(addr)
	c, err := pgx.Connect(context.Background(), fmt.Sprintf("host=%s port=%s user=IAM:u password=pw sslmode=%s application_name=%s", host, port, sslMode(addr), app))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// Idle pooled backends do not keep a session out: at a connection limit
// (here the role's CONNECTION LIMIT, which two idle backends of other
// startup parameters fill), the gateway closes an idle one and the login
// goes through.
func TestConnectionLimitEvictsIdleBackends(t *testing.T) {
	relays(t, func(t *testing.T, relay func(*Gateway)) {
		ctx := context.Background()
		// A role per subtest: backends of an earlier one may still be exiting.
		role := "pool_limited_" + strings.ToLower(strings.ReplaceAll(t.Name()[strings.LastIndex(t.Name(), "/")+1:], "-", "_"))
		g, addr := newGateway(t, func(g *Gateway) {
			relay(g)
			g.PoolSize = 4
			g.Credentials = memCreds{&shiftkey.Credential{ID: "x", LoginName: "IAM:u", DBUser: role, StoredKey: fuzzKeys.StoredKey[:], ServerKey: fuzzKeys.ServerKey[:]}}
		})
		admin := superuser(t, g.DefaultDB) // roles are the cluster's: any database of it
		id := pgx.Identifier{role}.Sanitize()
		for _, sql := range []string{"DROP ROLE IF EXISTS " + id, "CREATE ROLE " + id + " LOGIN CONNECTION LIMIT 2"} {
			if _, err := admin.Exec(ctx, sql); err != nil {
				t.Fatal(err)
			}
		}
		backends := func() int {
			var n int
			if err := admin.QueryRow(ctx, "SELECT count(*) FROM pg_stat_activity WHERE usename = $1", role).Scan(&n); err != nil {
				t.Fatal(err)
			}
			return n
		}
		a1, a2 := loginApp(t, addr, "a"), loginApp(t, addr, "a")
		simple(t, a1, "SELECT 1")
		simple(t, a2, "SELECT 1")
		a1.Close(ctx)
		a2.Close(ctx)
		if !waitUntil(10*time.Second, func() bool { return g.pooledCount() == 2 }) {
			t.Fatalf("%d backends pooled, want both", g.pooledCount())
		}
		if n := backends(); n != 2 {
			t.Fatalf("%d backends of the role before the login, want the 2 pooled", n)
		}
		b := loginApp(t, addr, "b")
		defer b.Close(ctx)
		if got := simple(t, b, "SELECT current_setting('application_name')"); got != "b" {
			t.Fatalf("application_name %q, want b", got)
		}
		if n := backends(); n != 2 {
			t.Fatalf("%d backends of the role with the new session, want 2 (a pooled one closed)", n)
		}
	})
}

// At a connection limit the backend closed is the longest idle of the
// login's own role and database (other parameters), whose limits it counts
// against, before any older one of another role; then the others by age.
func TestEvictIdlePrefersOwnRoleAndDatabase(t *testing.T) {
	g := &Gateway{}
	now := time.Now()
	idle := func(age time.Duration) *pooledConn { return &pooledConn{fd: -1, idleSince: now.Add(-age)} }
	other, own := poolKey("other", "db", nil), poolKey("role", "db", map[string]string{"application_name": "x"})
	oldest, ownOld, ownNew := idle(time.Hour), idle(time.Minute), idle(time.Second)
	g.pool.conns = map[string][]*pooledConn{
		other:                       {oldest},
		own:                         {ownOld, ownNew},
		poolKey("role", "dbx", nil): {idle(2 * time.Hour)}, // another database: "role\x00dbx" shares the prefix "role\x00db"
	}
	for i, want := range []*pooledConn{ownOld, ownNew, g.pool.conns[poolKey("role", "dbx", nil)][0], oldest} {
		if !g.evictIdle("role", "db") {
			t.Fatalf("eviction %d: nothing evicted", i+1)
		}
		for _, list := range g.pool.conns {
			if slices.Contains(list, want) {
				t.Fatalf("eviction %d kept the backend it should have closed", i+1)
			}
		}
	}
	if g.evictIdle("role", "db") || len(g.pool.conns) != 0 {
		t.Fatalf("an empty pool evicted something, or keys are left: %v", g.pool.conns)
	}
}

// A pooled backend shows nothing of the previous session: temp tables,
// settings, prepared statements, LISTEN, startup parameters.
func TestPooledBackendIsReset(t *testing.T) {
	relays(t, func(t *testing.T, relay func(*Gateway)) {
		g, addr := newGateway(t, func(g *Gateway) { relay(g); g.PoolSize = 2 })
		ctx := context.Background()
		c1 := loginApp(t, addr, "first")
		pid := simple(t, c1, "SELECT pg_backend_pid()")
		simple(t, c1, "CREATE TEMP TABLE leftover (v int); SET work_mem = '7MB'; SET application_name = 'changed'; PREPARE leftover_stmt AS SELECT 1; LISTEN leftover_channel")
		if got := simple(t, c1, "SELECT current_setting('application_name')"); got != "changed" {
			t.Fatalf("application_name %q", got)
		}
		// The backend's ParameterStatus for the SET reached the client.
		if got := c1.PgConn().ParameterStatus("application_name"); got != "changed" {
			t.Fatalf("client saw application_name %q, want the backend's ParameterStatus changed", got)
		}
		c1.Close(ctx) // Terminate while idle: the backend goes back to the pool
		if !waitUntil(10*time.Second, func() bool { return g.pooledCount() == 1 }) {
			t.Fatal("the backend was not pooled")
		}

		// Other startup parameters: another backend, opened with them.
		other := loginApp(t, addr, "second")
		if got := simple(t, other, "SELECT pg_backend_pid()"); got == pid {
			t.Fatal("a session with other startup parameters got the pooled backend")
		}
		if got := simple(t, other, "SELECT current_setting('application_name')"); got != "second" {
			t.Fatalf("application_name %q, want second", got)
		}
		other.Close(ctx)

		c2 := loginApp(t, addr, "first")
		defer c2.Close(ctx)
		if got := simple(t, c2, "SELECT pg_backend_pid()"); got != pid {
			t.Fatalf("backend pid %s, want the pooled %s (no reuse happened)", got, pid)
		}
		for sql, want := range map[string]string{
			"SELECT to_regclass('pg_temp.leftover') IS NULL":                           "t",
			"SELECT current_setting('work_mem')":                                       "4MB",
			"SELECT count(*) FROM pg_prepared_statements WHERE name = 'leftover_stmt'": "0",
			"SELECT count(*) FROM pg_listening_channels()":                             "0",
			"SELECT current_setting('application_name')":                               "first",
			"SELECT current_user":                                                      pgtest.Server(t).Superuser(),
		} {
			if got := simple(t, c2, sql); got != want {
				t.Errorf("%s = %q, want %q", sql, got, want)
			}
		}
	})
}

// A session that ends inside a transaction (or without Terminate) never
// lends its backend to the next one.
func TestUncleanSessionIsNotPooled(t *testing.T) {
	relays(t, func(t *testing.T, relay func(*Gateway)) {
		g, addr := newGateway(t, func(g *Gateway) { relay(g); g.PoolSize = 2 })
		ctx := context.Background()
		c1 := loginApp(t, addr, "tx")
		pid := simple(t, c1, "SELECT pg_backend_pid()")
		simple(t, c1, "BEGIN")
		c1.Close(ctx)
		if !waitUntil(10*time.Second, func() bool { return g.sessionCount() == 0 }) {
			t.Fatal("the session in a transaction did not end")
		}
		c2 := loginApp(t, addr, "tx")
		defer c2.Close(ctx)
		if got := simple(t, c2, "SELECT pg_backend_pid()"); got == pid {
			t.Fatal("a backend left inside a transaction was reused")
		}
	})
}

// A client that does not finish authenticating within the deadline is
// disconnected.
func TestAuthenticationDeadline(t *testing.T) {
	_, addr := newGateway(t, func(g *Gateway) { g.AuthTimeout = 200 * time.Millisecond })
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	buf, _ := (&pgproto3.StartupMessage{ProtocolVersion: pgproto3.ProtocolVersionNumber, Parameters: map[string]string{"user": "IAM:u"}}).Encode(nil)
	c.Write(buf) // then never answer the SASL challenge
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	fe := pgproto3.NewFrontend(c, c)
	if _, err := fe.Receive(); err != nil {
		t.Fatalf("no SASL challenge: %v", err)
	}
	if _, err := fe.Receive(); err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("connection still open after the authentication deadline: %v", err)
	}
}

// Pooled backends nobody takes are closed once idle for pool_idle_timeout,
// not only when a later session passes them over: after a burst, the
// backend processes go away.
func TestPoolIdleTimeoutClosesUnusedBackends(t *testing.T) {
	relays(t, func(t *testing.T, relay func(*Gateway)) {
		// The pool's clock stands still until the three backends are seen
		// pooled: on a loaded machine the sessions' ends can be more than
		// the idle timeout apart, and the first backend was swept before
		// the third was pooled ("0 backends pooled, want 3" under load).
		start := time.Now()
		var idle atomic.Int64 // how far the pool's clock has gone past start
		g, addr := newGateway(t, func(g *Gateway) {
			relay(g)
			g.PoolSize = 4
			g.PoolIdleTimeout = 300 * time.Millisecond
			g.Now = func() time.Time { return start.Add(time.Duration(idle.Load())) }
		})
		ctx := context.Background()
		app := "sweep_" + strings.ReplaceAll(t.Name(), "/", "_")
		app = app[:min(len(app), 63)] // PostgreSQL keeps 63 bytes of it
		var conns []*pgx.Conn
		for range 3 {
			conns = append(conns, loginApp(t, addr, app))
		}
		for _, c := range conns {
			c.Close(ctx)
		}
		admin := superuser(t, g.DefaultDB)
		backends := func() int {
			t.Helper()
			var n int
			if err := admin.QueryRow(ctx, "SELECT count(*) FROM pg_stat_activity WHERE application_name = $1", app).Scan(&n); err != nil {
				t.Fatal(err)
			}
			return n
		}
		// Pooled first (DISCARD ALL keeps application_name from the startup packet).
		if !waitUntil(5*time.Second, func() bool { return g.pooledCount() == 3 }) {
			t.Fatalf("%d backends pooled, want 3", g.pooledCount())
		}
		if n := backends(); n != 3 {
			t.Fatalf("%d pooled backend processes, want 3", n)
		}
		// Idle past the timeout, with no session to pass them over.
		idle.Store(int64(g.PoolIdleTimeout + time.Millisecond))
		if !waitUntil(5*time.Second, func() bool { return g.pooledCount() == 0 && backends() == 0 }) {
			t.Fatalf("after the idle timeout: %d pooled, %d backend processes; want none", g.pooledCount(), backends())
		}
	})
}

func (g *Gateway) pooledCount() int {
	g.pool.mu.Lock()
	defer g.pool.mu.Unlock()
	n := 0
	for _, l := range g.pool.conns {
		n += len(l)
	}
	return n
}
