// Package pgwire is the gateway: a PostgreSQL protocol 3.0 server that
// authenticates clients with SCRAM-SHA-256 against the live credentials of
// their login name, then connects them to the cluster's backend as the
// mapped role and relays bytes.
package pgwire

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/subtle"
	"crypto/tls"
	"crypto/x509"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgproto3"
	"github.com/shiftkey/shiftkey"
	"github.com/shiftkey/shiftkey/pgbackend"
	"github.com/shiftkey/shiftkey/scram"
)

// DefaultAuthTimeout bounds the time from accept to a finished login.
const DefaultAuthTimeout = 10 * time.Second

// SQLSTATEs the gateway sends itself.
const (
	codeInvalidPassword      = "28P01"
	codeInvalidAuthorization = "28000"
	codeProtocolViolation    = "08P01"
	codeFeatureNotSupported  = "0A000"
	codeConnectionFailure    = "08006"
	codeTooManyConnections   = "53300"
	codeAdminShutdown        = "57P01"
)

// Gateway serves one cluster's endpoint.
type Gateway struct {
	Cluster     string
	Credentials shiftkey.CredentialStore
	Backend     *pgbackend.Backend
	DefaultDB   string
	Logger      *slog.Logger     // nil → discard
	Now         func() time.Time // nil → time.Now
	AuthTimeout time.Duration    // 0 → DefaultAuthTimeout
	// Secret keys the decoy salts sent for unknown logins, so that the
	// exchange looks the same whether or not a login has credentials.
	Secret []byte
	// TLS, when set, answers SSLRequest with 'S' and accepts PostgreSQL 17
	// direct TLS (ALPN "postgresql"); SCRAM-SHA-256-PLUS is then offered.
	// Its GetCertificate is called per connection.
	TLS *tls.Config
	// RequireTLS refuses clients that do not use TLS.
	RequireTLS bool
	// Route, when set, maps a TLS server name (SNI) to the gateway whose
	// credentials and backend the session uses (custom domains).
	Route func(ctx context.Context, serverName string) (*Gateway, bool)
	// AllowCleartext makes the gateway ask TLS clients for the password in
	// cleartext (for drivers without SCRAM); never without TLS.
	AllowCleartext bool
	// PoolSize, when above 0, keeps up to this many backend connections per
	// role, database and forwarded startup parameters after sessions that
	// end cleanly (Terminate while idle), resets them with DISCARD ALL and
	// hands them to the next session with the same three. The parameters
	// are part of the key because a backend opened with them returns to
	// exactly them on DISCARD ALL (they are its reset values), so reuse
	// needs no SET round trip and nothing of a session carries over. A
	// login refused for a connection limit (SQLSTATE 53300) closes idle
	// pooled backends, of its role and database first, and tries again.
	PoolSize int
	// PoolIdleTimeout closes pooled connections unused this long (0: 1 min).
	PoolIdleTimeout time.Duration
	// MaxConnections caps concurrent client connections (0:
	// DefaultMaxConnections); the next one is refused with SQLSTATE 53300.
	MaxConnections int
	// MaxConnectionsPerSource caps the connections of one client address
	// (0: DefaultMaxConnectionsPerSource).
	MaxConnectionsPerSource int
	// MaxAuthPerSource caps the connections of one client address that
	// have not finished logging in (0: DefaultMaxAuthPerSource): past it a
	// new one is refused before its startup packet is read, so a flood of
	// wrong passwords or silent connections holds at most this many
	// goroutines per address.
	MaxAuthPerSource int
	// IdleTimeout ends sessions idle outside a transaction for this long
	// (PostgreSQL's idle_session_timeout on the backend session; 0: off).
	IdleTimeout time.Duration
	// MaxSessionLifetime ends any session this long after login (0: off):
	// sessions otherwise outlive their credential, as in Redshift.
	MaxSessionLifetime time.Duration
	// Relay, when set, moves the bytes of plaintext sessions (plain socket
	// to the client and to the backend) on its event loops; other sessions,
	// and all when nil, use a goroutine per direction.
	Relay *EventRelay

	throttle throttle
	misses   sourceCounts // cancel requests that named no session (cancelMissLimit)
	pool     pool
	sleep    func(time.Duration) // nil → time.Sleep; tests record instead
	refusals refusals

	mu       sync.Mutex
	closed   bool
	ln       []net.Listener
	sessions map[*session]struct{}
	sources  map[string]*sourceUse // connections per client address
	cancels  map[uint64]*session
	wg       sync.WaitGroup
	nextID   atomic.Uint64
}

