package pgwire

import (
	"context"
	"encoding/binary"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgproto3"
	"github.com/shiftkey/shiftkey"
	"github.com/shiftkey/shiftkey/scram"
)

// memCreds is a CredentialStore with one live credential, for driving the
// startup and authentication state machine without a database.
type memCreds struct{ cred *shiftkey.Credential }

func (m memCreds) LoginSalt(context.Context, string, string, string, shiftkey.LoginSalt) (shiftkey.LoginSalt, error) {
	return shiftkey.LoginSalt{Salt: []byte("0123456789abcdef"), Iterations: 4096}, nil
}
func (m memCreds) CreateCredential(context.Context, *shiftkey.Credential) error { return nil }
func (m memCreds) LiveCredentials(_ context.Context, _, login string, _ time.Time) ([]*shiftkey.Credential, shiftkey.LoginSalt, bool, error) {
	if login != m.cred.LoginName {
		return nil, shiftkey.LoginSalt{}, false, nil
	}
	return []*shiftkey.Credential{m.cred}, shiftkey.LoginSalt{Salt: []byte("0123456789abcdef"), Iterations: 4096}, true, nil
}
func (m memCreds) MissedCredentials(context.Context, string, string, []*shiftkey.Credential, time.Time) ([]*shiftkey.Credential, error) {
	return nil, nil
}
func (m memCreds) DeleteCredentials(context.Context, string, string) error          { return nil }
func (m memCreds) DeleteExpiredCredentials(context.Context, time.Time) (int, error) { return 0, nil }

var fuzzKeys = scram.NewKeys("pw", []byte("0123456789abcdef"), 4096)

// runSession feeds input to one session and returns what it answered.
func runSession(t testing.TB, input []byte) []byte {
	g := &Gateway{Cluster: "c", Credentials: memCreds{&shiftkey.Credential{ID: "x", LoginName: "IAM:u", DBUser: "u",
		StoredKey: fuzzKeys.StoredKey[:], ServerKey: fuzzKeys.ServerKey[:]}}, AuthTimeout: 2 * time.Second, Secret: []byte("s")}
	g.sessions, g.cancels = map[*session]struct{}{}, map[cancelKey]*session{}
	pipe, client := net.Pipe()
	server := &readSignal{Conn: pipe, input: len(input), waiting: make(chan struct{})}
	s := &session{g: g, t: g, raw: server, client: server}
	done := make(chan struct{})
	go func() { defer close(done); s.run() }()
	out := make(chan []byte)
	go func() { b, _ := io.ReadAll(client); out <- b }()
	client.SetWriteDeadline(time.Now().Add(2 * time.Second))
	client.Write(input) // returns once the session has read it all (or stopped reading)
	// Once the session has answered all the input and waits for more (or
	// has ended), hang up as a client would.
	select {
	case <-server.waiting:
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("the session neither read on nor ended")
	}
	client.Close()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("session did not end after the client hung up")
	}
	return <-out
}

// readSignal closes waiting when a Read begins after the session has read
// all input bytes: it has answered them and waits for more.
type readSignal struct {
	net.Conn
	input    int
	consumed int // read so far (by the session's goroutine only)
	waiting  chan struct{}
	once     sync.Once
}

func (c *readSignal) Read(p []byte) (int, error) {
	if c.consumed >= c.input {
		c.once.Do(func() { close(c.waiting) })
	}
	n, err := c.Conn.Read(p)
	c.consumed += n
	return n, err
}

func startup(params map[string]string) []byte {
	b, _ := (&pgproto3.StartupMessage{ProtocolVersion: pgproto3.ProtocolVersionNumber, Parameters: params}).Encode(nil)
	return b
}

// FuzzStartup throws arbitrary bytes at the pre-authentication state
// machine: it must never panic, hang past its deadline, or authenticate.
func FuzzStartup(f *testing.F) {
	ssl := make([]byte, 8)
	binary.BigEndian.PutUint32(ssl, 8)
	binary.BigEndian.PutUint32(ssl[4:], 80877103)
	f.Add(startup(map[string]string{"user": "IAM:u", "database": "dev"}))
	f.Add(append(ssl, startup(map[string]string{"user": "IAM:u"})...))
	f.Add(append(startup(map[string]string{"user": "IAM:u"}), []byte("p\x00\x00\x00\x20SCRAM-SHA-256\x00\x00\x00\x00\x0an,,n=,r=abc")...))
	f.Add([]byte{0, 0, 0, 16, 4, 210, 22, 46, 0, 0, 0, 1, 0, 0, 0, 2})
	f.Add([]byte{0x16, 3, 1, 0, 5})
	f.Fuzz(func(t *testing.T, input []byte) {
		out := runSession(t, input)
		// Reaching AuthenticationOk would need the password's proof.
		fe := pgproto3.NewFrontend(bytesReader(out), io.Discard)
		for {
			msg, err := fe.Receive()
			if err != nil {
				return
			}
			if _, ok := msg.(*pgproto3.AuthenticationOk); ok {
				t.Fatalf("authenticated from fuzz input %q", input)
			}
		}
	})
}

type byteReader struct{ b []byte }

func (r *byteReader) Read(p []byte) (int, error) {
	if len(r.b) == 0 {
		return 0, io.EOF
	}
	n := copy(p, r.b)
	r.b = r.b[n:]
	return n, nil
}

func bytesReader(b []byte) io.Reader { return &byteReader{b} }

// The seeds end the way the protocol says.
func TestStartupAnswers(t *testing.T) {
	out := runSession(t, startup(map[string]string{"user": "IAM:u"}))
	fe := pgproto3.NewFrontend(bytesReader(out), io.Discard)
	msg, err := fe.Receive()
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := msg.(*pgproto3.AuthenticationSASL); !ok {
		t.Fatalf("got %T", msg)
	}
}
