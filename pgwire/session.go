package pgwire

import (
	"cmp"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgproto3"
	"github.com/shiftkey/shiftkey"
	"github.com/shiftkey/shiftkey/relay"
)

// A session is one client connection, from accept to its end.
type session struct {
	g       *Gateway // accepted the connection (and owns its cancel key)
	t       *Gateway // whose credentials and backend serve it (SNI routing)
	id      uint64
	source  string      // the client's address (sourceOf); "" until a proxy's header names it
	counted string      // what its source's caps count it as (budgetKey); "" until admitted
	proxied bool        // from a ProxyFrom address: a PROXY header comes first
	remote  string      // the client's host:port, formatted once for logs and events
	authing bool        // counted in its source's auths (g.mu)
	raw     net.Conn    // the accepted connection; closing it ends everything
	client  net.Conn    // raw, or the TLS connection over it
	fe      *authIO     // speaks to the client until the hand-off
	in      *authReader // what fe reads during authentication
	log     sessionLog  // with what the phases learnt of the session
	begin   time.Time   // when run started: the login's clock
	beginAt time.Time   // the same, by the gateway's time (Now), for the record
	started bool        // the client's startup packet is in (the login's goroutine)
	minor   uint32      // the minor version of protocol 3 spoken (startup): 0 or 1, or 2 for 3.2's long cancel keys

	tls *tls.Conn // non-nil once TLS is up
	// tap, with an event relay, follows the TLS records under tls so that
	// a loop can take the session over; tlsRead counts the application
	// data the session read from tls (tlsReader).
	tap        *relay.TLSTap
	tlsRead    int64
	serverCert *tls.Certificate // the certificate served, for channel binding

	mu      sync.Mutex
	credID  string     // the credential it logged in with, once authenticated
	login   string     // the login name it authenticated as, with credID
	backend net.Conn   // the backend's Go connection, once connected
	kill    relay.Kill // ends the session on the event relay
	// st follows the protocol once a relay moves the bytes (from relayHere,
	// or from the event relay's Start): a cut then ends the session from
	// the backend's side, after a FATAL to the client (cutRelay).
	st *relayState
	// stopLogin cancels the login's context until the session is greeted:
	// a cut login then ends at once, telling its client why (hangUp).
	stopLogin context.CancelFunc
	closing   bool
	cause     string // why the gateway cut it (closeFor); "" when it ended by itself
	detail    string // the cut's FATAL message, for causes that carry their own (closeForWhy)
	// cancel is the backend's cancel key while the backend is this
	// session's (registerCancel to unregisterCancel; written under g.mu and
	// mu); cancelID is the gateway's key for it.
	cancelID cancelKey
	cancel   *pgproto3.BackendKeyData
	// cancelling counts its client's cancel requests on their way to the
	// backend (under g.mu, cancelByKey): one still on its way when the
	// session ends would stop the query of the backend's next session.
	cancelling int
}

// request is what the client asks for and what the phases establish
// before the session starts.
type request struct {
	params    map[string]string    // of the startup packet (startup)
	user      string               // the login name (startup)
	cred      *shiftkey.Credential // the credential the client proved (authenticate)
	db        string               // the database it opens (authenticate)
	pipelined []byte               // client bytes read past authentication (authenticate)
	notices   []string             // from the backend's Prepare (prepare)
	ignored   []string             // startup parameters not passed on (connect)
	refused   string               // why the login was refused (a shiftkey.Login reason)
}

// link is a session's backend connection.
type link struct {
	*pooledConn        // the connection or bare socket, its key data and parameter statuses
	key         string // the pool's name for it; "" when not pooling
	reused      bool   // taken from the pool
	onLoop      bool   // the event relay will move the bytes (plain sockets, TLS 1.3 records carried on)
}

// live is what a session holds from hand-off to its end.
type live struct {
	*request
	lease Lease
	be    *link
	st    *relayState
	// clientTLS is the client's TLS state for the event relay's record
	// layer; nil for a plaintext client.
	clientTLS *relay.TLSKeys
	start     time.Time
	startAt   time.Time       // start by the gateway's time (Now), for the record
	login     *shiftkey.Login // as reported when the client was let in
	timer     *time.Timer     // MaxSessionLifetime; nil without one
}

