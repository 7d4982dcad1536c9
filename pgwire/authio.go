package pgwire

import (
	"encoding/binary"
	"fmt"
	"io"

	"github.com/jackc/pgx/v5/pgproto3"
)

// authIO speaks to the client until the hand-off: the messages sent are
// queued and written at Flush, those received are read one at a time from
// an authReader. It does what pgproto3.Backend did here without that type's
// per-connection cost: a struct holding every message type and an 8 KB
// read buffer, allocated (and zeroed) for each login and, on a plaintext
// session, kept for its life.
type authIO struct {
	in         *authReader
	w          io.Writer
	wbuf       []byte
	encodeErr  error
	authType   uint32
	maxBodyLen int
}

func newAuthIO(in *authReader, w io.Writer) *authIO {
	return &authIO{in: in, w: w, maxBodyLen: 64 << 10}
}

// Send queues msg for the next Flush.
func (c *authIO) Send(msg pgproto3.BackendMessage) {
	if c.encodeErr != nil {
		return
	}
	buf, err := msg.Encode(c.wbuf)
	if err != nil {
		c.encodeErr = err
		return
	}
	c.wbuf = buf
}

// Flush writes what Send queued, in one write.
func (c *authIO) Flush() error {
	if err := c.encodeErr; err != nil {
		c.encodeErr, c.wbuf = nil, c.wbuf[:0]
		return fmt.Errorf("encode: %w", err)
	}
	_, err := c.w.Write(c.wbuf)
	if cap(c.wbuf) > 256 {
		c.wbuf = nil // the greeting's: nothing this large is sent again
	} else {
		c.wbuf = c.wbuf[:0]
	}
	return err
}

// SetAuthType tells what a password message ('p') answers, as
// pgproto3.Backend.SetAuthType.
func (c *authIO) SetAuthType(t uint32) error {
	switch t {
	case pgproto3.AuthTypeOk, pgproto3.AuthTypeCleartextPassword, pgproto3.AuthTypeMD5Password, pgproto3.AuthTypeSCMCreds,
		pgproto3.AuthTypeGSS, pgproto3.AuthTypeGSSCont, pgproto3.AuthTypeSSPI, pgproto3.AuthTypeSASL,
		pgproto3.AuthTypeSASLContinue, pgproto3.AuthTypeSASLFinal:
		c.authType = t
		return nil
	}
	return fmt.Errorf("authType not recognized: %d", t)
}

// Receive reads the client's next message, decoded as pgproto3.Backend
// decodes it: a 'p' by the authentication type last set. The message, and
// what it points into, are valid until the next call.
func (c *authIO) Receive() (pgproto3.FrontendMessage, error) {
	typ, body, err := c.in.next(c.maxBodyLen)
	if err != nil {
		return nil, err
	}
	var msg pgproto3.FrontendMessage
	switch typ {
	case 'B':
		msg = &pgproto3.Bind{}
	case 'C':
		msg = &pgproto3.Close{}
	case 'D':
		msg = &pgproto3.Describe{}
	case 'E':
		msg = &pgproto3.Execute{}
	case 'F':
		msg = &pgproto3.FunctionCall{}
	case 'f':
		msg = &pgproto3.CopyFail{}
	case 'd':
		msg = &pgproto3.CopyData{}
	case 'c':
		msg = &pgproto3.CopyDone{}
	case 'H':
		msg = &pgproto3.Flush{}
	case 'P':
		msg = &pgproto3.Parse{}
	case 'p':
		switch c.authType {
		case pgproto3.AuthTypeSASL:
			msg = &pgproto3.SASLInitialResponse{}
		case pgproto3.AuthTypeSASLContinue, pgproto3.AuthTypeSASLFinal:
			msg = &pgproto3.SASLResponse{}
		case pgproto3.AuthTypeGSS, pgproto3.AuthTypeGSSCont:
			msg = &pgproto3.GSSResponse{}
		default:
			msg = &pgproto3.PasswordMessage{}
		}
	case 'Q':
		msg = &pgproto3.Query{}
	case 'S':
		msg = &pgproto3.Sync{}
	case 'X':
		msg = &pgproto3.Terminate{}
	default:
		return nil, fmt.Errorf("unknown message type: %c", typ)
	}
	// Not wrapped: a password message without its NUL decodes as io.EOF,
	// which is not the client hanging up (receive answers it 08P01).
	if err := msg.Decode(body); err != nil {
		return nil, fmt.Errorf("malformed %s: %v", messageName(msg), err)
	}
	if m, ok := msg.(*pgproto3.SASLInitialResponse); ok {
		// pgproto3 skips the initial response's length; PostgreSQL reads
		// it: -1 is no initial response (Data nil), anything else must be
		// what follows.
		n := int32(binary.BigEndian.Uint32(body[len(m.AuthMechanism)+1:]))
		switch {
		case n == -1 && len(m.Data) == 0:
			m.Data = nil
		case n < 0 || int(n) != len(m.Data):
			return nil, fmt.Errorf("malformed SASLInitialResponse: length %d, %d bytes follow", n, len(m.Data))
		}
	}
	return msg, nil
}
