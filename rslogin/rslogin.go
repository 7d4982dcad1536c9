// Package rslogin logs in to a PostgreSQL-protocol server the way AWS's
// Redshift drivers do (reference/redshift-drivers.md): their startup
// parameters, Redshift's SHA-256 extensible digest (AuthenticationRequest
// code 13) and PostgreSQL's MD5 exchange (code 5), byte for byte. It is
// the client half `shiftkey doctor` and the gateway's tests use; it knows
// nothing of shiftkey.
package rslogin

import (
	"bufio"
	"context"
	"crypto/md5"
	"crypto/sha256"
	"crypto/tls"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"time"
)

// Authentication request codes.
const (
	AuthOK        = 0
	AuthCleartext = 3
	AuthMD5       = 5
	AuthSASL      = 10
	AuthDigest    = 13
)

// DriverParams are the startup parameters redshift_connector 2.1.15 sends,
// with those of its identity-provider plugins too (plugin_name, idp_type,
// provider_name, token_type, identity_namespace, idc_client_display_name),
// so that a server sees every one at once.
func DriverParams(user, database string) map[string]string {
	return map[string]string{
		"user":                     user,
		"database":                 database,
		"application_name":         "rslogin",
		"client_protocol_version":  "2",
		"driver_version":           "Redshift Python Driver 2.1.15",
		"os_version":               "Linux-6.1.0-x86_64-with-glibc2.36",
		"driver_discovery_version": "1",
		"plugin_name":              "redshift_connector.plugin.IdpTokenAuthPlugin",
		"idp_type":                 "AwsIdc",
		"provider_name":            "shiftkey",
		"token_type":               "ACCESS_TOKEN",
		"identity_namespace":       "default",
		"idc_client_display_name":  "rslogin",
	}
}

// Config is one login.
type Config struct {
	Params   map[string]string // startup parameters; user is required
	Password string
	// TLS, when set, is negotiated with SSLRequest first; a server that
	// answers 'N' fails the login.
	TLS *tls.Config
	// Now gives the client nonce of code 13 (the drivers send the time in
	// milliseconds); nil: time.Now.
	Now func() time.Time
}

// ServerError is an ErrorResponse.
type ServerError struct{ Severity, Code, Message string }

func (e *ServerError) Error() string {
	return fmt.Sprintf("%s: %s (SQLSTATE %s)", e.Severity, e.Message, e.Code)
}

// ErrUnsupported is returned when the server asks for an exchange this
// client does not speak (SCRAM among them: Result.Auth says which).
var ErrUnsupported = errors.New("rslogin: authentication method not supported")

// ErrCleartextWithoutTLS is returned, the password unsent, when a server
// asks for the password in cleartext (code 3) on a connection without
// TLS: anyone who can answer in the server's place would get the password
// itself, good for every login until it expires. (AWS's drivers send it.)
var ErrCleartextWithoutTLS = errors.New("rslogin: the server asked for the password in cleartext without TLS; not sent")

// Notice is a NoticeResponse.
type Notice struct{ Severity, Code, Message string }

// Session is the outcome of a login: what the server asked and said, and
// the connection when it let the client in.
type Session struct {
	Auth    []int             // the authentication request codes, in order
	Status  map[string]string // ParameterStatus
	Notices []Notice
	conn    net.Conn
	r       *bufio.Reader
}

// Login connects to addr and logs in. The session is returned with
// whatever was learnt even when the login fails; a failure the server
// answered is a *ServerError.
func Login(ctx context.Context, addr string, cfg Config) (*Session, error) {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	if dl, ok := ctx.Deadline(); ok {
		conn.SetDeadline(dl)
	}
	s := &Session{Status: map[string]string{}, conn: conn}
	if err := s.login(ctx, cfg); err != nil {
		conn.Close()
		return s, err
	}
	conn.SetDeadline(time.Time{})
	return s, nil
}

func (s *Session) login(ctx context.Context, cfg Config) error {
	if cfg.TLS != nil {
		if _, err := s.conn.Write([]byte{0, 0, 0, 8, 4, 210, 22, 47}); err != nil {
			return err
		}
		var b [1]byte
		if _, err := io.ReadFull(s.conn, b[:]); err != nil {
			return err
		}
		if b[0] != 'S' {
			return errors.New("rslogin: the server does not offer TLS")
		}
		tc := tls.Client(s.conn, cfg.TLS)
		if err := tc.HandshakeContext(ctx); err != nil {
			return err
		}
		s.conn = tc
	}
	s.r = bufio.NewReader(s.conn)
	// StartupMessage: length, protocol 3.0, name/value pairs, a final NUL.
	body := binary.BigEndian.AppendUint32(nil, 3<<16)
	for k, v := range cfg.Params {
		body = append(append(append(append(body, k...), 0), v...), 0)
	}
	body = append(body, 0)
	if _, err := s.conn.Write(append(binary.BigEndian.AppendUint32(nil, uint32(4+len(body))), body...)); err != nil {
		return err
	}
	user := []byte(cfg.Params["user"])
	for {
		typ, msg, err := s.read()
		if err != nil {
			return err
		}
		switch typ {
		case 'R':
			if len(msg) < 4 {
				return errors.New("rslogin: short authentication request")
			}
			code := int(binary.BigEndian.Uint32(msg))
			s.Auth = append(s.Auth, code)
			switch code {
			case AuthOK:
			case AuthCleartext:
				if cfg.TLS == nil {
					return ErrCleartextWithoutTLS
				}
				err = s.write('p', append([]byte(cfg.Password), 0))
			case AuthMD5:
				if len(msg) != 8 {
					return errors.New("rslogin: bad MD5 request")
				}
				err = s.write('p', append([]byte(MD5Response(cfg.Password, string(user), msg[4:8])), 0))
			case AuthDigest:
				err = s.digest(msg[4:], cfg)
			default:
				return fmt.Errorf("%w: code %d", ErrUnsupported, code)
			}
			if err != nil {
				return err
			}
		case 'S':
			k, v, _ := strings.Cut(strings.TrimSuffix(string(msg), "\x00"), "\x00")
			s.Status[k] = v
		case 'N':
			f := fields(msg)
			s.Notices = append(s.Notices, Notice{f['V'], f['C'], f['M']})
		case 'E':
			f := fields(msg)
			return &ServerError{f['V'], f['C'], f['M']}
		case 'K':
		case 'Z':
			return nil
		default:
			return fmt.Errorf("rslogin: unexpected message %q during login", typ)
		}
	}
}

