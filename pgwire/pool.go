package pgwire

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"maps"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgproto3"
	"github.com/shiftkey/shiftkey/relay"
)

// DefaultPoolIdleTimeout is how long an unused backend connection is kept.
const DefaultPoolIdleTimeout = time.Minute

// pooledConn is a backend connection kept between sessions of one key,
// already reset with DISCARD ALL: a Go connection (reset by the goroutine
// relay's session), or a bare socket that the event relay reset itself and
// that goes back to an event loop without ever entering Go's netpoller.
type pooledConn struct {
	conn      net.Conn // nil for a bare socket
	fd        int      // the bare socket; -1 with conn
	keyData   *pgproto3.BackendKeyData
	params    map[string]string // ParameterStatus values as the backend last reported them
	idleSince time.Time
	// resetDue: the event relay sent the bare socket DISCARD ALL but left
	// its answer unread (relay.Session.Keep); readReset reads it.
	resetDue bool
	// tls is the record state of a backend that speaks TLS, for the bare
	// socket fd, or for conn when that is the raw socket under a TLS
	// connection a loop is to carry on (link.onLoop); nil otherwise.
	tls *relay.TLSKeys
}

// alive reports whether the backend has neither hung up nor sent anything
// while pooled (terminated, restarted, idle_session_timeout).
func (pc *pooledConn) alive() bool {
	if pc.conn != nil {
		return relay.ConnAlive(pc.conn)
	}
	return relay.FDAlive(pc.fd)
}

// toGo makes a Go connection of a bare socket (or of the raw socket under
// a TLS connection a loop was to carry on): with TLS, shiftkey's record
// layer in Go carries it (relay.TLSConn). On error the socket is closed.
func (pc *pooledConn) toGo() error {
	if pc.conn == nil {
		nc, err := relay.FDConn(pc.fd) // closes fd, whatever the outcome
		pc.fd = -1
		if err != nil {
			return err
		}
		pc.conn, pc.fd = nc, -1
	}
	if pc.tls != nil {
		tc, err := relay.NewTLSConn(pc.conn, pc.tls)
		if err != nil {
			pc.conn.Close()
			pc.conn = nil
			return err
		}
		pc.conn, pc.tls = tc, nil
	}
	return nil
}

func (pc *pooledConn) close() {
	if pc.conn != nil {
		pc.conn.Close()
	} else {
		relay.CloseFD(pc.fd)
	}
}

type pool struct {
	mu    sync.Mutex
	conns map[string][]*pooledConn
	// resetting counts, per key, connections between their session's end
	// and the end of DISCARD ALL; waiters are sessions that chose to wait
	// for one of them rather than start a backend process.
	resetting map[string]int
	waiters   map[string][]chan *pooledConn
	sweeping  bool // a sweep goroutine runs (while anything is pooled)
}

// resetWait bounds how long a session waits for a backend being reset
// (DISCARD ALL takes well under a millisecond; a new backend process
// several) before it opens a new one.
var resetWait = 20 * time.Millisecond // a variable for tests only

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

