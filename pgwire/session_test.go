package pgwire

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"
	"github.com/shiftkey/shiftkey"
)

// The session's state machine, against a scripted backend instead of
// PostgreSQL: what each phase answers, and that what a phase set up is
// undone exactly once however the session ends.

// fakeBackend is a scripted Backend. Prepare and Connect fail with the
// errors set; otherwise a connection is one end of a pipe whose other end
// answers every query with CommandComplete and ReadyForQuery. It counts
// what the gateway does with what it handed out.
type fakeBackend struct {
	prepareErr, connectErr error

	mu       sync.Mutex
	prepared int // leases handed out
	released int // Release calls
	connects int
	closes   int // Close calls on the gateway's end of a connection
	queries  []string
	cancels  []pgproto3.BackendKeyData
}

type fakeLease struct{ b *fakeBackend }

func (l fakeLease) Release(context.Context) { l.b.count(&l.b.released) }

func (b *fakeBackend) count(n *int) {
	b.mu.Lock()
	*n++
	b.mu.Unlock()
}

// counts is (leases, releases, connects, closes).
func (b *fakeBackend) counts() [4]int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return [4]int{b.prepared, b.released, b.connects, b.closes}
}

func (b *fakeBackend) Prepare(ctx context.Context, role string, autoCreate bool, groups []string) (Lease, []string, error) {
	if b.prepareErr != nil {
		return nil, nil, b.prepareErr
	}
	b.count(&b.prepared)
	return fakeLease{b}, []string{"fake notice"}, nil
}

func (b *fakeBackend) Connect(ctx context.Context, role, db string, params map[string]string) (net.Conn, *pgproto3.BackendKeyData, map[string]string, error) {
	if b.connectErr != nil {
		return nil, nil, nil, b.connectErr
	}
	b.mu.Lock()
	b.connects++
	n := b.connects
	b.mu.Unlock()
	gw, be := net.Pipe()
	go b.serve(be)
	key := &pgproto3.BackendKeyData{ProcessID: uint32(1000 + n), SecretKey: []byte{0xb, 0xe, 0, byte(n)}}
	return &closeCounter{Conn: gw, n: func() { b.count(&b.closes) }}, key, map[string]string{"server_version": "17.0"}, nil
}

func (b *fakeBackend) Cancel(ctx context.Context, key *pgproto3.BackendKeyData) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.cancels = append(b.cancels, pgproto3.BackendKeyData{ProcessID: key.ProcessID, SecretKey: slices.Clone(key.SecretKey)})
	return nil
}

// serve is the backend's end of a connection.
func (b *fakeBackend) serve(c net.Conn) {
	defer c.Close()
	be := pgproto3.NewBackend(c, c)
	for {
		msg, err := be.Receive()
		if err != nil {
			return
		}
		switch m := msg.(type) {
		case *pgproto3.Query:
			b.mu.Lock()
			b.queries = append(b.queries, m.String)
			b.mu.Unlock()
			be.Send(&pgproto3.CommandComplete{CommandTag: []byte("SELECT 0")})
			be.Send(&pgproto3.ReadyForQuery{TxStatus: 'I'})
			if be.Flush() != nil {
				return
			}
		case *pgproto3.Terminate:
			return
		}
	}
}

// closeCounter counts the Close calls on a connection.
type closeCounter struct {
	net.Conn
	n func()
}

func (c *closeCounter) Close() error {
	c.n()
	return c.Conn.Close()
}

// refused is what a backend says of a role it will not log in as.
type refused struct{ role, reason string }

func (e refused) Error() string                      { return "role " + e.role + " is not issued: " + e.reason }
func (e refused) RefusedRole() (role, reason string) { return e.role, e.reason }

// backendSaid is the backend's own answer to a startup.
type backendSaid struct{ resp *pgproto3.ErrorResponse }

func (e backendSaid) Error() string                            { return "backend: " + e.resp.Code }
func (e backendSaid) BackendResponse() *pgproto3.ErrorResponse { return e.resp }

