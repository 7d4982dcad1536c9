//go:build unix

package postgres

import (
	"crypto/tls"
	"net"
	"syscall"
)

// closedByServer is whether the server closed c, or sent it something
// unasked (its goodbye: 57P01 when it shuts down), while c sat idle. It
// peeks at the socket without waiting and without consuming anything. A
// query sent on such a connection would fail after it was sent, over TCP
// with the goodbye as its answer, which pgx cannot tell from a query the
// server ran (pgconn.SafeToRetry is false): found here, the connection is
// replaced before anything is sent.
func closedByServer(c net.Conn) bool {
	if t, ok := c.(*tls.Conn); ok {
		c = t.NetConn()
	}
	sc, ok := c.(syscall.Conn)
	if !ok {
		return false
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return false
	}
	var closed bool
	var buf [1]byte
	// Control, not Read: Read waits for the descriptor's read lock, which
	// pgconn's background reader can hold on an idle connection (started
	// when a write was slow, it stays in a read until bytes come): the
	// check would then wait as long. The peek itself never waits.
	err = raw.Control(func(fd uintptr) {
		n, _, err := syscall.Recvfrom(int(fd), buf[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		switch {
		case n > 0: // unasked bytes on an idle connection
			closed = true
		case err == syscall.EAGAIN || err == syscall.EWOULDBLOCK || err == syscall.EINTR:
		default: // 0 bytes: end of stream; or the socket failed
			closed = true
		}
	})
	return closed || err != nil
}
