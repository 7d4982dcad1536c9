package doctor

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"strings"
	"testing"
)

// A certificate for other names, as the TLS stack reports it, gives
// "hostname mismatch" with the names to connect to.
func TestHostnameMismatchHint(t *testing.T) {
	cert := &x509.Certificate{DNSNames: []string{"warehouse.example.com"}, IPAddresses: []net.IP{net.IPv4(10, 0, 0, 5)}}
	err := fmt.Errorf("tls error: %w", &tls.CertificateVerificationError{Err: x509.HostnameError{Certificate: cert, Host: "127.0.0.1"}})
	tp := certProblem(err)
	if tp == nil || tp.UnknownAuthority || strings.Join(tp.Names, ",") != "warehouse.example.com,10.0.0.5" {
		t.Fatalf("diagnosis %+v", tp)
	}
	h := gatewayCAHint(tp, "PGSSLROOTCERT", "127.0.0.1", Options{})
	if !strings.HasPrefix(h, "hostname mismatch") || !strings.Contains(h, "connect to one of warehouse.example.com, 10.0.0.5") {
		t.Fatalf("hint %q", h)
	}
	if certProblem(fmt.Errorf("dial: %w", &net.OpError{Op: "dial"})) != nil {
		t.Fatal("a network error read as a certificate problem")
	}
}

func TestEnvFrom(t *testing.T) {
	env := map[string]string{"AWS_DEFAULT_REGION": "eu-west-1", "AWS_ENDPOINT_URL": "https://x", "AWS_CA_BUNDLE": "/ca"}
	e := EnvFrom(func(k string) string { return env[k] })
	if e.Region != "eu-west-1" || e.EndpointURL != "https://x" || e.CABundle != "/ca" {
		t.Fatalf("%+v", e)
	}
	env["AWS_REGION"] = "us-west-2"
	if e := EnvFrom(func(k string) string { return env[k] }); e.Region != "us-west-2" {
		t.Fatalf("AWS_REGION does not win over AWS_DEFAULT_REGION: %+v", e)
	}
}
