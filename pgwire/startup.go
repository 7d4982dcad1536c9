// The startup phase: SSLRequest, GSSENCRequest and PostgreSQL 17 direct
// TLS, the server name (SNI) that picks the gateway serving the session,
// the startup packet and which of its parameters reach the backend.

package pgwire

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/tls"
	"crypto/x509"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"sort"
	"strings"

	"github.com/jackc/pgx/v5/pgproto3"
	"github.com/shiftkey/shiftkey"
	"github.com/shiftkey/shiftkey/relay"
)

// startup reads the client's startup packet, after TLS when the client asks
// for it, and returns what it asks for; false when the connection ends here
// (an error answered, or a cancel request).
//
// A startup packet refused (no user, replication, TLS required, a broken
// layout) returns its request with the refusal, for the login's record.
func (s *session) startup(ctx context.Context) (*request, bool) {
	m, err := s.readStartup(ctx)
	if err != nil || m == nil {
		if err != nil {
			s.log.DebugContext(ctx, "startup failed", "error", err)
		}
		if r, ok := errors.AsType[startupRefused](err); ok {
			return &request{params: r.params, user: r.params["user"], refused: r.reason}, false
		}
		return nil, false
	}
	l := &request{params: m.Parameters, user: m.Parameters["user"]}
	s.log.with("cluster", s.t.Cluster, "login", l.user, "tls", s.tls != nil)
	return l, true
}

// prefixConn gives back bytes already read from a connection.
type prefixConn struct {
	net.Conn
	prefix []byte
}

func (c *prefixConn) Read(p []byte) (int, error) {
	if len(c.prefix) > 0 {
		n := copy(p, c.prefix)
		c.prefix = c.prefix[n:]
		return n, nil
	}
	return c.Conn.Read(p)
}

// unreadConn is the client connection with what s.in has read from it and
// not handed out put back in front: the TLS handshake reads from there.
func (s *session) unreadConn() net.Conn {
	if b := s.in.rest(); len(b) > 0 {
		return &prefixConn{Conn: s.client, prefix: b}
	}
	return s.client
}

// tlsReader counts the bytes read from a TLS connection: what crypto/tls
// decrypted beyond them it still holds (TLSTap.Keys).
type tlsReader struct {
	net.Conn
	n *int64
}

func (c *tlsReader) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	*c.n += int64(n)
	return n, err
}

// speakTo makes c the session's client connection, read message by message
// during authentication.
func (s *session) speakTo(c net.Conn) {
	s.client = c
	s.in = &authReader{r: c}
	s.fe = newAuthIO(s.in, c)
}

// startTLS runs the server handshake on conn and switches the session to it.
func (s *session) startTLS(ctx context.Context, conn net.Conn, direct bool) error {
	cfg := s.g.TLS.Clone()
	get := s.g.TLS.GetCertificate
	if get == nil && len(cfg.Certificates) > 0 {
		first := &cfg.Certificates[0]
		get = func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return first, nil }
	}
	if get == nil {
		return errors.New("TLS configured without a certificate")
	}
	// Record the certificate served: channel binding hashes it.
	cfg.GetCertificate = func(h *tls.ClientHelloInfo) (*tls.Certificate, error) {
		c, err := get(h)
		s.serverCert = c
		return c, err
	}
	cfg.NextProtos = []string{"postgresql"}
	var tap *relay.TLSTap
	if s.g.Relay != nil && relay.PlainSocket(s.raw) {
		// The event relay may carry the session on after the login: the
		// tap keeps this connection's traffic secrets (in memory only;
		// cfg is this connection's own copy) and its record counts.
		tap = relay.NewTLSTap(conn)
		cfg.KeyLogWriter = tap.KeyLog()
		conn = tap
	}
	tc := tls.Server(conn, cfg)
	if err := tc.HandshakeContext(ctx); err != nil {
		if !errors.Is(err, context.Canceled) { // not a login the gateway cut
			s.observeTLSFailed(shiftkey.TLSFailureReason(err))
		}
		return fmt.Errorf("tls handshake: %w", err)
	}
	st := tc.ConnectionState()
	if tap != nil {
		tap.Handshaken(st)
	}
	if direct && st.NegotiatedProtocol != "postgresql" {
		// Direct TLS without ALPN could be another protocol in disguise.
		tc.Close()
		s.observeTLSFailed(shiftkey.TLSProtocol)
		return errors.New("direct TLS without ALPN postgresql")
	}
	s.tls = tc
	if tap != nil {
		s.tap = tap
		s.speakTo(&tlsReader{Conn: tc, n: &s.tlsRead})
	} else {
		s.speakTo(tc)
	}
	if s.g.Route != nil && st.ServerName != "" {
		if t, ok := s.g.Route(ctx, st.ServerName); ok {
			s.t = t
		}
	}
	return nil
}

