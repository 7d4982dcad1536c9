package main

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgproto3"
	dto "github.com/prometheus/client_model/go"
)

// attackToken is a fresh random value an attacker sends, recognisable in
// /metrics by its prefix.
func attackToken() string {
	b := make([]byte, 6)
	rand.Read(b)
	return "zzq" + hex.EncodeToString(b)
}

// shiftkeySeries counts the series of shiftkey's own families.
func shiftkeySeries(fams map[string]*dto.MetricFamily) int {
	n := 0
	for name, f := range fams {
		if strings.HasPrefix(name, "shiftkey_") {
			n += len(f.GetMetric())
		}
	}
	return n
}

// attackAPI sends n unauthenticated API requests, each with values of its
// own: the operation (Action or X-Amz-Target), Version, path, method, and
// the credential scope's key id, region and service.
func attackAPI(t *testing.T, apiURL string, n int) {
	t.Helper()
	client := &http.Client{Timeout: 10 * time.Second}
	services := []string{"redshift", "iam", "sts", "redshift-serverless", ""}
	for i := range n {
		tok := attackToken
		svc := services[i%len(services)]
		if svc == "" {
			svc = tok()
		}
		auth := fmt.Sprintf("AWS4-HMAC-SHA256 Credential=AKIA%s/20240101/%s/%s/aws4_request, SignedHeaders=host, Signature=%s", tok(), tok(), svc, tok())
		var req *http.Request
		switch i % 4 {
		case 0:
			req, _ = http.NewRequest("POST", apiURL+"/", strings.NewReader(url.Values{"Action": {tok()}, "Version": {tok()}}.Encode()))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		case 1:
			req, _ = http.NewRequest("POST", apiURL+"/"+tok(), strings.NewReader("{}"))
			req.Header.Set("Content-Type", "application/x-amz-json-1.1")
			req.Header.Set("X-Amz-Target", tok()+"."+tok())
		case 2:
			req, _ = http.NewRequest("GET", apiURL+"/"+tok()+"?Action="+tok()+"&Version=2012-12-01&X-Amz-Credential="+tok(), nil)
		case 3:
			req, _ = http.NewRequest("PUT", apiURL+"/"+tok(), strings.NewReader("Action="+tok()))
		}
		req.Header.Set("Authorization", auth)
		req.Header.Set("User-Agent", tok())
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
}

// attackGateway sends n startup packets to the gateway at addr, each with
// its own user, database, application_name and options, half of them over
// TLS with a server name of their own, and hangs up after the gateway's
// first answer.
func attackGateway(t *testing.T, addr string, n int) {
	t.Helper()
	for i := range n {
		raw, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		raw.SetDeadline(time.Now().Add(10 * time.Second))
		var c net.Conn = raw
		if i%2 == 1 {
			raw.Write([]byte{0, 0, 0, 8, 4, 210, 22, 47}) // SSLRequest
			b := make([]byte, 1)
			if _, err := io.ReadFull(raw, b); err != nil || b[0] != 'S' {
				t.Fatalf("SSLRequest answered %q, %v", b, err)
			}
			tc := tls.Client(raw, &tls.Config{ServerName: attackToken() + ".example", InsecureSkipVerify: true})
			if err := tc.Handshake(); err != nil {
				t.Fatalf("TLS with a random server name: %v", err)
			}
			c = tc
		}
		fe := pgproto3.NewFrontend(c, c)
		fe.Send(&pgproto3.StartupMessage{ProtocolVersion: pgproto3.ProtocolVersionNumber, Parameters: map[string]string{
			"user": attackToken(), "database": attackToken(), "application_name": attackToken(), "options": "-c search_path=" + attackToken()}})
		if err := fe.Flush(); err != nil {
			t.Fatal(err)
		}
		if _, err := fe.Receive(); err != nil {
			t.Fatal(err)
		}
		c.Close()
	}
}

// Attacker-chosen values never become labels: thousands of requests and
// startup packets, each with values of their own, leave as many series as
// ten did, and no label holds any of them (nor an access key id sent).
func TestMetricsSeriesBoundedUnderAttack(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile := writeServerCert(t, dir)
	s := startServe(t, opsYAML(dir, "tls: {cert_file: "+certFile+", key_file: "+keyFile+"}"), opsEnv)
	c, err := s.Store.Cluster(context.Background(), "opsc")
	if err != nil {
		t.Fatal(err)
	}
	gw := net.JoinHostPort(c.Endpoint.Address, itoa(c.Endpoint.Port))
	// Every kind of value once, so that the fixed label values they map
	// to exist.
	attackAPI(t, s.APIURL, 20)
	attackGateway(t, gw, 10)
	// A scrape gathers its families concurrently: the one that saw the
	// last login counted may have read another family just before that
	// login's report reached it. The series are counted from a scrape
	// begun after the wait.
	waitUntil(t, 10*time.Second, "the warm-up's logins counted", func() bool {
		fams, _ := scrape(t, s.AdminURL)
		return sample(fams, "shiftkey_gateway_logins_total", map[string]string{"scope": "opsc", "outcome": "client_disconnect"}) == 10
	})
	base, _ := scrape(t, s.AdminURL)
	attackAPI(t, s.APIURL, 2000)
	attackGateway(t, gw, 1000)
	waitUntil(t, 10*time.Second, "the attack's logins counted", func() bool {
		fams, _ := scrape(t, s.AdminURL)
		return sample(fams, "shiftkey_gateway_logins_total", map[string]string{"scope": "opsc", "outcome": "client_disconnect"}) == 1010
	})
	fams, text := scrape(t, s.AdminURL)
	if b, a := shiftkeySeries(base), shiftkeySeries(fams); a != b {
		t.Errorf("%d series after 2,000 API requests and 1,000 startup packets of distinct values, %d after 30", a, b)
	}
	for _, f := range fams {
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if strings.Contains(l.GetValue(), "zzq") || strings.HasPrefix(l.GetValue(), "AKIA") {
					t.Errorf("%s has label %s=%q, sent by the attacker", f.GetName(), l.GetName(), l.GetValue())
				}
			}
		}
	}
	if strings.Contains(text, "zzq") {
		t.Error("/metrics holds a value the attacker sent")
	}
}
