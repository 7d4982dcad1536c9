//go:build unix

package postgres

import (
	"net"
	"testing"
	"time"
)

// closedByServer on real TCP sockets: an idle connection is open; one the
// peer wrote to unasked, or closed, is not; and the check returns while
// another goroutine is blocked reading the connection (pgconn's background
// reader can be, on an idle connection). Found in review: the check took
// the descriptor's read lock (RawConn.Read) and so waited for that read,
// which on an idle connection never ends: the pool's Acquire, and every
// call behind it, hung.
func TestClosedByServer(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	pair := func() (client, server net.Conn) {
		t.Helper()
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		s, err := ln.Accept()
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close(); s.Close() })
		return c, s
	}
	// check runs closedByServer, failing the test if it does not return.
	check := func(c net.Conn) bool {
		t.Helper()
		done := make(chan bool, 1)
		go func() { done <- closedByServer(c) }()
		select {
		case closed := <-done:
			return closed
		case <-time.After(10 * time.Second):
			t.Fatal("closedByServer did not return in 10 s")
			return false
		}
	}

	c, s := pair()
	if check(c) {
		t.Error("an idle open connection was found closed")
	}
	// A reader blocked on the connection, as pgconn's background reader.
	read := make(chan error, 1)
	go func() {
		var b [1]byte
		_, err := c.Read(b[:])
		read <- err
	}()
	time.Sleep(50 * time.Millisecond) // let it block; the check must return either way
	if check(c) {
		t.Error("an idle open connection with a blocked reader was found closed")
	}
	s.Write([]byte{'x'})
	<-read

	c, s = pair()
	s.Write([]byte("E goodbye"))
	waitFor := func(what string, cond func() bool) {
		t.Helper()
		for deadline := time.Now().Add(10 * time.Second); !cond(); time.Sleep(5 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("after 10 s: %s", what)
			}
		}
	}
	waitFor("a connection with unasked bytes is found closed", func() bool { return check(c) })
	var b [9]byte
	if n, err := c.Read(b[:]); err != nil || string(b[:n]) != "E goodbye" {
		t.Errorf("the peek consumed what it saw: read %q, %v", b[:n], err)
	}

	c, s = pair()
	s.Close()
	waitFor("a connection the peer closed is found closed", func() bool { return check(c) })
}
