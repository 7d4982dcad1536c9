package server

import (
	"net"
	"testing"
)

// Where the other replicas reach a gateway: peer_host with the gateway's
// port, else its listen address when that is one address.
func TestPeerAddress(t *testing.T) {
	tcp := func(s string) net.Addr {
		a, err := net.ResolveTCPAddr("tcp", s)
		if err != nil {
			t.Fatal(err)
		}
		return a
	}
	for _, tc := range []struct {
		host, listen, want string
	}{
		{"", "10.0.0.5:5439", "10.0.0.5:5439"},
		{"", "127.0.0.1:15439", "127.0.0.1:15439"},
		{"", "0.0.0.0:5439", ""},
		{"", "[::]:5439", ""},
		{"replica-0.shiftkey", "0.0.0.0:5439", "replica-0.shiftkey:5439"},
		{"2001:db8::5", "[::]:5440", "[2001:db8::5]:5440"},
	} {
		if got := peerAddress(tc.host, tcp(tc.listen)); got != tc.want {
			t.Errorf("peer_host %q, listen %s: %q, want %q", tc.host, tc.listen, got, tc.want)
		}
	}
}
