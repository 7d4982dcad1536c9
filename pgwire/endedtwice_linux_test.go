package pgwire

import (
	"bytes"
	"context"
	"log/slog"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	_ "unsafe" // go:linkname

	"github.com/jackc/pgx/v5/pgproto3"
	"github.com/shiftkey/shiftkey"
)

// epollClientAdded is package relay's test hook, called between the
// registrations of a session's client and backend sockets on an epoll
// loop.
//
//go:linkname epollClientAdded github.com/shiftkey/shiftkey/relay.epollClientAdded
var epollClientAdded atomic.Pointer[func()]

// tcpBackend is fakeBackend over loopback TCP, so that sessions go to the
// event relay (which takes plain sockets only).
type tcpBackend struct {
	*fakeBackend
	addr string
}

func newTCPBackend(t *testing.T) *tcpBackend {
	b := &tcpBackend{fakeBackend: &fakeBackend{}}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go b.serve(c)
		}
	}()
	b.addr = ln.Addr().String()
	return b
}

func (b *tcpBackend) Connect(ctx context.Context, role, db string, params map[string]string) (net.Conn, *pgproto3.BackendKeyData, map[string]string, error) {
	c, err := net.Dial("tcp", b.addr)
	if err != nil {
		return nil, nil, nil, err
	}
	b.count(&b.connects)
	return c, nil, map[string]string{"server_version": "17.0"}, nil
}

// endCounter signals every session end it hears of.
type endCounter chan struct{}

func (endCounter) Login(*shiftkey.Login)             {}
func (c endCounter) SessionEnd(*shiftkey.SessionEnd) { c <- struct{}{} }

// syncBuffer is a log sink for a test.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (w *syncBuffer) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

func (w *syncBuffer) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.String()
}

// A client that leaves right after its ReadyForQuery can be seen by an
// epoll loop as soon as its socket is registered, before the backend's
// is. The loop ended the session (End: audit, end, sessionDone), then the
// backend's registration failed on the descriptor the loop had closed,
// Start returned an error, relayOnLoop ended the session again and run
// returned false, so Serve's goroutine called sessionDone a second time.
// The session must end once: one sessionDone, one report.
func TestSessionLeavingAtHandOffEndsOnce(t *testing.T) {
	r := eventRelay(t, 1, EngineEpoll)
	b := newTCPBackend(t)
	var logs syncBuffer
	ends := make(chan struct{}, 4)
	g, addr := fakeGateway(t, b.fakeBackend, func(g *Gateway) {
		g.Backend, g.Relay = b, r
		g.Logger = slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelError}))
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
	c, err := connect(addr, "pw")
	if err != nil {
		t.Fatal(err)
	}
	c.Close(context.Background()) // Terminate, and hang up

	ended(t, g)
	time.Sleep(200 * time.Millisecond) // any second end comes meanwhile
	epollClientAdded.Store(nil)
	if strings.Contains(logs.String(), "session ended twice") {
		t.Fatalf("the session ended twice:\n%s", logs.String())
	}
	if n := len(ends); n != 1 {
		t.Fatalf("the observer heard of %d session ends, want 1\n%s", n, logs.String())
	}
}
