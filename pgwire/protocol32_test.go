package pgwire

import (
	"encoding/binary"
	"fmt"
	"net"
	"path/filepath"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgproto3"
	"github.com/shiftkey/shiftkey/internal/pgtest"
)

// A protocol 3.2 startup (libpq 18's max_protocol_version=3.2) is answered
// with the NegotiateProtocolVersion PostgreSQL sends: its version field is
// a whole protocol version, major in the high 16 bits (3.0 is 0x30000),
// whatever the docs' "newest minor" suggests. libpq 18 refuses a field
// below 3.0 ("server requested downgrade to pre-3.0 protocol version"),
// so the gateway's 0 failed every libpq 18 client asking for 3.2, where
// pgx, lenient, logged in. Compared here with the real PostgreSQL's answer
// to the same packet.
func TestProtocol32NegotiatedAsPostgreSQLDoes(t *testing.T) {
	srv := pgtest.Server(t)
	_, addr := newGateway(t, nil)
	packet := func(user string, params ...string) []byte {
		b := binary.BigEndian.AppendUint32(nil, 0)
		b = binary.BigEndian.AppendUint32(b, 3<<16|2)
		for _, s := range append([]string{"user", user, "database", "postgres"}, params...) {
			b = append(append(b, s...), 0)
		}
		b = append(b, 0)
		binary.BigEndian.PutUint32(b, uint32(len(b)))
		return b
	}
	negotiate := func(network, address, user string, params ...string) *pgproto3.NegotiateProtocolVersion {
		t.Helper()
		c, err := net.Dial(network, address)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(10 * time.Second))
		if _, err := c.Write(packet(user, params...)); err != nil {
			t.Fatal(err)
		}
		m, err := pgproto3.NewFrontend(c, c).Receive()
		if err != nil {
			t.Fatalf("%s: %v", address, err)
		}
		v, ok := m.(*pgproto3.NegotiateProtocolVersion)
		if !ok {
			t.Fatalf("%s: first answer %#v, want NegotiateProtocolVersion", address, m)
		}
		return v
	}
	sock := filepath.Join(srv.SocketDir(), fmt.Sprintf(".s.PGSQL.%d", srv.Port()))
	for _, params := range [][]string{nil, {"_pq_.test_protocol_negotiation", "x"}} {
		want := negotiate("unix", sock, srv.Superuser(), params...)
		got := negotiate("tcp", addr, "IAM:u", params...)
		if want.NewestMinorProtocol != 3<<16 {
			t.Fatalf("PostgreSQL answered version %#x (this test's premise is 0x30000)", want.NewestMinorProtocol)
		}
		if got.NewestMinorProtocol != want.NewestMinorProtocol || fmt.Sprint(got.UnrecognizedOptions) != fmt.Sprint(want.UnrecognizedOptions) {
			t.Fatalf("%v: gateway negotiated version %#x, options %q; PostgreSQL: %#x, %q", params,
				got.NewestMinorProtocol, got.UnrecognizedOptions, want.NewestMinorProtocol, want.UnrecognizedOptions)
		}
	}
}
