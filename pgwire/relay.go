package pgwire

import (
	"bytes"
	"encoding/binary"
	"strings"
	"sync"

	"github.com/jackc/pgx/v5/pgproto3"
)

// discardAll is the Query message DISCARD ALL, which resets a backend for
// its next session.
var discardAll = func() []byte {
	b, _ := (&pgproto3.Query{String: "DISCARD ALL"}).Encode(nil)
	return b
}()

// relayState follows the protocol across a relay (it is the relay's
// Tracker): how many ReadyForQuery the client still waits for, the last
// transaction status, and whether anything happened that a reset cannot
// vouch for. Every relay (goroutines, epoll, io_uring) drives it through
// FromClient and FromBackend, so a backend is judged reusable by the same
// rules whichever moved the bytes.
type relayState struct {
	mu          sync.Mutex
	outstanding int
	txStatus    byte
	dirty       bool // COPY, or a relay interrupted mid-message
	// unsynced: extended-query messages since the last Sync. The backend
	// owes their answer and a ReadyForQuery only at a Sync, and after an
	// error ignores everything (a reset included) until one.
	unsynced   bool
	terminated bool // the client sent Terminate
	params     map[string]string
	cf, bf     framer // client→backend and backend→client streams
	// returning, when set, is called (Keeping) the moment the client leaves
	// the backend clean, before the reset (see pool.returning).
	returning func()
	// cut is the FATAL of a session the gateway cuts (session.closeFor):
	// the cut closes the backend's side, and BackendEnded gives this
	// farewell rather than backendLost.
	cut []byte
	// ended: the backend said it ends the session (a FATAL or PANIC, or
	// the WARNING 57P0x an immediate shutdown or a crash gives before the
	// backend exits): the session's end is the backend's (EndBackend).
	ended bool
}

// FromBackend follows a chunk the backend sent.
func (st *relayState) FromBackend(chunk []byte) {
	st.mu.Lock()
	defer st.mu.Unlock()
	st.bf.feed(chunk, backendWants, func(t byte, body []byte, _ int) {
		switch t {
		case 'Z':
			st.outstanding--
			if len(body) == 1 {
				st.txStatus = body[0]
			}
		case 'S':
			if len(body) < st.bf.bodyLen() {
				// Longer than the framer keeps: not recorded, so the
				// backend's statuses are not known for its next session.
				st.dirty = true
			} else if k, v, ok := strings.Cut(strings.TrimSuffix(string(body), "\x00"), "\x00"); ok {
				st.params[k] = v
			}
		case 'G', 'H', 'W':
			st.dirty = true
		case 'E', 'N':
			if endsSession(t, body) {
				st.ended = true
			}
		}
	})
}

// endsSession reports whether the ErrorResponse or NoticeResponse (typ)
// whose body this is says the backend ends the session: severity FATAL or
// PANIC, or a notice of class 57P (operator intervention: PostgreSQL's
// immediate shutdown and crash restart warn with 57P01 and 57P02 and
// exit without a FATAL).
func endsSession(typ byte, body []byte) bool {
	var severity, code string
	for len(body) > 0 && body[0] != 0 {
		f := body[0]
		v, rest, ok := bytes.Cut(body[1:], []byte{0})
		if !ok {
			break
		}
		switch f {
		case 'V':
			severity = string(v)
		case 'S':
			if severity == "" {
				severity = string(v)
			}
		case 'C':
			code = string(v)
		}
		body = rest
	}
	if typ == 'E' {
		return severity == "FATAL" || severity == "PANIC"
	}
	return strings.HasPrefix(code, "57P")
}

// EndedByBackend reports whether the backend said it ends the session.
func (st *relayState) EndedByBackend() bool {
	st.mu.Lock()
	defer st.mu.Unlock()
	return st.ended
}

func backendWants(t byte) bool { return t == 'S' || t == 'Z' || t == 'E' || t == 'N' }
func clientWants(byte) bool    { return false }

