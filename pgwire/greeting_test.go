package pgwire

import (
	"crypto/hmac"
	"crypto/pbkdf2"
	"crypto/sha256"
	"encoding/base64"
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
// 'S', belong to the TLS handshake: a plaintext startup packet there (an
// injection in front of the client's real handshake) is never read as
// one. The gateway answers 'S' and nothing in the clear after it, and the
// connection ends.
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
	if len(got) == 0 || got[0] != 'S' {
		t.Fatalf("SSLRequest answered %q, want S", got)
	}
	// After 'S', at most a TLS alert record (type 21), never a message.
	if rest := got[1:]; len(rest) > 0 && rest[0] != 21 {
		t.Fatalf("after S the gateway sent %q in the clear", rest)
	}
}
