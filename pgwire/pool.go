package pgwire

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"sort"
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

func poolKey(role, db string) string { return role + "\x00" + db }

func (g *Gateway) poolIdle() time.Duration {
	if g.PoolIdleTimeout > 0 {
		return g.PoolIdleTimeout
	}
	return DefaultPoolIdleTimeout
}

// take returns a pooled connection of (role, db), newest first, closing
// those idle for too long.
func (g *Gateway) takePooled(role, db string) *pooledConn {
	g.pool.mu.Lock()
	defer g.pool.mu.Unlock()
	key := poolKey(role, db)
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
// of (role, db); a connection that does not come back clean is closed.
func (g *Gateway) putPooled(role, db string, conn *pgbackend.Conn, params map[string]string) {
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	if err := simpleQuery(conn, "DISCARD ALL", params); err != nil {
		g.logger().Debug("backend connection not reusable", "db_user", role, "error", err)
		conn.Close()
		return
	}
	conn.SetDeadline(time.Time{})
	g.pool.mu.Lock()
	defer g.pool.mu.Unlock()
	if g.pool.conns == nil {
		g.pool.conns = map[string][]*pooledConn{}
	}
	key := poolKey(role, db)
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

// applyParams sets the client's startup parameters on a backend session
// with SET, so that DISCARD ALL later returns them to the server defaults.
func applyParams(conn net.Conn, client, params map[string]string) error {
	names := make([]string, 0, len(client))
	for k := range client {
		names = append(names, k)
	}
	sort.Strings(names)
	var b strings.Builder
	for _, k := range names {
		// Names come from the allow-list; values are quoted literals.
		fmt.Fprintf(&b, "SET %s = '%s';", k, strings.ReplaceAll(client[k], "'", "''"))
	}
	if b.Len() == 0 {
		return nil
	}
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	defer conn.SetDeadline(time.Time{})
	return simpleQuery(conn, b.String(), params)
}

// relayState follows the protocol across a framed relay: how many
// ReadyForQuery the client still waits for, the last transaction status,
// and whether anything happened that a reset cannot vouch for.
type relayState struct {
	mu          sync.Mutex
	outstanding int
	txStatus    byte
	dirty       bool // COPY, or a relay interrupted mid-message
	terminated  bool // the client sent Terminate
	params      map[string]string
}

// frames walks the messages in buf, carrying a message cut at the end of
// buf into the next call through partial; fn sees each message's type and,
// when the message is whole in buf, its body.
type framer struct {
	hdr     [5]byte
	nhdr    int
	remain  int // body bytes of the current message still to come
	typ     byte
	body    []byte // collected body for the few messages whose content matters
	collect bool
}

// feed advances over buf, calling msg for each completed message with the
// offset in buf just past it.
func (f *framer) feed(buf []byte, want func(typ byte) bool, msg func(typ byte, body []byte, end int)) {
	total := len(buf)
	for len(buf) > 0 {
		if f.remain == 0 && f.nhdr < 5 {
			n := copy(f.hdr[f.nhdr:], buf)
			f.nhdr += n
			buf = buf[n:]
			if f.nhdr < 5 {
				return
			}
			f.typ = f.hdr[0]
			f.remain = int(binary.BigEndian.Uint32(f.hdr[1:])) - 4
			f.collect = want(f.typ)
			f.body = f.body[:0]
			if f.remain <= 0 {
				f.remain = 0
				f.nhdr = 0
				msg(f.typ, nil, total-len(buf))
				continue
			}
		}
		n := min(f.remain, len(buf))
		if f.collect {
			f.body = append(f.body, buf[:n]...)
		}
		f.remain -= n
		buf = buf[n:]
		if f.remain == 0 {
			f.nhdr = 0
			msg(f.typ, f.body, total-len(buf))
		}
	}
}

func (f *framer) midMessage() bool { return f.nhdr != 0 || f.remain != 0 }

// framedRelay relays like relay but follows message boundaries, so a
// session that ends with Terminate while its backend is idle leaves a
// connection that can be reset and reused. reusable reports that.
func framedRelay(client, backend net.Conn, st *relayState) (up, down int64, reusable bool) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		var f framer
		buf := make([]byte, 32<<10)
		for {
			n, err := backend.Read(buf)
			if n > 0 {
				st.mu.Lock()
				f.feed(buf[:n], func(t byte) bool { return t == 'S' || t == 'Z' }, func(t byte, body []byte, _ int) {
					switch t {
					case 'Z':
						st.outstanding--
						if len(body) == 1 {
							st.txStatus = body[0]
						}
					case 'S':
						if k, v, ok := strings.Cut(strings.TrimSuffix(string(body), "\x00"), "\x00"); ok {
							st.params[k] = v
						}
					case 'G', 'H', 'W':
						st.dirty = true
					}
				})
				st.mu.Unlock()
				if _, werr := client.Write(buf[:n]); werr != nil {
					st.mu.Lock()
					st.dirty = true
					st.mu.Unlock()
					return
				}
				down += int64(n)
			}
			if err != nil {
				st.mu.Lock()
				if f.midMessage() || !st.terminated {
					st.dirty = true
				}
				st.mu.Unlock()
				return
			}
		}
	}()

	var f framer
	buf := make([]byte, 32<<10)
	for {
		n, err := client.Read(buf)
		if n > 0 {
			chunk := buf[:n]
			stop := -1
			st.mu.Lock()
			f.feed(chunk, func(byte) bool { return false }, func(t byte, _ []byte, end int) {
				switch t {
				case 'Q', 'S', 'F':
					st.outstanding++
				case 'd', 'c', 'f':
					st.dirty = true
				case 'X':
					// Terminate is the last message a client sends; keep it
					// from the backend, which stays open for the next session.
					st.terminated = true
					if stop < 0 {
						stop = end - 5
					}
				}
			})
			if st.terminated && (stop < 0 || stop+5 != n) {
				// Terminate split across reads (part already relayed), or
				// something after it: the connection cannot be vouched for.
				st.dirty = true
			}
			st.mu.Unlock()
			if st.terminated {
				if stop > 0 {
					if _, werr := backend.Write(chunk[:stop]); werr != nil {
						break
					}
					up += int64(stop)
				}
				break
			}
			if _, werr := backend.Write(chunk); werr != nil {
				break
			}
			up += int64(n)
		}
		if err != nil {
			break
		}
	}
	st.mu.Lock()
	clean := st.terminated && !st.dirty && st.outstanding == 0 && st.txStatus == 'I'
	st.mu.Unlock()
	if clean {
		// The backend owes nothing: stop the other direction without
		// closing the connection.
		backend.SetReadDeadline(time.Now())
	} else {
		backend.Close()
	}
	client.Close()
	<-done
	backend.SetReadDeadline(time.Time{})
	st.mu.Lock()
	reusable = clean && !st.dirty
	st.mu.Unlock()
	return up, down, reusable
}