// FromClient follows a chunk the client sent. When it holds the client's
// Terminate, end is true and forward is how many bytes precede it: those go
// to the backend, the Terminate does not (the backend stays open for the
// next session).
func (st *relayState) FromClient(chunk []byte) (forward int, end bool) {
	st.mu.Lock()
	defer st.mu.Unlock()
	stop, xEnd := -1, -1
	st.cf.feed(chunk, clientWants, func(t byte, _ []byte, off int) {
		switch t {
		case 'Q', 'F':
			st.outstanding++
		case 'S':
			st.outstanding++
			st.unsynced = false
		case 'P', 'B', 'E', 'D', 'C', 'H':
			st.unsynced = true
		case 'd', 'c', 'f':
			st.dirty = true
		case 'X':
			st.terminated = true
			if xEnd < 0 {
				// Where the message starts: a Terminate with a body
				// (PostgreSQL ends the session whatever it holds) is
				// the client's goodbye too, none of it for the backend.
				stop, xEnd = off-5-st.cf.bodyLen(), off
			}
		}
	})
	if !st.terminated {
		return len(chunk), false
	}
	if stop < 0 || xEnd != len(chunk) {
		// Terminate split across reads (part already relayed), or
		// something after it: the connection cannot be vouched for.
		st.dirty = true
	}
	return max(stop, 0), true
}

// BackendEnded records that the backend stream stopped (EOF or error). A
// backend that ends a session says why in an ErrorResponse (FATAL) as its
// last message; one that left without it (its process killed, the network
// cut, a TLS record that did not open) leaves the client backendLost, and
// one the gateway cut off (Cut) the cut's FATAL, as long as the client
// still listens and gets it at a message boundary.
func (st *relayState) BackendEnded() (farewell []byte) {
	st.mu.Lock()
	defer st.mu.Unlock()
	mid := st.bf.midMessage()
	if mid || !st.terminated {
		st.dirty = true
	}
	switch {
	case st.terminated || mid:
		return nil
	case st.cut != nil:
		// Even after an ErrorResponse of the backend's (one that waits
		// for a Sync, or the cut's cancel): its session did not end.
		return st.cut
	case st.bf.typ == 'E':
		return nil
	}
	return backendLost
}

// Cut makes farewell, a FATAL ErrorResponse, what the client gets when
// the backend's stream ends (BackendEnded): the gateway is about to close
// the backend's side to end the session. The first cut's stays.
func (st *relayState) Cut(farewell []byte) {
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.cut == nil {
		st.cut = farewell
	}
}

// backendLost is the error a client gets when its backend went without
// one (relayState.BackendEnded); PgBouncer says "server conn crashed?".
var backendLost = func() []byte {
	b, _ := (&pgproto3.ErrorResponse{Severity: "FATAL", SeverityUnlocalized: "FATAL", Code: codeConnectionFailure,
		Message: "the gateway lost its connection to the database"}).Encode(nil)
	return b
}()

// Clean reports whether the backend owes nothing and holds no state a reset
// cannot clear: the client said Terminate while idle outside a transaction,
// with no extended query left without its Sync.
func (st *relayState) Clean() bool {
	st.mu.Lock()
	defer st.mu.Unlock()
	return st.terminated && !st.dirty && !st.unsynced && st.outstanding == 0 && st.txStatus == 'I' && !st.bf.midMessage() && !st.cf.midMessage()
}

// Keeping announces the backend to the pool (returning), if pooling.
func (st *relayState) Keeping() {
	if st.returning != nil {
		st.returning()
	}
}

// maxKept bounds what a framer keeps of a message's body. A backend message
// may be up to 1 GB (an ErrorResponse quotes the input it refused), and the
// tracker reads only what comes first: an ErrorResponse's or
// NoticeResponse's severity and code, a ParameterStatus of a setting.
const maxKept = 8 << 10

// framer walks the messages of one direction, carrying a message cut at the
// end of a chunk into the next one; of the bodies it collects, it keeps the
// first maxKept bytes.
type framer struct {
	hdr     [5]byte
	nhdr    int
	remain  int    // body bytes of the current message still to come
	typ     byte   // the current message's type; between messages, the last one's
	body    []byte // collected body (its first maxKept bytes) for the few messages whose content matters
	collect bool
}

// feed advances over buf, calling msg for each completed message with the
// offset in buf just past it; want says which message types' bodies msg
// needs.
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
		if k := min(n, maxKept-len(f.body)); f.collect && k > 0 {
			f.body = append(f.body, buf[:k]...)
		}
		f.remain -= n
		buf = buf[n:]
		if f.remain == 0 {
			f.nhdr = 0
			msg(f.typ, f.body, total-len(buf))
		}
	}
}

// bodyLen is the body length of the message msg was just called for (its
// header is still in hdr).
func (f *framer) bodyLen() int { return max(int(binary.BigEndian.Uint32(f.hdr[1:]))-4, 0) }

func (f *framer) midMessage() bool { return f.nhdr != 0 || f.remain != 0 }
