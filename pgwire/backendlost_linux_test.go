package pgwire

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgproto3"
	"golang.org/x/sys/unix"
)

// A backend that stops without a word (its process killed, the network
// cut, a TLS record that does not open) leaves the client an error that
// says so, SQLSTATE 08006, instead of a connection that just closes; a
// backend that says why itself (its FATAL) is not talked over. On every
// relay that carries a TLS backend: the goroutine relay (relay.Framed with
// backend reuse, relay.Pipe without), and both engines' loops with TLS on
// both sides.
func TestBackendLostTellsTheClient(t *testing.T) {
	tlsBackendRelays(t, func(t *testing.T, relay func(*Gateway)) {
		for _, pool := range []int{0, 2} {
			t.Run(fmt.Sprintf("pool_size=%d", pool), func(t *testing.T) { testBackendLost(t, relay, pool) })
		}
	})
}

func testBackendLost(t *testing.T, relay func(*Gateway), pool int) {
	_, addr := newGateway(t, func(g *Gateway) { relay(g); g.PoolSize = pool })
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	c := mustLogin(t, addr)
	var port int
	if err := c.QueryRow(ctx, "SELECT inet_client_port()").Scan(&port); err != nil {
		t.Fatal(err)
	}
	cutSocket(t, port)
	err := c.PgConn().WaitForNotification(ctx)
	if code(err) != codeConnectionFailure {
		t.Fatalf("after the backend connection was cut the client got %v, want SQLSTATE %s", err, codeConnectionFailure)
	}

	c = mustLogin(t, addr)
	if _, err := c.Exec(ctx, "SELECT pg_terminate_backend(pg_backend_pid())"); code(err) != "57P01" {
		t.Fatalf("a backend terminated by PostgreSQL: %v, want its own FATAL (57P01)", err)
	}
}

// cutSocket shuts down, in this process, the socket whose local TCP port is
// port (the gateway's end of a backend connection): both directions end,
// as when the peer vanishes without closing the session.
func cutSocket(t *testing.T, port int) {
	t.Helper()
	fds, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range fds {
		fd, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		sa, err := unix.Getsockname(fd)
		if in, ok := sa.(*unix.SockaddrInet4); err == nil && ok && in.Port == port {
			if err := unix.Shutdown(fd, unix.SHUT_RDWR); err != nil {
				t.Fatal(err)
			}
			return
		}
	}
	t.Fatalf("no socket of this process has local port %d", port)
}

// relayState's farewell: backendLost when the backend's stream stopped
// between messages without an ErrorResponse of its own, and nothing when
// it ended on one, stopped inside a message, or the client had left.
func TestRelayStateFarewell(t *testing.T) {
	enc := encodeBackend
	idle := enc(&pgproto3.CommandComplete{CommandTag: []byte("SELECT 1")}, &pgproto3.ReadyForQuery{TxStatus: 'I'})
	fatal := enc(&pgproto3.ErrorResponse{Severity: "FATAL", SeverityUnlocalized: "FATAL", Code: "57P01", Message: "terminating connection due to administrator command"})
	terminate, _ := (&pgproto3.Terminate{}).Encode(nil)
	for _, tc := range []struct {
		name      string
		backend   []byte
		terminate bool
		want      bool
	}{
		{"idle", idle, false, true},
		{"nothing sent yet", nil, false, true},
		{"after its own FATAL", append(append([]byte{}, idle...), fatal...), false, false},
		{"inside a message", idle[:len(idle)-2], false, false},
		{"after the client's Terminate", idle, true, false},
	} {
		st := &relayState{txStatus: 'I', params: map[string]string{}}
		st.FromBackend(tc.backend)
		if tc.terminate {
			st.FromClient(terminate)
		}
		bye := st.BackendEnded()
		if !tc.want {
			if bye != nil {
				t.Errorf("%s: farewell %q, want none", tc.name, bye)
			}
			continue
		}
		if len(bye) < 5 || bye[0] != 'E' {
			t.Fatalf("%s: farewell %q, want an ErrorResponse", tc.name, bye)
		}
		var e pgproto3.ErrorResponse
		if err := e.Decode(bye[5:]); err != nil || e.Severity != "FATAL" || e.Code != codeConnectionFailure {
			t.Errorf("%s: farewell %+v (%v), want FATAL %s", tc.name, e, err, codeConnectionFailure)
		}
		if !st.dirty {
			t.Errorf("%s: the backend is not marked dirty", tc.name)
		}
	}
}
