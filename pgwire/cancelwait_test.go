package pgwire

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/shiftkey/shiftkey/internal/pgtest"
	"github.com/shiftkey/shiftkey/pgbackend"
)

// cancelHoldingProxy is a Unix socket in front of the test PostgreSQL's
// that passes sessions through and holds each cancel request, whole, until
// the test lets it go: a cancel slow to reach PostgreSQL (a slow network, a
// busy postmaster). It notes in order what happens on a cancel connection.
type cancelHoldingProxy struct {
	dir     string
	held    chan struct{}
	release chan struct{}
	mu      sync.Mutex
	events  []string
}

func (p *cancelHoldingProxy) note(e string) {
	p.mu.Lock()
	p.events = append(p.events, e)
	p.mu.Unlock()
}

func (p *cancelHoldingProxy) seen() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.events...)
}

func startCancelHoldingProxy(t *testing.T, upstream string) *cancelHoldingProxy {
	t.Helper()
	dir, err := os.MkdirTemp("", "cw")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	ln, err := net.Listen("unix", filepath.Join(dir, filepath.Base(upstream)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	p := &cancelHoldingProxy{dir: dir, held: make(chan struct{}, 1), release: make(chan struct{})}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go p.serve(c, upstream)
		}
	}()
	return p
}

func (p *cancelHoldingProxy) serve(c net.Conn, upstream string) {
	defer c.Close()
	var first [16]byte
	if _, err := io.ReadFull(c, first[:8]); err != nil {
		return
	}
	cancel := binary.BigEndian.Uint32(first[:4]) == 16 && binary.BigEndian.Uint32(first[4:8]) == 80877102
	n := 8
	gatewayClosed := make(chan struct{})
	if cancel {
		if _, err := io.ReadFull(c, first[8:16]); err != nil {
			return
		}
		n = 16
		// The gateway's end of the cancel connection closing.
		go func() {
			defer close(gatewayClosed)
			if _, err := c.Read(make([]byte, 1)); errors.Is(err, io.EOF) {
				p.note("gateway closed")
			}
		}()
		p.held <- struct{}{}
		<-p.release
	}
	up, err := net.Dial("unix", upstream)
	if err != nil {
		return
	}
	defer up.Close()
	if _, err := up.Write(first[:n]); err != nil {
		return
	}
	if cancel {
		p.note("forwarded")
		io.Copy(io.Discard, up) // PostgreSQL closes it once it has signalled the backend
		p.note("postgres closed")
		// Passed on as PostgreSQL's close (EOF), then the gateway's awaited.
		c.(*net.UnixConn).CloseWrite()
		<-gatewayClosed
		return
	}
	done := make(chan struct{}, 2)
	go func() { io.Copy(up, c); done <- struct{}{} }()
	go func() { io.Copy(c, up); done <- struct{}{} }()
	<-done
}

// The pool tests hold a client's cancel in the gateway (heldCancels), so
// they do not see how pgbackend's Cancel ends: it returns once PostgreSQL
// has closed the cancel connection, which PostgreSQL does once it has
// signalled the backend. Until Cancel returns, the session counts the
// cancel as on its way and keeps its backend out of the pool. Here the
// cancel is held on its way to PostgreSQL instead, by the network. With
// that wait removed (Cancel returning once its request is written), on
// every relay the session's end put its backend in the pool, the held
// cancel then stopped the next session's query on it, and the gateway
// closed the cancel connection before PostgreSQL had the request.
func TestCancelHeldOnItsWayToPostgresKeepsTheBackendFromThePool(t *testing.T) {
	plainRelays(t, func(t *testing.T, relay func(*Gateway)) {
		srv := pgtest.Server(t)
		proxy := startCancelHoldingProxy(t, fmt.Sprintf("%s/.s.PGSQL.%d", srv.SocketDir(), srv.Port()))
		g, addr := newGateway(t, func(g *Gateway) {
			relay(g)
			g.PoolSize = 2
			b, err := pgbackend.New(context.Background(), pgbackend.Config{Host: proxy.dir, Port: srv.Port(), AdminUser: testProvisioner,
				AdminDatabase: g.DefaultDB, MasterUser: srv.Superuser(), AllowSuperuser: true})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(b.Close)
			g.Backend = b.ForGateway()
		})
		admin, b, cancelSent := cancelThenTerminate(t, g, addr, proxy.held, "the gateway's cancel request never reached the proxy")
		defer b.Close(context.Background())
		err := sleepWhileCancelling(t, b, admin, func() { close(proxy.release) })
		<-cancelSent
		if err != nil {
			t.Errorf("the next session's query ended with %v: the first session's cancel, held on its way, reached it", err)
		}
		if !waitUntil(10*time.Second, func() bool { return len(proxy.seen()) == 3 }) {
			t.Fatalf("cancel connection: %v, want it forwarded, closed by PostgreSQL and by the gateway", proxy.seen())
		}
		if ev := proxy.seen(); ev[0] == "gateway closed" {
			t.Errorf("cancel connection: %v: the gateway closed it before PostgreSQL had the request", ev)
		}
	})
}
