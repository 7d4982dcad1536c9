package http

import (
	"net"
	"net/http"
	"net/netip"
	"strings"
)

// DefaultClientIPHeader is the header trusted proxies name the client in
// when ClientIP.Header is empty.
const DefaultClientIPHeader = "X-Forwarded-For"

// ClientIP says where aws:SourceIp comes from. The zero value takes the
// socket's peer and reads no header.
type ClientIP struct {
	// TrustedProxies may name the client in Header. A header from any other
	// peer is ignored.
	TrustedProxies []netip.Prefix
	// Header lists addresses, comma-separated, each proxy appending the
	// peer it received the request from ("" → X-Forwarded-For).
	Header string
}

// Of is the client address of r: the socket's peer, or, when that peer is
// a trusted proxy, the right-most address in the header that is not itself
// a trusted proxy. Addresses left of it were written by whoever sent the
// request and prove nothing.
func (p ClientIP) Of(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	addr, err := netip.ParseAddr(host)
	if err != nil || len(p.TrustedProxies) == 0 {
		return host
	}
	addr = addr.Unmap()
	header := p.Header
	if header == "" {
		header = DefaultClientIPHeader
	}
	var hops []string
	for _, v := range r.Header.Values(header) {
		hops = append(hops, strings.Split(v, ",")...)
	}
	for i := len(hops) - 1; i >= 0 && p.trusted(addr); i-- {
		hop, ok := parseHop(hops[i])
		if !ok {
			// A trusted proxy would not write this: stop at the proxy.
			break
		}
		addr = hop
	}
	return addr.String()
}

func (p ClientIP) trusted(a netip.Addr) bool {
	for _, pfx := range p.TrustedProxies {
		if pfx.Contains(a) {
			return true
		}
	}
	return false
}

// parseHop reads one header entry: an address, possibly with a port
// ("192.0.2.1:4711", "[2001:db8::1]:4711") as some proxies write it.
func parseHop(s string) (netip.Addr, bool) {
	s = strings.TrimSpace(s)
	if a, err := netip.ParseAddr(s); err == nil {
		return a.Unmap(), true
	}
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap.Addr().Unmap(), true
	}
	return netip.Addr{}, false
}
