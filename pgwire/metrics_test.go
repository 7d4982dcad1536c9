package pgwire

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/shiftkey/shiftkey/metrics"
)

// scrapeMetrics serves m's /metrics and parses it as Prometheus does.
func scrapeMetrics(t testing.TB, m *metrics.Metrics) map[string]*dto.MetricFamily {
	t.Helper()
	rec := httptest.NewRecorder()
	m.Handler(nil).ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(strings.NewReader(rec.Body.String()))
	if err != nil {
		t.Fatalf("parse /metrics: %v", err)
	}
	return fams
}

// seriesByLabel sums family name's counters and gauges by the value of
// label (all series when label is "").
func seriesByLabel(fams map[string]*dto.MetricFamily, name, label string) map[string]float64 {
	out := map[string]float64{}
	for _, s := range fams[name].GetMetric() {
		v := ""
		for _, l := range s.GetLabel() {
			if l.GetName() == label {
				v = l.GetValue()
			}
		}
		out[v] += s.GetCounter().GetValue() + s.GetGauge().GetValue()
	}
	return out
}

// startupOnly sends IAM:u's startup packet to addr and reads the gateway's
// first answer (AuthenticationSASL), leaving the exchange open.
func startupOnly(t *testing.T, addr string) *net.TCPConn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	fe := pgproto3.NewFrontend(c, c)
	fe.Send(&pgproto3.StartupMessage{ProtocolVersion: pgproto3.ProtocolVersionNumber, Parameters: map[string]string{"user": "IAM:u"}})
	if err := fe.Flush(); err != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	msg, err := fe.Receive()
	if _, ok := msg.(*pgproto3.AuthenticationSASL); !ok {
		t.Fatalf("the gateway's first answer: %#v, %v; want AuthenticationSASL", msg, err)
	}
	return c.(*net.TCPConn)
}

// cancelOnRead cancels a context once the first bytes came in, and
// returns them only once the driver, told of the cancel on its own
// goroutine, has set the connection's deadline: else, on a busy machine,
// the driver could finish the login before it heard, and the gateway
// rightly count it ok.
type cancelOnRead struct {
	net.Conn
	cancel    context.CancelFunc
	cancelled bool
	deadline  chan struct{} // closed at the driver's first deadline
	once      sync.Once
}

func (c *cancelOnRead) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if n > 0 && !c.cancelled {
		c.cancelled = true
		c.cancel()
		select {
		case <-c.deadline:
		case <-time.After(10 * time.Second):
		}
	}
	return n, err
}

func (c *cancelOnRead) SetDeadline(t time.Time) error {
	if !t.IsZero() {
		c.once.Do(func() { close(c.deadline) })
	}
	return c.Conn.SetDeadline(t)
}

