package http

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/shiftkey/shiftkey"
)

// sniffTimeout bounds how long a new API connection may stay silent before
// its first byte tells TLS from plain HTTP (the API's ReadHeaderTimeout).
const sniffTimeout = 10 * time.Second

// Listener wraps the API's listener for TLS: nil config leaves it plain;
// require makes it TLS only: a plain-HTTP request is read, body included,
// and answered 400 "Client sent an HTTP request to an HTTPS server" before
// the connection closes (net/http's own answer closes without reading the
// body, so a client still sending it gets a reset instead of the 400);
// otherwise each connection is served as TLS or plain HTTP by its first
// byte.
//
// o, when set, hears of each connection that did not get through TLS
// (plain HTTP refused, a failed handshake), with scope "".
func Listener(ln net.Listener, cfg *tls.Config, require bool, o shiftkey.TLSObserver) net.Listener {
	if cfg == nil {
		return ln
	}
	l := newSniffListener(ln, cfg, sniffTimeout)
	l.refusePlain, l.observer = require, o
	return l
}

func newSniffListener(ln net.Listener, cfg *tls.Config, timeout time.Duration) *sniffListener {
	l := &sniffListener{Listener: ln, config: cfg, timeout: timeout,
		conns: make(chan net.Conn), errs: make(chan error), done: make(chan struct{}), pending: map[net.Conn]bool{}}
	go l.acceptLoop()
	return l
}

// sniffListener serves TLS and plain HTTP on one port. Its own loop
// accepts; each connection's first byte is read in a goroutine of its own,
// under a deadline, so a silent client holds up nobody. Accept returns
// the connections already told apart: *tls.Conn (0x16, a TLS handshake
// record) or the plain connection, its first byte put back.
type sniffListener struct {
	net.Listener
	config  *tls.Config
	timeout time.Duration
	conns   chan net.Conn
	errs    chan error
	done    chan struct{}
	once    sync.Once
	// refusePlain answers plain HTTP with 400 instead of serving it.
	refusePlain bool
	observer    shiftkey.TLSObserver // nil: none

	mu      sync.Mutex
	pending map[net.Conn]bool // connections being told apart (first byte, TLS handshake)
}

func (l *sniffListener) acceptLoop() {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			// Accept's caller decides: net/http retries temporary errors.
			select {
			case l.errs <- err:
			case <-l.done:
				return
			}
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		l.mu.Lock()
		select {
		case <-l.done:
			l.mu.Unlock()
			c.Close()
			return
		default:
		}
		l.pending[c] = true
		l.mu.Unlock()
		go l.sniff(c)
	}
}

func (l *sniffListener) sniff(c net.Conn) {
	defer func() {
		l.mu.Lock()
		delete(l.pending, c)
		l.mu.Unlock()
	}()
	var first [1]byte
	c.SetReadDeadline(time.Now().Add(l.timeout))
	_, err := io.ReadFull(c, first[:])
	c.SetReadDeadline(time.Time{})
	if err != nil {
		c.Close()
		return
	}
	var out net.Conn = &replayConn{Conn: c, first: first[:]}
	if first[0] == 0x16 {
		// The handshake here rather than in net/http, which only logs its
		// failure: it is counted by reason. It has the same time net/http
		// gives it (the read-header timeout, 10 s by default).
		tc := tls.Server(out, l.config)
		c.SetDeadline(time.Now().Add(l.timeout))
		err := tc.Handshake()
		c.SetDeadline(time.Time{})
		if err != nil {
			c.Close()
			l.failed(shiftkey.TLSFailureReason(err))
			return
		}
		out = tc
	} else if l.refusePlain {
		l.failed(shiftkey.TLSPlainHTTP)
		refusePlainHTTP(out, l.timeout)
		return
	}
	select {
	case l.conns <- out:
	case <-l.done:
		c.Close()
	}
}

// failed reports a connection that did not get through TLS, unless the
// listener was closed under it.
func (l *sniffListener) failed(reason string) {
	select {
	case <-l.done:
		return
	default:
	}
	if l.observer != nil {
		l.observer.TLSFailed("", reason)
	}
}

// plainRefusal is net/http's answer to plain HTTP on a TLS port.
const plainRefusal = "HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\n\r\n" +
	"Client sent an HTTP request to an HTTPS server.\n"

// refusePlainHTTP reads one request, discarding up to 1 MiB of its body,
// answers it 400 and closes, so that the client reads the answer rather
// than a reset.
func refusePlainHTTP(c net.Conn, timeout time.Duration) {
	defer c.Close()
	c.SetDeadline(time.Now().Add(timeout))
	req, err := http.ReadRequest(bufio.NewReader(io.LimitReader(c, 1<<20)))
	if err != nil {
		return
	}
	io.Copy(io.Discard, req.Body)
	io.WriteString(c, plainRefusal)
	if cw, ok := c.(interface{ CloseWrite() error }); ok {
		cw.CloseWrite()
	}
}

// Accept returns the next connection whose protocol is known.
func (l *sniffListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case err := <-l.errs:
		return nil, err
	case <-l.done:
		return nil, net.ErrClosed
	}
}

// Close stops accepting and closes the connections still being sniffed.
func (l *sniffListener) Close() error {
	err := net.ErrClosed
	l.once.Do(func() {
		l.mu.Lock()
		close(l.done)
		for c := range l.pending {
			c.Close()
		}
		l.mu.Unlock()
		err = l.Listener.Close()
	})
	return err
}

// replayConn reads the sniffed byte again before the rest of the stream.
type replayConn struct {
	net.Conn
	first []byte
}

func (c *replayConn) Read(p []byte) (int, error) {
	if len(c.first) > 0 && len(p) > 0 {
		n := copy(p, c.first)
		c.first = c.first[n:]
		return n, nil
	}
	return c.Conn.Read(p)
}

// CloseWrite half-closes like the TCP connection underneath, which net/http
// does before closing a connection after an error.
func (c *replayConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}

// errorLog takes net/http's own messages into slog: a client's failed TLS
// handshake (scanners, clients without the CA) at debug, anything else
// (accept errors, handler panics) at warn.
type errorLog struct{ l *slog.Logger }

func (w errorLog) Write(p []byte) (int, error) {
	msg := strings.TrimSuffix(string(p), "\n")
	level := slog.LevelWarn
	if strings.HasPrefix(msg, "http: TLS handshake error") {
		level = slog.LevelDebug
	}
	w.l.Log(context.Background(), level, msg)
	return len(p), nil
}