// run serves one connection, phase by phase. A phase that fails has
// answered the client and undone its own work; run undoes what the phases
// before it hold. From hand-off on, the session ends with end. run returns
// true when the event relay took the session (which then ends it).
func (s *session) run() (handedOff bool) {
	s.begin, s.beginAt = time.Now(), s.g.now()
	ctx, cancel := context.WithTimeout(context.Background(), s.g.authTimeout())
	defer cancel()
	s.mu.Lock()
	s.stopLogin = cancel
	s.mu.Unlock()
	s.remote = s.raw.RemoteAddr().String()
	s.log = sessionLog{base: s.g.logger(), attrs: []any{"conn_id", s.id, "remote", s.remote}}
	s.client.SetDeadline(time.Now().Add(s.g.authTimeout()))
	s.speakTo(s.client)
	if s.proxied && !s.proxyHeader() {
		return s.hangUp()
	}

	l, ok := s.startup(ctx)
	if !ok {
		if l != nil { // a startup packet refused: a login attempt
			s.reportLogin(l, false)
		}
		return s.hangUp()
	}
	s.started = true
	if !s.authenticate(ctx, l) {
		s.reportLogin(l, false)
		return s.hangUp()
	}
	lease, ok := s.prepare(ctx, l)
	if !ok {
		s.reportLogin(l, false)
		return s.hangUp()
	}
	be, ok := s.connect(ctx, l)
	if !ok {
		lease.Release(context.Background())
		s.reportLogin(l, false)
		return s.hangUp()
	}
	return s.handOff(&live{request: l, lease: lease, be: be})
}

// hangUp ends a session that never reached a relay.
// A login the gateway cut gets the cut's FATAL first, once the client has
// sent its startup packet (before, it may be negotiating TLS).
func (s *session) hangUp() bool {
	s.mu.Lock()
	closing, cause := s.closing, s.cause
	s.mu.Unlock()
	if closing && s.started {
		s.client.SetWriteDeadline(time.Now().Add(cutFarewellWait))
		s.client.Write(s.farewell(cause))
	}
	s.client.Close()
	return false
}

// prepare readies the session's role on the backend (Backend.Prepare); the
// lease is the caller's to release.
func (s *session) prepare(ctx context.Context, l *request) (Lease, bool) {
	// The grants Prepare makes (and the revokes at the end) are this
	// session's: the audit names its credential and principal.
	ctx = shiftkey.WithSessionOrigin(ctx, shiftkey.SessionOrigin{ConnID: s.id, Source: s.remote, CredentialID: l.cred.ID, PrincipalARN: l.cred.PrincipalARN,
		AccessKeyID: l.cred.AccessKeyID, IssuedTo: l.cred.IssuedTo})
	lease, notices, err := s.t.Backend.Prepare(ctx, l.cred.DBUser, l.cred.AutoCreate, l.cred.DBGroups)
	if refused, ok := errors.AsType[RefusedRole](err); ok {
		role, reason := refused.RefusedRole()
		s.sendError(codeInvalidAuthorization, refused.Error())
		s.log.WarnContext(ctx, "login refused", "reason", reason, "db_user", role)
		l.refused = shiftkey.LoginRoleRefused
		return nil, false
	}
	if ar, ok := errors.AsType[AdminRefused](err); ok {
		l.refused = shiftkey.LoginBackendError
		s.log.ErrorContext(ctx, "backend provisioning refused the admin role", "error", err)
		s.sendError(codeInsufficientPriv, ar.AdminRefused())
		return nil, false
	}
	if s.backendRefused(ctx, l, err) {
		// The backend's own answer to the admin connection (57P03: it was
		// still starting up when the login's time ran out), as from Connect.
		return nil, false
	}
	if err != nil {
		l.refused = shiftkey.LoginBackendError
		s.logBackendFailure(ctx, "backend provisioning failed", err)
		s.sendError(codeConnectionFailure, s.backendFailure(ctx, "could not prepare the session on the backend"))
		return nil, false
	}
	l.notices = notices
	if c, ok := lease.(GroupCuts); ok {
		role := l.cred.DBUser
		c.OnGroupCut(func(group, why string) {
			s.log.InfoContext(context.Background(), "session terminated", "reason", "group turned unsafe", "db_user", role, "group", group, "why", why)
			s.closeForWhy(shiftkey.EndGroupUnsafe, fmt.Sprintf("terminating connection: group %q of role %q turned unsafe (%s)", group, role, why))
		})
	}
	return lease, true
}

