package pgwire

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"runtime"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"
)

// authIO receives whole messages, large or split across reads, and its
// authReader keeps what follows the last one it was asked for.
func TestAuthReaderKeepsWhatFollows(t *testing.T) {
	long := strings.Repeat("x", 5000) // longer than the reader's buffer
	var in []byte
	in, _ = (&pgproto3.PasswordMessage{Password: "short"}).Encode(in)
	in, _ = (&pgproto3.PasswordMessage{Password: long}).Encode(in)
	after, _ := (&pgproto3.Query{String: "SELECT 1"}).Encode(nil)
	after, _ = (&pgproto3.Terminate{}).Encode(after)
	in = append(in, after...)
	for name, r := range map[string]io.Reader{
		"whole":     bytes.NewReader(in),
		"one byte":  iotest.OneByteReader(bytes.NewReader(in)),
		"half read": iotest.HalfReader(bytes.NewReader(in)),
	} {
		a := &authReader{r: r}
		be := newAuthIO(a, io.Discard)
		be.SetAuthType(pgproto3.AuthTypeCleartextPassword)
		for _, want := range []string{"short", long} {
			msg, err := be.Receive()
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			if pm, ok := msg.(*pgproto3.PasswordMessage); !ok || pm.Password != want {
				t.Fatalf("%s: got %T, want the password of %d bytes", name, msg, len(want))
			}
		}
		// What a one-shot read brought along is kept; what was still in
		// the socket stays there.
		rest := a.rest()
		left, _ := io.ReadAll(r)
		if got := append(rest, left...); !bytes.Equal(got, after) {
			t.Fatalf("%s: the bytes after the last message: %q, want %q", name, got, after)
		}
		if a.store != nil {
			t.Errorf("%s: the buffer is kept after rest", name)
		}
	}
}

// A length below 4 is refused, instead of making the reader hand out
// nothing forever; so is a body over the limit, before it is read; the end
// of the stream within a message is io.ErrUnexpectedEOF.
func TestAuthReaderBadLength(t *testing.T) {
	for name, tc := range map[string]struct {
		in   []byte
		want string
	}{
		"length 2":   {[]byte{'p', 0, 0, 0, 2, 'x', 'y'}, "invalid message length: 2"},
		"over limit": {[]byte{'p', 0, 1, 0, 5, 'x'}, "expected at most 65536"},
		"cut short":  {[]byte{'p', 0, 0, 0, 9, 'x'}, io.ErrUnexpectedEOF.Error()},
		"empty":      {nil, io.ErrUnexpectedEOF.Error()},
		"bad type":   {[]byte{'Z', 0, 0, 0, 4}, "unknown message type: Z"},
	} {
		be := newAuthIO(&authReader{r: bytes.NewReader(tc.in)}, io.Discard)
		be.SetAuthType(pgproto3.AuthTypeCleartextPassword)
		if _, err := be.Receive(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want an error saying %q", name, err, tc.want)
		}
	}
}

// A password message decodes by the authentication type last set, as
// pgproto3.Backend decodes it; other types as theirs.
func TestAuthIOReceiveTypes(t *testing.T) {
	var in []byte
	in, _ = (&pgproto3.SASLInitialResponse{AuthMechanism: "SCRAM-SHA-256", Data: []byte("n,,n=,r=x")}).Encode(in)
	in, _ = (&pgproto3.SASLResponse{Data: []byte("c=biws")}).Encode(in)
	in, _ = (&pgproto3.Query{String: "SELECT 1"}).Encode(in)
	be := newAuthIO(&authReader{r: bytes.NewReader(in)}, io.Discard)
	be.SetAuthType(pgproto3.AuthTypeSASL)
	if m, err := be.Receive(); err != nil || m.(*pgproto3.SASLInitialResponse).AuthMechanism != "SCRAM-SHA-256" {
		t.Fatalf("first: %#v, %v", m, err)
	}
	be.SetAuthType(pgproto3.AuthTypeSASLContinue)
	if m, err := be.Receive(); err != nil || string(m.(*pgproto3.SASLResponse).Data) != "c=biws" {
		t.Fatalf("final: %#v, %v", m, err)
	}
	if m, err := be.Receive(); err != nil || m.(*pgproto3.Query).String != "SELECT 1" {
		t.Fatalf("query: %#v, %v", m, err)
	}
	if err := be.SetAuthType(99); err == nil {
		t.Fatal("auth type 99 accepted")
	}
}

// A SCRAM login whose client holds the newest of its name's 10,000 live
// credentials allocates no more than one of a name with a single
// credential: nothing is copied or computed per older candidate. (Before,
// each login copied every candidate's keys: 640 KB more per login.)
func TestLoginCostIndependentOfOlderCredentials(t *testing.T) {
	perLogin := func(n int) uint64 {
		_, addr := newGateway(t, func(g *Gateway) {
			g.PoolSize = 4
			g.Credentials = manyCreds{oneIteration{memCreds{g.Credentials.(memCreds).cred}}, benchCandidates(g.Credentials.(memCreds).cred, n)}
		})
		host, port, _ := net.SplitHostPort(addr)
		cfg, err := pgconn.ParseConfig(fmt.Sprintf("host=%s port=%s user=IAM:u password=pw sslmode=disable", host, port))
		if err != nil {
			t.Fatal(err)
		}
		login := func() {
			c, err := pgconn.ConnectConfig(context.Background(), cfg)
			if err != nil {
				t.Fatal(err)
			}
			c.Close(context.Background())
		}
		login() // the pooled backend and everything else made once
		const logins = 20
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		for range logins {
			login()
		}
		runtime.ReadMemStats(&after)
		return (after.TotalAlloc - before.TotalAlloc) / logins
	}
	one, many := perLogin(1), perLogin(10000)
	t.Logf("bytes allocated per login: %d with 1 live credential, %d with 10,000", one, many)
	if many > one+64<<10 {
		t.Fatalf("a login with 10,000 live credentials allocated %d bytes, one with 1 credential %d: the login does work per older credential", many, one)
	}
}