// Every way a login ends is counted once, under its reason: a wrong
// password, an unknown login, a plaintext client of a gateway that
// requires TLS, a client that vanishes in the middle of SCRAM (closing,
// killed: its socket reset, or cancelled by its context), a backend that
// is down.
func TestLoginOutcomesCounted(t *testing.T) {
	m := metrics.New(nil)
	// The throttle's delays after failures slow the test and change no count.
	_, addr := newGateway(t, func(g *Gateway) { g.Observer, g.sleep = m, func(time.Duration) {} })
	cfg, _ := testTLS(t)
	_, tlsAddr := newGateway(t, func(g *Gateway) { g.Observer, g.TLS, g.RequireTLS = m, cfg, true })
	_, slowAddr := newGateway(t, func(g *Gateway) { g.Observer, g.AuthTimeout = m, 500*time.Millisecond })
	_, downAddr, srv := dedicatedGateway(t, func(g *Gateway) { g.Observer = m })
	if err := srv.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	connect := func(addr, user, pw, sslmode string) error {
		host, port, _ := net.SplitHostPort(addr)
		c, err := pgconn.Connect(context.Background(), fmt.Sprintf("host=%s port=%s user=%s password=%s sslmode=%s connect_timeout=30", host, port, user, pw, sslmode))
		if err == nil {
			c.Close(context.Background())
		}
		return err
	}
	for _, tc := range []struct {
		want string
		do   func(t *testing.T)
	}{
		{"ok", func(t *testing.T) {
			if err := connect(addr, "IAM:u", "pw", "disable"); err != nil {
				t.Fatal(err)
			}
		}},
		{"wrong_password", func(t *testing.T) { connect(addr, "IAM:u", "not-pw", "disable") }},
		{"no_credential", func(t *testing.T) { connect(addr, "IAM:nobody", "pw", "disable") }},
		{"tls_required", func(t *testing.T) {
			if err := connect(tlsAddr, "IAM:u", "pw", "disable"); code(err) != "28000" {
				t.Fatalf("plaintext login to a gateway that requires TLS: %v, want 28000", err)
			}
		}},
		{"client_disconnect", func(t *testing.T) { startupOnly(t, addr).Close() }},
		{"client_disconnect", func(t *testing.T) {
			c := startupOnly(t, addr)
			c.SetLinger(0) // a killed client's socket: reset, not closed
			c.Close()
		}},
		{"client_disconnect", func(t *testing.T) {
			// pgx's connect cancelled by its context once the gateway has
			// asked for SCRAM: the driver closes its connection.
			host, port, _ := net.SplitHostPort(addr)
			cfg, err := pgconn.ParseConfig(fmt.Sprintf("host=%s port=%s user=IAM:u password=pw sslmode=disable", host, port))
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			cfg.DialFunc = func(ctx context.Context, network, addr string) (net.Conn, error) {
				c, err := (&net.Dialer{}).DialContext(ctx, network, addr)
				return &cancelOnRead{Conn: c, cancel: cancel, deadline: make(chan struct{})}, err
			}
			if _, err := pgconn.ConnectConfig(ctx, cfg); err == nil {
				t.Fatal("the cancelled connect succeeded")
			}
		}},
		{"timeout", func(t *testing.T) {
			// A client that stops answering mid-SCRAM (its host gone, or
			// holding the login open): the gateway hangs up at its time
			// limit.
			c := startupOnly(t, slowAddr)
			defer c.Close()
			c.SetReadDeadline(time.Now().Add(10 * time.Second))
			if _, err := io.Copy(io.Discard, c); err != nil {
				t.Fatalf("waiting for the gateway to hang up: %v", err)
			}
		}},
		{"backend_error", func(t *testing.T) {
			if err := connect(downAddr, "IAM:u", "pw", "disable"); code(err) != codeConnectionFailure {
				t.Fatalf("login with the backend down: %v, want %s", err, codeConnectionFailure)
			}
		}},
	} {
		before := scrapeMetrics(t, m)
		total := func(f map[string]*dto.MetricFamily) float64 {
			n := 0.0
			for _, v := range seriesByLabel(f, "shiftkey_gateway_logins_total", "outcome") {
				n += v
			}
			return n
		}
		tc.do(t)
		var after map[string]*dto.MetricFamily
		if !waitUntil(10*time.Second, func() bool { after = scrapeMetrics(t, m); return total(after) > total(before) }) {
			t.Errorf("%s: no login counted", tc.want)
			continue
		}
		got := seriesByLabel(after, "shiftkey_gateway_logins_total", "outcome")
		was := seriesByLabel(before, "shiftkey_gateway_logins_total", "outcome")
		for outcome, n := range got {
			if d := n - was[outcome]; outcome == tc.want && d != 1 || outcome != tc.want && d != 0 {
				t.Errorf("%s: shiftkey_gateway_logins_total{outcome=%q} went up by %v", tc.want, outcome, d)
			}
		}
		if got[tc.want]-was[tc.want] != 1 {
			t.Errorf("%s: not counted under its reason (counted: %v, before: %v)", tc.want, got, was)
		}
	}
}

// countingConn counts the bytes a client sent and received.
type countingConn struct {
	net.Conn
	sent, recv atomic.Int64
}

func (c *countingConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.recv.Add(int64(n))
	return n, err
}

