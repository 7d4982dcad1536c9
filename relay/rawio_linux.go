package relay

import (
	"io"
	"net"
	"os"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// RawIO returns c reading and writing with raw system calls, or c itself
// if it is not a plain socket. Its socket is non-blocking (Go opens every
// socket so): a read or write never blocks in the kernel, and waiting is
// still the netpoller's, deadlines included. A raw call does not tell the
// scheduler it is in a system call, so sysmon never hands the goroutine's P
// to another thread while a write to loopback runs the receiver's side in
// the kernel, nor keeps waking every 20 µs to look for such calls, which
// on a busy machine cost a few context switches per login.
func RawIO(c net.Conn) net.Conn {
	if !PlainSocket(c) {
		return c
	}
	rc, err := c.(syscall.Conn).SyscallConn()
	if err != nil {
		return c
	}
	c2 := &rawConn{Conn: c, rc: rc}
	c2.readFn, c2.writeFn = c2.read, c2.write
	return c2
}

// rawConn keeps the state of its current read and of its current write in
// fields, and the functions that RawConn.Read and Write call as method
// values made once: a closure per call would cost a few allocations per
// message.
type rawConn struct {
	net.Conn
	rc syscall.RawConn

	readFn, writeFn func(fd uintptr) bool
	rp              []byte // the read's buffer
	rn              int
	rerr            syscall.Errno
	wp              []byte // the write's bytes
	wn              int
	werr            syscall.Errno
}

func (c *rawConn) read(fd uintptr) bool {
	p := c.rp
	for {
		r, _, e := unix.RawSyscall(unix.SYS_READ, fd, uintptr(unsafe.Pointer(unsafe.SliceData(p))), uintptr(len(p)))
		switch e {
		case unix.EINTR:
			continue
		case unix.EAGAIN:
			return false
		}
		c.rn, c.rerr = int(r), e
		return true
	}
}

func (c *rawConn) write(fd uintptr) bool {
	p := c.wp
	for c.wn < len(p) {
		r, _, e := unix.RawSyscall6(unix.SYS_SENDTO, fd, uintptr(unsafe.Pointer(unsafe.SliceData(p[c.wn:]))), uintptr(len(p)-c.wn), unix.MSG_NOSIGNAL, 0, 0)
		switch e {
		case 0:
			c.wn += int(r)
		case unix.EINTR:
		case unix.EAGAIN:
			return false
		default:
			c.werr = e
			return true
		}
	}
	return true
}

func (c *rawConn) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	c.rp, c.rn, c.rerr = p, 0, 0
	err := c.rc.Read(c.readFn)
	n, errno := c.rn, c.rerr
	c.rp = nil
	if err := c.opError("read", err, errno); err != nil {
		return 0, err
	}
	if n == 0 {
		return 0, io.EOF
	}
	return n, nil
}

func (c *rawConn) Write(p []byte) (int, error) {
	c.wp, c.wn, c.werr = p, 0, 0
	err := c.rc.Write(c.writeFn)
	n, errno := c.wn, c.werr
	c.wp = nil
	return n, c.opError("write", err, errno)
}

// opError is op's failure as net.Conn reports one: err from the raw
// connection, else the system call's errno; nil when neither.
func (c *rawConn) opError(op string, err error, errno syscall.Errno) error {
	switch {
	case err != nil:
	case errno != 0:
		err = os.NewSyscallError(op, errno)
	default:
		return nil
	}
	return &net.OpError{Op: op, Net: c.LocalAddr().Network(), Source: c.LocalAddr(), Addr: c.RemoteAddr(), Err: err}
}