// fakeGateway serves a gateway in front of b on a loopback port.
func fakeGateway(t *testing.T, b *fakeBackend, configure func(*Gateway)) (*Gateway, string) {
	t.Helper()
	g := &Gateway{Cluster: "c", DefaultDB: "dev", Backend: b, Secret: []byte("s"),
		Credentials: memCreds{&shiftkey.Credential{ID: "x", LoginName: "IAM:u", DBUser: "u", StoredKey: fuzzKeys.StoredKey[:], ServerKey: fuzzKeys.ServerKey[:]}}}
	return serveGateway(t, g, configure)
}

// connect logs in to the gateway at addr with password pw.
func connect(addr, pw string) (*pgconn.PgConn, error) {
	host, port, _ := net.SplitHostPort(addr)
	return pgconn.Connect(context.Background(), fmt.Sprintf("host=%s port=%s user=IAM:u password=%s sslmode=%s connect_timeout=30", host, port, pw, sslMode(addr)))
}

// ended waits until the gateway counts no session.
func ended(t *testing.T, g *Gateway) {
	t.Helper()
	if !waitUntil(10*time.Second, func() bool { return g.sessionCount() == 0 }) {
		t.Fatalf("%d sessions still counted", g.sessionCount())
	}
}

// A login with the right password is prepared, connected and handed off:
// the client sees the notice and the backend's parameters, its queries
// reach the backend, and when it leaves the lease is released and the
// backend closed, once each.
func TestSessionLoginHandsOff(t *testing.T) {
	b := &fakeBackend{}
	g, addr := fakeGateway(t, b, nil)
	c, err := connect(addr, "pw")
	if err != nil {
		t.Fatal(err)
	}
	if v := c.ParameterStatus("server_version"); v != "17.0" {
		t.Fatalf("server_version %q, want the backend's 17.0", v)
	}
	if _, err := c.Exec(context.Background(), "SELECT 1").ReadAll(); err != nil {
		t.Fatal(err)
	}
	c.Close(context.Background())
	ended(t, g)
	if got := b.counts(); got != [4]int{1, 1, 1, 1} {
		t.Fatalf("leases, releases, connects, closes = %v, want one each", got)
	}
	if !slices.Equal(b.queries, []string{"SELECT 1"}) {
		t.Fatalf("backend saw %q", b.queries)
	}
}

// A wrong password is 28P01, and nothing is asked of the backend.
func TestSessionWrongPassword(t *testing.T) {
	b := &fakeBackend{}
	g, addr := fakeGateway(t, b, nil)
	if _, err := connect(addr, "wrong"); code(err) != codeInvalidPassword {
		t.Fatalf("wrong password: %v, want 28P01", err)
	}
	ended(t, g)
	if got := b.counts(); got != [4]int{} {
		t.Fatalf("leases, releases, connects, closes = %v, want none", got)
	}
}

// A role the backend refuses is 28000 with the backend's reason; a
// Prepare that fails otherwise is 08006. Nothing is connected.
func TestSessionPrepareRefused(t *testing.T) {
	for _, tc := range []struct {
		err  error
		code string
		msg  string
	}{
		{refused{"u", "it is shiftkey's provisioning role"}, codeInvalidAuthorization, "it is shiftkey's provisioning role"},
		{errors.New("admin pool closed"), codeConnectionFailure, "could not prepare the session on the backend"},
	} {
		b := &fakeBackend{prepareErr: tc.err}
		g, addr := fakeGateway(t, b, nil)
		_, err := connect(addr, "pw")
		var pe *pgconn.PgError
		if !errors.As(err, &pe) || pe.Code != tc.code || !strings.Contains(pe.Message, tc.msg) {
			t.Fatalf("Prepare failing with %v: %v, want %s saying %q", tc.err, err, tc.code, tc.msg)
		}
		ended(t, g)
		if got := b.counts(); got != [4]int{} {
			t.Fatalf("leases, releases, connects, closes = %v, want none", got)
		}
	}
}

