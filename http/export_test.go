package http

import (
	"crypto/tls"
	"net"
	"time"
)

// NewSniffListener is Listener's TLS-or-plain listener with its sniff
// deadline shortened for tests.
func NewSniffListener(ln net.Listener, cfg *tls.Config, timeout time.Duration) net.Listener {
	return newSniffListener(ln, cfg, timeout)
}