func (c *countingConn) Write(p []byte) (int, error) {
	n, err := c.Conn.Write(p)
	c.sent.Add(int64(n))
	return n, err
}

// countingLogin logs in IAM:u at addr (over TLS when useTLS, negotiated
// here so that the counts are of the session's plaintext) and returns the
// connection and its counter.
func countingLogin(t *testing.T, addr string, useTLS bool) (*pgconn.PgConn, *countingConn) {
	t.Helper()
	host, port, _ := net.SplitHostPort(addr)
	cfg, err := pgconn.ParseConfig(fmt.Sprintf("host=%s port=%s user=IAM:u password=pw sslmode=disable connect_timeout=30", host, port))
	if err != nil {
		t.Fatal(err)
	}
	var counted *countingConn
	cfg.DialFunc = func(ctx context.Context, network, addr string) (net.Conn, error) {
		raw, err := (&net.Dialer{}).DialContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		var c net.Conn = raw
		if useTLS {
			raw.Write([]byte{0, 0, 0, 8, 4, 210, 22, 47}) // SSLRequest
			b := make([]byte, 1)
			if _, err := io.ReadFull(raw, b); err != nil || b[0] != 'S' {
				raw.Close()
				return nil, fmt.Errorf("SSLRequest answered %q, %v", b, err)
			}
			// What the certificate proves is not under test here.
			c = tls.Client(raw, &tls.Config{InsecureSkipVerify: true})
		}
		counted = &countingConn{Conn: c}
		return counted, nil
	}
	pc, err := pgconn.ConnectConfig(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	return pc, counted
}

// shiftkey_gateway_relayed_bytes_total counts what the client sent to the
// backend and received from it once logged in, on every relay (goroutine,
// epoll and io_uring loops, TLS clients and backends), pooled or not. The
// client's Terminate is relayed only by the goroutine relay of a gateway
// that pools nothing (the others end the backend's side themselves).
func TestRelayedBytesCounted(t *testing.T) {
	relays(t, func(t *testing.T, relay func(*Gateway)) {
		for _, pool := range []int{0, 2} {
			t.Run(fmt.Sprintf("pool%d", pool), func(t *testing.T) {
				m := metrics.New(nil)
				g, addr := newGateway(t, func(g *Gateway) { relay(g); g.Observer, g.PoolSize = m, pool })
				ctx := context.Background()
				pc, counted := countingLogin(t, addr, g.RequireTLS)
				sent0, recv0 := counted.sent.Load(), counted.recv.Load()
				for _, sql := range []string{"SELECT 1", "SELECT repeat('x', 300000)", "SELECT generate_series(1, 5000)", "SELECT 1/0"} {
					pc.Exec(ctx, sql).ReadAll()
				}
				sent, recv := counted.sent.Load()-sent0, counted.recv.Load()-recv0
				pc.Close(ctx)
				sent = counted.sent.Load() - sent0 // with the Terminate
				if !waitUntil(10*time.Second, func() bool {
					return seriesByLabel(scrapeMetrics(t, m), "shiftkey_gateway_sessions_ended_total", "")[""] == 1
				}) {
					t.Fatal("the session's end was not counted")
				}
				// A scrape gathers the families concurrently, so the one that
				// saw the end counted may have read the bytes before they
				// were (SessionEnd adds them first): a scrape begun after it
				// has them.
				fams := scrapeMetrics(t, m)
				want := map[string]float64{"client_to_backend": float64(sent - 5), "backend_to_client": float64(recv)}
				if g.Relay == nil && pool == 0 {
					want["client_to_backend"] = float64(sent)
				}
				if got := seriesByLabel(fams, "shiftkey_gateway_relayed_bytes_total", "direction"); got["client_to_backend"] != want["client_to_backend"] || got["backend_to_client"] != want["backend_to_client"] {
					t.Errorf("relayed bytes %v, want %v (the client sent %d bytes, received %d)", got, want, sent, recv)
				}
			})
		}
	})
}

// A connection turned away at a cap (limits.max_connections, and the
// per-address caps) is counted, under its cap: an operator must see
// clients refused with 53300.
func TestRefusedConnectionsCounted(t *testing.T) {
	m := metrics.New(nil)
	_, addr := newGateway(t, func(g *Gateway) { g.Observer, g.MaxConnections = m, 1 })
	_, perSource := newGateway(t, func(g *Gateway) { g.Observer, g.Cluster, g.MaxConnectionsPerSource = m, "c2", 1 })
	for _, tc := range []struct{ addr, scope, cap string }{{addr, "c", "max_connections"}, {perSource, "c2", "max_connections_per_source"}} {
		held := mustLogin(t, tc.addr)
		if _, err := login(tc.addr); code(err) != "53300" {
			t.Fatalf("a login over %s: %v, want 53300", tc.cap, err)
		}
		held.Close(context.Background())
		var got float64
		if !waitUntil(5*time.Second, func() bool {
			got = -1
			for _, s := range scrapeMetrics(t, m)["shiftkey_gateway_connections_refused_total"].GetMetric() {
				labels := map[string]string{}
				for _, l := range s.GetLabel() {
					labels[l.GetName()] = l.GetValue()
				}
				if labels["scope"] == tc.scope && labels["cap"] == tc.cap {
					got = s.GetCounter().GetValue()
				}
			}
			return got == 1
		}) {
			t.Errorf("shiftkey_gateway_connections_refused_total{scope=%q,cap=%q} = %v after one connection refused, want 1", tc.scope, tc.cap, got)
		}
	}
}

// Sessions are counted by why they ended on every relay, TLS included:
// closed by the client, ended by the backend (pg_terminate_backend), cut
// at max_session_lifetime, cut by the shutdown; and none is left active.
func TestSessionEndsCountedByReason(t *testing.T) {
	relays(t, func(t *testing.T, relay func(*Gateway)) {
		m := metrics.New(nil)
		ctx := context.Background()
		_, addr := newGateway(t, func(g *Gateway) { relay(g); g.Observer = m })
		closed := mustLogin(t, addr)
		simple(t, closed, "SELECT 1")
		closed.Close(ctx)
		ended := mustLogin(t, addr)
		ended.Exec(ctx, "SELECT pg_terminate_backend(pg_backend_pid())")
		// Its own gateway, so that the other sessions are not cut.
		_, lifeAddr := newGateway(t, func(g *Gateway) { relay(g); g.Observer, g.MaxSessionLifetime = m, time.Second })
		cut := mustLogin(t, lifeAddr)
		wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		if err := cut.PgConn().WaitForNotification(wctx); code(err) != codeAdminShutdown {
			t.Fatalf("at max_session_lifetime: %v", err)
		}
		sg, shutAddr := newGateway(t, func(g *Gateway) { relay(g); g.Observer = m })
		shut := mustLogin(t, shutAddr)
		simple(t, shut, "SELECT 1")
		sctx, scancel := context.WithTimeout(ctx, 100*time.Millisecond)
		defer scancel()
		sg.Shutdown(sctx) // the grace period ends at once: the session is cut

		want := map[string]float64{"closed": 1, "backend_ended": 1, "max_session_lifetime": 1, "gateway_shutdown": 1}
		var got map[string]float64
		if !waitUntil(10*time.Second, func() bool {
			got = seriesByLabel(scrapeMetrics(t, m), "shiftkey_gateway_sessions_ended_total", "reason")
			n := 0.0
			for _, v := range got {
				n += v
			}
			return n >= 4
		}) {
			t.Fatalf("sessions ended: %v, want %v", got, want)
		}
		for r, n := range want {
			if got[r] != n {
				t.Errorf("sessions ended %q: %v, want %v (all: %v)", r, got[r], n, got)
			}
		}
		fams := scrapeMetrics(t, m)
		if a := seriesByLabel(fams, "shiftkey_gateway_sessions_active", "")[""]; a != 0 {
			t.Errorf("shiftkey_gateway_sessions_active = %v after every session ended", a)
		}
		if s := seriesByLabel(fams, "shiftkey_gateway_sessions_total", "")[""]; s != 4 {
			t.Errorf("shiftkey_gateway_sessions_total = %v, want 4", s)
		}
	})
}

// A TLS handshake that fails on a gateway is counted under its scope and
// reason: a client without the CA (the commonest misconfiguration), one
// with no TLS version in common, one that leaves mid-handshake, a direct
// TLS client without ALPN postgresql. None reaches a startup packet, so
// the login metrics never see them.
func TestGatewayTLSFailuresCounted(t *testing.T) {
	m := metrics.New(nil)
	cfg, pool := testTLS(t)
	_, addr := newGateway(t, func(g *Gateway) { g.Observer, g.TLS, g.Cluster = m, cfg, "tlsc" })
	failures := func(reason string) float64 {
		for _, s := range scrapeMetrics(t, m)["shiftkey_gateway_tls_failures_total"].GetMetric() {
			labels := map[string]string{}
			for _, l := range s.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if len(labels) == 2 && labels["scope"] == "tlsc" && labels["reason"] == reason {
				return s.GetCounter().GetValue()
			}
		}
		return -1
	}
	// sslRequest opens a connection and has the gateway answer 'S'.
	sslRequest := func(t *testing.T) net.Conn {
		t.Helper()
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		buf, _ := (&pgproto3.SSLRequest{}).Encode(nil)
		c.Write(buf)
		b := make([]byte, 1)
		if _, err := io.ReadFull(c, b); err != nil || b[0] != 'S' {
			t.Fatalf("SSLRequest: %q %v, want S", b, err)
		}
		return c
	}
	for _, tc := range []struct {
		reason string
		do     func(t *testing.T)
	}{
		{"certificate_rejected", func(t *testing.T) {
			// pgx with verify-full and no root of its own: the system's.
			host, port, _ := net.SplitHostPort(addr)
			c, err := pgconn.Connect(context.Background(), fmt.Sprintf("host=%s port=%s user=IAM:u password=pw sslmode=verify-full connect_timeout=30", host, port))
			if err == nil {
				c.Close(context.Background())
				t.Fatal("a client without the CA logged in")
			}
		}},
		{"protocol", func(t *testing.T) {
			c := tls.Client(sslRequest(t), &tls.Config{ServerName: "127.0.0.1", RootCAs: pool, MinVersion: tls.VersionTLS10, MaxVersion: tls.VersionTLS10})
			defer c.Close()
			if err := c.Handshake(); err == nil {
				t.Fatal("a TLS 1.0 client completed the handshake")
			}
		}},
		{"client_disconnect", func(t *testing.T) { sslRequest(t).Close() }},
		{"protocol", func(t *testing.T) {
			// Direct TLS (no SSLRequest) without ALPN postgresql.
			c, err := tls.Dial("tcp", addr, &tls.Config{ServerName: "127.0.0.1", RootCAs: pool})
			if err != nil {
				t.Fatal(err)
			}
			c.Close()
		}},
	} {
		before := max(failures(tc.reason), 0)
		tc.do(t)
		if !waitUntil(10*time.Second, func() bool { return failures(tc.reason) == before+1 }) {
			t.Errorf("shiftkey_gateway_tls_failures_total{scope=\"tlsc\",reason=%q} = %v after one such handshake, want %v", tc.reason, failures(tc.reason), before+1)
		}
	}
	// A good TLS login counts nowhere.
	host, port, _ := net.SplitHostPort(addr)
	c, err := pgconn.Connect(context.Background(), fmt.Sprintf("host=%s port=%s user=IAM:u password=pw sslmode=require connect_timeout=30", host, port))
	if err != nil {
		t.Fatalf("a TLS login: %v", err)
	}
	c.Close(context.Background())
	for _, r := range []string{"certificate_rejected", "protocol", "client_disconnect", "timeout", "other"} {
		want := map[string]float64{"certificate_rejected": 1, "protocol": 2, "client_disconnect": 1}[r]
		if got := max(failures(r), 0); got != want {
			t.Errorf("after a good TLS login, shiftkey_gateway_tls_failures_total{reason=%q} = %v, want %v", r, got, want)
		}
	}
}