// A Connect that fails is the backend's own answer when it has one (here
// 3D000), else 08006; either way the lease is released, once.
func TestSessionConnectFailure(t *testing.T) {
	for _, tc := range []struct {
		err  error
		code string
	}{
		{backendSaid{&pgproto3.ErrorResponse{Severity: "FATAL", Code: "3D000", Message: `database "dev" does not exist`}}, "3D000"},
		{errors.New("dial backend: connection refused"), codeConnectionFailure},
	} {
		b := &fakeBackend{connectErr: tc.err}
		g, addr := fakeGateway(t, b, nil)
		if _, err := connect(addr, "pw"); code(err) != tc.code {
			t.Fatalf("Connect failing with %v: %v, want %s", tc.err, err, tc.code)
		}
		ended(t, g)
		if got := b.counts(); got != [4]int{1, 1, 0, 0} {
			t.Fatalf("leases, releases, connects, closes = %v, want the lease released once", got)
		}
	}
}

// A cancel request with the session's gateway key reaches the backend with
// the backend's own key; the gateway's secret is not the backend's.
func TestSessionCancelForwarded(t *testing.T) {
	b := &fakeBackend{}
	_, addr := fakeGateway(t, b, nil)
	c, err := connect(addr, "pw")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(context.Background())
	if c.PID() != 1001 || slices.Equal(c.SecretKey(), []byte{0xb, 0xe, 0, 1}) {
		t.Fatalf("client's key %d/%x: want the backend's process ID with a secret of the gateway's", c.PID(), c.SecretKey())
	}
	sendCancel(t, addr, "", c.PID(), c.SecretKey()) // returns once the gateway hung up, after forwarding
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.cancels) != 1 || b.cancels[0].ProcessID != 1001 || !slices.Equal(b.cancels[0].SecretKey, []byte{0xb, 0xe, 0, 1}) {
		t.Fatalf("backend got cancels %+v, want one with its own key 1001/0b0e0001", b.cancels)
	}
}