func (g *Gateway) logger() *slog.Logger {
	if g.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return g.Logger
}

func (g *Gateway) now() time.Time {
	if g.Now != nil {
		return g.Now()
	}
	return time.Now()
}

// Serve accepts connections on l until Close.
func (g *Gateway) Serve(l net.Listener) error {
	g.mu.Lock()
	if g.closed {
		g.mu.Unlock()
		return net.ErrClosed
	}
	g.ln = append(g.ln, l)
	if g.sessions == nil {
		g.sessions = map[*session]struct{}{}
		g.cancels = map[uint64]*session{}
	}
	g.mu.Unlock()
	var backoff time.Duration
	for {
		c, err := l.Accept()
		if err != nil {
			if g.isClosed() {
				return nil
			}
			if !retryAccept(err) {
				return err
			}
			// Out of descriptors (or another passing failure): wait and
			// retry, as net/http does, rather than stop serving for good.
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			g.logger().Warn("accept failed; retrying", "error", err, "retry_in", backoff)
			time.Sleep(backoff)
			continue
		}
		backoff = 0
		source := sourceOf(c.RemoteAddr())
		s := &session{g: g, t: g, raw: c, client: c, id: g.nextID.Add(1), source: source}
		g.mu.Lock()
		if g.closed {
			g.mu.Unlock()
			c.Close()
			return nil
		}
		if msg := g.admitLocked(s); msg != "" {
			g.mu.Unlock()
			g.refuse(c, msg)
			continue
		}
		g.wg.Add(1)
		g.mu.Unlock()
		go func() {
			if !s.run() {
				g.sessionDone(s)
			}
		}()
	}
}

// Shutdown stops accepting and lets sessions finish until ctx is done, then
// closes the rest. It returns how many sessions it had to cut.
func (g *Gateway) Shutdown(ctx context.Context) int {
	g.mu.Lock()
	g.closed = true
	g.refusals.stop()
	for _, l := range g.ln {
		l.Close()
	}
	g.mu.Unlock()
	t := time.NewTicker(50 * time.Millisecond)
	defer t.Stop()
	for {
		g.mu.Lock()
		n := len(g.sessions)
		g.mu.Unlock()
		if n == 0 {
			g.wg.Wait()
			g.closePool()
			return 0
		}
		select {
		case <-ctx.Done():
			g.Close()
			return n
		case <-t.C:
		}
	}
}

// Close stops accepting, ends every session and waits for them.
func (g *Gateway) Close() error {
	g.mu.Lock()
	g.closed = true
	g.refusals.stop()
	for _, l := range g.ln {
		l.Close()
	}
	for s := range g.sessions {
		s.close()
	}
	g.mu.Unlock()
	g.wg.Wait()
	g.closePool()
	return nil
}

type session struct {
	g       *Gateway // accepted the connection (and owns its cancel key)
	t       *Gateway // whose credentials and backend serve it (SNI routing)
	id      uint64
	source  string            // the client's address (sourceOf)
	authing bool              // counted in its source's auths (g.mu)
	raw     net.Conn          // the accepted connection; closing it ends everything
	client  net.Conn          // raw, or the TLS connection over it
	fe      *pgproto3.Backend // speaks to the client
	in      *authReader       // what fe reads during authentication

	tls        *tls.Conn        // non-nil once TLS is up
	serverCert *tls.Certificate // the certificate served, for channel binding

	mu       sync.Mutex
	backend  *pgbackend.Conn
	kill     func() // ends the session on the event relay
	closing  bool
	cancelID uint64
	cancel   *pgproto3.BackendKeyData
}

func (s *session) close() {
	s.raw.Close()
	s.mu.Lock()
	s.closing = true
	if s.backend != nil {
		s.backend.Close()
	}
	kill := s.kill
	s.mu.Unlock()
	if kill != nil {
		kill()
	}
}

func (s *session) sendError(code, msg string) {
	s.fe.Send(&pgproto3.ErrorResponse{Severity: "FATAL", SeverityUnlocalized: "FATAL", Code: code, Message: msg})
	s.fe.Flush()
}

