package main

import (
	"context"
	"encoding/binary"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/redshift"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgproto3"
)

func dialGateway(t *testing.T) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", net.JoinHostPort(dev.Gateway.Address, strconv.Itoa(dev.Gateway.Port)))
	if err != nil {
		t.Fatal(err)
	}
	c.SetDeadline(time.Now().Add(10 * time.Second))
	t.Cleanup(func() { c.Close() })
	return c
}

// expectError reads backend messages until an ErrorResponse and returns its code.
func expectError(t *testing.T, c net.Conn) string {
	t.Helper()
	fe := pgproto3.NewFrontend(c, c)
	for {
		msg, err := fe.Receive()
		if err != nil {
			t.Fatalf("no ErrorResponse: %v", err)
		}
		if e, ok := msg.(*pgproto3.ErrorResponse); ok {
			return e.Code
		}
	}
}

func TestStartupEdges(t *testing.T) {
	t.Run("GSSENCRequest is refused, then startup goes on in plaintext", func(t *testing.T) {
		c := dialGateway(t)
		var b [8]byte
		binary.BigEndian.PutUint32(b[:4], 8)
		binary.BigEndian.PutUint32(b[4:], 80877104) // GSSENCRequest
		c.Write(b[:])
		var r [1]byte
		if _, err := c.Read(r[:]); err != nil || r[0] != 'N' {
			t.Fatalf("answer to GSSENCRequest: %q %v", r, err)
		}
		buf, _ := (&pgproto3.StartupMessage{ProtocolVersion: pgproto3.ProtocolVersionNumber, Parameters: map[string]string{"user": "IAM:x"}}).Encode(nil)
		c.Write(buf)
		fe := pgproto3.NewFrontend(c, c)
		msg, err := fe.Receive()
		if err != nil {
			t.Fatal(err)
		}
		if sasl, ok := msg.(*pgproto3.AuthenticationSASL); !ok || len(sasl.AuthMechanisms) != 1 || sasl.AuthMechanisms[0] != "SCRAM-SHA-256" {
			t.Fatalf("after startup: %#v, want AuthenticationSASL SCRAM-SHA-256 only (no TLS, no PLUS)", msg)
		}
	})
	t.Run("protocol 2 is refused with 0A000", func(t *testing.T) {
		c := dialGateway(t)
		buf, _ := (&pgproto3.StartupMessage{ProtocolVersion: 2 << 16, Parameters: map[string]string{"user": "x"}}).Encode(nil)
		c.Write(buf)
		if code := expectError(t, c); code != "0A000" {
			t.Fatalf("code %s", code)
		}
	})
	t.Run("no user is refused with 28000", func(t *testing.T) {
		c := dialGateway(t)
		buf, _ := (&pgproto3.StartupMessage{ProtocolVersion: pgproto3.ProtocolVersionNumber, Parameters: map[string]string{"database": "dev"}}).Encode(nil)
		c.Write(buf)
		if code := expectError(t, c); code != "28000" {
			t.Fatalf("code %s", code)
		}
	})
	t.Run("an unknown major version is refused with 0A000, as PostgreSQL does", func(t *testing.T) {
		for _, v := range []uint32{12345, 4 << 16} {
			c := dialGateway(t)
			var b [8]byte
			binary.BigEndian.PutUint32(b[:4], 8)
			binary.BigEndian.PutUint32(b[4:], v)
			c.Write(b[:])
			if code := expectError(t, c); code != "0A000" {
				t.Fatalf("version %d.%d: code %s", v>>16, v&0xffff, code)
			}
		}
	})
	t.Run("a startup packet without parameters is refused with 28000", func(t *testing.T) {
		c := dialGateway(t)
		var b [9]byte
		binary.BigEndian.PutUint32(b[:4], 9)
		binary.BigEndian.PutUint32(b[4:], pgproto3.ProtocolVersionNumber)
		c.Write(b[:])
		if code := expectError(t, c); code != "28000" {
			t.Fatalf("code %s", code)
		}
	})
	t.Run("a startup packet without its terminator is refused with 08P01", func(t *testing.T) {
		c := dialGateway(t)
		buf, _ := (&pgproto3.StartupMessage{ProtocolVersion: pgproto3.ProtocolVersionNumber, Parameters: map[string]string{"user": "IAM:x"}}).Encode(nil)
		buf = buf[:len(buf)-1]
		binary.BigEndian.PutUint32(buf[:4], uint32(len(buf)))
		c.Write(buf)
		if code := expectError(t, c); code != "08P01" {
			t.Fatalf("code %s", code)
		}
	})
	// PostgreSQL 19's libpq asks for 3.9999 to test that servers negotiate
	// (and gives up on one that does not); every 3.x past 3.2 is negotiated
	// to 3.2, and 3.1 (never released) taken as PostgreSQL 18 takes it.
	t.Run("every newer minor version is negotiated", func(t *testing.T) {
		for _, minor := range []uint32{1, 3, 9999} {
			c := dialGateway(t)
			var b []byte
			b = binary.BigEndian.AppendUint32(b, 0)
			b = binary.BigEndian.AppendUint32(b, 3<<16|minor)
			b = append(b, "user\x00IAM:x\x00\x00"...)
			binary.BigEndian.PutUint32(b[:4], uint32(len(b)))
			c.Write(b)
			fe := pgproto3.NewFrontend(c, c)
			msg, err := fe.Receive()
			if err != nil {
				t.Fatal(err)
			}
			if minor > 2 {
				if npv, ok := msg.(*pgproto3.NegotiateProtocolVersion); !ok || npv.NewestMinorProtocol != pgproto3.ProtocolVersion32 {
					t.Fatalf("3.%d: got %#v, want NegotiateProtocolVersion 3.2", minor, msg)
				}
				msg, err = fe.Receive()
			}
			if err != nil {
				t.Fatalf("3.%d: %v", minor, err)
			} else if _, ok := msg.(*pgproto3.AuthenticationSASL); !ok {
				t.Fatalf("3.%d: after the negotiation %#v, want AuthenticationSASL", minor, msg)
			}
		}
	})
	t.Run("a password message instead of SASL is refused with 08P01", func(t *testing.T) {
		c := dialGateway(t)
		buf, _ := (&pgproto3.StartupMessage{ProtocolVersion: pgproto3.ProtocolVersionNumber, Parameters: map[string]string{"user": "IAM:x"}}).Encode(nil)
		c.Write(buf)
		fe := pgproto3.NewFrontend(c, c)
		if _, err := fe.Receive(); err != nil {
			t.Fatal(err)
		}
		pw, _ := (&pgproto3.PasswordMessage{Password: "secret"}).Encode(nil)
		c.Write(pw)
		if code := expectError(t, c); code != "08P01" {
			t.Fatalf("code %s", code)
		}
	})
	t.Run("unknown _pq_ options get NegotiateProtocolVersion", func(t *testing.T) {
		c := dialGateway(t)
		buf, _ := (&pgproto3.StartupMessage{ProtocolVersion: 3<<16 | 2, Parameters: map[string]string{"user": "IAM:x", "_pq_.test_option": "1"}}).Encode(nil)
		c.Write(buf)
		fe := pgproto3.NewFrontend(c, c)
		msg, err := fe.Receive()
		if err != nil {
			t.Fatal(err)
		}
		npv, ok := msg.(*pgproto3.NegotiateProtocolVersion)
		if !ok || npv.NewestMinorProtocol != pgproto3.ProtocolVersion32 || len(npv.UnrecognizedOptions) != 1 || npv.UnrecognizedOptions[0] != "_pq_.test_option" {
			t.Fatalf("got %#v", msg)
		}
	})
}

