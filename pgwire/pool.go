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
	// resetting counts, per key, connections between their session's end
	// and the end of DISCARD ALL; waiters are sessions that chose to wait
	// for one of them rather than start a backend process.
	resetting map[string]int
	waiters   map[string][]chan *pooledConn
}

// resetWait bounds how long a session waits for a backend being reset
// (DISCARD ALL takes well under a millisecond; a new backend process
// several) before it opens a new one.
const resetWait = 20 * time.Millisecond

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
// those idle for too long. With none idle but one being reset, it waits for
// that one up to resetWait: a short session that reconnects at once (pgbench
// -C, serverless functions) otherwise races its own backend's reset and pays
// a backend process start each time.
func (g *Gateway) takePooled(key string) *pooledConn {
	p := &g.pool
	p.mu.Lock()
	list := p.conns[key]
	for len(list) > 0 {
		pc := list[len(list)-1]
		list = list[:len(list)-1]
		if time.Since(pc.idleSince) > g.poolIdle() {
			pc.conn.Close()
			continue
		}
		p.conns[key] = list
		p.mu.Unlock()
		return pc
	}
	delete(p.conns, key)
	if p.resetting[key] <= len(p.waiters[key]) {
		p.mu.Unlock()
		return nil
	}
	ch := make(chan *pooledConn, 1)
	if p.waiters == nil {
		p.waiters = map[string][]chan *pooledConn{}
	}
	p.waiters[key] = append(p.waiters[key], ch)
	p.mu.Unlock()
	t := time.NewTimer(resetWait)
	defer t.Stop()
	select {
	case pc := <-ch:
		return pc
	case <-t.C:
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if i := slices.Index(p.waiters[key], ch); i >= 0 {
		p.waiters[key] = slices.Delete(p.waiters[key], i, i+1)
		if len(p.waiters[key]) == 0 {
			delete(p.waiters, key)
		}
		return nil
	}
	return <-ch // handed over just as the wait ended
}

// returning announces a backend under key that a session has just left
// clean (called the moment the relay sees the Terminate); putPooled or
// abandon follows.
func (p *pool) returning(key string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.resetting == nil {
		p.resetting = map[string]int{}
	}
	p.resetting[key]++
}

// abandon withdraws a returning announcement whose backend is not kept.
func (p *pool) abandon(key string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.doneResetting(key)
}

func (p *pool) doneResetting(key string) {
	if p.resetting[key]--; p.resetting[key] <= 0 {
		delete(p.resetting, key)
	}
}

// putPooled resets conn (announced with returning) with DISCARD ALL and
// hands it to a session waiting under key, or keeps it; a connection that
// does not come back clean is closed.
func (g *Gateway) putPooled(key string, conn *pgbackend.Conn, params map[string]string) {
	p := &g.pool
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	err := simpleQuery(conn, "DISCARD ALL", params)
	conn.SetDeadline(time.Time{})
	p.mu.Lock()
	defer p.mu.Unlock()
	p.doneResetting(key)
	if err != nil {
		g.logger().Debug("backend connection not reusable", "error", err)
		conn.Close()
		return
	}
	if g.isClosed() {
		conn.Close()
		return
	}
	pc := &pooledConn{conn: conn, params: params, idleSince: time.Now()}
	if ws := p.waiters[key]; len(ws) > 0 {
		ws[0] <- pc
		if p.waiters[key] = ws[1:]; len(p.waiters[key]) == 0 {
			delete(p.waiters, key)
		}
		return
	}
	if p.conns == nil {
		p.conns = map[string][]*pooledConn{}
	}
	list := append(p.conns[key], pc)
	for len(list) > g.PoolSize {
		list[0].conn.Close()
		list = list[1:]
	}
	p.conns[key] = list
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