// run serves one connection. It returns true when it handed the session to
// the event relay, which then ends it (see finish); otherwise the session
// is over when it returns.
func (s *session) run() (handedOff bool) {
	// What ending the session undoes, last first; run does it on return,
	// unless the event relay took the session over.
	var cleanups []func()
	defer func() {
		if !handedOff {
			runCleanups(cleanups)
		}
	}()
	cleanups = append(cleanups, func() { s.client.Close() })
	g := s.g
	log := g.logger().With("conn_id", s.id, "remote", s.client.RemoteAddr().String())
	timeout := g.AuthTimeout
	if timeout == 0 {
		timeout = DefaultAuthTimeout
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	cleanups = append(cleanups, cancel)
	s.client.SetDeadline(time.Now().Add(timeout))
	s.speakTo(s.client)

	startup, err := s.readStartup(ctx)
	if err != nil || startup == nil {
		if err != nil {
			log.DebugContext(ctx, "startup failed", "error", err)
		}
		return
	}
	t := s.t
	user := startup.Parameters["user"]
	log = log.With("cluster", t.Cluster, "login", user, "tls", s.tls != nil)
	cred, err := s.authenticate(ctx, startup)
	if err != nil {
		log.InfoContext(ctx, "login failed", "reason", err.Error())
		return
	}
	// What the client sent after its last authentication message goes to
	// the backend first; nothing more is read until the relay starts.
	pipelined := s.in.rest()
	db := startup.Parameters["database"]
	if db == "" {
		db = cred.DBName
		if db == "" {
			db = t.DefaultDB
		}
	}
	// Database names are case-sensitive in a startup packet: a credential
	// for dev does not open "DEV".
	if cred.DBName != "" && db != cred.DBName {
		s.sendError(codeInvalidAuthorization, fmt.Sprintf("credential is not valid for database %q", db))
		log.InfoContext(ctx, "login failed", "reason", "database not allowed", "credential_id", cred.ID, "database", db)
		return
	}
	log = log.With("credential_id", cred.ID, "db_user", cred.DBUser, "database", db)

	lease, notices, err := t.Backend.Prepare(ctx, cred.DBUser, cred.AutoCreate, cred.DBGroups)
	if refused, ok := errors.AsType[*pgbackend.RefusedError](err); ok {
		s.sendError(codeInvalidAuthorization, refused.Error())
		log.WarnContext(ctx, "login refused", "reason", refused.Reason, "db_user", refused.Role)
		return
	}
	if err != nil {
		log.ErrorContext(ctx, "backend provisioning failed", "error", err)
		s.sendError(codeConnectionFailure, "could not prepare the session on the backend")
		return
	}
	cleanups = append(cleanups, func() { lease.Release(context.Background()) })

	clientParams, ignored := startupParams(startup.Parameters)
	pooling := t.PoolSize > 0
	var key string // the pool's name for this session's backends
	if pooling {
		key = poolKey(cred.DBUser, db, clientParams)
	}
	// Plaintext clients go to the event relay when there is one; their
	// pooled backends stay bare sockets the relay resets itself.
	// (A session with pipelined bytes takes the goroutine relay, which can
	// start with them; no common client sends any.)
	event := g.Relay != nil && s.tls == nil && plainSocket(s.raw) && len(pipelined) == 0
	be, reused, err := s.backendConn(ctx, cred.DBUser, db, clientParams, key, event)
	if err != nil {
		if se, ok := errors.AsType[*pgbackend.StartupError](err); ok {
			s.fe.Send(se.Response)
			s.fe.Flush()
			log.InfoContext(ctx, "login failed", "reason", "backend refused", "sqlstate", se.Response.Code)
			return
		}
		log.ErrorContext(ctx, "backend connect failed", "error", err)
		s.sendError(codeConnectionFailure, "could not connect to the backend")
		return
	}
	event = event && (be.conn == nil || plainSocket(be.conn.Conn))
	current := be.params
	s.mu.Lock()
	s.backend = be.conn
	s.mu.Unlock()
	// owned: the backend is still this goroutine's to close (not handed to
	// the event relay); announced: the relay called pool.returning for it,
	// so putPooled must follow, which resets it or closes it.
	owned, announced := true, false
	cleanups = append(cleanups, func() {
		switch {
		case !owned:
		case announced:
			t.putPooled(key, be.conn, current)
		default:
			be.close()
		}
	})

	s.fe.Send(&pgproto3.AuthenticationOk{})
	for _, n := range notices {
		s.fe.Send(&pgproto3.NoticeResponse{Severity: "NOTICE", SeverityUnlocalized: "NOTICE", Code: "01000", Message: n.Message})
	}
	if len(ignored) > 0 {
		s.fe.Send(&pgproto3.NoticeResponse{Severity: "WARNING", SeverityUnlocalized: "WARNING", Code: "01000",
			Message: "startup settings not passed to the server: " + strings.Join(ignored, ", "),
			Detail:  "The gateway passes on only " + forwardedList + "; the session can SET others."})
	}
	names := make([]string, 0, len(current))
	for k := range current {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		s.fe.Send(&pgproto3.ParameterStatus{Name: k, Value: current[k]})
	}
	if be.keyData != nil {
		s.fe.Send(g.registerCancel(s, be.keyData))
		cleanups = append(cleanups, func() { g.unregisterCancel(s) })
	}
	s.fe.Send(&pgproto3.ReadyForQuery{TxStatus: 'I'})
	if err := s.fe.Flush(); err != nil {
		return
	}
	s.client.SetDeadline(time.Time{})
	g.authDone(s)
	start := time.Now()
	// The audit record is written when the session ends; this one is for
	// following a session live.
	log.DebugContext(ctx, "session started", "groups", strings.Join(cred.DBGroups, ","))
	var cut atomic.Bool
	if g.MaxSessionLifetime > 0 {
		timer := time.AfterFunc(g.MaxSessionLifetime, func() {
			cut.Store(true)
			s.close()
		})
		cleanups = append(cleanups, func() { timer.Stop() })
	}
	st := &relayState{txStatus: 'I', params: current}
	if pooling {
		// Announced the moment the client leaves clean, so that a session
		// reconnecting at once waits for this backend (takePooled).
		st.returning = func() { t.pool.returning(key) }
	}
	var up, down int64
	switch {
	case event:
		var reset func(fd int)
		if pooling {
			keyData := be.keyData
			reset = func(fd int) {
				if fd < 0 {
					t.keepPooled(key, nil)
					return
				}
				t.keepPooled(key, &pooledConn{fd: fd, keyData: keyData, params: st.params, idleSince: time.Now()})
			}
		}
		owned = false
		// From here the loop owns the session: it calls end when the
		// session is over, and this goroutine is gone. The audit record and
		// the cleanups (a revoke's round trips) run off the loop, so that a
		// log sink that blocks, or a slow backend, stalls no other session.
		end := func(up, down int64) {
			go func() {
				s.finish(log, cred, reused, start, &cut, up, down)
				runCleanups(cleanups)
				g.sessionDone(s)
			}()
		}
		ev, err := g.Relay.start(s.raw, be, st, reset, end)
		if err != nil {
			log.Error("event relay refused the session", "error", err)
			return false
		}
		s.mu.Lock()
		s.kill = ev.kill
		closing := s.closing
		s.mu.Unlock()
		if closing {
			ev.kill()
		}
		return true
	}
	client := s.client
	if len(pipelined) > 0 {
		client = &prefixConn{Conn: client, prefix: pipelined}
	}
	if pooling {
		up, down, announced = framedRelay(client, be.conn.Conn, st)
	} else {
		up, down = relay(client, be.conn.Conn)
	}
	s.finish(log, cred, reused, start, &cut, up, down)
	return false
}

// finish writes the session's audit record: who, with which credential,
// as whom, where, with which groups, when, how much, and why it ended.
func (s *session) finish(log *slog.Logger, cred *shiftkey.Credential, reused bool, start time.Time, cut *atomic.Bool, up, down int64) {
	reason := "closed"
	switch {
	case cut.Load():
		reason = "max_session_lifetime"
	case s.g.isClosed():
		reason = "gateway_shutdown"
	}
	end := time.Now()
	log.Info("session ended", "audit", "session", "principal", cred.PrincipalARN, "groups", strings.Join(cred.DBGroups, ","), "backend_reused", reused,
		"start", start.UTC().Format(time.RFC3339Nano), "end", end.UTC().Format(time.RFC3339Nano),
		"duration", end.Sub(start).Round(time.Millisecond), "bytes_in", up, "bytes_out", down, "end_reason", reason)
}

func runCleanups(fs []func()) {
	for i := len(fs) - 1; i >= 0; i-- {
		fs[i]()
	}
}

// sessionDone forgets an ended session.
func (g *Gateway) sessionDone(s *session) {
	g.mu.Lock()
	delete(g.sessions, s)
	g.leaveLocked(s)
	g.mu.Unlock()
	g.wg.Done()
}

func (g *Gateway) sessionCount() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return len(g.sessions)
}