// logBackendFailure logs a login's failed backend step (msg) as an error,
// unless the gateway cut the login meanwhile (its context was cancelled
// then): the cut is logged and told, and the backend did nothing wrong.
func (s *session) logBackendFailure(ctx context.Context, msg string, err error) {
	s.mu.Lock()
	closing := s.closing
	s.mu.Unlock()
	if closing {
		s.log.DebugContext(ctx, msg+" (the login was cut)", "error", err)
		return
	}
	s.log.ErrorContext(ctx, msg, "error", err)
}

// backendFailure is what a login whose backend step failed is told: msg,
// and when the login's time ran out meanwhile, that the backend did not
// answer within it (a backend stopped, overloaded or black-holed).
func (s *session) backendFailure(ctx context.Context, msg string) string {
	// (A connection's deadline, the login's, may pass a moment before ctx
	// says so.)
	d, ok := ctx.Deadline()
	if ok && !time.Now().Before(d) || errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return fmt.Sprintf("%s: the backend did not answer within the login's time limit (%s)", msg, s.g.authTimeout())
	}
	return msg
}

// connect gives the session a backend connection as its role, opened with
// the forwarded startup parameters: one the pool keeps for the same role,
// database and parameters, or a new one. The link is the caller's to close.
func (s *session) connect(ctx context.Context, l *request) (*link, bool) {
	t := s.t
	params, ignored := startupParams(l.params)
	l.ignored = ignored
	be := &link{}
	if t.PoolSize > 0 {
		be.key = poolKey(l.cred.DBUser, l.db, params)
	}
	// Plaintext clients go to the event relay when there is one; their
	// pooled backends stay bare sockets the relay resets itself. (A
	// session with pipelined bytes takes the goroutine relay, which can
	// start with them; no common client sends any.)
	// TLS clients go too when the handshake left keys a loop can carry
	// on with (TLS 1.3, AES-GCM); handOff checks again, and falls back to
	// the goroutine relay if crypto/tls holds bytes by then.
	onLoop := s.g.Relay != nil && relay.PlainSocket(s.raw) && len(l.pipelined) == 0 &&
		(s.tls == nil || s.tap != nil && s.tap.Eligible())
	pc, reused, err := t.acquire(ctx, l.cred.DBUser, l.db, params, be.key, onLoop)
	if err != nil {
		if s.backendRefused(ctx, l, err) {
			return nil, false
		}
		l.refused = shiftkey.LoginBackendError
		s.logBackendFailure(ctx, "backend connect failed", err)
		s.sendError(codeConnectionFailure, s.backendFailure(ctx, "could not connect to the backend"))
		return nil, false
	}
	be.pooledConn, be.reused = pc, reused
	be.onLoop = onLoop && (pc.conn == nil || relay.PlainSocket(pc.conn) || s.loopTLS(pc))
	s.mu.Lock()
	s.backend = pc.conn
	s.mu.Unlock()
	return be, true
}

// loopTLS readies a backend connection that speaks TLS with shiftkey's
// record layer for an event loop: pc.conn becomes the raw socket, pc.tls
// its record state. False (the connection unchanged) when crypto/tls kept
// the connection (pgbackend: TLS 1.2, ChaCha20, …) or the record layer
// holds bytes.
func (s *session) loopTLS(pc *pooledConn) bool {
	tc, ok := pc.conn.(*relay.TLSConn)
	if !ok {
		if s.log.enabled(slog.LevelDebug) {
			s.log.Debug("backend TLS stays on the goroutine relay", "why", "crypto/tls holds the connection")
		}
		return false
	}
	raw, keys, ok := tc.LoopKeys()
	if !ok {
		s.log.Debug("backend TLS stays on the goroutine relay", "why", "bytes held between records")
		return false
	}
	pc.conn, pc.tls = raw, keys
	return true
}