// poolIdle is how long a pooled backend may wait; with an idle timeout,
// at most half of it, since the backend's idle_session_timeout ends pooled
// sessions too.
func (g *Gateway) poolIdle() time.Duration {
	d := DefaultPoolIdleTimeout
	if g.PoolIdleTimeout > 0 {
		d = g.PoolIdleTimeout
	}
	if g.IdleTimeout > 0 {
		d = min(d, g.IdleTimeout/2)
	}
	return d
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
		idle := g.now().Sub(pc.idleSince)
		// Every connection is checked for a hang-up (backend restarted or
		// terminated) without a round trip: a recv that does not wait,
		// however short its idle (a restart ends the backends pooled a
		// moment before as well).
		// (One whose reset is unanswered has the answer waiting: acquire
		// checks it after reading that.)
		if idle > g.poolIdle() || (!pc.resetDue && !pc.alive()) {
			pc.close()
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
// clean (called the moment the relay sees the Terminate); keepPooled
// follows.
func (p *pool) returning(key string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.resetting == nil {
		p.resetting = map[string]int{}
	}
	p.resetting[key]++
}

func (p *pool) doneResetting(key string) {
	if p.resetting[key]--; p.resetting[key] <= 0 {
		delete(p.resetting, key)
	}
}

// putPooled resets conn (announced with returning) with DISCARD ALL and
// keeps it (keepPooled); a connection that does not come back clean is
// closed.
func (g *Gateway) putPooled(key string, conn net.Conn, keyData *pgproto3.BackendKeyData, params map[string]string) {
	conn.SetDeadline(time.Now().Add(resetTimeout))
	err := simpleQuery(conn, "DISCARD ALL", params)
	conn.SetDeadline(time.Time{})
	if err != nil {
		g.logger().Debug("backend connection not reusable", "error", err)
		conn.Close()
		g.keepPooled(key, nil)
		return
	}
	g.keepPooled(key, &pooledConn{conn: conn, fd: -1, keyData: keyData, params: params, idleSince: g.now()})
}

// keepPooled ends a returning announcement under key with the reset
// connection pc (nil: it was not kept): pc goes to a session waiting for
// it, or to the pool.
func (g *Gateway) keepPooled(key string, pc *pooledConn) {
	p := &g.pool
	p.mu.Lock()
	defer p.mu.Unlock()
	p.doneResetting(key)
	if pc == nil {
		return
	}
	if g.isClosed() {
		pc.close()
		return
	}
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
	p.conns[key] = append(p.conns[key], pc)
	p.dropOldest(key, max(len(p.conns[key])-g.PoolSize, 0))
	if !p.sweeping {
		p.sweeping = true
		go g.sweepPool()
	}
}

// sweepPool closes pooled backends idle longer than poolIdle, every half of
// it, while anything is pooled: takePooled only meets the newest, and a
// burst's backends would otherwise hold PostgreSQL processes (and count
// against its connection limits) long after the load is gone.
func (g *Gateway) sweepPool() {
	p := &g.pool
	for {
		time.Sleep(g.poolIdle() / 2)
		p.mu.Lock()
		for k, list := range p.conns {
			n := 0
			for n < len(list) && g.now().Sub(list[n].idleSince) > g.poolIdle() {
				n++
			}
			p.dropOldest(k, n)
		}
		if len(p.conns) == 0 {
			p.sweeping = false
			p.mu.Unlock()
			return
		}
		p.mu.Unlock()
	}
}

// acquire gives a session a backend connection as role, opened with the
// client's forwarded parameters: a pooled one under key when pooling (key
// not empty), else a new one (reused says which). A pooled bare socket is
// turned into a Go connection unless the session goes to the event relay
// (bare). The result's params are the ParameterStatus set to report to the
// client, the session's own.
func (t *Gateway) acquire(ctx context.Context, role, db string, clientParams map[string]string, key string, bare bool) (*pooledConn, bool, error) {
	if key != "" {
		// One budget for every pooled reset this login reads: a backend
		// whose DISCARD ALL waits (for a lock another session holds, say)
		// costs it that at most, however many such backends the pool has.
		budget := time.Now().Add(pooledResetWait)
		for ctx.Err() == nil {
			// A taken connection, params included, is this session's alone:
			// the session that pooled it is done with it.
			pc := t.takePooled(key)
			if pc == nil {
				break
			}
			if pc.resetDue {
				// Within the login's own deadline: a backend whose reset is
				// late is not worth more of it than a new one. (An answer
				// already there is read past the budget too.)
				deadline := budget
				if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
					deadline = d
				}
				if err := pc.readReset(deadline); err != nil {
					t.logger().Debug("backend connection not reusable", "error", err)
					pc.close()
					continue
				}
				if !pc.alive() {
					pc.close()
					continue
				}
			}
			if pc.conn != nil || bare {
				return pc, true, nil
			}
			if err := pc.toGo(); err != nil {
				t.logger().Debug("backend connection not reusable", "error", err)
				continue
			}
			return pc, true, nil
		}
	}
	startParams := maps.Clone(clientParams)
	if t.IdleTimeout > 0 {
		startParams["idle_session_timeout"] = strconv.FormatInt(t.IdleTimeout.Milliseconds(), 10)
	}
	for attempt := 1; ; attempt++ {
		bc, key, status, err := t.Backend.Connect(ctx, role, db, startParams)
		if err == nil {
			return &pooledConn{conn: bc, fd: -1, keyData: key, params: status}, false, nil
		}
		// PostgreSQL is at a connection limit (max_connections, or the
		// database's or role's CONNECTION LIMIT) and idle backends this
		// gateway pools may be what fills it: close one (of the same role
		// and database first) and try again once its process has had a
		// moment to exit.
		br, ok := errors.AsType[BackendRefused](err)
		if !ok || br.BackendResponse().Code != codeTooManyConnections || attempt == maxEvictions || !t.evictIdle(role, db) {
			return nil, false, err
		}
		select {
		case <-ctx.Done():
			return nil, false, err
		case <-time.After(time.Duration(attempt) * 5 * time.Millisecond):
		}
	}
}

// maxEvictions bounds the idle backends one login closes to make room.
const maxEvictions = 4

// evictIdle closes the pooled backend idle the longest, preferring one of
// role and db (whose CONNECTION LIMITs count it too); false: none is idle.
func (g *Gateway) evictIdle(role, db string) bool {
	p := &g.pool
	p.mu.Lock()
	defer p.mu.Unlock()
	base := poolKey(role, db, nil) // keys of role and db: base, or base + "\x00" + parameters
	var victim string
	victimSame := false
	for k, list := range p.conns {
		// list[0] is the key's longest idle (keepPooled appends).
		same := k == base || strings.HasPrefix(k, base+"\x00")
		if len(list) > 0 && (victim == "" || same && !victimSame ||
			same == victimSame && list[0].idleSince.Before(p.conns[victim][0].idleSince)) {
			victim, victimSame = k, same
		}
	}
	if victim == "" {
		return false
	}
	p.dropOldest(victim, 1)
	return true
}

// dropOldest closes the n longest idle backends under key (the front of its
// list: keepPooled appends). p.mu is held.
func (p *pool) dropOldest(key string, n int) {
	list := p.conns[key]
	for _, pc := range list[:n] {
		pc.close()
	}
	if n == len(list) {
		delete(p.conns, key)
	} else {
		p.conns[key] = list[n:]
	}
}

func (g *Gateway) closePool() {
	g.pool.mu.Lock()
	defer g.pool.mu.Unlock()
	for k, list := range g.pool.conns {
		for _, pc := range list {
			pc.close()
		}
		delete(g.pool.conns, k)
	}
}

// resetTimeout bounds a backend's reset, DISCARD ALL's round trip.
const resetTimeout = 5 * time.Second

// pooledResetWait bounds how long one login waits, in all, for the
// answers to the resets of the pooled backends it tries (resetDue):
// DISCARD ALL takes well under a millisecond, and its answer is usually
// there when a login takes the backend, whereas one that waits for a lock
// could otherwise hold each login of the role for resetTimeout per such
// backend. A backend whose answer is later is closed, and the login opens
// one of its own.
const pooledResetWait = 250 * time.Millisecond

// maxResetAnswer bounds one message of the answer to DISCARD ALL.
const maxResetAnswer = 64 << 10

// readReset reads the answer to the DISCARD ALL that the event relay sent
// the bare socket pc (resetDue), recording the parameter statuses it
// reports, as simpleQuery does. The answer is usually there already: the
// read does not wait. Any error response, anything after ReadyForQuery, or
// ending outside an idle state is an error.
//
// With a TLS backend (pc.tls), the records are opened with its record
// state, which then moves past them.
func (pc *pooledConn) readReset(deadline time.Time) error {
	buf := make([]byte, 0, 512)
	var failed error
	var tr *relay.TLSReader
	var raw []byte
	if pc.tls != nil {
		var err error
		if tr, err = relay.NewTLSReader(pc.tls); err != nil {
			return err
		}
		raw = make([]byte, 0, 1024)
	}
	for {
		off := 0
		for len(buf)-off >= 5 {
			n := int(binary.BigEndian.Uint32(buf[off+1:]))
			if n < 4 || n > maxResetAnswer {
				return fmt.Errorf("DISCARD ALL: answer with a message of %d bytes", n)
			}
			if len(buf)-off < 1+n {
				break
			}
			typ, body := buf[off], buf[off+5:off+1+n]
			off += 1 + n
			switch typ {
			case 'S':
				if k, v, ok := strings.Cut(strings.TrimSuffix(string(body), "\x00"), "\x00"); ok {
					pc.params[k] = v
				}
			case 'E':
				failed = errors.New("DISCARD ALL: error response")
			case 'Z':
				if off != len(buf) {
					return errors.New("unexpected data after ReadyForQuery")
				}
				if failed == nil && (len(body) != 1 || body[0] != 'I') {
					failed = fmt.Errorf("DISCARD ALL: transaction status %q", body)
				}
				if tr != nil {
					k, ok := tr.Keys(len(raw))
					if !ok {
						return errors.New("DISCARD ALL: a TLS record after ReadyForQuery")
					}
					pc.tls = k
				}
				pc.resetDue = false
				return failed
			}
		}
		buf = buf[:copy(buf, buf[off:])]
		if cap(buf)-len(buf) < 256 {
			buf = slices.Grow(buf, cap(buf))
		}
		if tr != nil {
			// Records: read, opened, their content appended to buf.
			if cap(raw)-len(raw) < 256 {
				raw = slices.Grow(raw, cap(raw))
			}
			n, err := relay.ReadFD(pc.fd, raw[len(raw):cap(raw)], deadline)
			if err != nil {
				return fmt.Errorf("DISCARD ALL: %w", err)
			}
			raw = raw[:len(raw)+n]
			plain, used, err := tr.Open(raw)
			if err != nil {
				return fmt.Errorf("DISCARD ALL: %w", err)
			}
			buf = append(buf, raw[:plain]...)
			raw = raw[:copy(raw, raw[used:])]
			continue
		}
		n, err := relay.ReadFD(pc.fd, buf[len(buf):cap(buf)], deadline)
		if err != nil {
			return fmt.Errorf("DISCARD ALL: %w", err)
		}
		buf = buf[:len(buf)+n]
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
