package pgwire

import (
	"context"
	"fmt"
	"net"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgproto3"
)

// secondSource is another address of this host: Linux routes all of
// 127.0.0.0/8 to lo, so a connection from it counts as another client.
const secondSource = "127.0.0.2"

// loginFrom logs IAM:u in from the local address src.
func loginFrom(src, addr string) (*pgx.Conn, error) {
	host, port, _ := net.SplitHostPort(addr)
	cfg, err := pgx.ParseConfig(fmt.Sprintf("host=%s port=%s user=IAM:u password=pw sslmode=%s connect_timeout=5", host, port, sslMode(addr)))
	if err != nil {
		return nil, err
	}
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}, Timeout: 5 * time.Second}
	cfg.DialFunc = d.DialContext
	return pgx.ConnectConfig(context.Background(), cfg)
}

// dialFrom opens a raw connection from the local address src; the test
// closes it at the end.
func dialFrom(t *testing.T, src, addr string) net.Conn {
	t.Helper()
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}, Timeout: 5 * time.Second}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// refusedWith reads what the gateway answers a connection that sends
// nothing (or its startup) and returns the ErrorResponse's SQLSTATE.
func refusedWith(c net.Conn, within time.Duration) (string, error) {
	c.SetReadDeadline(time.Now().Add(within))
	fe := pgproto3.NewFrontend(c, c)
	msg, err := fe.Receive()
	if err != nil {
		return "", err
	}
	if e, ok := msg.(*pgproto3.ErrorResponse); ok {
		return e.Code, nil
	}
	return "", fmt.Errorf("got %T, want an ErrorResponse", msg)
}

func sendStartup(t *testing.T, c net.Conn, user string) {
	t.Helper()
	buf, _ := (&pgproto3.StartupMessage{ProtocolVersion: pgproto3.ProtocolVersionNumber, Parameters: map[string]string{"user": user}}).Encode(nil)
	if _, err := c.Write(buf); err != nil {
		t.Fatal(err)
	}
}

// emfileListener fails its first fails accepts with EMFILE, as accept(2)
// does when the process is out of descriptors.
type emfileListener struct {
	net.Listener
	fails atomic.Int32
}

func (l *emfileListener) Accept() (net.Conn, error) {
	if l.fails.Add(-1) >= 0 {
		return nil, &net.OpError{Op: "accept", Net: "tcp", Addr: l.Addr(), Err: os.NewSyscallError("accept4", syscall.EMFILE)}
	}
	return l.Listener.Accept()
}

// Finding 3: an accept that fails for want of descriptors is retried after
// a back-off, as net/http does, instead of ending the gateway for good.
func TestFinding3AcceptSurvivesEMFILE(t *testing.T) {
	g, _ := newGateway(t, nil)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	el := &emfileListener{Listener: ln}
	el.fails.Store(4)
	served := make(chan error, 1)
	go func() { served <- g.Serve(el) }()
	c, err := login(ln.Addr().String())
	if err != nil {
		select {
		case err := <-served:
			t.Fatalf("the gateway stopped on EMFILE: %v", err)
		default:
		}
		t.Fatalf("login after EMFILE: %v", err)
	}
	c.Close(context.Background())
	select {
	case err := <-served:
		t.Fatalf("Serve returned %v while open", err)
	default:
	}
}

// Finding 7: a connection over a cap is answered 53300 from the accept
// loop or a small fixed pool, not by a goroutine of its own: 500 refused
// connections that say nothing leave the goroutine count where it was,
// and each still gets its 53300.
func TestFinding7RefusalsSpawnNoGoroutines(t *testing.T) {
	g, addr := newGateway(t, func(g *Gateway) { g.MaxConnections = 1 })
	mustLogin(t, addr)
	// One refusal first: whatever the gateway keeps for refusals is there.
	c := dialFrom(t, "127.0.0.1", addr)
	sendStartup(t, c, "IAM:u")
	if code, err := refusedWith(c, 5*time.Second); code != codeTooManyConnections {
		t.Fatalf("over max_connections: %q %v, want 53300", code, err)
	}
	before := runtime.NumGoroutine()
	conns := make([]net.Conn, 500)
	for i := range conns {
		conns[i] = dialFrom(t, "127.0.0.1", addr)
	}
	if !waitUntil(10*time.Second, func() bool { return g.refusedCount() >= 501 }) {
		t.Fatalf("the gateway refused %d of 501 connections", g.refusedCount())
	}
	during := runtime.NumGoroutine()
	t.Logf("goroutines: %d before the burst, %d with 500 refused connections open", before, during)
	if during > before+10 {
		t.Errorf("%d goroutines with 500 refused connections open, %d before: refusals hold a goroutine each", during, before)
	}
	for i, c := range conns {
		if code, err := refusedWith(c, 10*time.Second); code != codeTooManyConnections {
			t.Fatalf("refused connection %d: %q %v, want 53300", i, code, err)
		}
	}
}

// Finding 7: one address may hold at most max_connections_per_source
// connections; another address is not affected.
func TestFinding7PerSourceConnectionCap(t *testing.T) {
	_, addr := newGateway(t, func(g *Gateway) { g.MaxConnectionsPerSource = 2 })
	for range 2 {
		mustLogin(t, addr)
	}
	if _, err := login(addr); code(err) != codeTooManyConnections {
		t.Fatalf("third connection from one address: %v, want 53300", err)
	}
	c, err := loginFrom(secondSource, addr)
	if err != nil {
		t.Fatalf("from another address: %v", err)
	}
	c.Close(context.Background())
}

