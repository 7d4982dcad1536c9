package pgwire

import (
	"net"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// A connection the gateway's listener accepts has TCP keepalive on and
// Nagle off, though neither is set on it after accept (SO_KEEPALIVE comes
// from the listening socket).
func TestListenKeepAliveInherited(t *testing.T) {
	accepted, cc := dialListener(t)
	cc.Write([]byte{0}) // accept is deferred until the client speaks
	var c net.Conn
	select {
	case c = <-accepted:
	case <-time.After(10 * time.Second):
		t.Fatal("not accepted")
	}
	defer c.Close()
	rc, err := c.(*net.TCPConn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var keepAlive, noDelay int
	var kerr, nerr error
	rc.Control(func(fd uintptr) {
		keepAlive, kerr = unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_KEEPALIVE)
		noDelay, nerr = unix.GetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_NODELAY)
	})
	if kerr != nil || nerr != nil {
		t.Fatal(kerr, nerr)
	}
	if keepAlive != 1 || noDelay != 1 {
		t.Fatalf("accepted connection: SO_KEEPALIVE %d, TCP_NODELAY %d; want both 1", keepAlive, noDelay)
	}
}

// The listener hands over a connection only once the client has sent
// something: the session's first read then finds its startup packet.
func TestListenDefersAcceptUntilData(t *testing.T) {
	accepted, cc := dialListener(t)
	select {
	case c := <-accepted:
		c.Close()
		t.Fatal("a connection that sent nothing was accepted")
	case <-time.After(300 * time.Millisecond):
	}
	if _, err := cc.Write([]byte{0, 0, 0, 8, 4, 210, 22, 47}); err != nil { // an SSLRequest
		t.Fatal(err)
	}
	select {
	case c := <-accepted:
		defer c.Close()
		buf := make([]byte, 8)
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		if n, err := c.Read(buf); n != 8 || err != nil {
			t.Fatalf("first read after accept: %d bytes, %v", n, err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("not accepted 10 s after the client spoke")
	}
}

// dialListener opens the gateway's listener and dials it; the connection
// it accepts (once) arrives on the channel. Both close when the test ends.
func dialListener(t *testing.T) (<-chan net.Conn, net.Conn) {
	t.Helper()
	ln, err := Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	accepted := make(chan net.Conn, 1)
	go func() {
		if c, err := ln.Accept(); err == nil {
			accepted <- c
		}
	}()
	cc, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cc.Close() })
	return accepted, cc
}