// digest answers code 13: the request carries Int32 algorithm, Int32 salt
// length, salt, Int32 server-nonce length, nonce; the answer is a 'd'
// message of Int32 digest length, digest, Int32 client-nonce length,
// client nonce.
func (s *Session) digest(b []byte, cfg Config) error {
	next := func() ([]byte, bool) {
		if len(b) < 4 || int(binary.BigEndian.Uint32(b)) > len(b)-4 {
			return nil, false
		}
		n := int(binary.BigEndian.Uint32(b))
		f := b[4 : 4+n]
		b = b[4+n:]
		return f, true
	}
	if len(b) < 4 {
		return errors.New("rslogin: short digest request")
	}
	if algo := binary.BigEndian.Uint32(b); algo != 0 {
		return fmt.Errorf("%w: digest algorithm %d", ErrUnsupported, algo)
	}
	b = b[4:]
	salt, ok1 := next()
	nonce, ok2 := next()
	if !ok1 || !ok2 {
		return errors.New("rslogin: malformed digest request")
	}
	now := time.Now
	if cfg.Now != nil {
		now = cfg.Now
	}
	client := []byte(strconv.FormatInt(now().UnixMilli(), 10))
	d := Digest(cfg.Password, salt, nonce, client)
	out := binary.BigEndian.AppendUint32(nil, uint32(len(d)))
	out = append(out, d...)
	out = binary.BigEndian.AppendUint32(out, uint32(len(client)))
	return s.write('d', append(out, client...))
}

// Digest is the code-13 proof: SHA256(SHA256(password ‖ salt) ‖
// serverNonce ‖ clientNonce).
func Digest(password string, salt, serverNonce, clientNonce []byte) []byte {
	d1 := sha256.Sum256(append([]byte(password), salt...))
	h := sha256.New()
	h.Write(d1[:])
	h.Write(serverNonce)
	h.Write(clientNonce)
	return h.Sum(nil)
}

// MD5Response is the MD5 exchange's answer: "md5" + hex(md5(hex(md5(
// password ‖ user)) ‖ salt)).
func MD5Response(password, user string, salt []byte) string {
	inner := md5.Sum([]byte(password + user))
	outer := md5.Sum(append([]byte(hex.EncodeToString(inner[:])), salt...))
	return "md5" + hex.EncodeToString(outer[:])
}

// Query runs sql with the simple protocol and returns the first column of
// its first row.
func (s *Session) Query(ctx context.Context, sql string) (string, error) {
	if dl, ok := ctx.Deadline(); ok {
		s.conn.SetDeadline(dl)
		defer s.conn.SetDeadline(time.Time{})
	}
	if err := s.write('Q', append([]byte(sql), 0)); err != nil {
		return "", err
	}
	var value string
	var got bool
	var fail error
	for {
		typ, msg, err := s.read()
		if err != nil {
			return "", err
		}
		switch typ {
		case 'D':
			if !got && len(msg) >= 6 {
				if n := int32(binary.BigEndian.Uint32(msg[2:])); n >= 0 && int(n) <= len(msg)-6 {
					value, got = string(msg[6:6+n]), true
				}
			}
		case 'E':
			f := fields(msg)
			fail = &ServerError{f['V'], f['C'], f['M']}
		case 'Z':
			return value, fail
		}
	}
}

// Close says goodbye and closes the connection.
func (s *Session) Close() error {
	if s.conn == nil {
		return nil
	}
	s.write('X', nil)
	return s.conn.Close()
}

func (s *Session) write(typ byte, body []byte) error {
	msg := append([]byte{typ}, binary.BigEndian.AppendUint32(nil, uint32(4+len(body)))...)
	_, err := s.conn.Write(append(msg, body...))
	return err
}

func (s *Session) read() (byte, []byte, error) {
	var hdr [5]byte
	if _, err := io.ReadFull(s.r, hdr[:]); err != nil {
		return 0, nil, err
	}
	n := binary.BigEndian.Uint32(hdr[1:])
	if n < 4 || n > 1<<24 {
		return 0, nil, fmt.Errorf("rslogin: message length %d", n)
	}
	body := make([]byte, n-4)
	if _, err := io.ReadFull(s.r, body); err != nil {
		return 0, nil, err
	}
	return hdr[0], body, nil
}

// fields reads an ErrorResponse or NoticeResponse body.
func fields(b []byte) map[byte]string {
	f := map[byte]string{}
	for len(b) > 1 && b[0] != 0 {
		code := b[0]
		end := 1
		for end < len(b) && b[end] != 0 {
			end++
		}
		f[code] = string(b[1:end])
		if end >= len(b) {
			break
		}
		b = b[end+1:]
	}
	return f
}
