package http_test

import (
	"errors"
	"io"
	"net"
	"os"
	"testing"
	"time"
)

// holdOnlySlot takes the only request slot of the server at addr with a
// request whose body never ends, and returns its connection once probe
// (a request that reports whether it was throttled) is throttled. The
// hold and a probe race to the server on two connections: a probe read
// first takes the slot, and the hold is then throttled and closed itself,
// so it is sent again until it holds the slot.
func holdOnlySlot(t *testing.T, addr string, probe func() bool) net.Conn {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		io.WriteString(c, "POST / HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 100\r\n\r\nAction=")
		for time.Now().Before(deadline) {
			if probe() {
				return c
			}
			// Not throttled: the hold is not in yet, or was answered.
			c.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
			if _, err := c.Read(make([]byte, 1)); !errors.Is(err, os.ErrDeadlineExceeded) {
				break // answered or closed: send it again
			}
		}
		c.Close()
	}
	t.Fatal("no request held the only slot within 30 s")
	return nil
}