func (g *Gateway) isClosed() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.closed
}

// backendConn gives the session a backend connection as role, opened with
// the client's forwarded parameters: a pooled one under key when pooling
// (key not empty), else a new one. A pooled bare socket is turned into a Go connection unless the
// session goes to the event relay. The result's params are the
// ParameterStatus set to report to the client, the session's own.
func (s *session) backendConn(ctx context.Context, role, db string, clientParams map[string]string, key string, event bool) (*pooledConn, bool, error) {
	t := s.t
	if key != "" {
		for {
			// A taken connection, params included, is this session's alone:
			// the session that pooled it is done with it.
			pc := t.takePooled(key)
			if pc == nil {
				break
			}
			if pc.conn != nil || event {
				return pc, true, nil
			}
			nc, err := fdConn(pc.fd)
			if err != nil {
				continue
			}
			pc.conn, pc.fd = &pgbackend.Conn{Conn: nc, KeyData: pc.keyData}, -1
			return pc, true, nil
		}
	}
	startParams := maps.Clone(clientParams)
	if t.IdleTimeout > 0 {
		startParams["idle_session_timeout"] = strconv.FormatInt(t.IdleTimeout.Milliseconds(), 10)
	}
	for attempt := 1; ; attempt++ {
		bc, err := t.Backend.Connect(ctx, role, db, startParams)
		if err == nil {
			return &pooledConn{conn: bc, fd: -1, keyData: bc.KeyData, params: paramMap(bc.Params)}, false, nil
		}
		// PostgreSQL is at a connection limit (max_connections, or the
		// database's or role's CONNECTION LIMIT) and idle backends this
		// gateway pools may be what fills it: close one (of the same role
		// and database first) and try again once its process has had a
		// moment to exit.
		se, ok := errors.AsType[*pgbackend.StartupError](err)
		if !ok || se.Response.Code != codeTooManyConnections || attempt == maxEvictions || !t.evictIdle(role, db) {
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

func paramMap(ps []*pgproto3.ParameterStatus) map[string]string {
	m := make(map[string]string, len(ps))
	for _, p := range ps {
		m[p.Name] = p.Value
	}
	return m
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

// speakTo makes c the session's client connection, read message by message
// during authentication.
func (s *session) speakTo(c net.Conn) {
	s.client = c
	s.in = &authReader{r: c}
	s.fe = pgproto3.NewBackend(s.in, c)
	s.fe.SetMaxBodyLen(64 << 10)
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
	tc := tls.Server(conn, cfg)
	if err := tc.HandshakeContext(ctx); err != nil {
		return fmt.Errorf("tls handshake: %w", err)
	}
	st := tc.ConnectionState()
	if direct && st.NegotiatedProtocol != "postgresql" {
		// Direct TLS without ALPN could be another protocol in disguise.
		tc.Close()
		return errors.New("direct TLS without ALPN postgresql")
	}
	s.tls = tc
	s.speakTo(tc)
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

// Pre-startup request codes (in place of a protocol version).
const (
	codeSSLRequest    = 80877103
	codeGSSENCRequest = 80877104
	codeCancelRequest = 80877102
	maxStartupLen     = 10000
)

// readStartup handles the pre-startup packets and returns the
// StartupMessage, or nil when the connection carried a cancel request. It
// reads the client socket directly, so nothing is buffered past the
// startup packet.
func (s *session) readStartup(ctx context.Context) (*pgproto3.StartupMessage, error) {
	first := true
	for {
		// Every first packet is at least 8 bytes (a startup packet's header,
		// or a TLS record's header and more), so reading 8 at once never
		// waits for bytes a client holds back.
		var hdr [8]byte
		if _, err := io.ReadFull(s.client, hdr[:]); err != nil {
			return nil, err
		}
		if first && hdr[0] == 0x16 && s.g.TLS != nil {
			// PostgreSQL 17 direct TLS: a TLS ClientHello, no SSLRequest.
			if err := s.startTLS(ctx, &prefixConn{Conn: s.client, prefix: append([]byte(nil), hdr[:]...)}, true); err != nil {
				return nil, err
			}
			first = false
			continue
		}
		first = false
		n := binary.BigEndian.Uint32(hdr[:4])
		code := binary.BigEndian.Uint32(hdr[4:])
		if n < 8 || n > maxStartupLen {
			s.sendError(codeProtocolViolation, "invalid length of startup packet")
			return nil, fmt.Errorf("startup length %d", n)
		}
		body := make([]byte, n-8)
		if _, err := io.ReadFull(s.client, body); err != nil {
			return nil, err
		}
		switch {
		case code == codeSSLRequest || code == codeGSSENCRequest:
			if len(body) != 0 {
				s.sendError(codeProtocolViolation, "invalid length of startup packet")
				return nil, errors.New("bad SSLRequest")
			}
			if code == codeSSLRequest && s.g.TLS != nil && s.tls == nil {
				if _, err := s.client.Write([]byte{'S'}); err != nil {
					return nil, err
				}
				if err := s.startTLS(ctx, s.client, false); err != nil {
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
			if err := m.Decode(append(hdr[4:8:8], body...)); err == nil {
				s.g.forwardCancel(s, m)
			}
			return nil, nil
		case code>>16 == 3:
			m := &pgproto3.StartupMessage{}
			if err := m.Decode(append(hdr[4:8:8], body...)); err != nil {
				s.sendError(codeProtocolViolation, "invalid startup packet layout")
				return nil, err
			}
			var unknown []string
			for k := range m.Parameters {
				if strings.HasPrefix(k, "_pq_.") {
					unknown = append(unknown, k)
					delete(m.Parameters, k)
				}
			}
			if code&0xffff > 0 || len(unknown) > 0 {
				s.fe.Send(&pgproto3.NegotiateProtocolVersion{NewestMinorProtocol: 0, UnrecognizedOptions: unknown})
			}
			if m.Parameters["user"] == "" {
				s.sendError(codeInvalidAuthorization, "no PostgreSQL user name specified in startup packet")
				return nil, errors.New("no user")
			}
			if r, ok := m.Parameters["replication"]; ok && !falseParam(r) {
				s.sendError(codeFeatureNotSupported, "replication connections are not supported by the gateway")
				return nil, errors.New("replication requested")
			}
			if s.g.RequireTLS && s.tls == nil {
				s.sendError(codeInvalidAuthorization, "this endpoint requires TLS (sslmode=require or stricter)")
				return nil, errors.New("TLS required")
			}
			return m, nil
		case code>>16 >= 1 && code>>16 <= 2:
			s.sendError(codeFeatureNotSupported, fmt.Sprintf("unsupported frontend protocol %d.%d: server supports 3.0", code>>16, code&0xffff))
			return nil, errors.New("unsupported protocol")
		default:
			s.sendError(codeProtocolViolation, "invalid startup packet")
			return nil, fmt.Errorf("unknown startup code %d", code)
		}
	}
}

// receive reads the next client message during authentication; a message
// that does not decode is answered with 08P01.
func (s *session) receive() (pgproto3.FrontendMessage, error) {
	msg, err := s.fe.Receive()
	if err != nil {
		var ne net.Error
		if !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.As(err, &ne) && !errors.Is(err, net.ErrClosed) {
			s.sendError(codeProtocolViolation, "invalid message during authentication")
		}
		return nil, err
	}
	return msg, nil
}

// authenticate runs SCRAM-SHA-256 against the live credentials of the
// login and returns the one the client proved it holds. Every failure
// answers 28P01 with the same message, so a client cannot tell an unknown
// login from a wrong or expired password.
func (s *session) authenticate(ctx context.Context, startup *pgproto3.StartupMessage) (*shiftkey.Credential, error) {
	g := s.t
	user := startup.Parameters["user"]
	fail := func(reason string) (*shiftkey.Credential, error) {
		// Repeated failures from one address are answered ever later.
		if d := s.g.throttle.fail(sourceOf(s.raw.RemoteAddr()), time.Now()); d > 0 {
			g.logger().WarnContext(ctx, "login failures throttled", "remote", s.raw.RemoteAddr().String(), "delay", d)
			if s.g.sleep != nil {
				s.g.sleep(d)
			} else {
				time.Sleep(d)
			}
		}
		s.sendError(codeInvalidPassword, fmt.Sprintf("password authentication failed for user %q", user))
		return nil, errors.New(reason)
	}
	creds, salt, ok, err := g.Credentials.LiveCredentials(ctx, g.Cluster, user, g.now())
	if err != nil {
		g.logger().ErrorContext(ctx, "credential lookup failed", "error", err)
		s.sendError(codeConnectionFailure, "could not look up credentials")
		return nil, err
	}
	if !ok {
		salt = g.decoySalt(user)
	}
	if s.g.AllowCleartext && s.tls != nil {
		return s.cleartext(creds, salt, fail)
	}
	srv := &scram.Server{Salt: salt.Salt, Iterations: salt.Iterations, ChannelBinding: s.channelBinding()}
	mechanisms := []string{scram.Mechanism}
	if srv.ChannelBinding != nil {
		mechanisms = []string{scram.MechanismPlus, scram.Mechanism}
	}
	s.fe.Send(&pgproto3.AuthenticationSASL{AuthMechanisms: mechanisms})
	if err := s.fe.Flush(); err != nil {
		return nil, err
	}
	if err := s.fe.SetAuthType(pgproto3.AuthTypeSASL); err != nil {
		return nil, err
	}
	msg, err := s.receive()
	if err != nil {
		return nil, fmt.Errorf("read SASLInitialResponse: %w", err)
	}
	first, ok := msg.(*pgproto3.SASLInitialResponse)
	if !ok {
		s.sendError(codeProtocolViolation, fmt.Sprintf("expected SASL response, got %T", msg))
		return nil, errors.New("protocol violation")
	}
	if first.AuthMechanism != scram.Mechanism && (first.AuthMechanism != scram.MechanismPlus || srv.ChannelBinding == nil) {
		s.sendError(codeProtocolViolation, "client selected an invalid SASL authentication mechanism")
		return nil, errors.New("bad mechanism")
	}
	serverFirst, err := srv.Start(first.AuthMechanism, first.Data)
	if err != nil {
		s.sendError(codeProtocolViolation, "malformed SCRAM message")
		return nil, err
	}
	s.fe.Send(&pgproto3.AuthenticationSASLContinue{Data: serverFirst})
	if err := s.fe.Flush(); err != nil {
		return nil, err
	}
	if err := s.fe.SetAuthType(pgproto3.AuthTypeSASLContinue); err != nil {
		return nil, err
	}
	msg, err = s.receive()
	if err != nil {
		return nil, fmt.Errorf("read SASLResponse: %w", err)
	}
	final, ok := msg.(*pgproto3.SASLResponse)
	if !ok {
		s.sendError(codeProtocolViolation, fmt.Sprintf("expected SASL response, got %T", msg))
		return nil, errors.New("protocol violation")
	}
	keys := make([]scram.Keys, len(creds))
	for i, c := range creds {
		copy(keys[i].StoredKey[:], c.StoredKey)
		copy(keys[i].ServerKey[:], c.ServerKey)
	}
	serverFinal, idx, err := srv.Finish(final.Data, keys)
	if errors.Is(err, scram.ErrAuthFailed) {
		if len(creds) == 0 {
			return fail("no live credential")
		}
		return fail("wrong password")
	}
	if err != nil {
		s.sendError(codeProtocolViolation, "malformed SCRAM message")
		return nil, err
	}
	s.fe.Send(&pgproto3.AuthenticationSASLFinal{Data: serverFinal})
	return creds[idx], nil
}

// cleartext asks for the password itself (TLS only) and checks it against
// every live credential: one PBKDF2 with the login's salt, then a
// constant-time comparison per credential.
func (s *session) cleartext(creds []*shiftkey.Credential, salt shiftkey.LoginSalt, fail func(string) (*shiftkey.Credential, error)) (*shiftkey.Credential, error) {
	s.fe.Send(&pgproto3.AuthenticationCleartextPassword{})
	if err := s.fe.Flush(); err != nil {
		return nil, err
	}
	if err := s.fe.SetAuthType(pgproto3.AuthTypeCleartextPassword); err != nil {
		return nil, err
	}
	msg, err := s.receive()
	if err != nil {
		return nil, fmt.Errorf("read PasswordMessage: %w", err)
	}
	pw, ok := msg.(*pgproto3.PasswordMessage)
	if !ok {
		s.sendError(codeProtocolViolation, fmt.Sprintf("expected password response, got %T", msg))
		return nil, errors.New("protocol violation")
	}
	keys := scram.NewKeys(pw.Password, salt.Salt, salt.Iterations)
	var found *shiftkey.Credential
	for _, c := range creds {
		if subtle.ConstantTimeCompare(keys.StoredKey[:], c.StoredKey) == 1 && found == nil {
			found = c
		}
	}
	if found == nil {
		return fail("wrong password (cleartext)")
	}
	return found, nil
}

// decoySalt derives a stable salt for a login without credentials.
func (g *Gateway) decoySalt(user string) shiftkey.LoginSalt {
	m := hmac.New(sha256.New, g.Secret)
	io.WriteString(m, g.Cluster+"\x00"+user)
	return shiftkey.LoginSalt{Salt: m.Sum(nil)[:16], Iterations: scram.DefaultIterations}
}

// registerCancel gives the session a key of the gateway's own, mapped to the
// backend's, so cancel requests never reveal or accept backend keys. The
// key's process ID is the backend's own: clients compare it with
// pg_backend_pid() and with the sender of a notification (to skip their own),
// and look their session up by it in pg_stat_activity. The secret is the
// gateway's, 32 random bits as in PostgreSQL.
func (g *Gateway) registerCancel(s *session, backend *pgproto3.BackendKeyData) *pgproto3.BackendKeyData {
	var b [8]byte
	binary.BigEndian.PutUint32(b[:4], backend.ProcessID)
	g.mu.Lock()
	defer g.mu.Unlock()
	for {
		rand.Read(b[4:])
		id := binary.BigEndian.Uint64(b[:])
		// Taken only if another session on a backend with the same process
		// ID (another server) drew the same secret.
		if _, taken := g.cancels[id]; taken {
			continue
		}
		g.cancels[id] = s
		s.cancelID, s.cancel = id, backend
		return &pgproto3.BackendKeyData{ProcessID: backend.ProcessID, SecretKey: append([]byte(nil), b[4:]...)}
	}
}

func (g *Gateway) unregisterCancel(s *session) {
	g.mu.Lock()
	defer g.mu.Unlock()
	delete(g.cancels, s.cancelID)
}

// forwardCancel sends from's CancelRequest on to the backend of the session
// whose gateway key it names. A key that names no session (ended, or never
// issued) is dropped without an answer, as PostgreSQL does; a source that
// sends too many of those has its cancel requests dropped for a while
// (cancelMissLimit).
func (g *Gateway) forwardCancel(from *session, m *pgproto3.CancelRequest) {
	log := g.logger().With("conn_id", from.id, "remote", from.raw.RemoteAddr().String())
	source, now := sourceOf(from.raw.RemoteAddr()), time.Now()
	if g.misses.count(source, now) >= cancelMissLimit {
		log.Debug("cancel request dropped: too many for no session from this address")
		return
	}
	var s *session
	if len(m.SecretKey) == 4 {
		var b [8]byte
		binary.BigEndian.PutUint32(b[:4], m.ProcessID)
		copy(b[4:], m.SecretKey)
		g.mu.Lock()
		s = g.cancels[binary.BigEndian.Uint64(b[:])]
		g.mu.Unlock()
	}
	if s == nil {
		log.Debug("cancel request for no session", "key_bytes", len(m.SecretKey))
		if g.misses.add(source, now) == cancelMissLimit {
			log.Warn("cancel requests throttled: too many for no session from this address", "limit", cancelMissLimit, "window", window)
		}
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.t.Backend.Cancel(ctx, s.cancel); err != nil {
		log.Warn("cancel forward failed", "target_conn_id", s.id, "error", err)
		return
	}
	log.Info("cancel request forwarded", "target_conn_id", s.id)
}
