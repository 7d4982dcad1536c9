package relay

import (
	"crypto/tls"
	"encoding/hex"
	"errors"
	"net"
	"strings"
	"sync"
	"sync/atomic"
)

// TLSTap is the connection under a tls.Server (or, NewTLSClientTap, a
// tls.Client) whose session may move to the event relay once logged in. It follows the records crypto/tls reads
// and writes, so that at the hand-off the loop can take over where
// crypto/tls stopped:
//
//   - it never reads past the end of the record crypto/tls asks for, so
//     crypto/tls holds no record it has not processed;
//   - it learns the application traffic secrets from the connection's key
//     log (KeyLog; kept in memory, never written anywhere);
//   - it opens a copy of every record under those secrets, which counts
//     the records each way (the sequence numbers), proves the keys right
//     before the loop relies on them, tells the session tickets sent
//     during the handshake from handshake records, and notices what a
//     loop could not take over (a KeyUpdate during the login);
//   - it counts the application data the client sent, so that the session
//     can tell whether crypto/tls still holds some unread (Keys).
//
// Once Keys has been called, or the connection turned out not to qualify,
// the tap passes bytes through untouched: a session left on the goroutine
// relay pays nothing for it.
type TLSTap struct {
	net.Conn
	off atomic.Bool
	// client: the tap is under a tls.Client (the gateway's connection to
	// its backend): it reads the server's records and writes the client's.
	client bool

	mu      sync.Mutex
	secrets [2][]byte // client's and server's application traffic secrets
	suite   uint16
	keyed   bool   // Handshaken found everything needed
	why     string // why the session cannot leave crypto/tls; "" while it can
	rd, wr  tapStream
}

// tapStream follows one direction's records.
type tapStream struct {
	hdr     [recordHeaderLen]byte
	nhdr    int
	remain  int    // body bytes of the current record still to come
	rec     []byte // the current record so far
	stash   [][]byte
	keys    trafficKeys
	opened  bool  // a record opened under the application keys
	plain   int64 // application data bytes in the records opened
	tickets int   // NewSessionTicket messages seen (from a server)
}

// NewTLSTap wraps c, the connection a tls.Server will run over.
func NewTLSTap(c net.Conn) *TLSTap { return &TLSTap{Conn: c} }

// NewTLSClientTap wraps c, the connection a tls.Client will run over: the
// gateway's side of a backend connection.
func NewTLSClientTap(c net.Conn) *TLSTap { return &TLSTap{Conn: c, client: true} }

// KeyLog is the writer to set as the connection's (own) tls.Config
// KeyLogWriter: it keeps the application traffic secrets.
func (t *TLSTap) KeyLog() *TLSKeyLog { return &TLSKeyLog{t: t} }

// TLSKeyLog takes the NSS key log lines crypto/tls writes for one
// connection.
type TLSKeyLog struct{ t *TLSTap }

func (k *TLSKeyLog) Write(line []byte) (int, error) {
	f := strings.Fields(string(line))
	if len(f) == 3 {
		i := -1
		switch f[0] {
		case "CLIENT_TRAFFIC_SECRET_0":
			i = 0
		case "SERVER_TRAFFIC_SECRET_0":
			i = 1
		}
		if i >= 0 {
			if secret, err := hex.DecodeString(f[2]); err == nil {
				k.t.mu.Lock()
				k.t.secrets[i] = secret
				k.t.mu.Unlock()
			}
		}
	}
	return len(line), nil
}

func (t *TLSTap) Read(p []byte) (int, error) {
	if t.off.Load() {
		return t.Conn.Read(p)
	}
	t.mu.Lock()
	limit := t.rd.remain
	if t.rd.nhdr < recordHeaderLen {
		limit = recordHeaderLen - t.rd.nhdr
	}
	t.mu.Unlock()
	n, err := t.Conn.Read(p[:min(len(p), limit)])
	if n > 0 {
		t.mu.Lock()
		t.feed(&t.rd, p[:n], false)
		t.mu.Unlock()
	}
	return n, err
}

func (t *TLSTap) Write(p []byte) (int, error) {
	if t.off.Load() {
		return t.Conn.Write(p)
	}
	n, err := t.Conn.Write(p)
	if n > 0 {
		t.mu.Lock()
		t.feed(&t.wr, p[:n], true)
		t.mu.Unlock()
	}
	return n, err
}

// feed cuts records out of the stream.
func (t *TLSTap) feed(d *tapStream, p []byte, ours bool) {
	for len(p) > 0 {
		if d.nhdr < recordHeaderLen {
			k := copy(d.hdr[d.nhdr:], p)
			d.nhdr += k
			p = p[k:]
			if d.nhdr < recordHeaderLen {
				return
			}
			d.remain = int(d.hdr[3])<<8 | int(d.hdr[4])
			d.rec = append(d.rec[:0], d.hdr[:]...)
		}
		k := min(d.remain, len(p))
		d.rec = append(d.rec, p[:k]...)
		d.remain -= k
		p = p[k:]
		if d.remain == 0 {
			d.nhdr = 0
			t.record(d, d.rec, ours)
		}
	}
}

