package shiftkey

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"os"
	"strings"
	"syscall"
)

// certificateAlerts are the TLS alerts a client sends when it refuses the
// server's certificate (Go and OpenSSL: bad_certificate or unknown_ca;
// Java: certificate_unknown).
var certificateAlerts = []tls.AlertError{42, 43, 44, 45, 46, 48}

// TLSFailureReason is why a server-side TLS handshake failed with err: one
// of TLSFailureReasons, or "" when it is none of them (counted as other).
func TLSFailureReason(err error) string {
	if op, ok := errors.AsType[*net.OpError](err); ok && op.Op == "remote error" {
		// An alert from the client; crypto/tls's own alert type is
		// unexported, its text is AlertError's.
		for _, a := range certificateAlerts {
			if op.Err != nil && op.Err.Error() == a.Error() {
				return TLSCertificateRejected
			}
		}
		return TLSProtocol
	}
	switch {
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, os.ErrDeadlineExceeded):
		return TLSTimeout
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE):
		return TLSClientDisconnect
	}
	if _, ok := errors.AsType[tls.RecordHeaderError](err); ok {
		return TLSProtocol
	}
	if _, ok := errors.AsType[tls.AlertError](err); ok {
		return TLSProtocol
	}
	// crypto/tls's refusals of what the client offered ("tls: client
	// offered only unsupported versions", "tls: no cipher suite supported
	// by both client and server", ...).
	if err != nil && strings.HasPrefix(err.Error(), "tls: ") {
		return TLSProtocol
	}
	return ""
}
