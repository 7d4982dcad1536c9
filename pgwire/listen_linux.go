package pgwire

import (
	"net"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// listenConfig sets SO_KEEPALIVE on the listening socket, which Linux
// copies to every socket it accepts (and arms their keepalive timers), and
// tells Go not to set it again on each: one system call less per login.
//
// It also sets TCP_DEFER_ACCEPT, as PgBouncer does by default on Linux: a
// connection is handed to accept only once its first bytes (a startup
// packet or an SSLRequest: the client always speaks first) have arrived,
// so the session's first read finds them instead of parking its goroutine
// for another wake-up. A connection that sends nothing is never accepted;
// the kernel drops it after deferAcceptSeconds.
func listenConfig() *net.ListenConfig {
	return &net.ListenConfig{
		KeepAlive: -1,
		Control: func(_, _ string, c syscall.RawConn) error {
			var err error
			if cerr := c.Control(func(fd uintptr) {
				err = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_KEEPALIVE, 1)
				if err == nil {
					err = unix.SetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_DEFER_ACCEPT, deferAcceptSeconds)
				}
			}); cerr != nil {
				return cerr
			}
			return err
		},
	}
}

// deferAcceptSeconds is DefaultAuthTimeout: a client has that long to send
// its first bytes, and then that long again to finish its login.
const deferAcceptSeconds = int(DefaultAuthTimeout / time.Second)