// channelBinding is the tls-server-end-point data: the hash of the server
// certificate with its signature's hash (SHA-256 for shiftkey's ECDSA-SHA256
// and RSA-SHA256 certificates; SHA-384/512 kept as such).
func (s *session) channelBinding() []byte {
	if s.tls == nil || s.serverCert == nil || len(s.serverCert.Certificate) == 0 {
		return nil
	}
	der := s.serverCert.Certificate[0]
	leaf := s.serverCert.Leaf
	if leaf == nil {
		var err error
		if leaf, err = x509.ParseCertificate(der); err != nil {
			return nil
		}
	}
	switch leaf.SignatureAlgorithm {
	case x509.SHA384WithRSA, x509.ECDSAWithSHA384, x509.SHA384WithRSAPSS:
		h := sha512.Sum384(der)
		return h[:]
	case x509.SHA512WithRSA, x509.ECDSAWithSHA512, x509.SHA512WithRSAPSS:
		h := sha512.Sum512(der)
		return h[:]
	}
	h := sha256.Sum256(der)
	return h[:]
}

// protocolMinor is the newest minor version of protocol 3 the gateway
// speaks: 3.2, PostgreSQL 18's.
const protocolMinor = 2

// Pre-startup request codes (in place of a protocol version).
const (
	codeSSLRequest    = 80877103
	codeGSSENCRequest = 80877104
	codeCancelRequest = 80877102
	maxStartupLen     = 10000
)

// startupRefused is a protocol 3 startup packet the gateway refused: a
// login attempt, counted and audited as one.
type startupRefused struct {
	params map[string]string // nil when the packet's layout was broken
	reason string            // a shiftkey.Login reason
	error
}