// Finding 7: connections still logging in are capped per address
// (max_auth_per_source): past the cap, a new one is refused with 53300
// before its startup is read; another address logs in; once the stalled
// ones are gone, the first address logs in again.
func TestFinding7PerSourceAuthCap(t *testing.T) {
	_, addr := newGateway(t, func(g *Gateway) { g.MaxAuthPerSource = 2 })
	// Logged-in sessions do not count.
	mustLogin(t, addr)
	stalled := []net.Conn{dialFrom(t, "127.0.0.1", addr), dialFrom(t, "127.0.0.1", addr)}
	// The two are accepted (and counted) before the next connection: each
	// answers an SSLRequest.
	for _, c := range stalled {
		ssl := []byte{0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f}
		c.Write(ssl)
		var b [1]byte
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := c.Read(b[:]); err != nil || b[0] != 'N' {
			t.Fatalf("SSLRequest: %q %v", b, err)
		}
	}
	c := dialFrom(t, "127.0.0.1", addr)
	if code, err := refusedWith(c, 5*time.Second); code != codeTooManyConnections {
		t.Fatalf("third login in progress from one address: %q %v, want 53300", code, err)
	}
	other, err := loginFrom(secondSource, addr)
	if err != nil {
		t.Fatalf("from another address: %v", err)
	}
	other.Close(context.Background())
	for _, c := range stalled {
		c.Close()
	}
	var lerr error
	if !waitUntil(5*time.Second, func() bool {
		var c *pgx.Conn
		c, lerr = login(addr)
		if lerr == nil {
			c.Close(context.Background())
		}
		return lerr == nil
	}) {
		t.Fatalf("after the stalled logins left: %v", lerr)
	}
}

// Finding 7: throttling delays failed logins but did not cap them; a flood
// of wrong passwords from one address now holds at most max_auth_per_source
// logins (and their goroutines) at once, the rest refused with 53300.
func TestFinding7WrongPasswordFloodIsCapped(t *testing.T) {
	const limit = 3
	var (
		mu              sync.Mutex
		waiting, most   int
		release         = make(chan struct{})
		releaseOnce     sync.Once
		releaseSleepers = func() { releaseOnce.Do(func() { close(release) }) }
	)
	_, addr := newGateway(t, func(g *Gateway) {
		g.MaxAuthPerSource = limit
		g.sleep = func(time.Duration) {
			mu.Lock()
			waiting++
			most = max(most, waiting)
			mu.Unlock()
			<-release
			mu.Lock()
			waiting--
			mu.Unlock()
		}
	})
	t.Cleanup(releaseSleepers) // before the gateway's Close, which waits for them
	host, port, _ := net.SplitHostPort(addr)
	wrong := func() error {
		_, err := pgx.Connect(context.Background(), fmt.Sprintf("host=%s port=%s user=IAM:u password=wrong sslmode=disable connect_timeout=10", host, port))
		return err
	}
	// The first failures are not delayed.
	for range freeFailures {
		if err := wrong(); code(err) != codeInvalidPassword {
			t.Fatalf("wrong password: %v", err)
		}
	}
	const flood = 12
	errs := make(chan error, flood)
	for range flood {
		go func() { errs <- wrong() }()
	}
	refused := 0
	for range flood - limit {
		select {
		case err := <-errs:
			if code(err) != codeTooManyConnections {
				t.Fatalf("flood: %v, want 53300 for all but %d", err, limit)
			}
			refused++
		case <-time.After(10 * time.Second):
			mu.Lock()
			n := waiting
			mu.Unlock()
			t.Fatalf("%d of %d wrong-password logins refused; %d held at once, want at most %d", refused, flood, n, limit)
		}
	}
	// The three let in are held in the throttle's delay.
	held := func() int { mu.Lock(); defer mu.Unlock(); return waiting }
	if !waitUntil(5*time.Second, func() bool { return held() == limit }) {
		t.Fatalf("%d failed logins held in the throttle, want %d", held(), limit)
	}
	releaseSleepers()
	for range limit {
		if err := <-errs; code(err) != codeInvalidPassword {
			t.Errorf("delayed failure: %v, want 28P01", err)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if most > limit {
		t.Fatalf("%d failed logins held at once, want at most %d", most, limit)
	}
	t.Logf("%d failed logins held at once, %d refused", most, refused)
}

// Finding 7: a gateway configured without caps still has them.
func TestFinding7DefaultCaps(t *testing.T) {
	g := &Gateway{}
	if got := g.maxConnections(); got != DefaultMaxConnections {
		t.Errorf("max connections %d, want %d", got, DefaultMaxConnections)
	}
	if got := g.maxConnectionsPerSource(); got != DefaultMaxConnectionsPerSource {
		t.Errorf("per source %d, want %d", got, DefaultMaxConnectionsPerSource)
	}
	if got := g.maxAuthPerSource(); got != DefaultMaxAuthPerSource {
		t.Errorf("logins in progress per source %d, want %d", got, DefaultMaxAuthPerSource)
	}
}
