package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/binary"
	"encoding/pem"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/shiftkey/shiftkey"
)

// SIGHUP's Reload serves the certificates now in the files, on the API and
// on the gateways, to the next handshake; a session already open is kept.
func TestReloadSwapsCertificates(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	certFile, keyFile := writeServerCert(t, dir)
	next := t.TempDir()
	nextCert, nextKey := writeServerCert(t, next)
	first, second := derOf(t, certFile), derOf(t, nextCert)
	if bytes.Equal(first, second) {
		t.Fatal("the two certificates are the same")
	}
	yaml := `
store: {sqlite: ` + filepath.Join(dir, "serve.db") + `}
api: {listen: "127.0.0.1:0", tls: {cert_file: ` + certFile + `, key_file: ` + keyFile + `}}
tls: {cert_file: ` + certFile + `, key_file: ` + keyFile + `}
` + declaredClusterYAML("reloaded", `"redshift:GetClusterCredentials"`)
	cfgPath := filepath.Join(dir, "serve.yaml")
	if err := os.WriteFile(cfgPath, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	s := startServe(t, yaml, limitsEnv)
	c, err := s.Store.Cluster(ctx, "reloaded")
	if err != nil {
		t.Fatal(err)
	}
	gw := net.JoinHostPort(c.Endpoint.Address, strconv.Itoa(c.Endpoint.Port))
	api := strings.TrimPrefix(s.APIHTTPSURL, "https://")
	open := gatewayTLS(t, gw) // a TLS session open across the reload
	defer open.Close()
	for name, served := range map[string][]byte{"api": apiCert(t, api), "gateway": gatewayCert(t, gw)} {
		if !bytes.Equal(served, first) {
			t.Fatalf("%s before the reload: not the first certificate", name)
		}
	}
	for _, f := range [][2]string{{nextCert, certFile}, {nextKey, keyFile}} {
		b, _ := os.ReadFile(f[0])
		if err := os.WriteFile(f[1], b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	t.Setenv("TEST_KEY_ID", limitsEnv["TEST_KEY_ID"])
	t.Setenv("TEST_SECRET", limitsEnv["TEST_SECRET"])
	if err := s.Reload(ctx, cfgPath); err != nil {
		t.Fatal(err)
	}
	for name, served := range map[string][]byte{"api": apiCert(t, api), "gateway": gatewayCert(t, gw)} {
		if !bytes.Equal(served, second) {
			t.Errorf("%s after the reload: not the new certificate", name)
		}
	}
	// The connection opened before the reload still speaks TLS: an
	// SSL-wrapped StartupMessage is answered.
	open.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := open.Write(startupPacket("IAM:nobody", "dev")); err != nil {
		t.Fatalf("TLS session opened before the reload: %v", err)
	}
	var b [1]byte
	if _, err := open.Read(b[:]); err != nil {
		t.Fatalf("TLS session opened before the reload: %v", err)
	}
}

// apiCert is the leaf certificate the API serves (DER).
func apiCert(t *testing.T, addr string) []byte {
	t.Helper()
	c, err := tls.Dial("tcp", addr, &tls.Config{InsecureSkipVerify: true})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return c.ConnectionState().PeerCertificates[0].Raw
}

// gatewayTLS is a TLS connection to a gateway after SSLRequest.
func gatewayTLS(t *testing.T, addr string) *tls.Conn {
	t.Helper()
	raw, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	raw.SetDeadline(time.Now().Add(10 * time.Second))
	req := binary.BigEndian.AppendUint32(binary.BigEndian.AppendUint32(nil, 8), 80877103)
	var answer [1]byte
	if _, err := raw.Write(req); err != nil {
		t.Fatal(err)
	}
	if _, err := raw.Read(answer[:]); err != nil || answer[0] != 'S' {
		t.Fatalf("SSLRequest: %q %v", answer, err)
	}
	c := tls.Client(raw, &tls.Config{InsecureSkipVerify: true})
	if err := c.Handshake(); err != nil {
		t.Fatal(err)
	}
	raw.SetDeadline(time.Time{})
	return c
}

// gatewayCert is the leaf certificate a gateway serves (DER).
func gatewayCert(t *testing.T, addr string) []byte {
	t.Helper()
	c := gatewayTLS(t, addr)
	defer c.Close()
	return c.ConnectionState().PeerCertificates[0].Raw
}

// startupPacket is a protocol 3.0 StartupMessage.
func startupPacket(user, db string) []byte {
	body := binary.BigEndian.AppendUint32(nil, 196608)
	for _, kv := range [][2]string{{"user", user}, {"database", db}} {
		body = append(append(append(append(body, kv[0]...), 0), kv[1]...), 0)
	}
	body = append(body, 0)
	return append(binary.BigEndian.AppendUint32(nil, uint32(len(body)+4)), body...)
}

// derOf is the certificate in a PEM file.
func derOf(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	blk, _ := pem.Decode(b)
	if blk == nil {
		t.Fatalf("%s: no PEM", path)
	}
	return blk.Bytes
}

// Found in an operator's review: a reload that failed on a certificate file
// had already created the identities of the same edit, where the docs say
// a failed reload changes nothing; and a reload that changed settings only
// a restart applies (a gateway's listen address, limits) said only "config
// reloaded". Now the certificates are read first, and the log names what
// waits for a restart.
func TestReloadThatFailsChangesNothingAndRestartSettingsAreNamed(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	certFile, keyFile := writeServerCert(t, dir)
	base := `
store: {sqlite: ` + filepath.Join(dir, "serve.db") + `}
api: {listen: "127.0.0.1:0"}
tls: {cert_file: ` + certFile + `, key_file: ` + keyFile + `}
` + declaredClusterYAML("reloadfail", `"redshift:GetClusterCredentials"`)
	s := startServe(t, base, limitsEnv)
	var logs lockedBuffer
	s.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	for k, v := range limitsEnv {
		t.Setenv(k, v)
	}
	for k, v := range newbieEnv {
		t.Setenv(k, v)
	}
	cfgPath := filepath.Join(dir, "serve.yaml")
	broken := strings.Replace(base, certFile, filepath.Join(dir, "missing.crt"), 1) + newbieUser
	if err := os.WriteFile(cfgPath, []byte(broken), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := s.Reload(ctx, cfgPath); err == nil {
		t.Fatal("a reload with a missing certificate file succeeded")
	}
	if _, err := s.Store.Entity(ctx, shiftkey.KindUser, "newbie"); shiftkey.ErrorCode(err) != shiftkey.CodeNoSuchEntity {
		t.Fatalf("the failed reload created user newbie (%v)", err)
	}

	moved := strings.Replace(base, `gateway: {listen: "127.0.0.1:0"}`, `gateway: {listen: "127.0.0.1:1"}`, 1) + "limits: {shutdown_grace: 7s}\n"
	if err := os.WriteFile(cfgPath, []byte(moved), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := s.Reload(ctx, cfgPath); err != nil {
		t.Fatal(err)
	}
	out := logs.String()
	if !strings.Contains(out, "change at the next restart") || !strings.Contains(out, "clusters") || !strings.Contains(out, "limits") {
		t.Fatalf("the reload's log does not name clusters and limits as waiting for a restart:\n%s", out)
	}
}

// A SIGHUP whose audit file cannot be opened anew (its directory moved
// away by a rotation gone wrong) still applies the config, and the log
// says both: the audit file kept, and the config reloaded. It said only
// "reload failed" with the open error, though the identities had changed.
func TestReloadWithTheAuditFileUnopenableSaysWhatApplied(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	auditDir := filepath.Join(dir, "logs")
	if err := os.Mkdir(auditDir, 0o700); err != nil {
		t.Fatal(err)
	}
	base := `
store: {sqlite: ` + filepath.Join(dir, "serve.db") + `}
api: {listen: "127.0.0.1:0"}
audit: {file: ` + filepath.Join(auditDir, "audit.log") + `}
` + declaredClusterYAML("reloadaudit", `"redshift:GetClusterCredentials"`)
	s := startServe(t, base, limitsEnv)
	var logs lockedBuffer
	s.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	for _, env := range []map[string]string{limitsEnv, newbieEnv} {
		for k, v := range env {
			t.Setenv(k, v)
		}
	}
	cfgPath := filepath.Join(dir, "serve.yaml")
	if err := os.WriteFile(cfgPath, []byte(base+newbieUser), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(auditDir, auditDir+".old"); err != nil {
		t.Fatal(err)
	}
	err := s.Reload(ctx, cfgPath)
	if _, e := s.Store.Entity(ctx, shiftkey.KindUser, "newbie"); e != nil {
		t.Fatalf("user newbie after the reload: %v", e)
	}
	out := logs.String()
	if err != nil || !strings.Contains(out, "config reloaded") || !strings.Contains(out, "audit") {
		t.Fatalf("a reload that applied the config but could not reopen the audit file: returned %v, logged:\n%s\nwant no error (the config applied), a line naming the audit file and \"config reloaded\"", err, out)
	}
}