// readStartup handles the pre-startup packets and returns the
// StartupMessage, or nil when the connection carried a cancel request.
// It reads through s.in, as much as there is at each read: a packet
// usually takes one read (its header, then its body, would take two).
// What a client sent after its startup packet stays in s.in for the
// authentication to read; bytes behind an SSLRequest that TLS would answer
// 'S' are refused.
func (s *session) readStartup(ctx context.Context) (*pgproto3.StartupMessage, error) {
	first := true
	sslAsked, gssAsked := false, false
	for {
		// The length first, as PostgreSQL reads it: a bad one is answered at
		// once, not after waiting for a header a client may never send.
		if err := s.in.fill(4); err != nil {
			return nil, err
		}
		if first && s.in.buf[0] == 0x16 && s.g.TLS != nil {
			// PostgreSQL 17 direct TLS: a TLS ClientHello, no SSLRequest.
			if err := s.startTLS(ctx, s.unreadConn(), true); err != nil {
				return nil, err
			}
			first = false
			continue
		}
		first = false
		n := binary.BigEndian.Uint32(s.in.buf[:4])
		if n < 8 || n > maxStartupLen {
			s.sendError(codeProtocolViolation, "invalid length of startup packet")
			return nil, fmt.Errorf("startup length %d", n)
		}
		if err := s.in.fill(int(n)); err != nil {
			return nil, err
		}
		packet := s.in.take(int(n))
		code := binary.BigEndian.Uint32(packet[4:8])
		body := packet[8:]
		switch {
		// Asked once each, and neither inside TLS: asked again, PostgreSQL
		// takes the request for a startup packet of protocol 1234.x.
		case code == codeSSLRequest && s.tls == nil && !sslAsked, code == codeGSSENCRequest && s.tls == nil && !gssAsked:
			sslAsked = sslAsked || code == codeSSLRequest
			gssAsked = gssAsked || code == codeGSSENCRequest
			if len(body) != 0 {
				s.sendError(codeProtocolViolation, "invalid length of startup packet")
				return nil, errors.New("bad SSLRequest")
			}
			if code == codeSSLRequest && s.g.TLS != nil && s.tls == nil {
				if len(s.in.buf) > 0 {
					// Sent before the answer, so not under the TLS the
					// client asked for: refused as PostgreSQL refuses
					// them (CVE-2021-23214), in place of the 'S'.
					s.sendError(codeProtocolViolation, "received unencrypted data after SSL request")
					return nil, errors.New("data sent behind an SSLRequest")
				}
				if _, err := s.client.Write([]byte{'S'}); err != nil {
					return nil, err
				}
				if err := s.startTLS(ctx, s.unreadConn(), false); err != nil {
					return nil, err
				}
				continue
			}
			// GSSAPI is never offered; TLS only when configured.
			if _, err := s.client.Write([]byte{'N'}); err != nil {
				return nil, err
			}
		case code == codeCancelRequest:
			m := &pgproto3.CancelRequest{}
			if err := m.Decode(packet[4:]); err == nil {
				s.g.forwardCancel(s, m)
			}
			return nil, nil
		case code == codePeerCancel:
			s.g.peerCancel(s.g.logger().With("conn_id", s.id, "remote", s.remote), s.source, body)
			return nil, nil
		case code>>16 == 3:
			// Parsed here, not by pgproto3, which refuses minor versions
			// other than 0 and 2: every 3.x above 3.2 is negotiated to 3.2
			// below (PostgreSQL 19's libpq asks for 3.9999 to check that).
			params, err := parseStartupParams(body)
			if err != nil {
				s.sendError(codeProtocolViolation, "invalid startup packet layout: "+err.Error())
				return nil, startupRefused{nil, shiftkey.LoginProtocol, err}
			}
			m := &pgproto3.StartupMessage{ProtocolVersion: pgproto3.ProtocolVersionNumber, Parameters: params}
			var unknown []string
			for k := range m.Parameters {
				if strings.HasPrefix(k, "_pq_.") {
					unknown = append(unknown, k)
					delete(m.Parameters, k)
				}
			}
			// 3.2 (PostgreSQL 18) differs from 3.0 only in its cancel keys,
			// which may be longer than 4 bytes: the gateway's own are
			// (registerCancel), whatever the backend speaks. As in
			// PostgreSQL 18, the client's version is taken up to 3.2 (3.1,
			// never released, as 3.0 with its 4-byte key).
			s.minor = min(code&0xffff, protocolMinor)
			if code&0xffff > protocolMinor || len(unknown) > 0 {
				// The field is a whole version (3.2 is 0x30002), as PostgreSQL
				// sends it and libpq 18 reads it: libpq refuses a bare minor
				// as a downgrade below 3.0.
				s.fe.Send(&pgproto3.NegotiateProtocolVersion{NewestMinorProtocol: 3<<16 | s.minor, UnrecognizedOptions: unknown})
			}
			if m.Parameters["user"] == "" {
				s.sendError(codeInvalidAuthorization, "no PostgreSQL user name specified in startup packet")
				return nil, startupRefused{params, shiftkey.LoginProtocol, errors.New("no user")}
			}
			if r, ok := m.Parameters["replication"]; ok && !falseParam(r) {
				s.sendError(codeFeatureNotSupported, "replication connections are not supported by the gateway")
				return nil, startupRefused{params, shiftkey.LoginProtocol, errors.New("replication requested")}
			}
			if s.g.RequireTLS && s.tls == nil {
				s.sendError(codeInvalidAuthorization, "this endpoint requires TLS (sslmode=require or stricter)")
				return nil, startupRefused{params, shiftkey.LoginTLSRequired, errors.New("TLS required")}
			}
			return m, nil
		default:
			s.sendError(codeFeatureNotSupported, fmt.Sprintf("unsupported frontend protocol %d.%d: server supports 3.0 to 3.%d", code>>16, code&0xffff, protocolMinor))
			return nil, fmt.Errorf("unsupported protocol %d.%d", code>>16, code&0xffff)
		}
	}
}