// handOff tells the client it is in and gives the session to a relay. It
// returns true when the event relay took it.
func (s *session) handOff(ls *live) bool {
	s.mu.Lock()
	closing := s.closing
	s.mu.Unlock()
	if closing || !s.greet(ls) {
		ls.be.close()
		s.end(ls, false)
		ls.refused = shiftkey.LoginClientDisconnect
		s.reportLogin(ls.request, false)
		return s.hangUp()
	}
	// Greeted: a cut from here on is the relay's. One cut while greeting
	// found the login's branch of closeFor (which told no relay): it is
	// told here.
	s.mu.Lock()
	s.stopLogin = nil
	cut := s.closing
	s.mu.Unlock()
	if cut {
		ls.be.close()
		s.end(ls, false)
		s.reportLogin(ls.request, false)
		return s.hangUp()
	}
	if s.g.Observer != nil {
		in := s.loginEvent(ls.request, true)
		in.BackendReused = ls.be.reused
		ls.login = s.reportLoginEvent(in)
	}
	s.client.SetDeadline(time.Time{})
	s.g.authDone(s)
	ls.start, ls.startAt = time.Now(), s.g.now()
	// The audit record is written when the session ends; this one is for
	// following a session live.
	if s.log.enabled(slog.LevelDebug) {
		s.log.Debug("session started", "groups", strings.Join(ls.cred.DBGroups, ","))
	}
	if d := s.g.MaxSessionLifetime; d > 0 {
		ls.timer = time.AfterFunc(d, func() {
			s.closeFor(shiftkey.EndLifetime)
		})
	}
	ls.st = &relayState{txStatus: 'I', params: ls.be.params}
	if key := ls.be.key; key != "" {
		// Announced the moment the client leaves clean, so that a session
		// reconnecting at once waits for this backend (takePooled).
		ls.st.returning = func() { s.t.pool.returning(key) }
	}
	if s.tap != nil {
		// From here on the tap passes bytes through, whichever relay.
		keys, err := s.tap.Keys(s.tlsRead)
		switch {
		case !ls.be.onLoop:
		case err != nil:
			s.log.Debug("TLS session stays on the goroutine relay", "why", err.Error())
			if !s.offLoop(ls) {
				return s.hangUp()
			}
		default:
			ls.clientTLS = keys
		}
	}
	if ls.be.onLoop {
		return s.relayOnLoop(ls)
	}
	s.relayHere(ls)
	return false
}

// offLoop readies a session meant for the event relay for the goroutine
// relay instead: its backend, a bare socket if pooled for the loops,
// becomes a Go connection again.
func (s *session) offLoop(ls *live) bool {
	ls.be.onLoop = false
	if ls.be.conn != nil && ls.be.tls == nil {
		return true
	}
	if err := ls.be.toGo(); err != nil {
		s.log.Error("backend socket unusable", "error", err)
		s.report(ls, shiftkey.EndRelayFailed, 0, 0)
		s.end(ls, false)
		return false
	}
	c := ls.be.conn
	s.mu.Lock()
	s.backend = c
	closing := s.closing
	s.mu.Unlock()
	if closing {
		c.Close()
	}
	return true
}

// greet sends AuthenticationOk, the notices, the parameter statuses, the
// session's cancel key (registering it) and ReadyForQuery, after whatever
// the authentication left queued (AuthenticationSASLFinal): one write. The
// messages are encoded into one buffer (encoded, a single Send) rather than
// sent one by one, which would allocate each of them.
func (s *session) greet(ls *live) bool {
	buf := make([]byte, 0, 512)
	buf, _ = (&pgproto3.AuthenticationOk{}).Encode(buf)
	for _, n := range ls.notices {
		buf, _ = (&pgproto3.NoticeResponse{Severity: "NOTICE", SeverityUnlocalized: "NOTICE", Code: "01000", Message: n}).Encode(buf)
	}
	if len(ls.ignored) > 0 {
		buf, _ = (&pgproto3.NoticeResponse{Severity: "WARNING", SeverityUnlocalized: "WARNING", Code: "01000",
			Message: "startup settings not passed to the server: " + strings.Join(ls.ignored, ", "),
			Detail:  "The gateway passes on only " + forwardedList + "; the session can SET others."}).Encode(buf)
	}
	// The backend's statuses, sorted, with the gateway's own values of
	// server_version and server_protocol_version (the pooled connection's
	// map stays as it is).
	var keyArr [24]string
	keys := keyArr[:0]
	version, hasVersion := ls.be.params["server_version"]
	for k := range ls.be.params {
		keys = append(keys, k)
	}
	protocol := strings.TrimSpace(ls.params["client_protocol_version"]) == supportedProtocolVersion
	if protocol {
		if _, ok := ls.be.params["server_protocol_version"]; !ok {
			keys = append(keys, "server_protocol_version")
		}
	}
	if !hasVersion && s.t.ServerVersion != "" {
		keys = append(keys, "server_version")
	}
	slices.Sort(keys)
	for _, k := range keys {
		v := ls.be.params[k]
		switch k {
		case "server_version":
			v = cmp.Or(s.t.ServerVersion, versionNumber(version))
		case "server_protocol_version":
			if protocol {
				v = supportedProtocolVersion
			}
		}
		buf, _ = (&pgproto3.ParameterStatus{Name: k, Value: v}).Encode(buf)
	}
	if ls.be.keyData != nil {
		buf, _ = s.g.registerCancel(s, ls.be.keyData, s.minor >= 2).Encode(buf)
	}
	buf, _ = (&pgproto3.ReadyForQuery{TxStatus: 'I'}).Encode(buf)
	s.fe.Send(encoded(buf))
	return s.fe.Flush() == nil
}

