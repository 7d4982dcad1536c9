package http

import (
	"crypto/tls"
	"net"
	"time"

	"github.com/shiftkey/shiftkey/admission"
)

// NewSniffListener is Listener's TLS-or-plain listener with its sniff
// deadline shortened for tests.
func NewSniffListener(ln net.Listener, cfg *tls.Config, timeout time.Duration) net.Listener {
	return newSniffListener(ln, cfg, timeout)
}

// Gate is the admission gate Handler made (nil: no bound).
func (s *Server) Gate() *admission.Gate { return s.gate }
