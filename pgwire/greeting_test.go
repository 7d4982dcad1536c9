package pgwire

import (
	"bytes"
	"crypto/hmac"
	"crypto/pbkdf2"
	"crypto/sha256"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgproto3"
)

// A client that sends its SSLRequest, startup packet and SCRAM client-first
// message in one write (the gateway reads as much as there is at once) is
// answered N, then asked for SASL, then sent the server-first message
// without writing anything more; after its proof, the greeting comes in
// order: SASLFinal, AuthenticationOk, the notice, the parameter statuses
// sorted with the gateway's own server_protocol_version, the cancel key,
// ReadyForQuery.
func TestStartupAndSASLInOneWrite(t *testing.T) {
	b := &fakeBackend{}
	g, addr := fakeGateway(t, b, nil)
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	ssl, _ := (&pgproto3.SSLRequest{}).Encode(nil)
	const nonce = "pipelinedclientnonce"
	first, _ := (&pgproto3.SASLInitialResponse{AuthMechanism: "SCRAM-SHA-256", Data: []byte("n,,n=,r=" + nonce)}).Encode(nil)
	out := append(ssl, startup(map[string]string{"user": "IAM:u", "database": "dev", "client_protocol_version": "0"})...)
	if _, err := c.Write(append(out, first...)); err != nil {
		t.Fatal(err)
	}
	var n [1]byte
	if _, err := io.ReadFull(c, n[:]); err != nil || n[0] != 'N' {
		t.Fatalf("SSLRequest answered %q, %v; want N", n[0], err)
	}
	fe := pgproto3.NewFrontend(c, c)
	receive := func() pgproto3.BackendMessage {
		t.Helper()
		m, err := fe.Receive()
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	if m, ok := receive().(*pgproto3.AuthenticationSASL); !ok {
		t.Fatalf("got %T, want AuthenticationSASL", m)
	}
	cont, ok := receive().(*pgproto3.AuthenticationSASLContinue)
	if !ok {
		t.Fatalf("got %T, want AuthenticationSASLContinue", cont)
	}
	serverFirst := string(cont.Data)
	attrs := map[string]string{}
	for _, kv := range strings.Split(serverFirst, ",") {
		attrs[kv[:1]] = kv[2:]
	}
	if !strings.HasPrefix(attrs["r"], nonce) {
		t.Fatalf("server nonce %q does not extend the client's", attrs["r"])
	}
	salt, _ := base64.StdEncoding.DecodeString(attrs["s"])
	salted, _ := pbkdf2.Key(sha256.New, "pw", salt, 4096, 32)
	mac := func(key []byte, msg string) []byte {
		m := hmac.New(sha256.New, key)
		m.Write([]byte(msg))
		return m.Sum(nil)
	}
	clientKey := mac(salted, "Client Key")
	stored := sha256.Sum256(clientKey)
	final := "c=biws,r=" + attrs["r"]
	proof := mac(stored[:], "n=,r="+nonce+","+serverFirst+","+final)
	for i := range proof {
		proof[i] ^= clientKey[i]
	}
	fe.Send(&pgproto3.SASLResponse{Data: []byte(final + ",p=" + base64.StdEncoding.EncodeToString(proof))})
	if err := fe.Flush(); err != nil {
		t.Fatal(err)
	}
	var got []string
	for {
		switch m := receive().(type) {
		case *pgproto3.AuthenticationSASLFinal:
			got = append(got, "final")
		case *pgproto3.AuthenticationOk:
			got = append(got, "ok")
		case *pgproto3.NoticeResponse:
			got = append(got, "notice "+m.Message)
		case *pgproto3.ParameterStatus:
			got = append(got, m.Name+"="+m.Value)
		case *pgproto3.BackendKeyData:
			if len(m.SecretKey) != 4 {
				t.Fatalf("cancel key of %d bytes", len(m.SecretKey))
			}
			got = append(got, "key")
		case *pgproto3.ReadyForQuery:
			got = append(got, "ready "+string(m.TxStatus))
			want := "final|ok|notice fake notice|server_protocol_version=0|server_version=17.0|key|ready I"
			if strings.Join(got, "|") != want {
				t.Fatalf("greeting %s, want %s", strings.Join(got, "|"), want)
			}
			c.Close()
			ended(t, g)
			return
		default:
			t.Fatalf("unexpected %T after %q", m, got)
		}
	}
}

// Bytes a client sends behind its SSLRequest, before the gateway answers
// 'S', are not under TLS: a plaintext startup packet there (an injection
// in front of the client's real handshake) is never read as one. The
// gateway refuses it with 08P01, never 'S', and the connection ends.
func TestPlaintextBehindSSLRequestIsNotAStartup(t *testing.T) {
	cfg, _ := testTLS(t)
	_, addr := fakeGateway(t, &fakeBackend{}, func(g *Gateway) { g.TLS = cfg })
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(20 * time.Second))
	ssl, _ := (&pgproto3.SSLRequest{}).Encode(nil)
	if _, err := c.Write(append(ssl, startup(map[string]string{"user": "IAM:u", "database": "dev"})...)); err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(c)
	if err != nil {
		t.Fatalf("connection not ended: %v (read %q)", err, got)
	}
	// Refused in place of the 'S' (TestClientHelloBehindSSLRequestIsRefused).
	fe := pgproto3.NewFrontend(bytes.NewReader(got), io.Discard)
	m, err := fe.Receive()
	if e, ok := m.(*pgproto3.ErrorResponse); err != nil || !ok || e.Code != codeProtocolViolation {
		t.Fatalf("SSLRequest with a startup packet behind it answered %q, want 08P01", got)
	}
	if m, err := fe.Receive(); err == nil {
		t.Fatalf("after the 08P01 the gateway sent %#v", m)
	}
}

