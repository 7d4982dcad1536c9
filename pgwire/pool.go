package pgwire

import (
	"errors"
	"fmt"
	"maps"
	"net"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgproto3"
	"github.com/shiftkey/shiftkey/pgbackend"
)

// DefaultPoolIdleTimeout is how long an unused backend connection is kept.
const DefaultPoolIdleTimeout = time.Minute

// pooledConn is a backend connection kept between sessions of one role and
// database, already reset with DISCARD ALL.
type pooledConn struct {
	conn      *pgbackend.Conn
	params    map[string]string // ParameterStatus values as the backend last reported them
	idleSince time.Time
}

type pool struct {
	mu    sync.Mutex
	conns map[string][]*pooledConn
}

// poolKey names the backends one session may take: same role, database and
// forwarded startup parameters (sorted, so the key does not depend on map
// order).
func poolKey(role, db string, params map[string]string) string {
	var b strings.Builder
	b.WriteString(role)
	b.WriteByte(0)
	b.WriteString(db)
	for _, k := range slices.Sorted(maps.Keys(params)) {
		b.WriteByte(0)
		b.WriteString(k)
		b.WriteByte('=')
		b.WriteString(params[k])
	}
	return b.String()
}

func (g *Gateway) poolIdle() time.Duration {
	if g.PoolIdleTimeout > 0 {
		return g.PoolIdleTimeout
	}
	return DefaultPoolIdleTimeout
}

// takePooled returns a pooled connection under key, newest first, closing
// those idle for too long.
func (g *Gateway) takePooled(key string) *pooledConn {
	g.pool.mu.Lock()
	defer g.pool.mu.Unlock()
	list := g.pool.conns[key]
	for len(list) > 0 {
		pc := list[len(list)-1]
		list = list[:len(list)-1]
		if time.Since(pc.idleSince) > g.poolIdle() {
			pc.conn.Close()
			continue
		}
		g.pool.conns[key] = list
		return pc
	}
	delete(g.pool.conns, key)
	return nil
}

// putPooled resets conn with DISCARD ALL and keeps it for the next session
// under key; a connection that does not come back clean is closed.
func (g *Gateway) putPooled(key string, conn *pgbackend.Conn, params map[string]string) {
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	if err := simpleQuery(conn, "DISCARD ALL", params); err != nil {
		g.logger().Debug("backend connection not reusable", "error", err)
		conn.Close()
		return
	}
	conn.SetDeadline(time.Time{})
	g.pool.mu.Lock()
	defer g.pool.mu.Unlock()
	if g.pool.conns == nil {
		g.pool.conns = map[string][]*pooledConn{}
	}
	list := append(g.pool.conns[key], &pooledConn{conn: conn, params: params, idleSince: time.Now()})
	for len(list) > g.PoolSize {
		list[0].conn.Close()
		list = list[1:]
	}
	g.pool.conns[key] = list
}

func (g *Gateway) closePool() {
	g.pool.mu.Lock()
	defer g.pool.mu.Unlock()
	for k, list := range g.pool.conns {
		for _, pc := range list {
			pc.conn.Close()
		}
		delete(g.pool.conns, k)
	}
}

// simpleQuery runs sql on an idle backend connection and reads to
// ReadyForQuery, recording ParameterStatus changes in params. Any error
// response, or ending outside an idle state, is an error.
func simpleQuery(conn net.Conn, sql string, params map[string]string) error {
	fe := pgproto3.NewFrontend(conn, conn)
	fe.Send(&pgproto3.Query{String: sql})
	if err := fe.Flush(); err != nil {
		return err
	}
	var failed error
	for {
		msg, err := fe.Receive()
		if err != nil {
			return err
		}
		switch m := msg.(type) {
		case *pgproto3.ParameterStatus:
			params[m.Name] = m.Value
		case *pgproto3.ErrorResponse:
			failed = fmt.Errorf("%s: %s %s", sql, m.Code, m.Message)
		case *pgproto3.ReadyForQuery:
			if fe.ReadBufferLen() > 0 {
				return errors.New("unexpected data after ReadyForQuery")
			}
			if failed == nil && m.TxStatus != 'I' {
				failed = fmt.Errorf("%s: transaction status %c", sql, m.TxStatus)
			}
			return failed
		}
	}
}