// encoded is backend messages already encoded, sent as they are.
type encoded []byte

func (encoded) Backend()                            {}
func (encoded) Decode([]byte) error                 { return errors.New("encoded: not decodable") }
func (e encoded) Encode(dst []byte) ([]byte, error) { return append(dst, e...), nil }

// relayHere moves the session's bytes with a goroutine per direction, then
// ends it.
func (s *session) relayHere(ls *live) {
	client := s.client
	if s.tls == nil {
		// The socket itself, which io.Copy can splice (Pipe).
		client = s.raw
	}
	if len(ls.pipelined) > 0 {
		client = &prefixConn{Conn: client, prefix: ls.pipelined}
	}
	s.mu.Lock()
	s.st = ls.st
	s.mu.Unlock()
	var up, down int64
	kept := false
	if ls.be.key != "" {
		up, down, kept = relay.Framed(client, ls.be.conn, ls.st)
	} else {
		up, down = relay.Pipe(client, ls.be.conn, ls.st)
	}
	s.audit(ls, up, down)
	s.end(ls, kept)
}

// relayOnLoop gives the session to the event relay, which ends it on its
// loop and takes the backend (to Keep, or closed). The audit record and end
// (a revoke's round trips) run off the loop, so that a log sink that
// blocks, or a slow backend, stalls no other session.
func (s *session) relayOnLoop(ls *live) bool {
	var keep func(fd int, backendTLS *relay.TLSKeys)
	if key := ls.be.key; key != "" {
		keyData := ls.be.keyData
		keep = func(fd int, backendTLS *relay.TLSKeys) {
			if fd >= 0 && !s.release() {
				relay.CloseFD(fd) // being cut, or a cancel on its way: not for the pool
				fd = -1
			}
			if fd < 0 {
				s.t.keepPooled(key, nil)
				return
			}
			s.t.keepPooled(key, &pooledConn{fd: fd, keyData: keyData, params: ls.st.params, idleSince: s.t.now(), resetDue: true, tls: backendTLS})
		}
	}
	ended := func(up, down int64) {
		go func() {
			s.audit(ls, up, down)
			s.end(ls, false)
			s.g.sessionDone(s)
		}()
	}
	kill, err := s.g.Relay.Start(relay.Session{Client: s.raw, ClientTLS: ls.clientTLS, Backend: ls.be.conn, BackendFD: ls.be.fd,
		BackendTLS: ls.be.tls, Tracker: ls.st, Keep: keep, Reset: discardAll, End: ended})
	if err != nil {
		s.log.Error("event relay refused the session", "error", err)
		s.report(ls, shiftkey.EndRelayFailed, 0, 0)
		s.end(ls, false)
		return false
	}
	s.mu.Lock()
	s.kill, s.st = kill, ls.st
	closing, cause := s.closing, s.cause
	if ls.clientTLS != nil {
		// The loop carries the TLS connection on: let go of crypto/tls's
		// connection and buffers, so that an idle session holds none.
		s.client, s.fe, s.in, s.tls, s.tap = s.raw, nil, nil, nil, nil
	}
	s.mu.Unlock()
	if closing {
		// Cut while Start ran: closeFor had no relay to tell (the
		// connections it closed were Start's to let go of).
		s.cutRelay(ls.st, kill, nil, cause) // the loop's kill closes the backend
	}
	return true
}

// end undoes, last first, what the phases set up: the lifetime timer, the
// cancel key, the backend (to the pool when the relay kept it clean), the
// lease. The relays close the client connection, and the backend unless
// they keep it.
func (s *session) end(ls *live, kept bool) {
	if ls.timer != nil {
		ls.timer.Stop()
	}
	switch {
	case kept && s.release():
		s.t.putPooled(ls.be.key, ls.be.conn, ls.be.keyData, ls.st.params)
	case kept:
		ls.be.conn.Close()             // being cut, or a cancel on its way: not for the pool
		s.t.keepPooled(ls.be.key, nil) // ends its returning announcement (Keeping)
	default:
		s.g.unregisterCancel(s)
	}
	ls.lease.Release(context.Background())
}

