package pgwire

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"
)

// corkedConn holds back what is written to it, once corked, until Close:
// so that a crypto/tls client's last record and its close_notify reach
// the gateway in one segment, as they may from any client.
type corkedConn struct {
	net.Conn
	mu     sync.Mutex
	corked bool
	held   []byte
}

func (c *corkedConn) Write(b []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.corked {
		c.held = append(c.held, b...)
		return len(b), nil
	}
	return c.Conn.Write(b)
}

func (c *corkedConn) Close() error {
	c.mu.Lock()
	held := c.held
	c.held = nil
	c.mu.Unlock()
	if len(held) > 0 {
		// tls.Conn's close_notify leaves a write deadline of now behind.
		c.Conn.SetWriteDeadline(time.Time{})
		c.Conn.Write(held)
	}
	return c.Conn.Close()
}

// A TLS client on an event loop that sends a query and closes its TLS
// connection (close_notify, no Terminate) in one segment: the query runs,
// as it does on the goroutine relay and for a plaintext client that hangs
// up after it.
func TestTLSQueryThenCloseNotify(t *testing.T) {
	cfg, pool := testTLS(t)
	engines(t, func(t *testing.T, engine string) {
		r := eventRelay(t, 1, engine)
		_, addr := newGateway(t, func(g *Gateway) { g.Relay, g.TLS, g.AllowCleartext, g.PoolSize = r, cfg, true, 1 })
		ctx := context.Background()
		c := mustLogin(t, addr)
		if _, err := c.Exec(ctx, "CREATE TABLE IF NOT EXISTS tls_close_notify (v text)"); err != nil {
			t.Fatal(err)
		}
		host, port, _ := net.SplitHostPort(addr)
		for i := range 3 {
			pc, err := pgconn.ParseConfig(fmt.Sprintf("host=%s port=%s user=IAM:u password=pw sslmode=require connect_timeout=30", host, port))
			if err != nil {
				t.Fatal(err)
			}
			pc.TLSConfig = &tls.Config{RootCAs: pool, ServerName: "127.0.0.1"}
			var cc *corkedConn
			pc.DialFunc = func(ctx context.Context, network, a string) (net.Conn, error) {
				nc, err := (&net.Dialer{}).DialContext(ctx, network, a)
				if err != nil {
					return nil, err
				}
				cc = &corkedConn{Conn: nc}
				return cc, nil
			}
			conn, err := pgconn.ConnectConfig(ctx, pc)
			if err != nil {
				t.Fatal(err)
			}
			hc, err := conn.Hijack()
			if err != nil {
				t.Fatal(err)
			}
			tc, ok := hc.Conn.(*tls.Conn)
			if !ok || tc.ConnectionState().Version != tls.VersionTLS13 {
				t.Fatalf("the client's connection is %T, not TLS 1.3", hc.Conn)
			}
			cc.mu.Lock()
			cc.corked = true
			cc.mu.Unlock()
			v := fmt.Sprintf("%s-%d", t.Name(), i)
			q, _ := (&pgproto3.Query{String: "INSERT INTO tls_close_notify VALUES ('" + v + "')"}).Encode(nil)
			if _, err := tc.Write(q); err != nil {
				t.Fatal(err)
			}
			tc.Close() // close_notify, then the corked bytes go in one write
			if n := waitCount(t, c, 1, "SELECT count(*) FROM tls_close_notify WHERE v = $1", v); n != 1 {
				t.Fatalf("session %d: the query sent with close_notify ran %d times, want 1 (%+v)", i, n, r.Stats())
			}
		}
		if st := r.Stats(); st.StartedTLS != 3 {
			t.Fatalf("%d TLS sessions on the event loop, want 3", st.StartedTLS)
		}
	})
}
