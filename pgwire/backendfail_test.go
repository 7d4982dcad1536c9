package pgwire

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"sync"
	"syscall"
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

// endRecorder keeps the logins and session ends it hears of.
type endRecorder struct {
	mu     sync.Mutex
	logins []shiftkey.Login
	ends   []shiftkey.SessionEnd
}

func (r *endRecorder) Login(l *shiftkey.Login) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.logins = append(r.logins, *l)
}

func (r *endRecorder) SessionEnd(e *shiftkey.SessionEnd) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.ends = append(r.ends, *e)
}

func (r *endRecorder) endReasons() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, e := range r.ends {
		out = append(out, e.Reason)
	}
	return out
}

// dedicatedGateway serves a gateway, as newGateway does, over a PostgreSQL
// server of the test's own, which the test may restart or stop.
func dedicatedGateway(t *testing.T, configure func(*Gateway)) (*Gateway, string, *pgserver.Server) {
	t.Helper()
	srv := pgtest.Start(t, func(c *pgserver.Config) { c.AnyPort = true })
	ctx := context.Background()
	if err := srv.EnsureProvisioner(ctx, testProvisioner); err != nil {
		t.Fatal(err)
	}
	if err := srv.CreateDatabase(ctx, "app"); err != nil {
		t.Fatal(err)
	}
	b, err := pgbackend.New(ctx, pgbackend.Config{Host: srv.SocketDir(), Port: srv.Port(), AdminUser: testProvisioner, AdminDatabase: "app",
		MasterUser: srv.Superuser(), AllowSuperuser: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	g := &Gateway{Cluster: "c", DefaultDB: "app", Backend: b.ForGateway(), Secret: []byte("s"),
		Credentials: memCreds{&shiftkey.Credential{ID: "x", LoginName: "IAM:u", DBUser: srv.Superuser(), StoredKey: fuzzKeys.StoredKey[:], ServerKey: fuzzKeys.ServerKey[:]}}}
	g, addr := serveGateway(t, g, configure)
	return g, addr, srv
}

// readFarewell reads c's socket to its end and returns the first
// ErrorResponse the gateway sent (nil: none), after the notices before it
// (an immediate shutdown's WARNING).
func readFarewell(t *testing.T, c net.Conn) *pgproto3.ErrorResponse {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(30 * time.Second))
	rest, err := io.ReadAll(c)
	if err != nil {
		t.Fatalf("reading the client socket to its end: %v (read %q)", err, rest)
	}
	fe := pgproto3.NewFrontend(bytes.NewReader(rest), nil)
	for {
		msg, err := fe.Receive()
		if err != nil {
			t.Logf("the client got %q", rest)
			return nil
		}
		switch m := msg.(type) {
		case *pgproto3.ErrorResponse:
			return m
		case *pgproto3.NoticeResponse:
		default:
			t.Fatalf("the client got %#v before the error", msg)
		}
	}
}

// The backend restarts (pg_ctl restart -m fast, and -m immediate) with a
// session open and a backend pooled a moment before: the session's client
// gets a FATAL that says the server ended it (57P01, or 08006 where the
// backend left without a word), its end is recorded as the backend's doing,
// and the next login is not handed the pooled backend that died with the
// restart (its first query would fail), however recently it was pooled.
func TestBackendRestart(t *testing.T) {
	for _, mode := range []string{"fast", "immediate"} {
		t.Run(mode, func(t *testing.T) {
			plainRelays(t, func(t *testing.T, relay func(*Gateway)) { testBackendRestart(t, mode, relay, false) })
			// A backend that speaks TLS (client certificates), of the
			// test's own: on the goroutine relay, and on each engine's
			// loops with a TLS client.
			t.Run("goroutine+tlsbackend", func(t *testing.T) { testBackendRestart(t, mode, func(*Gateway) {}, true) })
			for _, e := range []string{EngineEpoll, EngineIOURing} {
				t.Run(e+"+tls+tlsbackend", func(t *testing.T) {
					r := eventRelay(t, 2, e)
					cfg, _ := testTLS(t)
					testBackendRestart(t, mode, func(g *Gateway) { g.Relay, g.TLS, g.RequireTLS = r, cfg, true }, true)
				})
			}
		})
	}
}

func testBackendRestart(t *testing.T, mode string, relay func(*Gateway), tlsBackend bool) {
	rec := &endRecorder{}
	// The pooled backend's idle age stays zero: the check of a
	// pooled backend must not depend on how long it sat.
	frozen := time.Now()
	configure := func(g *Gateway) {
		relay(g)
		g.PoolSize = 2
		g.Observer = rec
		g.Now = func() time.Time { return frozen }
	}
	var g *Gateway
	var addr string
	var srv *pgserver.Server
	if tlsBackend {
		g, addr, srv = dedicatedTLSGateway(t, configure)
	} else {
		g, addr, srv = dedicatedGateway(t, configure)
	}
	ctx := context.Background()
	open := mustLogin(t, addr)
	simple(t, open, "SELECT 1")
	pooled := mustLogin(t, addr)
	simple(t, pooled, "SELECT 1")
	pooled.Close(ctx)
	if !waitUntil(10*time.Second, func() bool { return g.pooledCount() == 1 }) {
		t.Fatal("the backend was not pooled")
	}
	// On the event relays a session's end is reported off the loop, after
	// its backend went to the pool: waited for, so that the end the
	// restart causes is recorded second.
	if !waitUntil(10*time.Second, func() bool { return len(rec.endReasons()) == 1 }) {
		t.Fatalf("the pooled session's end was not recorded: %v", rec.endReasons())
	}
	if err := srv.Restart(ctx, mode); err != nil {
		t.Fatal(err)
	}

	if e := readFarewell(t, open.PgConn().Conn()); e == nil || e.Severity != "FATAL" || e.Code != "57P01" && e.Code != codeConnectionFailure {
		t.Fatalf("the open session's client got %#v at the restart; want a FATAL 57P01 or 08006", e)
	}
	if !waitUntil(10*time.Second, func() bool { return len(rec.endReasons()) == 2 }) {
		t.Fatalf("session ends recorded: %v", rec.endReasons())
	}
	if got := rec.endReasons(); got[0] != shiftkey.EndClosed || got[1] != shiftkey.EndBackend {
		t.Errorf("session end reasons %v, want [%s %s]: the one the restart ended must say so", got, shiftkey.EndClosed, shiftkey.EndBackend)
	}

	next := mustLogin(t, addr)
	if _, err := next.Exec(ctx, "SELECT 1"); err != nil {
		t.Fatalf("the first login after the restart: %v (handed the pooled backend that died with it)", err)
	}
}

// dedicatedTLSGateway is dedicatedGateway with a backend that speaks TLS
// and logs sessions in by client certificate (useTLSBackendOn).
func dedicatedTLSGateway(t *testing.T, configure func(*Gateway)) (*Gateway, string, *pgserver.Server) {
	t.Helper()
	ca, err := devca.LoadOrCreate(t.TempDir() + "/ca")
	if err != nil {
		t.Fatal(err)
	}
	cert, key, caPEM, err := ca.ServerFiles("127.0.0.1", "localhost")
	if err != nil {
		t.Fatal(err)
	}
	srv := pgtest.Start(t, func(c *pgserver.Config) {
		c.AnyPort = true
		c.TLS = &pgserver.TLSFiles{Cert: cert, Key: key, CA: caPEM}
	})
	g := &Gateway{Cluster: "c", Secret: []byte("s")}
	useTLSBackendOn(t, g, srv, ca)
	g, addr := serveGateway(t, g, configure)
	return g, addr, srv
}

// A backend that takes connections but never answers them (its postmaster
// stopped with SIGSTOP: the kernel still accepts): a login that needs a
// new backend connection fails when its time (AuthTimeout) is up, with a
// FATAL that says the backend did not answer in time; meanwhile the open
// session works on, and a login that gets a pooled backend goes through at
// once: nothing the stuck login holds stops them.
func TestBlackHoledBackend(t *testing.T) {
	rec := &endRecorder{}
	g, addr, srv := dedicatedGateway(t, func(g *Gateway) {
		g.PoolSize = 2
		g.AuthTimeout = 2 * time.Second
		g.Observer = rec
	})
	ctx := context.Background()
	open := mustLogin(t, addr)
	simple(t, open, "SELECT 1")
	p := loginApp(t, addr, "pooled")
	simple(t, p, "SELECT 1")
	p.Close(ctx)
	if !waitUntil(10*time.Second, func() bool { return g.pooledCount() == 1 }) {
		t.Fatal("the backend was not pooled")
	}
	pm, err := srv.PostmasterPID()
	if err != nil {
		t.Fatal(err)
	}
	if err := syscall.Kill(pm, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	resumed := false
	resume := func() {
		if !resumed {
			resumed = true
			syscall.Kill(pm, syscall.SIGCONT)
		}
	}
	defer resume()

	type outcome struct {
		err  error
		took time.Duration
	}
	stuck := make(chan outcome, 1)
	go func() {
		start := time.Now()
		host, port, _ := net.SplitHostPort(addr)
		c, err := pgx.Connect(ctx, "host="+host+" port="+port+" user=IAM:u password=pw sslmode=disable application_name=new connect_timeout=30")
		if err == nil {
			c.Close(ctx)
		}
		stuck <- outcome{err, time.Since(start)}
	}()
	time.Sleep(300 * time.Millisecond) // the login waits on the backend
	start := time.Now()
	if got := simple(t, open, "SELECT 42"); got != "42" {
		t.Fatalf("open session: %q", got)
	}
	q := loginApp(t, addr, "pooled")
	simple(t, q, "SELECT 1")
	q.Close(ctx)
	if took := time.Since(start); took > time.Second {
		t.Errorf("the open session and a pooled login took %v while another login waited on the backend", took)
	}
	select {
	case o := <-stuck:
		var pe *pgconn.PgError
		if !errors.As(o.err, &pe) || pe.Severity != "FATAL" || pe.Code != codeConnectionFailure || !strings.Contains(pe.Message, "did not answer") {
			t.Errorf("the login to the stopped backend got %v, want FATAL 08006 saying the backend did not answer", o.err)
		}
		if o.took > 4*time.Second {
			t.Errorf("the login to the stopped backend took %v, want about AuthTimeout (2s)", o.took)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("the login to the stopped backend still waits")
	}
	resume()
	c := loginApp(t, addr, "new")
	defer c.Close(ctx)
	simple(t, c, "SELECT 1")
}

// The backend refuses the role's login (its CONNECTION LIMIT or
// max_connections reached, pg_hba rejects it, CONNECT revoked): the client
// gets the backend's own error, SQLSTATE and all, at once, and the group
// granted for the login is revoked.
func TestBackendRefusalIsRelayedAndUndone(t *testing.T) {
	srv := pgtest.Start(t, func(c *pgserver.Config) {
		c.AnyPort = true
		c.HBA = []string{"local all refused_hba reject"}
	})
	ctx := context.Background()
	if err := srv.EnsureProvisioner(ctx, testProvisioner); err != nil {
		t.Fatal(err)
	}
	if err := srv.CreateDatabase(ctx, "app"); err != nil {
		t.Fatal(err)
	}
	su, err := pgx.Connect(ctx, srv.ConnString(srv.Superuser(), "app"))
	if err != nil {
		t.Fatal(err)
	}
	defer su.Close(ctx)
	for _, sql := range []string{
		"CREATE ROLE refusal_grp NOLOGIN",
		"CREATE ROLE refused_limit LOGIN CONNECTION LIMIT 0",
		"CREATE ROLE refused_hba LOGIN",
		"CREATE ROLE refused_connect LOGIN",
		"REVOKE CONNECT ON DATABASE app FROM PUBLIC",
		"GRANT CONNECT ON DATABASE app TO " + testProvisioner + ", refused_limit, refused_hba",
	} {
		if _, err := su.Exec(ctx, sql); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
	}
	b, err := pgbackend.New(ctx, pgbackend.Config{Host: srv.SocketDir(), Port: srv.Port(), AdminUser: testProvisioner, AdminDatabase: "app"})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	for _, tc := range []struct{ role, code string }{
		{"refused_limit", "53300"},
		{"refused_hba", "28000"},
		{"refused_connect", "42501"},
	} {
		t.Run(tc.role, func(t *testing.T) {
			rec := &endRecorder{}
			g := &Gateway{Cluster: "c", DefaultDB: "app", Backend: b.ForGateway(), Secret: []byte("s"), PoolSize: 2, Observer: rec,
				Credentials: memCreds{&shiftkey.Credential{ID: "x", LoginName: "IAM:u", DBUser: tc.role, DBGroups: []string{"refusal_grp"},
					StoredKey: fuzzKeys.StoredKey[:], ServerKey: fuzzKeys.ServerKey[:]}}}
			_, addr := serveGateway(t, g, nil)
			start := time.Now()
			c, err := login(addr)
			if err == nil {
				c.Close(ctx)
				t.Fatal("the login went through")
			}
			if code(err) != tc.code || time.Since(start) > 3*time.Second {
				t.Errorf("login refused by the backend: %v after %v, want SQLSTATE %s at once", err, time.Since(start), tc.code)
			}
			// (Revoked and reported once the client has its answer.)
			if !waitUntil(5*time.Second, func() bool { return !pgtest.Member(t, su, tc.role, "refusal_grp") && b.GrantsHeld() == 0 }) {
				t.Errorf("%s still holds the group granted for the login the backend refused (%d grants held)", tc.role, b.GrantsHeld())
			}
			waitUntil(5*time.Second, func() bool { rec.mu.Lock(); defer rec.mu.Unlock(); return len(rec.logins) > 0 })
			rec.mu.Lock()
			defer rec.mu.Unlock()
			if len(rec.logins) != 1 || rec.logins[0].OK || rec.logins[0].Reason != shiftkey.LoginBackendRefused {
				t.Errorf("logins reported %+v, want one %s", rec.logins, shiftkey.LoginBackendRefused)
			}
		})
	}
}

// The admin role loses CREATEROLE mid-run: a login whose credential needs
// a group fails at once with an error that says the gateway's admin role
// lacks the privilege (not a connection failure, which drivers retry), and
// logins that need no grant go on.
func TestAdminRoleLosesCreateRole(t *testing.T) {
	srv := pgtest.Start(t, func(c *pgserver.Config) { c.AnyPort = true })
	ctx := context.Background()
	if err := srv.EnsureProvisioner(ctx, testProvisioner); err != nil {
		t.Fatal(err)
	}
	if err := srv.CreateDatabase(ctx, "app"); err != nil {
		t.Fatal(err)
	}
	su, err := pgx.Connect(ctx, srv.ConnString(srv.Superuser(), "app"))
	if err != nil {
		t.Fatal(err)
	}
	defer su.Close(ctx)
	for _, sql := range []string{"CREATE ROLE priv_grp NOLOGIN", "CREATE ROLE priv_user LOGIN", "CREATE ROLE plain_user LOGIN"} {
		if _, err := su.Exec(ctx, sql); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
	}
	b, err := pgbackend.New(ctx, pgbackend.Config{Host: srv.SocketDir(), Port: srv.Port(), AdminUser: testProvisioner, AdminDatabase: "app"})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	key := func(login, role string, groups ...string) *shiftkey.Credential {
		return &shiftkey.Credential{ID: login, LoginName: login, DBUser: role, DBGroups: groups, StoredKey: fuzzKeys.StoredKey[:], ServerKey: fuzzKeys.ServerKey[:]}
	}
	g := &Gateway{Cluster: "c", DefaultDB: "app", Backend: b.ForGateway(), Secret: []byte("s"),
		Credentials: byLogin{"IAM:grp": key("IAM:grp", "priv_user", "priv_grp"), "IAM:plain": key("IAM:plain", "plain_user")}}
	_, addr := serveGateway(t, g, nil)
	c := loginAs(t, addr, "IAM:grp", "app")
	c.Close(ctx)
	if !waitUntil(5*time.Second, func() bool { return b.GrantsHeld() == 0 }) {
		t.Fatal("the first session's group was not revoked")
	}
	if _, err := su.Exec(ctx, "ALTER ROLE "+testProvisioner+" NOCREATEROLE"); err != nil {
		t.Fatal(err)
	}
	defer su.Exec(ctx, "ALTER ROLE "+testProvisioner+" CREATEROLE")
	host, port, _ := net.SplitHostPort(addr)
	_, err = pgx.Connect(ctx, "host="+host+" port="+port+" user=IAM:grp password=pw dbname=app sslmode=disable connect_timeout=20")
	var pe *pgconn.PgError
	if !errors.As(err, &pe) || pe.Severity != "FATAL" || pe.Code != "42501" || !strings.Contains(pe.Message, "priv_grp") || !strings.Contains(pe.Message, "privilege") {
		t.Errorf("a login needing a grant the admin role may no longer make got %v, want FATAL 42501 naming the group and the missing privilege", err)
	}
	p := loginAs(t, addr, "IAM:plain", "app")
	defer p.Close(ctx)
	simple(t, p, "SELECT 1")
}

// A backend whose reset fails (DISCARD ALL cancelled: an error, then
// ReadyForQuery) or that is terminated in the middle of it is never
// handed to a later session, whichever relay reset it.
func TestFailedResetIsNotReused(t *testing.T) {
	for _, how := range []string{"pg_cancel_backend", "pg_terminate_backend"} {
		t.Run(how, func(t *testing.T) {
			plainRelays(t, func(t *testing.T, relay func(*Gateway)) {
				g, addr := newGateway(t, func(g *Gateway) { relay(g); g.PoolSize = 2 })
				ctx := context.Background()
				admin := superuser(t, g.DefaultDB)
				if _, err := admin.Exec(ctx, "CREATE TABLE IF NOT EXISTS reset_parent (v int)"); err != nil {
					t.Fatal(err)
				}
				c := loginApp(t, addr, "reset")
				pid := simple(t, c, "SELECT pg_backend_pid()")
				// DISCARD ALL drops the temp table, which waits for the
				// parent's lock.
				simple(t, c, "CREATE TEMP TABLE reset_child () INHERITS (reset_parent)")
				tx, err := admin.Begin(ctx)
				if err != nil {
					t.Fatal(err)
				}
				defer tx.Rollback(ctx)
				if _, err := tx.Exec(ctx, "LOCK TABLE reset_parent IN ACCESS EXCLUSIVE MODE"); err != nil {
					t.Fatal(err)
				}
				c.Close(ctx)
				other := superuser(t, g.DefaultDB)
				if !waitUntil(10*time.Second, func() bool {
					return simple(t, other, "SELECT count(*) FROM pg_stat_activity WHERE pid = "+pid+" AND query = 'DISCARD ALL' AND wait_event_type = 'Lock'") == "1"
				}) {
					t.Fatal("the reset never waited for the lock")
				}
				if got := simple(t, other, "SELECT "+how+"("+pid+")"); got != "t" {
					t.Fatalf("%s: %s", how, got)
				}
				tx.Rollback(ctx)
				time.Sleep(100 * time.Millisecond)
				for range 2 {
					next := loginApp(t, addr, "reset")
					var got string
					if err := next.QueryRow(ctx, "SELECT pg_backend_pid()::text").Scan(&got); err != nil {
						t.Fatalf("the session after a failed reset: %v", err)
					}
					if got == pid {
						t.Fatalf("the backend whose reset failed (%s) was handed out", how)
					}
					next.Close(ctx)
				}
			})
		})
	}
}

// A session that ends in the middle of something (a COPY either way, a
// failed transaction, queries still unanswered) leaves its backend
// closed, never pooled, whichever relay carried it.
func TestDirtyEndIsNotPooled(t *testing.T) {
	relays(t, func(t *testing.T, relay func(*Gateway)) {
		g, addr := newGateway(t, func(g *Gateway) { relay(g); g.PoolSize = 4 })
		ctx := context.Background()
		admin := superuser(t, g.DefaultDB)
		if _, err := admin.Exec(ctx, "CREATE TABLE IF NOT EXISTS copy_dirty (v int)"); err != nil {
			t.Fatal(err)
		}
		query := func(sql string) []byte { b, _ := (&pgproto3.Query{String: sql}).Encode(nil); return b }
		terminate, _ := (&pgproto3.Terminate{}).Encode(nil)
		for _, tc := range []struct {
			name  string
			send  []byte
			until func(pgproto3.BackendMessage) bool // read until this message; nil: read nothing
			then  []byte
		}{
			{"copy in", query("COPY copy_dirty FROM STDIN"), func(m pgproto3.BackendMessage) bool { _, ok := m.(*pgproto3.CopyInResponse); return ok },
				append(func() []byte { b, _ := (&pgproto3.CopyData{Data: []byte("1\n")}).Encode(nil); return b }(), terminate...)},
			{"copy out", query("COPY (SELECT generate_series(1, 200000)) TO STDOUT"), func(m pgproto3.BackendMessage) bool { _, ok := m.(*pgproto3.CopyData); return ok }, terminate},
			{"failed transaction", query("BEGIN; SELECT 1/0"), func(m pgproto3.BackendMessage) bool {
				z, ok := m.(*pgproto3.ReadyForQuery)
				return ok && z.TxStatus == 'E'
			}, terminate},
			{"unanswered", append(append(query("SELECT pg_sleep(0.3)"), query("SELECT 1")...), terminate...), nil, nil},
		} {
			conn, pid := rawLoginPID(t, addr)
			if _, err := conn.Write(tc.send); err != nil {
				t.Fatal(err)
			}
			if tc.until != nil {
				fe := pgproto3.NewFrontend(conn, conn)
				conn.SetReadDeadline(time.Now().Add(10 * time.Second))
				for {
					m, err := fe.Receive()
					if err != nil {
						t.Fatalf("%s: %v", tc.name, err)
					}
					if tc.until(m) {
						break
					}
				}
			}
			if _, err := conn.Write(tc.then); err != nil {
				t.Fatal(err)
			}
			conn.Close()
			gone := waitUntil(10*time.Second, func() bool {
				var n int
				return admin.QueryRow(ctx, "SELECT count(*) FROM pg_stat_activity WHERE pid = $1", pid).Scan(&n) == nil && n == 0
			})
			if !gone || g.pooledCount() != 0 {
				t.Fatalf("%s: the backend (process %d) was kept (%d pooled)", tc.name, pid, g.pooledCount())
			}
		}
	})
}