// audit writes the session's audit record: who, with which credential,
// as whom, where, with which groups, when, how much, and why it ended.
func (s *session) audit(ls *live, up, down int64) {
	// A session that ended by itself during the shutdown grace period is
	// closed, not cut by the shutdown.
	reason := shiftkey.EndClosed
	s.mu.Lock()
	if s.cause != "" {
		reason = s.cause
	}
	s.mu.Unlock()
	if reason == shiftkey.EndClosed && ls.st.EndedByBackend() {
		reason = shiftkey.EndBackend
	}
	s.report(ls, reason, up, down)
}

// report logs the session's end and tells the observer. The log line is at
// debug level: it is written for every login (a few percent of a short
// session's CPU at info), and the audit log is the durable trace.
func (s *session) report(ls *live, reason string, up, down int64) {
	end := time.Now()
	if s.log.enabled(slog.LevelDebug) {
		s.logEnd(ls, reason, up, down, end)
	}
	if ls.login != nil {
		// By the gateway's time, its length measured by this machine's
		// monotonic clock: a step of either does not lengthen it.
		s.reportEnd(&shiftkey.SessionEnd{Login: *ls.login, Start: ls.startAt, End: ls.startAt.Add(end.Sub(ls.start)), BytesIn: up, BytesOut: down, Reason: reason})
	}
}

func (s *session) logEnd(ls *live, reason string, up, down int64, end time.Time) {
	s.log.Debug("session ended", "audit", "session", "principal", ls.cred.PrincipalARN, "groups", strings.Join(ls.cred.DBGroups, ","), "backend_reused", ls.be.reused,
		"start", ls.start.UTC().Format(time.RFC3339Nano), "end", end.UTC().Format(time.RFC3339Nano),
		"duration", end.Sub(ls.start).Round(time.Millisecond), "bytes_in", up, "bytes_out", down, "end_reason", reason)
}

