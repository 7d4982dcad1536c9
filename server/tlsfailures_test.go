package server

import (
	"context"
	"crypto/tls"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/shiftkey/shiftkey/devca"
	shttp "github.com/shiftkey/shiftkey/http"
	"github.com/shiftkey/shiftkey/metrics"
	"github.com/shiftkey/shiftkey/sqlite"
)

// apiTLSFailures is shiftkey_api_tls_failures_total{reason} on m's
// /metrics; -1 when there is no such series.
func apiTLSFailures(t *testing.T, m *metrics.Metrics, reason string) float64 {
	t.Helper()
	rec := httptest.NewRecorder()
	m.Handler(nil).ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(strings.NewReader(rec.Body.String()))
	if err != nil {
		t.Fatalf("parse /metrics: %v", err)
	}
	return series(fams["shiftkey_api_tls_failures_total"], map[string]string{"reason": reason})
}

func series(f *dto.MetricFamily, labels map[string]string) float64 {
next:
	for _, s := range f.GetMetric() {
		if len(s.GetLabel()) != len(labels) {
			continue
		}
		for _, l := range s.GetLabel() {
			if labels[l.GetName()] != l.GetValue() {
				continue next
			}
		}
		return s.GetCounter().GetValue()
	}
	return -1
}

// Plain HTTP sent to an API that requires TLS, and TLS handshakes that
// fail on it, are counted by reason: an operator must see clients that
// never get as far as a call (one without the CA, one too old, plain
// HTTP), which the API's request metrics cannot show.
func TestAPITLSFailuresCounted(t *testing.T) {
	ctx := context.Background()
	db, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "s.db"))
	if err != nil {
		t.Fatal(err)
	}
	ca, err := devca.LoadOrCreate(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	m := metrics.New(shttp.RedshiftOperations())
	s := &Server{Logger: slog.New(slog.DiscardHandler), Observer: m, Metrics: m,
		APITLS: ca.ServerConfig(nil, "127.0.0.1"), APIRequireTLS: true}
	s.UseStore(db)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	s.StartAPI(ln)
	t.Cleanup(func() { s.Stop(); s.Close() })

	wait := func(reason string, want float64) {
		t.Helper()
		got := -1.0
		for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
			if got = apiTLSFailures(t, m, reason); got == want {
				return
			}
		}
		t.Errorf("shiftkey_api_tls_failures_total{reason=%q} = %v, want %v", reason, got, want)
	}

	// Plain HTTP: answered 400, counted.
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Get("http://" + addr + "/")
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("plain HTTP to a TLS-only API: %d, want 400", resp.StatusCode)
	}
	wait("plain_http", 1)

	// A client without the CA refuses the certificate.
	if c, err := tls.Dial("tcp", addr, &tls.Config{ServerName: "127.0.0.1"}); err == nil {
		c.Close()
		t.Fatal("a client without the CA completed the handshake")
	}
	wait("certificate_rejected", 1)

	// A client that offers only TLS 1.0: no version in common.
	if c, err := tls.Dial("tcp", addr, &tls.Config{ServerName: "127.0.0.1", MinVersion: tls.VersionTLS10, MaxVersion: tls.VersionTLS10, InsecureSkipVerify: true}); err == nil {
		c.Close()
		t.Fatal("a TLS 1.0 client completed the handshake")
	}
	wait("protocol", 1)

	// A client that starts a handshake and leaves.
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	c.Write([]byte{0x16, 0x03, 0x01})
	c.Close()
	wait("client_disconnect", 1)

	// A client with the CA is served, and counts nowhere.
	hc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: ca.Pool()}}}
	resp, err = hc.Get("https://" + addr + "/healthz")
	if err != nil {
		t.Fatalf("HTTPS with the CA: %v", err)
	}
	resp.Body.Close()
	for _, r := range []string{"plain_http", "certificate_rejected", "protocol", "client_disconnect"} {
		if got := apiTLSFailures(t, m, r); got != 1 {
			t.Errorf("after a good HTTPS call, shiftkey_api_tls_failures_total{reason=%q} = %v, want 1", r, got)
		}
	}
}
