package pgwire

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"time"
)

// A TCP load balancer in front of the gateways (deployment.md) makes every
// client come from its address, so per-address limits, the failed-login
// throttle and the cancel budget would be shared by all clients behind it:
// one flood locks everyone out. With the PROXY protocol (HAProxy's
// send-proxy-v2, an NLB's proxy protocol v2) the balancer first sends a
// header naming the client; from the addresses in Gateway.ProxyFrom the
// gateway requires it and counts the client it names.

// proxySig2 starts a PROXY protocol version 2 header.
var proxySig2 = []byte("\r\n\r\n\x00\r\nQUIT\n")

// proxyHeaderTimeout bounds the wait for a PROXY header (a variable for
// tests only).
var proxyHeaderTimeout = 2 * time.Second

const (
	maxProxyV1 = 107  // the longest version 1 line, CRLF included
	maxProxyV2 = 4096 // a version 2 header's address block and TLVs, at most (HAProxy sends far less)
)

// fromProxy reports whether a connection from addr comes through a
// trusted proxy, which must send a PROXY header.
func (g *Gateway) fromProxy(addr net.Addr) bool {
	if len(g.ProxyFrom) == 0 {
		return false
	}
	ta, ok := addr.(*net.TCPAddr)
	if !ok {
		return false
	}
	ip, ok := netip.AddrFromSlice(ta.IP)
	if !ok {
		return false
	}
	ip = ip.Unmap()
	for _, p := range g.ProxyFrom {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

// proxyHeader reads the header of a connection from a proxy and counts the
// session against the client it names (the proxy's own address for its
// own connections), or refuses it as accept refuses a direct one.
func (s *session) proxyHeader() bool {
	// Until its header names a client, a connection is counted against no
	// address (the balancer's own would lock every client out), so it gets
	// a short while to send it: a balancer sends it with the connection,
	// and connections that hold it back go long before the login timeout.
	s.client.SetDeadline(time.Now().Add(min(proxyHeaderTimeout, s.g.authTimeout())))
	client, ok, err := readProxyHeader(s.in)
	s.client.SetDeadline(s.begin.Add(s.g.authTimeout()))
	if err != nil {
		// A balancer's TCP health check connects and closes without a byte:
		// not worth a warning each time. Anything else is a misconfigured
		// balancer (no send-proxy) or a stranger, which the log says.
		if len(s.in.buf) == 0 && errors.Is(err, io.ErrUnexpectedEOF) {
			s.log.Debug("connection from a proxy closed before its PROXY header")
		} else {
			s.log.WarnContext(context.Background(), "PROXY protocol header refused", "error", err)
		}
		return false
	}
	source := sourceOf(s.raw.RemoteAddr())
	if ok {
		source, s.remote = client.Addr().String(), client.String()
		s.log = sessionLog{base: s.g.logger(), attrs: []any{"conn_id", s.id, "remote", s.remote, "proxy", s.raw.RemoteAddr().String()}}
	}
	g := s.g
	g.mu.Lock()
	s.source = source
	over := g.admitSourceLocked(s)
	if over != "" {
		s.source = ""
	}
	g.mu.Unlock()
	if over != "" {
		msg := refusalMessages[over]
		g.logger().Debug("connection refused", "remote", s.remote, "reason", msg)
		g.observeRefused(over)
		s.sendError(codeTooManyConnections, msg)
		return false
	}
	return true
}

// readProxyHeader reads the PROXY protocol header (version 1 or 2) at the
// start of in and returns the client it names. ok is false for a
// connection of the proxy's own (version 2 LOCAL, version 1 UNKNOWN, or an
// address family other than IPv4 and IPv6: a health check), which counts
// as the proxy's.
func readProxyHeader(in *authReader) (client netip.AddrPort, ok bool, err error) {
	// Every header is at least 15 bytes ("PROXY UNKNOWN\r\n"), so waiting
	// for 12 never waits for bytes the proxy holds back.
	if err := in.fill(12); err != nil {
		return client, false, err
	}
	if bytes.Equal(in.buf[:12], proxySig2) {
		return readProxyV2(in)
	}
	// Another replica's gateway forwarding a cancel request connects
	// directly, without a header, though its address may be among the
	// proxies': its packet authenticates itself (peerCancel).
	if peerCancelLen(int(binary.BigEndian.Uint32(in.buf[:4]))) && binary.BigEndian.Uint32(in.buf[4:8]) == codePeerCancel {
		return client, false, nil
	}
	if !bytes.HasPrefix(in.buf, []byte("PROXY ")) {
		return client, false, errors.New("no PROXY protocol header from a proxy address")
	}
	for {
		if i := bytes.Index(in.buf, []byte("\r\n")); i >= 0 && i+2 <= maxProxyV1 {
			return parseProxyV1(string(in.take(i + 2)[:i]))
		}
		if len(in.buf) >= maxProxyV1 {
			return client, false, errors.New("PROXY protocol version 1 line too long")
		}
		if err := in.fill(len(in.buf) + 1); err != nil {
			return client, false, err
		}
	}
}

func parseProxyV1(line string) (client netip.AddrPort, ok bool, err error) {
	f := strings.Split(line, " ")
	if len(f) >= 2 && f[1] == "UNKNOWN" {
		return client, false, nil
	}
	if len(f) != 6 || f[1] != "TCP4" && f[1] != "TCP6" {
		return client, false, fmt.Errorf("malformed PROXY protocol line %q", line)
	}
	ip, err := netip.ParseAddr(f[2])
	if err != nil || ip.Is4() != (f[1] == "TCP4") {
		return client, false, fmt.Errorf("malformed PROXY protocol source %q", f[2])
	}
	// TCP6 ::ffff:a.b.c.d is the IPv4 client, counted as version 2 and a
	// direct connection count it.
	ip = ip.Unmap()
	port, err := strconv.ParseUint(f[4], 10, 16)
	if err != nil {
		return client, false, fmt.Errorf("malformed PROXY protocol source port %q", f[4])
	}
	return netip.AddrPortFrom(ip, uint16(port)), true, nil
}

func readProxyV2(in *authReader) (client netip.AddrPort, ok bool, err error) {
	if err := in.fill(16); err != nil {
		return client, false, err
	}
	verCmd, fam := in.buf[12], in.buf[13]
	n := int(binary.BigEndian.Uint16(in.buf[14:16]))
	if verCmd>>4 != 2 || verCmd&0xf > 1 {
		return client, false, fmt.Errorf("PROXY protocol version 2 header with version/command 0x%02x", verCmd)
	}
	if n > maxProxyV2 {
		return client, false, fmt.Errorf("PROXY protocol version 2 header of %d bytes", n)
	}
	if err := in.fill(16 + n); err != nil {
		return client, false, err
	}
	addrs := in.take(16 + n)[16:]
	if verCmd&0xf == 0 { // LOCAL
		return client, false, nil
	}
	switch fam >> 4 {
	case 1: // IPv4: source, destination, source port, destination port
		if len(addrs) < 12 {
			return client, false, errors.New("PROXY protocol version 2 IPv4 addresses truncated")
		}
		return netip.AddrPortFrom(netip.AddrFrom4([4]byte(addrs[0:4])), binary.BigEndian.Uint16(addrs[8:10])), true, nil
	case 2: // IPv6
		if len(addrs) < 36 {
			return client, false, errors.New("PROXY protocol version 2 IPv6 addresses truncated")
		}
		return netip.AddrPortFrom(netip.AddrFrom16([16]byte(addrs[0:16])).Unmap(), binary.BigEndian.Uint16(addrs[32:34])), true, nil
	}
	return client, false, nil
}
