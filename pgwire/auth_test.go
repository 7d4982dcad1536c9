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

// authReader hands pgproto3 whole messages, large or split across reads,
// and keeps what follows the last one it was asked for.
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
		be := pgproto3.NewBackend(a, io.Discard)
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

// A length below 4 reaches pgproto3, which refuses it, instead of making
// the reader hand out nothing forever.
func TestAuthReaderBadLength(t *testing.T) {
	a := &authReader{r: bytes.NewReader([]byte{'p', 0, 0, 0, 2, 'x', 'y'})}
	be := pgproto3.NewBackend(a, io.Discard)
	be.SetAuthType(pgproto3.AuthTypeCleartextPassword)
	if _, err := be.Receive(); err == nil {
		t.Fatal("a message length of 2 was accepted")
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
