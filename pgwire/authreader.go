package pgwire

import (
	"encoding/binary"
	"io"
)

// authReader feeds pgproto3 the client's authentication messages one at a
// time. pgproto3 reads ahead into its own buffer, which nothing can take
// back; a client that pipelines a query after its last SCRAM or password
// message would lose it when the session moves to the relay. Here those
// bytes stay in buf, and rest hands them over.
type authReader struct {
	r     io.Reader
	store []byte
	buf   []byte // read from r, not yet handed out (a slice of store)
	left  int    // bytes of the current message not yet handed out
}

func (a *authReader) Read(p []byte) (int, error) {
	if a.left == 0 {
		// A new message: its 5-byte header says how long it is.
		for len(a.buf) < 5 {
			if err := a.fill(); err != nil {
				return 0, err
			}
		}
		// A length below 4 is pgproto3's to reject; hand it the header.
		a.left = 5
		if n := binary.BigEndian.Uint32(a.buf[1:5]); n >= 4 {
			a.left = 1 + int(min(n, 1<<30))
		}
	}
	if len(a.buf) == 0 {
		if err := a.fill(); err != nil {
			return 0, err
		}
	}
	k := min(len(p), a.left, len(a.buf))
	copy(p, a.buf[:k])
	a.buf = a.buf[k:]
	a.left -= k
	return k, nil
}

// fill reads once more from r, after what is buffered.
func (a *authReader) fill() error {
	if a.store == nil {
		a.store = make([]byte, 1024)
	}
	n := copy(a.store, a.buf)
	m, err := a.r.Read(a.store[n:])
	a.buf = a.store[:n+m]
	if m > 0 {
		return nil
	}
	if err == nil {
		err = io.ErrNoProgress
	}
	return err
}

// rest returns the bytes read past the last message handed out, and lets
// go of the buffer (pgproto3 keeps a pointer to a for the session's life).
func (a *authReader) rest() []byte {
	var b []byte
	if len(a.buf) > 0 {
		b = append([]byte(nil), a.buf...)
	}
	a.store, a.buf = nil, nil
	return b
}
