package pgwire

import (
	"context"
	"fmt"
	"net"
	"net/http/httptest"
	"strings"
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

// Every way a login ends is counted once, under its reason: a wrong
// password, an unknown login, a plaintext client of a gateway that
// requires TLS, a client that vanishes in the middle of SCRAM (closing, or
// killed: its socket reset), a backend that is down.
func TestLoginOutcomesCounted(t *testing.T) {
	m := metrics.New(nil)
	// The throttle's delays after failures slow the test and change no count.
	_, addr := newGateway(t, func(g *Gateway) { g.Observer, g.sleep = m, func(time.Duration) {} })
	cfg, _ := testTLS(t)
	_, tlsAddr := newGateway(t, func(g *Gateway) { g.Observer, g.TLS, g.RequireTLS = m, cfg, true })
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
