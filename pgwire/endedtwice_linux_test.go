package pgwire

import (
	"context"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"
	_ "unsafe" // go:linkname

	"github.com/shiftkey/shiftkey"
)

// epollClientAdded is package relay's test hook, called between the
// registrations of a session's client and backend sockets on an epoll
// loop.
//
//go:linkname epollClientAdded github.com/shiftkey/shiftkey/relay.epollClientAdded
var epollClientAdded atomic.Pointer[func()]

// endCounter signals every session end it hears of.
type endCounter chan struct{}

func (endCounter) Login(*shiftkey.Login)             {}
func (c endCounter) SessionEnd(*shiftkey.SessionEnd) { c <- struct{}{} }

// A client that leaves right after its ReadyForQuery can be seen by an
// epoll loop as soon as its socket is registered, before the backend's
// is. The loop ended the session (End: audit, end, sessionDone), then the
// backend's registration failed on the descriptor the loop had closed,
// Start returned an error, relayOnLoop ended the session again and run
// returned false, so Serve's goroutine called sessionDone a second time.
// The session must end once: one sessionDone, one report.
func TestSessionLeavingAtHandOffEndsOnce(t *testing.T) {
	var logs lockedBuffer
	ends := make(chan struct{}, 4)
	g, addr := newGateway(t, func(g *Gateway) {
		g.Relay = eventRelay(t, 1, EngineEpoll)
		g.Logger = slog.New(slog.NewJSONHandler(&logs, nil))
		g.Observer = endCounter(ends)
	})
	t.Cleanup(func() { epollClientAdded.Store(nil) })
	// Between the two registrations, give the loop time to act on the
	// client's Terminate (it does at once where it can): wait for the
	// session's end, or a second.
	hook := func() {
		waitUntil(time.Second, func() bool { return g.sessionCount() == 0 })
	}
	epollClientAdded.Store(&hook)
	c, err := login(addr)
	if err != nil {
		t.Fatal(err)
	}
	c.Close(context.Background()) // Terminate, and hang up

	ended(t, g)
	time.Sleep(200 * time.Millisecond) // any second end comes meanwhile
	epollClientAdded.Store(nil)
	if twice := logs.records(t, "session ended twice"); len(twice) > 0 {
		t.Fatalf("the session ended twice: %v (relay refused: %v)", twice, logs.records(t, "event relay refused the session"))
	}
	if n := len(ends); n != 1 {
		t.Fatalf("the observer heard of %d session ends, want 1", n)
	}
}
