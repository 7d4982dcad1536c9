package pgwire

import (
	"crypto/hmac"
	"crypto/pbkdf2"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgproto3"
)

// saslInitial is a SASLInitialResponse for SCRAM-SHA-256 whose length
// field says n, followed by data.
func saslInitial(n int32, data string) []byte {
	body := append([]byte("SCRAM-SHA-256\x00"), binary.BigEndian.AppendUint32(nil, uint32(n))...)
	body = append(body, data...)
	msg := append([]byte{'p'}, binary.BigEndian.AppendUint32(nil, uint32(4+len(body)))...)
	return append(msg, body...)
}

// scramFinal is the client-final message that proves password pw, for the
// client-first-message-bare first and the server's serverFirst.
func scramFinal(pw, first, serverFirst string) string {
	attrs := map[string]string{}
	for _, kv := range strings.Split(serverFirst, ",") {
		attrs[kv[:1]] = kv[2:]
	}
	salt, _ := base64.StdEncoding.DecodeString(attrs["s"])
	salted, _ := pbkdf2.Key(sha256.New, pw, salt, 4096, 32)
	mac := func(key []byte, msg string) []byte {
		m := hmac.New(sha256.New, key)
		m.Write([]byte(msg))
		return m.Sum(nil)
	}
	clientKey := mac(salted, "Client Key")
	stored := sha256.Sum256(clientKey)
	final := "c=biws,r=" + attrs["r"]
	proof := mac(stored[:], first+","+serverFirst+","+final)
	for i := range proof {
		proof[i] ^= clientKey[i]
	}
	return final + ",p=" + base64.StdEncoding.EncodeToString(proof)
}

// Found in a review of the wire protocol's edges: the gateway did not read
// the length of a SASLInitialResponse's initial response. A length of -1,
// which the protocol defines as "no initial response" (PostgreSQL then
// sends an empty challenge, which the client answers with its
// client-first message), was refused as a malformed SCRAM message, while
// a length that did not match what followed (-5, or more or fewer bytes
// than sent) was taken as if right; PostgreSQL refuses those (08P01).
func TestSASLInitialResponseLength(t *testing.T) {
	_, addr := newGateway(t, nil)
	dial := func() (net.Conn, *pgproto3.Frontend) {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		c.SetDeadline(time.Now().Add(20 * time.Second))
		fe := pgproto3.NewFrontend(c, c)
		c.Write(startup(map[string]string{"user": "IAM:u"}))
		if m, err := fe.Receive(); err != nil {
			t.Fatal(err)
		} else if _, ok := m.(*pgproto3.AuthenticationSASL); !ok {
			t.Fatalf("got %#v, want AuthenticationSASL", m)
		}
		return c, fe
	}
	receive := func(fe *pgproto3.Frontend) pgproto3.BackendMessage {
		t.Helper()
		m, err := fe.Receive()
		if err != nil {
			t.Fatal(err)
		}
		return m
	}

	t.Run("no initial response: an empty challenge, then the exchange as usual", func(t *testing.T) {
		c, fe := dial()
		c.Write(saslInitial(-1, ""))
		m := receive(fe)
		cont, ok := m.(*pgproto3.AuthenticationSASLContinue)
		if !ok || len(cont.Data) != 0 {
			t.Fatalf("SASLInitialResponse without an initial response answered %#v, want an empty AuthenticationSASLContinue", m)
		}
		const first = "n=,r=noinitialresponsenonce"
		fe.Send(&pgproto3.SASLResponse{Data: []byte("n,," + first)})
		fe.Flush()
		cont, ok = receive(fe).(*pgproto3.AuthenticationSASLContinue)
		if !ok {
			t.Fatalf("client-first message answered %#v, want AuthenticationSASLContinue", cont)
		}
		fe.Send(&pgproto3.SASLResponse{Data: []byte(scramFinal("pw", first, string(cont.Data)))})
		fe.Flush()
		if _, ok := receive(fe).(*pgproto3.AuthenticationSASLFinal); !ok {
			t.Fatal("no AuthenticationSASLFinal")
		}
		if m, ok := receive(fe).(*pgproto3.AuthenticationOk); !ok {
			t.Fatalf("got %#v, want AuthenticationOk", m)
		}
	})
	t.Run("a length that does not say what follows: 08P01", func(t *testing.T) {
		const msg = "n,,n=,r=abcdefghijklmnop"
		for _, n := range []int32{-5, -1, 0, int32(len(msg)) - 3, int32(len(msg)) + 3} {
			c, fe := dial()
			c.Write(saslInitial(n, msg))
			m := receive(fe)
			if e, ok := m.(*pgproto3.ErrorResponse); !ok || e.Code != codeProtocolViolation {
				t.Errorf("initial response of %d bytes with length %d: got %T, want 08P01", len(msg), n, m)
			}
		}
	})
}
