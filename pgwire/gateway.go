// Package pgwire is the gateway: a PostgreSQL protocol 3.0 server that
// authenticates clients with SCRAM-SHA-256 against the live credentials of
// their login name, then connects them to the cluster's backend as the
// mapped role and relays bytes.
//
// A connection goes through phases, each in its file: listener.go accepts
// it within the limits; session.go runs it, startup (startup.go: TLS, SNI,
// parameters) → authenticate (auth.go: SCRAM, cleartext, throttle) →
// prepare → connect (a pooled backend or a new one, pool.go) → hand off to
// a relay (package relay; relay.go follows the protocol for it). cancel.go
// maps the gateway's cancel keys to the backends'. The gateway knows its
// backend only as the Backend interface.
package pgwire

import (
	"cmp"
	"context"
	"crypto/tls"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/shiftkey/shiftkey"
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
	codeInsufficientPriv     = "42501"
)

// Gateway serves one cluster's endpoint.
type Gateway struct {
	Cluster     string
	Region      string // Cluster's region, for the audit records ("": not known)
	Credentials shiftkey.CredentialStore
	Backend     Backend
	DefaultDB   string
	Logger      *slog.Logger     // nil → discard
	Now         func() time.Time // nil → time.Now
	AuthTimeout time.Duration    // 0 → DefaultAuthTimeout
	// Secret keys the decoy salts sent for unknown logins, so that the
	// exchange looks the same whether or not a login has credentials.
	Secret []byte
	// Iterations is the SCRAM iteration count new logins get (0 →
	// scram.IssuedIterations), which decoy salts show.
	Iterations int
	// SaltIterations, when set, tells the iteration counts the cluster's
	// logins were salted with. A login keeps its count when
	// scram_iterations changes, so each unknown name's decoy shows one of
	// those counts or Iterations, chosen by the name and the same every
	// time: a count kept by logins salted before the change then does not
	// single them out.
	SaltIterations shiftkey.SaltIterations
	// TLS, when set, answers SSLRequest with 'S' and accepts PostgreSQL 17
	// direct TLS (ALPN "postgresql"); SCRAM-SHA-256-PLUS is then offered.
	// Its GetCertificate is called per connection.
	TLS *tls.Config
	// RequireTLS refuses clients that do not use TLS.
	RequireTLS bool
	// ServerVersion is the server_version clients are told ("": the
	// backend's version number without its distribution suffix, which
	// drivers that parse versions refuse: "15.18 (Debian 15.18-0+deb12u1)"
	// is told as "15.18"). Redshift itself reports 8.0.2.
	ServerVersion string
	// Route, when set, maps a TLS server name (SNI) to the gateway whose
	// credentials and backend the session uses (custom domains).
	Route func(ctx context.Context, serverName string) (*Gateway, bool)
	// AllowCleartext makes the gateway ask TLS clients for the password in
	// cleartext (for drivers without SCRAM); never without TLS.
	AllowCleartext bool
	// RedshiftAuth is the password exchange offered to AWS's Redshift
	// drivers (a startup packet with Redshift's own parameters): Redshift's
	// SHA-256 extensible digest (RedshiftAuthSHA256, also ""), MD5
	// (RedshiftAuthMD5) or SCRAM like every other client (RedshiftAuthOff).
	// Both prove knowledge of a verifier, not of the password, so they are
	// offered over TLS only unless RedshiftAuthPlaintext is set; other
	// clients are never offered them.
	RedshiftAuth          string
	RedshiftAuthPlaintext bool
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
	// ProxyFrom are the addresses of TCP load balancers that send a PROXY
	// protocol header (version 1 or 2) before anything else: connections
	// from them must, and count, are throttled and are logged as the
	// client the header names (proxyproto.go).
	ProxyFrom []netip.Prefix
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
	// Observer, when set, hears of logins and session ends (metrics, the
	// audit log).
	Observer Observer
	// Revoked, when set, finds the login's revoked credentials once no
	// live one matched a client's proof: a login with one is refused as
	// revoked (LoginRevoked) and reported with its credential.
	Revoked shiftkey.RevokedKeys
	// Peers, when set, are this gateway on the other replicas: a cancel
	// request naming no session here goes on to them (peers.go). They
	// authenticate each other with a key derived from Secret.
	Peers *Peers

	throttle throttle
	misses   sourceCounts // cancel requests that named no session (cancelMissLimit)
	// peerRefusals counts peer cancels refused for their MAC or length,
	// peerRefusedAt when the last was logged (Unix ns).
	peerRefusals, peerRefusedAt atomic.Int64
	peerSeen                    peerSeen // peer cancels taken, against replays
	pool                        pool
	sleep                       func(time.Duration) // nil → time.Sleep; tests record instead
	refusals                    refusals
	workers                     workers
	decoyCounts                 decoyCounts

	mu       sync.Mutex
	closed   bool
	ln       []net.Listener
	sessions map[*session]struct{}
	sources  map[string]*sourceUse // connections per client address
	cancels  map[cancelKey]*session
	wg       sync.WaitGroup
	cutting  sync.WaitGroup // cancels sent to the backends of cut sessions
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

func (g *Gateway) authTimeout() time.Duration {
	return cmp.Or(g.AuthTimeout, DefaultAuthTimeout)
}

// Shutdown stops accepting and lets sessions finish until ctx is done, then
// closes the rest. It returns how many sessions it had to cut.
func (g *Gateway) Shutdown(ctx context.Context) int {
	g.mu.Lock()
	g.closed = true
	g.refusals.stop()
	g.workers.stop()
	var at net.Addr
	for _, l := range g.ln {
		at = cmp.Or(at, l.Addr())
		l.Close()
	}
	live := len(g.sessions) > 0
	g.mu.Unlock()
	if live && at != nil {
		defer g.takePeerCancels(at)()
	}
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
	g.workers.stop()
	for _, l := range g.ln {
		l.Close()
	}
	for s := range g.sessions {
		s.closeFor(shiftkey.EndShutdown)
	}
	g.mu.Unlock()
	g.wg.Wait()
	g.cutting.Wait()
	g.closePool()
	return nil
}

// CredentialsInUse returns the ids of the credentials this gateway's
// sessions logged in with, of one login name ("": any).
func (g *Gateway) CredentialsInUse(login string) []string {
	g.mu.Lock()
	defer g.mu.Unlock()
	var ids []string
	for s := range g.sessions {
		s.mu.Lock()
		if s.credID != "" && (login == "" || s.login == login) {
			ids = append(ids, s.credID)
		}
		s.mu.Unlock()
	}
	return ids
}

// Terminate ends the sessions that logged in with one of the credentials
// ids (revoked with --terminate) and returns how many it ended. Their
// connections close at once, as at shutdown.
func (g *Gateway) Terminate(ids map[string]bool) int {
	g.mu.Lock()
	var doomed []*session
	var which []string
	for s := range g.sessions {
		s.mu.Lock()
		if id := s.credID; id != "" && ids[id] {
			doomed, which = append(doomed, s), append(which, id)
		}
		s.mu.Unlock()
	}
	g.mu.Unlock()
	for i, s := range doomed {
		g.logger().Info("session terminated", "reason", "credential revoked", "credential_id", which[i], "scope", g.Cluster)
		s.closeFor(shiftkey.EndRevoked)
	}
	return len(doomed)
}

// sessionDone forgets an ended session.
// A second call for one session (not expected) changes nothing, so that it
// cannot take another session's count or the gateway's wait.
func (g *Gateway) sessionDone(s *session) {
	g.mu.Lock()
	_, counted := g.sessions[s] // admitted sessions, until their first end
	if counted {
		delete(g.sessions, s)
		g.leaveLocked(s)
	}
	g.mu.Unlock()
	if !counted {
		g.logger().Error("session ended twice", "conn_id", s.id)
		return
	}
	g.wg.Done()
}

// Sessions is how many sessions the gateway has, logging in or logged in.
func (g *Gateway) Sessions() int { return g.sessionCount() }

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
