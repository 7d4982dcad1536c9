package pgwire

import (
	"crypto/tls"
	"io"
	"net"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgproto3"
)

// Found in a review of the gateway's wire handling: a second GSSENCRequest,
// or a second SSLRequest, was answered N again where PostgreSQL answers
// 0A000 (it takes the repeated request for a startup packet of protocol
// 1234.x); and a wrong message during authentication was named by its Go
// type ("*pgproto3.Terminate").
func TestRepeatedEncryptionRequestAndMessageNames(t *testing.T) {
	_, addr := fakeGateway(t, &fakeBackend{}, nil)
	dial := func() (net.Conn, *pgproto3.Frontend) {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		c.SetDeadline(time.Now().Add(10 * time.Second))
		return c, pgproto3.NewFrontend(c, c)
	}
	ssl, _ := (&pgproto3.SSLRequest{}).Encode(nil)
	gss, _ := (&pgproto3.GSSEncRequest{}).Encode(nil)
	for name, req := range map[string][]byte{"SSLRequest": ssl, "GSSENCRequest": gss} {
		c, fe := dial()
		c.Write(append(append([]byte(nil), req...), req...))
		var n [1]byte
		if _, err := io.ReadFull(c, n[:]); err != nil || n[0] != 'N' {
			t.Fatalf("first %s: %q %v", name, n[0], err)
		}
		m, err := fe.Receive()
		if e, ok := m.(*pgproto3.ErrorResponse); err != nil || !ok || e.Code != codeFeatureNotSupported {
			t.Fatalf("second %s: %#v %v, want 0A000", name, m, err)
		}
	}
	c, fe := dial()
	term, _ := (&pgproto3.Terminate{}).Encode(nil)
	c.Write(append(startup(map[string]string{"user": "IAM:u"}), term...))
	if m, err := fe.Receive(); err != nil {
		t.Fatal(err)
	} else if _, ok := m.(*pgproto3.AuthenticationSASL); !ok {
		t.Fatalf("got %#v, want AuthenticationSASL", m)
	}
	m, err := fe.Receive()
	if e, ok := m.(*pgproto3.ErrorResponse); err != nil || !ok || e.Code != codeProtocolViolation || e.Message != "expected SASL response, got Terminate" {
		t.Fatalf("a Terminate instead of the SASL response: %#v %v", m, err)
	}
}

// Inside TLS an encryption request of either kind is a startup packet of
// protocol 1234.x, as in PostgreSQL (which marks GSS done once TLS is up):
// the gateway answered a GSSENCRequest inside TLS with 'N'.
func TestEncryptionRequestInsideTLS(t *testing.T) {
	cfg, pool := testTLS(t)
	_, addr := newGateway(t, func(g *Gateway) { g.TLS = cfg })
	ssl, _ := (&pgproto3.SSLRequest{}).Encode(nil)
	gss, _ := (&pgproto3.GSSEncRequest{}).Encode(nil)
	for name, req := range map[string][]byte{"SSLRequest": ssl, "GSSENCRequest": gss} {
		c, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: pool, ServerName: "127.0.0.1", NextProtos: []string{"postgresql"}})
		if err != nil {
			t.Fatal(err)
		}
		c.SetDeadline(time.Now().Add(10 * time.Second))
		c.Write(req)
		m, err := pgproto3.NewFrontend(c, c).Receive()
		if e, ok := m.(*pgproto3.ErrorResponse); err != nil || !ok || e.Code != codeFeatureNotSupported {
			t.Errorf("%s inside TLS: %#v %v, want 0A000", name, m, err)
		}
		c.Close()
	}
}

// Found in a review of the wire protocol's edges: a first packet shorter
// than 8 bytes whose length field is already invalid ("hello\n" from a
// stray client, a line typed into telnet) got no answer: the gateway
// waited for 8 bytes, then closed at the login's deadline without a word.
// PostgreSQL reads the length first and answers 08P01 "invalid length of
// startup packet" at once.
func TestShortFirstPacketWithABadLengthIsAnswered(t *testing.T) {
	_, addr := fakeGateway(t, &fakeBackend{}, func(g *Gateway) { g.AuthTimeout = 2 * time.Second })
	for _, in := range []string{"hello\n", "\x00\x00\x00\x02", "\xff\xff\xff\xff\x00"} {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		c.SetDeadline(time.Now().Add(10 * time.Second))
		c.Write([]byte(in))
		m, err := pgproto3.NewFrontend(c, c).Receive()
		if e, ok := m.(*pgproto3.ErrorResponse); err != nil || !ok || e.Code != codeProtocolViolation || e.Message != "invalid length of startup packet" {
			t.Errorf("first packet %q: got %#v, %v; want 08P01 invalid length of startup packet", in, m, err)
		}
		c.Close()
	}
}