// A session that ends with Terminate while idle leaves its backend, reset
// with DISCARD ALL, to the next session of the same role, database and
// parameters: one Connect for two sessions, and no Close.
func TestSessionPoolReuse(t *testing.T) {
	b := &fakeBackend{}
	g, addr := fakeGateway(t, b, func(g *Gateway) { g.PoolSize = 1 })
	for i := range 2 {
		c, err := connect(addr, "pw")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.Exec(context.Background(), fmt.Sprintf("SELECT %d", i)).ReadAll(); err != nil {
			t.Fatal(err)
		}
		c.Close(context.Background())
		if !waitUntil(10*time.Second, func() bool { return g.pooledCount() == 1 }) {
			t.Fatalf("session %d: the backend was not pooled", i)
		}
	}
	ended(t, g)
	if got := b.counts(); got != [4]int{2, 2, 1, 0} {
		t.Fatalf("leases, releases, connects, closes = %v, want 2 leases released, 1 connect, no close", got)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if want := []string{"SELECT 0", "DISCARD ALL", "SELECT 1", "DISCARD ALL"}; !slices.Equal(b.queries, want) {
		t.Fatalf("backend saw %q, want %q", b.queries, want)
	}
}

// hangUpAfter is a client connection that closes itself after its nth
// write of a 'p' message (a password or SASL response).
type hangUpAfter struct {
	net.Conn
	nth, seen int
}

func (c *hangUpAfter) Write(p []byte) (int, error) {
	n, err := c.Conn.Write(p)
	if len(p) > 0 && p[0] == 'p' {
		if c.seen++; c.seen == c.nth {
			c.Conn.Close()
		}
	}
	return n, err
}

// On every path a session can fail by, each phase's work is undone exactly
// once: the client connection closed, the lease released, the backend
// closed, the cancel key forgotten.
func TestSessionCleanupOnEveryFailure(t *testing.T) {
	for _, tc := range []struct {
		name   string
		b      *fakeBackend
		client func(net.Conn) // drives the client's end of the connection
		want   [4]int         // leases, releases, connects, backend closes
	}{
		{name: "startup", b: &fakeBackend{}, client: func(c net.Conn) { c.Write([]byte{0, 0, 0, 8, 0, 9, 0, 9}); io.Copy(io.Discard, c) }},
		{name: "authenticate", b: &fakeBackend{}, client: pgClient("wrong", 0)},
		{name: "prepare", b: &fakeBackend{prepareErr: refused{"u", "no"}}, client: pgClient("pw", 0)},
		{name: "connect", b: &fakeBackend{connectErr: errors.New("refused")}, client: pgClient("pw", 0), want: [4]int{1, 1, 0, 0}},
		// The client is gone when the gateway greets it.
		{name: "greet", b: &fakeBackend{}, client: pgClient("pw", 2), want: [4]int{1, 1, 1, 1}},
		// The client logs in and leaves: no failure, the same undoing.
		{name: "relay", b: &fakeBackend{}, client: pgClient("pw", 0), want: [4]int{1, 1, 1, 1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := &Gateway{Cluster: "c", DefaultDB: "dev", Backend: tc.b, Secret: []byte("s"), AuthTimeout: 10 * time.Second,
				Credentials: memCreds{&shiftkey.Credential{ID: "x", LoginName: "IAM:u", DBUser: "u", StoredKey: fuzzKeys.StoredKey[:], ServerKey: fuzzKeys.ServerKey[:]}}}
			g.sessions, g.cancels = map[*session]struct{}{}, map[cancelKey]*session{}
			server, client := net.Pipe()
			var clientCloses int
			var mu sync.Mutex
			raw := &closeCounter{Conn: server, n: func() { mu.Lock(); clientCloses++; mu.Unlock() }}
			s := &session{g: g, t: g, raw: raw, client: raw}
			done := make(chan bool, 1)
			go func() { done <- s.run() }()
			tc.client(client)
			client.Close()
			select {
			case handedOff := <-done:
				if handedOff {
					t.Fatal("run handed the session off without an event relay")
				}
			case <-time.After(20 * time.Second):
				t.Fatal("the session did not end")
			}
			mu.Lock()
			defer mu.Unlock()
			if got := tc.b.counts(); got != tc.want || clientCloses != 1 {
				t.Fatalf("leases, releases, connects, backend closes = %v, client closes %d; want %v and 1", got, clientCloses, tc.want)
			}
			if len(g.cancels) != 0 {
				t.Fatalf("%d cancel keys left registered", len(g.cancels))
			}
		})
	}
}

// pgClient logs in over c with password pw and, if that works, runs a
// query and leaves; with hangUp > 0 it hangs up right after its hangUp-th
// password message instead.
func pgClient(pw string, hangUp int) func(net.Conn) {
	return func(c net.Conn) {
		cfg, err := pgconn.ParseConfig("host=gateway user=IAM:u password=" + pw + " sslmode=disable")
		if err != nil {
			panic(err)
		}
		cfg.LookupFunc = func(context.Context, string) ([]string, error) { return []string{"127.0.0.1"}, nil }
		cfg.DialFunc = func(context.Context, string, string) (net.Conn, error) {
			if hangUp > 0 {
				return &hangUpAfter{Conn: c, nth: hangUp}, nil
			}
			return c, nil
		}
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		pc, err := pgconn.ConnectConfig(ctx, cfg)
		if err != nil {
			return
		}
		pc.Exec(ctx, "SELECT 1").ReadAll()
		pc.Close(ctx)
	}
}

// Drivers parse server_version (redshift_connector with packaging, which
// refuses a distribution suffix): the gateway tells the backend's number
// only, or the version configured.
func TestVersionNumber(t *testing.T) {
	for in, want := range map[string]string{"15.18 (Debian 15.18-0+deb12u1)": "15.18", "17.0": "17.0", "17beta1": "17",
		"9.6.24": "9.6.24", "16.4 (Ubuntu 16.4-1.pgdg22.04+1)": "16.4", "devel": "devel", "": "", ".5": ".5", "12.": "12"} {
		if got := versionNumber(in); got != want {
			t.Errorf("versionNumber(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestServerVersionConfigured(t *testing.T) {
	_, addr := fakeGateway(t, &fakeBackend{}, func(g *Gateway) { g.ServerVersion = "8.0.2" })
	c, err := connect(addr, "pw")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(context.Background())
	if v := c.ParameterStatus("server_version"); v != "8.0.2" {
		t.Fatalf("server_version %q, want the configured 8.0.2", v)
	}
}