// parseStartupParams reads a startup packet's parameters (after its length and
// version): name and value pairs of NUL-terminated strings, then a NUL.
func parseStartupParams(b []byte) (map[string]string, error) {
	params := map[string]string{}
	for {
		if len(b) == 0 {
			return nil, errors.New("expected terminator as last byte")
		}
		if b[0] == 0 {
			if len(b) != 1 {
				return nil, errors.New("data after the terminator")
			}
			return params, nil
		}
		k, rest, ok := bytes.Cut(b, []byte{0})
		if !ok {
			return nil, errors.New("expected terminator as last byte")
		}
		v, rest, ok := bytes.Cut(rest, []byte{0})
		if !ok {
			return nil, fmt.Errorf("parameter %q has no value", k)
		}
		params[string(k)] = string(v)
		b = rest
	}
}

// forwardedParams are the session settings a client may give at startup,
// directly or as "-c name=value" in "options", that reach the backend.
// Everything else is left out: "options" can carry "-c role=…" or
// "-c session_authorization=…", a client-set search_path is not the
// session's to choose at login, and drivers send parameters (Redshift's
// client_protocol_version…) that PostgreSQL would refuse. The session can
// still SET what it is allowed to once it is in.
var forwardedParams = map[string]bool{
	"application_name":   true,
	"client_encoding":    true,
	"datestyle":          true,
	"timezone":           true,
	"extra_float_digits": true,
	"intervalstyle":      true,
	// Drivers set these at startup so that a session cannot hang for ever
	// (node-postgres, asyncpg, PGOPTIONS); leaving them out silently would
	// leave sessions without the limit their owner asked for.
	"statement_timeout":                   true,
	"lock_timeout":                        true,
	"idle_in_transaction_session_timeout": true,
}

// forwardedList names forwardedParams for the client's warning.
var forwardedList = func() string {
	names := make([]string, 0, len(forwardedParams))
	for k := range forwardedParams {
		names = append(names, k)
	}
	sort.Strings(names)
	return strings.Join(names, ", ")
}()

// falseParam reports whether a boolean startup parameter says no, as
// PostgreSQL reads one.
func falseParam(v string) bool {
	v = strings.ToLower(strings.TrimSpace(v))
	return v != "" && (strings.HasPrefix("false", v) || strings.HasPrefix("no", v)) || v == "off" || v == "of" || v == "0"
}

// driverParams are what Redshift's drivers (redshift_connector, the
// Redshift JDBC and ODBC drivers) tell Redshift about themselves and their
// identity provider (reference/redshift-drivers.md); PostgreSQL has no such
// settings, so they are dropped without a word. A packet carrying one of
// them comes from a Redshift driver (redshiftDriver).
var driverParams = map[string]bool{
	"client_protocol_version":  true,
	"driver_version":           true,
	"os_version":               true,
	"plugin_name":              true,
	"idp_type":                 true,
	"provider_name":            true,
	"token_type":               true,
	"identity_namespace":       true,
	"idc_client_display_name":  true,
	"driver_discovery_version": true,
}