// record takes one whole record (rec is reused afterwards).
func (t *TLSTap) record(d *tapStream, rec []byte, ours bool) {
	if rec[0] != recordAppData || t.why != "" {
		return // plaintext handshake, change_cipher_spec, or a lost cause
	}
	if !t.keyed {
		d.stash = append(d.stash, append([]byte(nil), rec...))
		return
	}
	t.check(d, rec, ours, true)
}

// check opens a copy of an encrypted record under the application keys.
// One that does not open is a handshake record if no record did before
// and the handshake was still under way (after), else the keys or counts
// are wrong and the session stays where it is.
func (t *TLSTap) check(d *tapStream, rec []byte, ours, after bool) {
	c := append([]byte(nil), rec...)
	seq := d.keys.seq
	p, typ, err := d.keys.open(c)
	if err != nil {
		d.keys.seq = seq
		if after || d.opened {
			t.why = "a record did not open under the captured keys"
		}
		return
	}
	d.opened = true
	switch typ {
	case recordAppData:
		d.plain += int64(len(p))
	case recordHandshake:
		// The server's may be session tickets; anything else (a
		// KeyUpdate) moved keys the tap does not follow.
		fromServer := ours != t.client
		for len(p) >= 4 && fromServer && p[0] == hsNewSessionTicket {
			n := 4 + (int(p[1])<<16 | int(p[2])<<8 | int(p[3]))
			if n > len(p) {
				break // a ticket cut across records: not followed
			}
			p = p[n:]
			d.tickets++
		}
		if len(p) != 0 {
			t.why = "a key update during the login"
		}
	default:
		t.why = "an alert during the login"
	}
}

// Handshaken tells the tap the handshake succeeded, with what it
// negotiated.
func (t *TLSTap) Handshaken(st tls.ConnectionState) {
	t.mu.Lock()
	defer t.mu.Unlock()
	_, _, supported := supportedSuite(st.CipherSuite)
	switch {
	case st.Version != tls.VersionTLS13:
		t.why = "not TLS 1.3"
	case !supported:
		t.why = "cipher suite " + tls.CipherSuiteName(st.CipherSuite)
	case t.secrets[0] == nil || t.secrets[1] == nil:
		t.why = "no traffic secrets logged"
	}
	if t.why != "" {
		t.rd.stash, t.wr.stash = nil, nil
		t.off.Store(true)
		return
	}
	// The server reads the client's records and writes its own; a client
	// the other way round.
	rd, wr := t.secrets[0], t.secrets[1]
	if t.client {
		rd, wr = wr, rd
	}
	if err := t.rd.keys.init(st.CipherSuite, rd, 0); err != nil {
		t.why = err.Error()
	} else if err := t.wr.keys.init(st.CipherSuite, wr, 0); err != nil {
		t.why = err.Error()
	}
	if t.why != "" {
		t.rd.stash, t.wr.stash = nil, nil
		t.off.Store(true)
		return
	}
	t.suite, t.keyed = st.CipherSuite, true
	for _, d := range []*tapStream{&t.rd, &t.wr} {
		for _, rec := range d.stash {
			t.check(d, rec, d == &t.wr, false)
		}
		d.stash = nil
	}
}

// Keys returns the state a record layer carries the connection on with,
// given how many bytes of application data the session has read from the
// tls.Conn, or why it cannot: not TLS 1.3 with AES-GCM, a key update,
// or bytes crypto/tls holds (read from the socket, not yet by the
// session). Either way the tap passes bytes through from now on.
func (t *TLSTap) Keys(consumed int64) (*TLSKeys, error) {
	t.off.Store(true)
	t.mu.Lock()
	defer t.mu.Unlock()
	t.rd.rec, t.wr.rec = nil, nil
	switch {
	case t.why != "":
		return nil, errors.New(t.why)
	case !t.keyed:
		return nil, errors.New("handshake not done")
	case t.rd.nhdr != 0 || t.wr.nhdr != 0:
		return nil, errors.New("in the middle of a record")
	case t.rd.plain != consumed:
		return nil, errors.New("peer bytes buffered in crypto/tls")
	}
	return &TLSKeys{CipherSuite: t.suite, ReadSecret: t.rd.keys.secret, WriteSecret: t.wr.keys.secret,
		ReadSeq: t.rd.keys.seq, WriteSeq: t.wr.keys.seq, PeerServer: t.client}, nil
}

// Tickets is how many NewSessionTicket messages the tap saw the server
// send (after the handshake, under the application keys).
func (t *TLSTap) Tickets() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.client {
		return t.rd.tickets
	}
	return t.wr.tickets
}

// Eligible reports whether, so far, the session could move to a loop: a
// TLS 1.3 AES-GCM handshake whose keys the tap checked.
func (t *TLSTap) Eligible() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.keyed && t.why == ""
}
