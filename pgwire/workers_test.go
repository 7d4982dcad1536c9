package pgwire

import (
	"context"
	"net"
	"testing"
	"time"
)

// Sessions run on workers that wait for the next connection after theirs
// ends (workers.go): at most maxIdleWorkers wait after a burst, a new
// session takes one of them, and they all leave when the gateway closes.
func TestSessionWorkersAreBoundedAndLeaveAtClose(t *testing.T) {
	g, addr := newGateway(t, func(g *Gateway) { g.MaxAuthPerSource = 100 })
	const burst = maxIdleWorkers + 4
	conns := make([]net.Conn, burst)
	for i := range conns {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		conns[i] = c
	}
	if !waitUntil(10*time.Second, func() bool { return g.sessionCount() == burst }) {
		t.Fatalf("%d sessions, want the burst's %d", g.sessionCount(), burst)
	}
	for _, c := range conns {
		c.Close()
	}
	if !waitUntil(10*time.Second, func() bool { return g.sessionCount() == 0 && g.workers.idle.Load() == maxIdleWorkers }) {
		t.Fatalf("after the burst: %d sessions, %d idle workers; want 0 and %d", g.sessionCount(), g.workers.idle.Load(), maxIdleWorkers)
	}
	c := mustLogin(t, addr)
	if n := g.workers.idle.Load(); n != maxIdleWorkers-1 {
		t.Fatalf("%d idle workers during a session, want %d: the session did not take a waiting worker", n, maxIdleWorkers-1)
	}
	if err := c.Ping(context.Background()); err != nil {
		t.Fatal(err)
	}
	c.Close(context.Background())
	if !waitUntil(10*time.Second, func() bool { return g.workers.idle.Load() == maxIdleWorkers }) {
		t.Fatalf("%d idle workers after the session, want %d", g.workers.idle.Load(), maxIdleWorkers)
	}
	g.Close()
	if !waitUntil(10*time.Second, func() bool { return g.workers.idle.Load() == 0 }) {
		t.Fatalf("%d workers still waiting after Close", g.workers.idle.Load())
	}
}
