package pgwire

import (
	"context"
	"encoding/binary"
	"fmt"
	"net"
	"path/filepath"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgproto3"
	"github.com/shiftkey/shiftkey/internal/pgtest"
)

// startupPacket is a protocol 3.minor startup packet for user.
func startupPacket(minor uint32, user string, params ...string) []byte {
	b := binary.BigEndian.AppendUint32(nil, 0)
	b = binary.BigEndian.AppendUint32(b, 3<<16|minor)
	for _, s := range append([]string{"user", user, "database", "postgres"}, params...) {
		b = append(append(b, s...), 0)
	}
	b = append(b, 0)
	binary.BigEndian.PutUint32(b, uint32(len(b)))
	return b
}

// firstAnswer sends packet to network address and returns the first message.
func firstAnswer(t *testing.T, network, address string, packet []byte) pgproto3.BackendMessage {
	t.Helper()
	c, err := net.Dial(network, address)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.Write(packet); err != nil {
		t.Fatal(err)
	}
	m, err := pgproto3.NewFrontend(c, c).Receive()
	if err != nil {
		t.Fatalf("%s: %v", address, err)
	}
	return m
}

// NegotiateProtocolVersion's version field is a whole protocol version,
// major in the high 16 bits (3.0 is 0x30000), as PostgreSQL sends it,
// whatever the docs' "newest minor" suggests: libpq 18 refuses a field
// below 3.0 ("server requested downgrade to pre-3.0 protocol version").
// The gateway sent 0, which failed every libpq 18 client asking for 3.2
// (pgx, lenient, logged in). It now speaks 3.2 itself: a 3.2 startup is
// not negotiated, a newer one or one with _pq_ options is negotiated to
// 0x30002. PostgreSQL 15 (3.0 only) shows the field's form.
func TestProtocol32NegotiatedAsPostgreSQLDoes(t *testing.T) {
	srv := pgtest.Server(t)
	_, addr := newGateway(t, nil)
	sock := filepath.Join(srv.SocketDir(), fmt.Sprintf(".s.PGSQL.%d", srv.Port()))
	if v, ok := firstAnswer(t, "unix", sock, startupPacket(2, srv.Superuser())).(*pgproto3.NegotiateProtocolVersion); !ok || v.NewestMinorProtocol != 3<<16 {
		t.Fatalf("PostgreSQL 15 answered 3.2 with %#v (this test's premise is NegotiateProtocolVersion 0x30000)", v)
	}
	if m := firstAnswer(t, "tcp", addr, startupPacket(2, "IAM:u")); fmt.Sprintf("%T", m) != "*pgproto3.AuthenticationSASL" {
		t.Fatalf("3.2: first answer %#v, want AuthenticationSASL (3.2 spoken)", m)
	}
	for _, tc := range []struct {
		minor  uint32
		params []string
	}{{9999, nil}, {2, []string{"_pq_.test_protocol_negotiation", "x"}}} {
		v, ok := firstAnswer(t, "tcp", addr, startupPacket(tc.minor, "IAM:u", tc.params...)).(*pgproto3.NegotiateProtocolVersion)
		if !ok || v.NewestMinorProtocol != 3<<16|2 || fmt.Sprint(v.UnrecognizedOptions) != fmt.Sprint(tc.params[:min(1, len(tc.params))]) {
			t.Fatalf("3.%d %v: %#v, want NegotiateProtocolVersion 0x30002 naming the _pq_ options", tc.minor, tc.params, v)
		}
	}
}

// A client of protocol 3.2 (pgx's max_protocol_version=3.2, as libpq 18's)
// gets a 256-bit cancel secret, as from PostgreSQL 18, and cancels with
// it, directly and through another replica's gateway; a 3.0 client gets
// PostgreSQL's 32 bits. The backend (PostgreSQL 15) speaks 3.0: the keys
// are the gateway's own.
func TestProtocol32LongCancelKeys(t *testing.T) {
	holder, holderAddr := newGateway(t, func(g *Gateway) {
		g.Peers = &Peers{List: func(context.Context) ([]string, error) { return nil, nil }}
	})
	_, otherAddr := newGateway(t, func(g *Gateway) {
		g.Peers = &Peers{List: func(context.Context) ([]string, error) { return []string{holderAddr}, nil }}
	})
	admin := superuser(t, holder.DefaultDB)
	host, port, _ := net.SplitHostPort(holderAddr)
	connect := func(opts string) *pgx.Conn {
		c, err := pgx.Connect(context.Background(), fmt.Sprintf("host=%s port=%s user=IAM:u password=pw sslmode=disable connect_timeout=30 %s", host, port, opts))
		if err != nil {
			t.Fatalf("%s: %v", opts, err)
		}
		t.Cleanup(func() { c.Close(context.Background()) })
		return c
	}
	short := connect("")
	if n := len(short.PgConn().SecretKey()); n != 4 {
		t.Fatalf("a 3.0 client's cancel secret: %d bytes, want 4", n)
	}
	// A 3.0 key padded with zeros to a 3.2 key's length, or one byte
	// longer than any the gateway gives, names no session either.
	for _, n := range []int{32, 33} {
		padded := make([]byte, n)
		copy(padded, short.PgConn().SecretKey())
		if err := sleepWhileCancelling(t, short, admin, func() { sendCancel(t, holderAddr, "", short.PgConn().PID(), padded) }); err != nil {
			t.Fatalf("a 3.0 key padded to %d bytes cancelled: %v", n, err)
		}
	}
	for _, via := range []string{holderAddr, otherAddr} {
		// A session each: PostgreSQL may signal a cancelled backend twice.
		c := connect("max_protocol_version=3.2")
		pid, secret := c.PgConn().PID(), c.PgConn().SecretKey()
		if len(secret) != 32 {
			t.Fatalf("a 3.2 client's cancel secret: %d bytes, want 32", len(secret))
		}
		if err := sleepWhileCancelling(t, c, admin, func() { sendCancel(t, via, "", pid, secret) }); code(err) != "57014" {
			t.Fatalf("a 3.2 cancel sent to %s: %v, want 57014", via, err)
		}
		// Its first 4 bytes alone name no session.
		c = connect("max_protocol_version=3.2")
		pid, secret = c.PgConn().PID(), c.PgConn().SecretKey()
		if err := sleepWhileCancelling(t, c, admin, func() { sendCancel(t, via, "", pid, secret[:4]) }); err != nil {
			t.Fatalf("a 3.2 key cut to 4 bytes, sent to %s, cancelled: %v", via, err)
		}
	}
}