// driverFamily reports whether name (lower case) is of a family the
// Redshift drivers add to from release to release (driver_*, plugin_*,
// idp_*, *_version): no setting a user means, so dropped silently too,
// where search_path, role and the like are named in the warning.
func driverFamily(name string) bool {
	return driverParams[name] || strings.HasPrefix(name, "driver_") || strings.HasPrefix(name, "plugin_") ||
		strings.HasPrefix(name, "idp_") || strings.HasSuffix(name, "_version")
}

// redshiftDriver reports whether a startup packet comes from one of AWS's
// Redshift drivers: only they send Redshift's own parameters.
func redshiftDriver(params map[string]string) bool {
	for k := range params {
		if driverParams[strings.ToLower(k)] {
			return true
		}
	}
	return false
}

// Redshift's wire protocol versions a driver asks for in
// client_protocol_version: 0 is PostgreSQL's own; 1 and 2 add result
// metadata and binary transfers the backend cannot produce. Only 0 is
// confirmed (server_protocol_version); a driver asking more hears nothing
// and falls back to 0 by itself.
const supportedProtocolVersion = "0"

// startupParams sorts a startup message's parameters: the settings to
// open the backend session with, and the names of the ones left out (for
// a warning to the client), "(options)" marking those given in "options".
// user, database and replication are the caller's.
func startupParams(params map[string]string) (forward map[string]string, ignored []string) {
	forward = map[string]string{}
	for k, v := range params {
		name := strings.ToLower(k)
		switch {
		case k == "user" || k == "database" || k == "replication" || k == "options": // exact, as in PostgreSQL
		case forwardedParams[name]:
			forward[k] = v
		case !driverFamily(name):
			ignored = append(ignored, k)
		}
	}
	// A setting given directly wins over the same one in options, as in
	// PostgreSQL.
	for _, kv := range optionSettings(params["options"]) {
		name := strings.ToLower(kv[0])
		if !forwardedParams[name] {
			ignored = append(ignored, kv[0]+" (options)")
			continue
		}
		if !hasParam(forward, name) {
			forward[name] = kv[1]
		}
	}
	sort.Strings(ignored)
	return forward, ignored
}

func hasParam(m map[string]string, lower string) bool {
	for k := range m {
		if strings.ToLower(k) == lower {
			return true
		}
	}
	return false
}

// optionSettings reads "options" as PostgreSQL does: words split at
// unescaped white space (a backslash takes the next character as is), each
// "-c name=value" or "--name=value" one setting, dashes in a long option's
// name read as underscores. Any other switch (-d, -B…) is returned with an
// empty value under its own name, so that it is reported as left out.
func optionSettings(options string) [][2]string {
	var words []string
	var w strings.Builder
	inWord := false
	for i := 0; i < len(options); i++ {
		c := options[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v':
			if inWord {
				words = append(words, w.String())
				w.Reset()
				inWord = false
			}
			continue
		case c == '\\' && i+1 < len(options):
			i++
			c = options[i]
		}
		w.WriteByte(c)
		inWord = true
	}
	if inWord {
		words = append(words, w.String())
	}
	var out [][2]string
	for i := 0; i < len(words); i++ {
		word := words[i]
		var setting string
		switch {
		case word == "-c" && i+1 < len(words):
			i++
			setting = words[i]
		case strings.HasPrefix(word, "-c") && len(word) > 2:
			setting = word[2:]
		case strings.HasPrefix(word, "--") && len(word) > 2:
			name, value, _ := strings.Cut(word[2:], "=")
			setting = strings.ReplaceAll(name, "-", "_") + "=" + value
		default:
			out = append(out, [2]string{word, ""})
			continue
		}
		name, value, ok := strings.Cut(setting, "=")
		if !ok || name == "" {
			out = append(out, [2]string{setting, ""})
			continue
		}
		out = append(out, [2]string{name, value})
	}
	return out
}