// Found in a review of the wire protocol's edges: a client that sent its
// TLS ClientHello behind its SSLRequest, without waiting for the answer,
// got a TLS session, where PostgreSQL refuses bytes received after an
// SSLRequest before its handshake (08P01 "received unencrypted data after
// SSL request", the CVE-2021-23214 check): they were not under the TLS the
// client asked for. The gateway refuses them instead of answering 'S'.
func TestClientHelloBehindSSLRequestIsRefused(t *testing.T) {
	cfg, pool := testTLS(t)
	_, addr := fakeGateway(t, &fakeBackend{}, func(g *Gateway) { g.TLS = cfg })
	raw, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	raw.SetDeadline(time.Now().Add(10 * time.Second))
	ssl, _ := (&pgproto3.SSLRequest{}).Encode(nil)
	p := &pipelinedSSL{Conn: raw, request: ssl}
	// X25519 alone keeps the ClientHello within the gateway's first read
	// (a post-quantum key share would not be): all of it is refused, none
	// left unread to make the gateway's close a reset.
	tc := tls.Client(p, &tls.Config{RootCAs: pool, ServerName: "127.0.0.1", NextProtos: []string{"postgresql"}, CurvePreferences: []tls.CurveID{tls.X25519}})
	if err := tc.Handshake(); err == nil {
		t.Fatal("a ClientHello sent behind the SSLRequest, before its answer, was taken: TLS handshake done")
	}
	if p.answer != 'E' {
		t.Fatalf("SSLRequest with a ClientHello behind it answered %q, want E", p.answer)
	}
	m, err := pgproto3.NewFrontend(io.MultiReader(bytes.NewReader([]byte{p.answer}), raw), raw).Receive()
	if e, ok := m.(*pgproto3.ErrorResponse); err != nil || !ok || e.Code != codeProtocolViolation || e.Message != "received unencrypted data after SSL request" {
		t.Fatalf("got %#v %v, want 08P01 received unencrypted data after SSL request", m, err)
	}
}

// pipelinedSSL is a connection whose first write is sent behind request,
// in one write, and whose first byte read (the answer to it) is kept in
// answer; the rest is the TLS handshake's when the answer is 'S'.
type pipelinedSSL struct {
	net.Conn
	request []byte
	answer  byte
}

func (c *pipelinedSSL) Write(p []byte) (int, error) {
	if c.request != nil {
		b := append(c.request, p...)
		c.request = nil
		if _, err := c.Conn.Write(b); err != nil {
			return 0, err
		}
		return len(p), nil
	}
	return c.Conn.Write(p)
}

func (c *pipelinedSSL) Read(p []byte) (int, error) {
	if c.answer == 0 {
		var b [1]byte
		if _, err := io.ReadFull(c.Conn, b[:]); err != nil {
			return 0, err
		}
		c.answer = b[0]
		if c.answer != 'S' {
			return 0, errors.New("SSLRequest not answered S")
		}
	}
	return c.Conn.Read(p)
}