// close ends the session from outside (shutdown, lifetime).
// release gives the backend up to the pool unless the session is being
// cut, or a cancel request of its client is still on its way to the
// backend (false). Its cancel key goes first (unregisterCancel), so that
// no cut nor cancel of this session starts after it; one already started
// would stop what the backend runs next, another session's query.
func (s *session) release() bool {
	if s.g.unregisterCancel(s) > 0 {
		return false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return !s.closing
}

// cutCancelTimeout bounds the cancel request a cut session's backend gets.
const cutCancelTimeout = 2 * time.Second

// cutFarewellWait bounds how long a cut session whose relay was told to
// end it with a FATAL (cutRelay) may take: the relay does within a
// millisecond unless the client does not read what it was sent (its
// socket full), and then the client's side is closed too.
const cutFarewellWait = 250 * time.Millisecond

// backendRefused passes err, when it carries the backend's own
// ErrorResponse (BackendRefused), to the client as it is and records the
// login as refused by the backend; it reports whether it did.
func (s *session) backendRefused(ctx context.Context, l *request, err error) bool {
	br, ok := errors.AsType[BackendRefused](err)
	if !ok {
		return false
	}
	resp := br.BackendResponse()
	s.fe.Send(resp)
	s.fe.Flush()
	s.log.InfoContext(ctx, "login failed", "reason", "backend refused", "sqlstate", resp.Code)
	l.refused = shiftkey.LoginBackendRefused
	return true
}

// closeFor cuts the session, for reason (a shiftkey.End… reason: the
// first given is the one its audit record and its client's FATAL say),
// and cancels the query its backend runs: a session ended for a revoked
// credential, a lifetime or a shutdown must not leave its query running on
// (PostgreSQL notices a closed connection only when it next reads or
// writes it).
func (s *session) closeFor(reason string) { s.closeForWhy(reason, "") }

// closeForWhy is closeFor with the FATAL's message when the reason's own
// is not enough ("": the reason's).
func (s *session) closeForWhy(reason, detail string) {
	// The cause first: the relay may end the session (and audit it) the
	// moment the connection closes.
	s.mu.Lock()
	if s.cause == "" {
		s.cause, s.detail = reason, detail
	}
	s.closing = true
	key := s.cancel // nil once released to the pool
	st, kill, backend, cause, stopLogin := s.st, s.kill, s.backend, s.cause, s.stopLogin
	s.mu.Unlock()
	g := s.g
	if key != nil {
		// Counted before the cut ends the session, so that Close, once
		// its sessions have ended, waits for the cancel.
		g.cutting.Add(1)
	}
	switch {
	case st != nil:
		s.cutRelay(st, kill, backend, cause)
	case stopLogin != nil:
		// Still logging in: the login's goroutine, which writes to the
		// client, stops what it waits for (the backend, or the client's
		// next message) and hangs up with the cut's FATAL; a client that
		// does not read is closed after cutFarewellWait.
		stopLogin()
		s.raw.SetReadDeadline(time.Now())
		if backend != nil {
			backend.Close()
		}
		time.AfterFunc(cutFarewellWait, func() { s.raw.Close() })
	default:
		// Being handed to a relay, which sees closing.
		s.raw.Close()
		if backend != nil {
			backend.Close()
		}
	}
	// Sent after the cut: the cancel's error must not reach the client
	// before the cut's FATAL.
	if key != nil {
		go func() {
			defer g.cutting.Done()
			ctx, cancel := context.WithTimeout(context.Background(), cutCancelTimeout)
			defer cancel()
			if err := s.t.Backend.Cancel(ctx, key); err != nil {
				s.log.Debug("cancelling a cut session's query failed", "error", err)
			}
		}()
	}
}

// cutRelay ends a relayed session as a backend that hangs up would: the
// relay's backend side is closed, and the relay sends the client the cut's
// FATAL (relayState.BackendEnded) between two of the backend's messages,
// then closes the client's side. A client that does not read, or a relay
// that does not get to it, has its side closed after cutFarewellWait.
func (s *session) cutRelay(st *relayState, kill relay.Kill, backend net.Conn, cause string) {
	st.Cut(s.farewell(cause))
	if kill != nil {
		kill(true)
	} else if backend != nil {
		backend.Close()
	}
	time.AfterFunc(cutFarewellWait, func() {
		if kill != nil {
			kill(false)
		} else {
			s.raw.Close()
		}
	})
}

// farewell is the FATAL a session cut for reason gets, SQLSTATE 57P01
// (admin_shutdown) whatever the reason: PostgreSQL's for a backend ended
// by pg_terminate_backend or a shutdown, which drivers and poolers know
// as "the server ended this session, connect again"; the message says why.
func (s *session) farewell(reason string) []byte {
	msg := "terminating connection due to administrator command"
	switch reason {
	case shiftkey.EndShutdown:
		msg += ": the gateway is shutting down"
	case shiftkey.EndRevoked:
		msg = "terminating connection: its credential was revoked"
	case shiftkey.EndLifetime:
		msg = fmt.Sprintf("terminating connection: the session reached limits.max_session_lifetime (%s)", s.g.MaxSessionLifetime)
	}
	s.mu.Lock()
	if s.detail != "" && reason == s.cause {
		msg = s.detail
	}
	s.mu.Unlock()
	b, _ := (&pgproto3.ErrorResponse{Severity: "FATAL", SeverityUnlocalized: "FATAL", Code: codeAdminShutdown, Message: msg}).Encode(nil)
	return b
}

func (s *session) sendError(code, msg string) {
	s.mu.Lock()
	closing := s.closing
	s.mu.Unlock()
	if closing && s.started {
		return // hangUp tells the client why the gateway cut it
	}
	// The login's last write: it has a moment of its own, since the
	// client's deadline is the login's, which may be what just ran out.
	s.client.SetWriteDeadline(time.Now().Add(cutFarewellWait))
	s.fe.Send(&pgproto3.ErrorResponse{Severity: "FATAL", SeverityUnlocalized: "FATAL", Code: code, Message: msg})
	s.fe.Flush()
}

// versionNumber is a server_version without what follows its number:
// "15.18 (Debian 15.18-0+deb12u1)" → "15.18", "17beta1" → "17". A value
// that does not start with a number is kept as it is.
func versionNumber(v string) string {
	n := 0
	for n < len(v) && (v[n] >= '0' && v[n] <= '9' || v[n] == '.' && n > 0) {
		n++
	}
	if num := strings.TrimRight(v[:n], "."); num != "" {
		return num
	}
	return v
}
