package relay

import (
	"errors"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// TLSConn carries on, in Go, a TLS 1.3 connection whose handshake was done
// elsewhere, from its record state (TLSKeys): a backend connection a loop
// kept for the pool that a session on the goroutine relay takes, or one
// that was meant for a loop and stays in Go after all. It is a net.Conn
// over the socket: Read opens records, Write seals them. Read and Write
// may run at once (a goroutine per direction); the rare KeyUpdate that
// asks for an answer takes the write side for a moment.
type TLSConn struct {
	net.Conn
	rmu   sync.Mutex
	raw   []byte // records read, the last perhaps cut
	plain []byte // opened application data not yet returned
	rerr  error

	wmu sync.Mutex
	rl  *recordLayer // in (and its alert): under rmu; out: under wmu
	out []byte
	// alert is rl.alert for Close, which may run while Read holds rmu.
	alert atomic.Uint32
}

// NewTLSConn carries the TLS connection with record state k on over c.
func NewTLSConn(c net.Conn, k *TLSKeys) (*TLSConn, error) {
	rl, err := newRecordLayer(k)
	if err != nil {
		return nil, err
	}
	rl.deferReply = true
	return &TLSConn{Conn: c, rl: rl}, nil
}

func (c *TLSConn) Read(p []byte) (int, error) {
	c.rmu.Lock()
	defer c.rmu.Unlock()
	for len(c.plain) == 0 {
		if c.rerr != nil {
			return 0, c.rerr
		}
		if c.rl.eof {
			c.rerr = io.EOF
			continue
		}
		if len(c.raw) == cap(c.raw) {
			grown := make([]byte, len(c.raw), max(2*cap(c.raw), recordHeaderLen+maxCiphertext+4096))
			copy(grown, c.raw)
			c.raw = grown
		}
		n, err := c.Conn.Read(c.raw[len(c.raw):cap(c.raw)])
		c.raw = c.raw[:len(c.raw)+n]
		if n > 0 {
			if oerr := c.open(); oerr != nil {
				c.rerr = oerr
			}
		}
		if err != nil && c.rerr == nil {
			if err == io.EOF && len(c.raw) > 0 {
				err = io.ErrUnexpectedEOF
			}
			if !isTimeout(err) {
				c.rerr = err
			} else if len(c.plain) == 0 {
				return 0, err
			}
		}
	}
	n := copy(p, c.plain)
	c.plain = c.plain[n:]
	return n, nil
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// open opens the whole records in c.raw into c.plain. A KeyUpdate that
// asks for an answer is answered under the write side's lock, after the
// records (the peer takes records under the old keys until it arrives).
func (c *TLSConn) open() error {
	buf := c.raw
	plain, used, err := c.rl.openRecords(buf)
	if err != nil {
		c.alert.Store(uint32(c.rl.alert))
	}
	c.plain = append(c.plain[:0], buf[:plain]...)
	if used > 0 {
		// Not while a record is still cut: moving it onto itself at every
		// read would make a trickled record cost its square.
		c.raw = c.raw[:copy(c.raw, buf[used:])]
	}
	if c.rl.owed && err == nil {
		c.wmu.Lock()
		c.rl.owed = false
		if err = c.rl.answerKeyUpdate(); err == nil {
			_, err = c.Conn.Write(c.rl.takeReply())
		}
		c.wmu.Unlock()
	}
	return err
}

func (c *TLSConn) Write(p []byte) (int, error) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	total := 0
	for len(p) > 0 {
		n := min(len(p), 4*maxPlaintext)
		c.out = c.rl.seal(c.out[:0], p[:n])
		if _, err := c.Conn.Write(c.out); err != nil {
			return total, err
		}
		total += n
		p = p[n:]
	}
	return total, nil
}

// Close sends close_notify, unless a write is under way (Close may come
// from another goroutine while a Write waits on the peer), and closes the
// socket.
func (c *TLSConn) Close() error {
	if c.wmu.TryLock() {
		c.Conn.SetWriteDeadline(time.Now().Add(100 * time.Millisecond))
		c.Conn.Write(c.rl.alertRecord(byte(c.alert.Load())))
		c.wmu.Unlock()
	}
	return c.Conn.Close()
}

// NetConn is the socket under the connection.
func (c *TLSConn) NetConn() net.Conn { return c.Conn }

// LoopKeys returns the socket and the record state to carry the connection
// on a loop with, when nothing is held between records; false otherwise.
// The TLSConn must not be used afterwards.
func (c *TLSConn) LoopKeys() (net.Conn, *TLSKeys, bool) {
	c.rmu.Lock()
	defer c.rmu.Unlock()
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if len(c.raw) > 0 || len(c.plain) > 0 || c.rerr != nil || !c.rl.idle() {
		return nil, nil, false
	}
	return c.Conn, c.rl.keys(), true
}

// TLSReader opens the records of a TLS 1.3 connection read from elsewhere
// (a pooled backend's bare socket, whose answer to its reset the taker
// reads).
type TLSReader struct{ rl *recordLayer }

// NewTLSReader opens records with the record state k.
func NewTLSReader(k *TLSKeys) (*TLSReader, error) {
	rl, err := newRecordLayer(k)
	if err != nil {
		return nil, err
	}
	return &TLSReader{rl: rl}, nil
}

// Open opens the whole records at the start of buf in place: buf[:plain]
// is the application data they carried, buf[used:] a record not yet whole.
// An alert from the peer, a KeyUpdate that asks for an answer, or a bad
// record is an error.
func (r *TLSReader) Open(buf []byte) (plain, used int, err error) {
	plain, used, err = r.rl.openRecords(buf)
	switch {
	case err != nil:
	case r.rl.eof:
		err = errors.New("tls record: the peer closed the connection")
	case len(r.rl.reply) > 0 || r.rl.owed:
		err = errors.New("tls record: the peer asked for a key update")
	}
	return plain, used, err
}

// Keys is the record state after what was opened, once the last record
// was whole; false when a record or handshake message was cut.
func (r *TLSReader) Keys(rest int) (*TLSKeys, bool) {
	if rest != 0 || !r.rl.idle() {
		return nil, false
	}
	return r.rl.keys(), true
}
