package pgwire

import (
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"net/netip"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgproto3"
)

func proxyV2(t *testing.T, client netip.AddrPort, local bool) []byte {
	t.Helper()
	b := append([]byte(nil), proxySig2...)
	cmd := byte(0x21)
	if local {
		cmd = 0x20
	}
	dst := netip.MustParseAddrPort("127.0.0.1:5439")
	if client.Addr().Is4() {
		b = append(b, cmd, 0x11, 0, 12)
		a, d := client.Addr().As4(), dst.Addr().As4()
		b = append(append(b, a[:]...), d[:]...)
	} else {
		b = append(b, cmd, 0x21, 0, 36)
		a, d := client.Addr().As16(), dst.Addr().As16()
		b = append(append(b, a[:]...), d[:]...)
	}
	b = binary.BigEndian.AppendUint16(b, client.Port())
	return binary.BigEndian.AppendUint16(b, dst.Port())
}

func TestReadProxyHeader(t *testing.T) {
	c4, c6 := netip.MustParseAddrPort("203.0.113.7:40000"), netip.MustParseAddrPort("[2001:db8::7]:40001")
	for _, tc := range []struct {
		name   string
		in     []byte
		want   netip.AddrPort
		ok     bool
		broken bool
	}{
		{"v1 TCP4", []byte("PROXY TCP4 203.0.113.7 127.0.0.1 40000 5439\r\n"), c4, true, false},
		{"v1 TCP6", []byte("PROXY TCP6 2001:db8::7 ::1 40001 5439\r\n"), c6, true, false},
		{"v1 TCP6 of an IPv4-mapped client", []byte("PROXY TCP6 ::ffff:203.0.113.7 ::1 40000 5439\r\n"), c4, true, false},
		{"v1 UNKNOWN (the proxy's own)", []byte("PROXY UNKNOWN\r\n"), netip.AddrPort{}, false, false},
		{"v2 IPv4", proxyV2(t, c4, false), c4, true, false},
		{"v2 IPv6", proxyV2(t, c6, false), c6, true, false},
		{"v2 LOCAL (a health check)", proxyV2(t, c4, true), netip.AddrPort{}, false, false},
		{"no header", []byte("\x00\x00\x00\x08\x04\xd2\x16\x2fmore bytes"), netip.AddrPort{}, false, true},
		{"v1 TCP4 with an IPv6 source", []byte("PROXY TCP4 2001:db8::7 127.0.0.1 1 2\r\n"), netip.AddrPort{}, false, true},
		{"v1 without its CRLF", append([]byte("PROXY TCP4 203.0.113.7 127.0.0.1 40000 5439"), make([]byte, 100)...), netip.AddrPort{}, false, true},
		{"v2 IPv4 with TLVs after the addresses", v2raw(0x21, 0x11, append(v4addrs, 0x04, 0x00, 0x03, 'a', 'b', 'c')), c4, true, false},
		{"v2 PROXY of family UNSPEC (the proxy's own)", v2raw(0x21, 0x00, nil), netip.AddrPort{}, false, false},
		{"v2 PROXY of a unix socket (the proxy's own)", v2raw(0x21, 0x31, make([]byte, 216)), netip.AddrPort{}, false, false},
		{"v2 LOCAL with a bogus address block", v2raw(0x20, 0x11, []byte{1, 2}), netip.AddrPort{}, false, false},
		{"v2 IPv4 truncated", v2raw(0x21, 0x11, v4addrs[:8]), netip.AddrPort{}, false, true},
		{"v2 IPv6 truncated", v2raw(0x21, 0x21, make([]byte, 20)), netip.AddrPort{}, false, true},
		{"v2 length past the packet", v2raw(0x21, 0x11, v4addrs)[:20], netip.AddrPort{}, false, true},
		{"v2 length over the cap", append(append([]byte(nil), proxySig2...), 0x21, 0x11, 0x10, 0x01), netip.AddrPort{}, false, true},
		{"v2 command 2", v2raw(0x22, 0x11, v4addrs), netip.AddrPort{}, false, true},
		{"v1 port out of range", []byte("PROXY TCP4 203.0.113.7 127.0.0.1 65536 5439\r\n"), netip.AddrPort{}, false, true},
		{"v1 extra field", []byte("PROXY TCP4 203.0.113.7 127.0.0.1 40000 5439 x\r\n"), netip.AddrPort{}, false, true},
		{"v1 LF only", append([]byte("PROXY TCP4 203.0.113.7 127.0.0.1 40000 5439\n"), make([]byte, 100)...), netip.AddrPort{}, false, true},
		{"v2 of another version", append(append([]byte(nil), proxySig2...), 0x31, 0x11, 0, 0), netip.AddrPort{}, false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			const after = "startup"
			in := &authReader{r: &chunks{parts: [][]byte{tc.in, []byte(after)}}}
			got, ok, err := readProxyHeader(in)
			if tc.broken {
				if err == nil {
					t.Fatalf("accepted: %v %v", got, ok)
				}
				return
			}
			if err != nil || ok != tc.ok || got != tc.want {
				t.Fatalf("got %v %v %v, want %v %v", got, ok, err, tc.want, tc.ok)
			}
			if err := in.fill(len(after)); err != nil || string(in.take(len(after))) != after {
				t.Fatal("the bytes after the header were not left for the startup")
			}
		})
	}
}

