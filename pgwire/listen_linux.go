package pgwire

import (
	"net"
	"syscall"

	"golang.org/x/sys/unix"
)

// listenConfig sets SO_KEEPALIVE on the listening socket, which Linux
// copies to every socket it accepts (and arms their keepalive timers), and
// tells Go not to set it again on each: one system call less per login.
func listenConfig() *net.ListenConfig {
	return &net.ListenConfig{
		KeepAlive: -1,
		Control: func(_, _ string, c syscall.RawConn) error {
			var err error
			if cerr := c.Control(func(fd uintptr) {
				err = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_KEEPALIVE, 1)
			}); cerr != nil {
				return cerr
			}
			return err
		},
	}
}
