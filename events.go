package shiftkey

import (
	"context"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// The events below are what the edges (the API, the gateways, the
// backends) report as they happen, for metrics and the audit log. Each
// edge declares the small interface it reports to; Observers fans one out
// to several.

// APICall is one API request as the API answered it.
type APICall struct {
	Time     time.Time     // when it arrived
	Duration time.Duration // until the answer was written
	// RequestID is the x-amzn-RequestId sent back.
	RequestID string
	// Service is the credential scope's service (iam, sts, redshift,
	// redshift-serverless); "" when the request named none.
	Service string
	// Operation is the action or X-Amz-Target operation as requested: it
	// comes from the client and may name nothing that exists.
	Operation string
	// Principal is the authenticated caller; nil when authentication
	// failed. AccessKeyID is the key the request was signed with, as sent.
	Principal   *Principal
	AccessKeyID string
	SourceIP    string
	UserAgent   string
	Region      string // the credential scope's region, once authenticated
	// Form holds a Query request's parameters (secrets included: the
	// observer removes what it must not keep); Body a JSON request's body.
	Form url.Values
	Body []byte
	// Result is what the operation returned (nil on error).
	Result any
	// CredentialID is the id of the credential the call issued, if any
	// (NoteIssued).
	CredentialID string
	// ErrorCode and ErrorMessage are the AWS error sent, if any.
	ErrorCode    string
	ErrorMessage string
	// ClientGone says the client left before its answer (mid-body, or
	// while it waited for a place): the error was sent to no one.
	ClientGone bool
	Status     int
	// TLS is the call's TLS connection to this process; nil over plain
	// HTTP.
	TLS *TLSDetails
}

// TLSDetails is an API call's TLS connection, as CloudTrail's tlsDetails.
type TLSDetails struct {
	Version     string // "TLSv1.2", "TLSv1.3"
	CipherSuite string // Go's name for it (IANA's)
	Host        string // the Host header the client sent
}

// Login is the outcome of one gateway login attempt: a client that sent a
// startup packet and was let in or refused.
type Login struct {
	Time     time.Time     // when the connection was accepted
	Duration time.Duration // from accept to the outcome (authentication latency)
	Scope    string        // the cluster or workgroup credential scope
	Region   string        // the region Scope lives in ("": not known)
	ConnID   uint64
	Source   string // the client's host:port
	User     string // the login name the client sent
	Database string
	TLS      bool
	OK       bool
	// Reason says why a login was refused (one of LoginReasons).
	Reason string
	// Of the credential the client proved (empty when none was):
	CredentialID, DBUser, PrincipalARN string
	Groups                             []string
	// AccessKeyID signed the call that issued the credential ("" when
	// not recorded): the audit log follows a leaked key to its logins.
	AccessKeyID string
	// IssuedTo is the rest of what the issue kept of the credential's
	// principal (zero when not recorded).
	IssuedTo IssuedTo
	// BackendReused says the session got a pooled backend connection.
	BackendReused bool
	// Notices are what the client was told its session did not get: each
	// group of Groups not joined, and why. The audit log's reader must
	// not take Groups for the groups the session held.
	Notices []string
}

// NotJoinedNotice begins the notice of a group of a login's Groups its
// session did not join; the rest says why. GroupNotJoined reads it back
// (audit tail, from logs of any version: the text has not changed).
func NotJoinedNotice(group string) string { return fmt.Sprintf("group %q not joined", group) }

// GroupNotJoined is the group a notice (NotJoinedNotice) says was not
// joined, if it is one.
func GroupNotJoined(notice string) (string, bool) {
	rest, ok := strings.CutPrefix(notice, "group ")
	if !ok {
		return "", false
	}
	q, err := strconv.QuotedPrefix(rest)
	if err != nil || !strings.HasPrefix(rest[len(q):], " not joined") {
		return "", false
	}
	g, err := strconv.Unquote(q)
	return g, err == nil
}

// Why a gateway login is refused: a fixed set, so that it can label metrics.
const (
	LoginNoCredential     = "no_credential"     // the login has no live credential
	LoginWrongPassword    = "wrong_password"    // the proof matched no live credential
	LoginDatabase         = "database"          // the credential is for another database
	LoginRoleRefused      = "role_refused"      // the backend role may not be used (superuser, admin)
	LoginBackendRefused   = "backend_refused"   // the backend refused the role's login
	LoginBackendError     = "backend_error"     // the backend could not be prepared or reached
	LoginStoreError       = "store_error"       // the credentials could not be looked up
	LoginProtocol         = "protocol"          // the client broke off or sent what it should not
	LoginRevoked          = "revoked"           // the client proved a credential an operator revoked
	LoginShutdown         = "shutdown"          // the gateway was shutting down
	LoginClientDisconnect = "client_disconnect" // the client left before it was greeted
	LoginGroupUnsafe      = "group_unsafe"      // a group of the role turned unsafe while it logged in (EndGroupUnsafe)
	LoginTLSRequired      = "tls_required"      // a plaintext startup packet to a gateway that requires TLS
	LoginTimeout          = "timeout"           // the client did not finish its part within the login's time limit
)

// LoginReasons are every Login.Reason.
var LoginReasons = []string{LoginNoCredential, LoginWrongPassword, LoginDatabase, LoginRoleRefused, LoginBackendRefused,
	LoginBackendError, LoginStoreError, LoginProtocol, LoginRevoked, LoginShutdown, LoginClientDisconnect, LoginGroupUnsafe, LoginTLSRequired, LoginTimeout}

// SessionEnd is a gateway session that ended, from its login on.
type SessionEnd struct {
	Login             // the login that started it
	Start, End        time.Time
	BytesIn, BytesOut int64 // client to backend, backend to client
	Reason            string
	BackendReused     bool // the backend came from the pool
}

// Why a session ends: a fixed set.
const (
	EndClosed      = "closed"               // the client or the backend closed it
	EndLifetime    = "max_session_lifetime" // limits.max_session_lifetime
	EndShutdown    = "gateway_shutdown"     // cut at the end of the shutdown grace period
	EndRevoked     = "credential_revoked"   // its credential was revoked with --terminate
	EndRelayFailed = "relay_failed"         // the relay would not take it
	// EndBackend: the backend ended it (restarted or shut down, its
	// process terminated or crashed, its idle_session_timeout, the
	// network to it cut); the client got the backend's FATAL, or 08006.
	EndBackend = "backend_ended"
	// EndGroupUnsafe: a group the session held turned unsafe and was
	// revoked from its role; the session may have run SET ROLE to it.
	EndGroupUnsafe = "group_unsafe"
)

// EndReasons are every SessionEnd.Reason.
var EndReasons = []string{EndClosed, EndLifetime, EndShutdown, EndRevoked, EndRelayFailed, EndBackend, EndGroupUnsafe}

// GrantChange is a session group granted to or revoked from a backend role.
type GrantChange struct {
	Time    time.Time
	Scope   string
	Region  string // the region Scope lives in ("": not known)
	Role    string
	Group   string
	Granted bool // false: revoked
	// Reconciled marks a revoke of a grant no live session held (left by a
	// crash, or by a revoke that failed before).
	Reconciled bool
	// LeftBy names, for a reconciled revoke, the dead replicas whose
	// lapsed leases left the grant (SessionGrant.LeftBy).
	LeftBy string
	// Session is the gateway session whose start granted the group or
	// whose end revoked it; zero for reconciled revokes.
	Session SessionOrigin
	// Reason says why a revoke came before the sessions holding the group
	// ended: the group turned unsafe to hold (it may now create in a
	// schema, say). Empty for a revoke at a session's end.
	Reason string
}

// SessionOrigin names a gateway session and the credential it logged in
// with, for the events it causes further down (a group granted for it).
type SessionOrigin struct {
	ConnID       uint64
	Source       string // the client's host:port
	CredentialID string
	PrincipalARN string // who the credential was issued to
	AccessKeyID  string // the key that signed its issuing call, when recorded
	IssuedTo     IssuedTo
}

type sessionOriginKey struct{}

// WithSessionOrigin returns ctx carrying o: the gateway passes it to the
// backend's provisioning, which reports the grants it makes as o's.
func WithSessionOrigin(ctx context.Context, o SessionOrigin) context.Context {
	return context.WithValue(ctx, sessionOriginKey{}, o)
}

// SessionOriginFrom is the session origin ctx carries, if any.
func SessionOriginFrom(ctx context.Context) (SessionOrigin, bool) {
	o, ok := ctx.Value(sessionOriginKey{}).(SessionOrigin)
	return o, ok
}

type issuedNoteKey struct{}

// WithIssuedNote returns ctx in which NoteIssued records the id of the
// credential an API call issues into *id, for the call's audit record (the
// id is shiftkey's own: AWS's answer has none, and the gateway's records
// name it).
func WithIssuedNote(ctx context.Context, id *string) context.Context {
	return context.WithValue(ctx, issuedNoteKey{}, id)
}

// NoteIssued records id as the credential the API call ctx serves issued.
func NoteIssued(ctx context.Context, id string) {
	if p, ok := ctx.Value(issuedNoteKey{}).(*string); ok {
		*p = id
	}
}

// Observer hears of every event. Each edge declares the part it reports
// to (http.Observer, pgwire.Observer, pgbackend.Observer).
type Observer interface {
	APICall(*APICall)
	Login(*Login)
	SessionEnd(*SessionEnd)
	Grant(*GrantChange)
}

// How a gateway's cancel request ended: a fixed set, so that it can label
// metrics.
const (
	CancelSent          = "cancelled"       // its session is here: sent to the backend
	CancelForwarded     = "forwarded"       // no session here: passed on to the other replicas, at least one of which took it
	CancelForwardFailed = "forward_failed"  // no session here, and no other replica could be reached (each connection failed)
	CancelNoSession     = "no_session"      // no session here, and no other replica to ask
	CancelNotForwarded  = "not_forwarded"   // no session here, and too many forwards to the other replicas in flight
	CancelThrottled     = "throttled"       // dropped: its address sent too many for no session
	CancelPeerSent      = "peer_cancelled"  // passed on by another replica, its session here
	CancelPeerNoSession = "peer_no_session" // passed on by another replica, no session here either
	CancelPeerRefused   = "peer_refused"    // a packet that claimed to come from a replica and did not prove it
)

// CancelOutcomes are every cancel outcome.
var CancelOutcomes = []string{CancelSent, CancelForwarded, CancelForwardFailed, CancelNoSession, CancelNotForwarded, CancelThrottled, CancelPeerSent, CancelPeerNoSession, CancelPeerRefused}

// CancelObserver hears how each cancel request a gateway got ended (an
// Observer may be one too).
type CancelObserver interface {
	Cancel(scope, outcome string)
}

// Cancel passes a cancel's outcome to the members that hear of them.
func (os Observers) Cancel(scope, outcome string) {
	for _, o := range os {
		if c, ok := o.(CancelObserver); ok {
			c.Cancel(scope, outcome)
		}
	}
}

// The gateway caps a connection can be refused at (SQLSTATE 53300): a
// fixed set, so that it can label metrics.
const (
	RefusedMaxConnections = "max_connections"            // the gateway's limits.max_connections
	RefusedPerSource      = "max_connections_per_source" // its address's connections
	RefusedAuthPerSource  = "max_auth_per_source"        // its address's connections still logging in
)

// RefusedCaps are every cap a connection is refused at.
var RefusedCaps = []string{RefusedMaxConnections, RefusedPerSource, RefusedAuthPerSource}

// RefusalObserver hears of each connection a gateway refused at a cap,
// before any login (an Observer may be one too).
type RefusalObserver interface {
	Refused(scope, cap string)
}

// Refused passes a refusal to the members that hear of them.
func (os Observers) Refused(scope, cap string) {
	for _, o := range os {
		if r, ok := o.(RefusalObserver); ok {
			r.Refused(scope, cap)
		}
	}
}

// Why a connection to a TLS listener never got through TLS: a fixed set,
// so that it can label metrics (TLSFailureReason).
const (
	TLSPlainHTTP           = "plain_http"           // the API: plain HTTP to a listener that requires TLS
	TLSCertificateRejected = "certificate_rejected" // the client refused the server's certificate (no CA, wrong name, expired)
	TLSProtocol            = "protocol"             // no TLS version, cipher suite or ALPN protocol in common, or not TLS
	TLSClientDisconnect    = "client_disconnect"    // the client closed or reset the connection mid-handshake
	TLSTimeout             = "timeout"              // the handshake did not finish in time
)

// TLSFailureReasons are every reason a TLS failure is counted under.
var TLSFailureReasons = []string{TLSPlainHTTP, TLSCertificateRejected, TLSProtocol, TLSClientDisconnect, TLSTimeout}

// TLSObserver hears of each connection that did not get through TLS:
// scope is the gateway's cluster or workgroup, "" for the API (an
// Observer may be one too).
type TLSObserver interface {
	TLSFailed(scope, reason string)
}

// TLSFailed passes a TLS failure to the members that hear of them.
func (os Observers) TLSFailed(scope, reason string) {
	for _, o := range os {
		if r, ok := o.(TLSObserver); ok {
			r.TLSFailed(scope, reason)
		}
	}
}

// Observers passes each event to every one of its members, in order.
type Observers []Observer

func (os Observers) APICall(e *APICall)       { tell(os, e, Observer.APICall) }
func (os Observers) Login(e *Login)           { tell(os, e, Observer.Login) }
func (os Observers) SessionEnd(e *SessionEnd) { tell(os, e, Observer.SessionEnd) }
func (os Observers) Grant(e *GrantChange)     { tell(os, e, Observer.Grant) }

// tell passes e to each of os through the method that takes its kind.
func tell[E any](os Observers, e E, method func(Observer, E)) {
	for _, o := range os {
		method(o, e)
	}
}
