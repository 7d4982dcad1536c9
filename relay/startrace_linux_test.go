package relay

import (
	"net"
	"sync/atomic"
	"testing"
	"time"
)

// A session is ended by exactly one of its owner and the relay: End is
// called once when Start succeeds, never when it fails (the gateway then
// ends the session itself). On epoll, a client that has already said
// goodbye (or hung up) when its session is added makes the loop act on
// the client's socket as soon as that is registered, before the backend's
// is: the loop ended the session and called End, then the backend's
// registration failed on the descriptor the loop had closed, and Start
// returned an error for a session the relay had already ended, so the
// gateway ended it a second time ("session ended twice").
func TestEpollStartRacingTheLoopEndsOnce(t *testing.T) {
	r := eventRelay(t, 1, EngineEpoll)
	addr := backendServer(t, func(c net.Conn) { echo(c, 0) })
	client, server := socketPair(t)
	backend, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	// The client leaves before the relay has its session, as a client
	// that disconnects right after ReadyForQuery does.
	if _, err := client.Write([]byte{goodbye}); err != nil {
		t.Fatal(err)
	}
	var ends atomic.Int32
	done := make(chan struct{}, 2)
	end := func(up, down int64) { ends.Add(1); done <- struct{}{} }

	// Between the two registrations, give the loop time to act on the
	// client's goodbye (it does at once where it can).
	t.Cleanup(func() { epollClientAdded.Store(nil) })
	hook := func() {
		select {
		case <-done:
			done <- struct{}{} // counted; put back for below
		case <-time.After(500 * time.Millisecond):
		}
	}
	epollClientAdded.Store(&hook)
	_, err = r.Start(Session{Client: server, Backend: backend, Tracker: &testTracker{}, End: end})
	epollClientAdded.Store(nil)

	if err != nil {
		// Refused: the caller ends the session, so the relay must not.
		time.Sleep(200 * time.Millisecond)
		if n := ends.Load(); n != 0 {
			t.Fatalf("Start failed (%v) but End was called %d time(s): the session ends twice", err, n)
		}
		return
	}
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("the session never ended")
	}
	time.Sleep(200 * time.Millisecond)
	if n := ends.Load(); n != 1 {
		t.Fatalf("End called %d times, want 1", n)
	}
}