// chunks reads its parts one per Read.
type chunks struct{ parts [][]byte }

func (c *chunks) Read(p []byte) (int, error) {
	if len(c.parts) == 0 {
		return 0, io.EOF
	}
	n := copy(p, c.parts[0])
	if c.parts[0] = c.parts[0][n:]; len(c.parts[0]) == 0 {
		c.parts = c.parts[1:]
	}
	return n, nil
}

// Found in a review of the gateway's wire handling: behind the TCP load
// balancer deployment.md recommends, every client comes from its address,
// so 64 silent connections of one client made every other client's login
// fail (53300). With the balancer's address in ProxyFrom, the gateway
// counts the client each PROXY header names: one client's flood leaves
// another's login alone, and a connection from the balancer without a
// header is refused.
func TestProxyProtocolCountsTheClientBehindTheBalancer(t *testing.T) {
	g, addr := newGateway(t, func(g *Gateway) {
		g.ProxyFrom = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}
		g.MaxAuthPerSource = 2
	})
	through := func(client string) (net.Conn, error) {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			return nil, err
		}
		_, err = c.Write(proxyV2(t, netip.MustParseAddrPort(client), false))
		return c, err
	}
	for range 2 { // client A logs in slowly, at its cap
		c, err := through("198.51.100.1:1000")
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
	}
	// Both counted before the next login is tried (on a loaded machine it
	// could otherwise take the place of the second).
	if !waitUntil(5*time.Second, func() bool {
		g.mu.Lock()
		defer g.mu.Unlock()
		u := g.sources["198.51.100.1"]
		return u != nil && u.auths == 2
	}) {
		t.Fatal("client A's two silent connections were not both counted")
	}
	login := func(client string) error {
		cfg, err := pgx.ParseConfig("postgres://IAM%3Au:pw@" + addr + "/" + g.DefaultDB + "?sslmode=disable&connect_timeout=10")
		if err != nil {
			t.Fatal(err)
		}
		cfg.DialFunc = func(context.Context, string, string) (net.Conn, error) { return through(client) }
		c, err := pgx.ConnectConfig(context.Background(), cfg)
		if err == nil {
			c.Close(context.Background())
		}
		return err
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		err := login("198.51.100.1:1001")
		if code(err) == codeTooManyConnections {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("client A's third login: %v, want 53300 (its two silent ones are at its cap)", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := login("198.51.100.2:2000"); err != nil {
		t.Fatalf("client B behind the same balancer: %v", err)
	}
	// From the balancer's address, a connection without a header is
	// refused: the startup packet is not a PROXY header.
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	startup, _ := (&pgproto3.StartupMessage{ProtocolVersion: pgproto3.ProtocolVersionNumber, Parameters: map[string]string{"user": "IAM:u"}}).Encode(nil)
	c.Write(startup)
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if n, err := c.Read(make([]byte, 1)); err == nil {
		t.Fatalf("a connection from the balancer without a header was answered (%d bytes)", n)
	}
}

// A client that is not a listed balancer cannot name another address with
// a PROXY header of its own: the header is not read as one (its bytes are
// an invalid startup packet), and nothing is counted for the address it
// names.
func TestProxyHeaderFromAStrangerIsNotBelieved(t *testing.T) {
	g, addr := newGateway(t, func(g *Gateway) {
		g.ProxyFrom = []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")} // not this client
	})
	spoofed := netip.MustParseAddrPort("203.0.113.9:4000")
	for name, header := range map[string][]byte{
		"v1": []byte("PROXY TCP4 203.0.113.9 127.0.0.1 4000 5439\r\n"),
		"v2": proxyV2(t, spoofed, false),
	} {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		c.SetDeadline(time.Now().Add(5 * time.Second))
		c.Write(append(header, startup(map[string]string{"user": "IAM:u"})...))
		m, err := pgproto3.NewFrontend(c, c).Receive()
		if e, ok := m.(*pgproto3.ErrorResponse); err != nil || !ok {
			t.Fatalf("%s header from a stranger: %#v %v, want an error", name, m, err)
		} else if e.Code != codeProtocolViolation && e.Code != codeFeatureNotSupported {
			t.Fatalf("%s header from a stranger: %s %s", name, e.Code, e.Message)
		}
		c.Close()
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if _, ok := g.sources[spoofed.Addr().String()]; ok {
		t.Fatal("the address a stranger's header named was counted")
	}
}

// A connection from a balancer's address that holds its PROXY header back
// is counted against no address until the header comes, so it is closed
// after proxyHeaderTimeout, not after the login timeout: else connections
// that never send one could fill the gateway for the whole login timeout.
func TestProxyHeaderHeldBackIsCut(t *testing.T) {
	g, addr := newGateway(t, func(g *Gateway) {
		g.ProxyFrom = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}
		g.AuthTimeout = time.Minute
	})
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.Write([]byte("PROX")) // a header begun, never finished
	start := time.Now()
	c.SetReadDeadline(start.Add(proxyHeaderTimeout + 10*time.Second))
	if _, err := c.Read(make([]byte, 1)); err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("a connection without its header after %v: %v, want it closed by the gateway", time.Since(start), err)
	}
	if took := time.Since(start); took > proxyHeaderTimeout+5*time.Second {
		t.Fatalf("closed after %v, want about %v (login timeout %v)", took, proxyHeaderTimeout, g.AuthTimeout)
	}
}

// A client behind the balancer that sends a PROXY header of its own, to
// be counted as someone else, gets a protocol error: only the first
// header, the balancer's, is read as one.
func TestClientsOwnProxyHeaderIsRefused(t *testing.T) {
	g, addr := newGateway(t, func(g *Gateway) { g.ProxyFrom = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")} })
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	c.Write(proxyV2(t, netip.MustParseAddrPort("198.51.100.1:1000"), false))
	c.Write([]byte("PROXY TCP4 203.0.113.9 127.0.0.1 1 5439\r\n"))
	m, err := pgproto3.NewFrontend(c, c).Receive()
	if e, ok := m.(*pgproto3.ErrorResponse); err != nil || !ok || e.Code != codeProtocolViolation {
		t.Fatalf("a second PROXY header: %#v %v, want 08P01", m, err)
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.sources["203.0.113.9"] != nil {
		t.Fatal("the client's own header named whom it is counted as")
	}
}

// Found in the last stop's own review: the per-address caps counted an
// IPv6 client by its address, so a host holding a /64 (one subnet, 2^64
// addresses) had no cap on connections or logins in progress. They now
// count a /64 as one source, as the throttle and the cancel budget do.
func TestConnectionCapsCountIPv6ByItsNetwork(t *testing.T) {
	g, addr := newGateway(t, func(g *Gateway) {
		g.ProxyFrom = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}
		g.MaxAuthPerSource = 2
	})
	through := func(client string) net.Conn {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		if _, err := c.Write(proxyV2(t, netip.MustParseAddrPort(client), false)); err != nil {
			t.Fatal(err)
		}
		return c
	}
	through("[2001:db8:0:1::1]:1000")
	through("[2001:db8:0:1::2]:1000")
	if !waitUntil(5*time.Second, func() bool {
		g.mu.Lock()
		defer g.mu.Unlock()
		n := 0
		for _, u := range g.sources {
			n += u.auths
		}
		return n == 2
	}) {
		t.Fatal("the two silent connections were not both counted")
	}
	// A third address of the same /64 is over the cap of logins in
	// progress; another /64 is not.
	refused := func(c net.Conn) bool {
		c.Write(startupBytes(t))
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		var b [1]byte
		n, _ := io.ReadFull(c, b[:])
		return n == 1 && b[0] == 'E'
	}
	if !refused(through("[2001:db8:0:1:ffff::3]:1000")) {
		t.Fatal("a third address of the same /64 was not refused at the cap of 2 logins in progress")
	}
	other := through("[2001:db8:0:2::1]:1000")
	other.Write(startupBytes(t))
	other.SetReadDeadline(time.Now().Add(5 * time.Second))
	var b [1]byte
	if _, err := io.ReadFull(other, b[:]); err != nil || b[0] != 'R' {
		t.Fatalf("another /64 got %q, %v; want an authentication request", b[0], err)
	}
	g.mu.Lock()
	_, counted := g.sources["2001:db8:0:1::/64"]
	g.mu.Unlock()
	if !counted {
		t.Fatal("the /64 is not counted as one source")
	}
}

func startupBytes(t *testing.T) []byte {
	t.Helper()
	b, err := (&pgproto3.StartupMessage{ProtocolVersion: pgproto3.ProtocolVersionNumber, Parameters: map[string]string{"user": "IAM:u", "database": "dev"}}).Encode(nil)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// v4addrs is a version 2 IPv4 address block for 203.0.113.7:40000.
var v4addrs = []byte{203, 0, 113, 7, 127, 0, 0, 1, 0x9c, 0x40, 0x15, 0x3f}

// v2raw is a version 2 header of verCmd and fam around addrs.
func v2raw(verCmd, fam byte, addrs []byte) []byte {
	b := append(append([]byte(nil), proxySig2...), verCmd, fam, byte(len(addrs)>>8), byte(len(addrs)))
	return append(b, addrs...)
}

// A header that arrives a byte per segment is read whole, and the startup
// packet behind it is left alone.
func TestReadProxyHeaderByteByByte(t *testing.T) {
	c6 := netip.MustParseAddrPort("[2001:db8::7]:40001")
	for _, h := range [][]byte{proxyV2(t, c6, false), []byte("PROXY TCP6 2001:db8::7 ::1 40001 5439\r\n")} {
		var parts [][]byte
		for _, b := range append(append([]byte(nil), h...), "startup"...) {
			parts = append(parts, []byte{b})
		}
		in := &authReader{r: &chunks{parts: parts}}
		got, ok, err := readProxyHeader(in)
		if err != nil || !ok || got != c6 {
			t.Fatalf("%q: got %v %v %v", h, got, ok, err)
		}
		if err := in.fill(7); err != nil || string(in.take(7)) != "startup" {
			t.Fatal("the bytes after the header were not left for the startup")
		}
	}
}