// A cancel from the client reaches the backend through the gateway's keys.
func TestCancelRunningQuery(t *testing.T) {
	c := getCreds(t, dev, &redshift.GetClusterCredentialsInput{DbUser: aws.String("erin"), AutoCreate: aws.Bool(true)})
	conn := mustConnect(t, dev, c, "dev")
	if conn.PgConn().PID() == 0 {
		t.Fatal("gateway sent no BackendKeyData")
	}
	done := make(chan error, 1)
	go func() {
		_, err := conn.PgConn().Exec(context.Background(), "SELECT pg_sleep(30)").ReadAll()
		done <- err
	}()
	// The cancel is for a query the backend runs: wait until it does.
	admin, err := pgx.Connect(context.Background(), dev.PG.ConnString(dev.PG.Superuser(), DevDatabase))
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(context.Background())
	waitUntil(t, 20*time.Second, "erin's pg_sleep to run in the backend", func() bool {
		var n int
		err := admin.QueryRow(context.Background(), `SELECT count(*) FROM pg_stat_activity
			WHERE usename = 'erin' AND state = 'active' AND query = 'SELECT pg_sleep(30)'`).Scan(&n)
		if err != nil {
			t.Fatal(err)
		}
		return n > 0
	})
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := conn.PgConn().CancelRequest(ctx); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if sqlState(err) != "57014" {
			t.Fatalf("query ended with %v, want 57014 query_canceled", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("pg_sleep(30) was not cancelled")
	}
	if time.Since(start) > 20*time.Second {
		t.Fatal("cancel took too long")
	}
}

// waitUntil polls cond until it holds, failing the test after timeout: a
// wait on a condition, not on time.
func waitUntil(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(timeout); !cond(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("waited %v for %s", timeout, what)
		}
	}
}
