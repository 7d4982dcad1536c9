// What the gateway reports of its logins and sessions (metrics, the audit
// log), through the Observer it is given.

package pgwire

import (
	"errors"
	"io"
	"net"
	"os"
	"syscall"
	"time"

	"github.com/shiftkey/shiftkey"
)

// Observer hears of every login attempt that got as far as a startup
// packet, and of every session's end. Its methods run on the session's
// goroutine (or one of its own for the event relay): they must not block
// for long.
type Observer interface {
	Login(*shiftkey.Login)
	SessionEnd(*shiftkey.SessionEnd)
}

// proofRefused is a login refused because the client proved no live
// credential; its text is the reason logged.
type proofRefused string

func (r proofRefused) Error() string { return string(r) }

// reasonNoCredential is the refusal of a login that has no live credential.
const reasonNoCredential = "no live credential"

// lookupError is a failure of the credential lookup itself.
type lookupError struct{ error }

func (e lookupError) Unwrap() error { return e.error }

// loginReason is the Login.Reason of an authentication error.
func loginReason(err error) string {
	if _, ok := errors.AsType[revokedProof](err); ok {
		return shiftkey.LoginRevoked
	}
	if r, ok := errors.AsType[proofRefused](err); ok {
		if r == reasonNoCredential {
			return shiftkey.LoginNoCredential
		}
		return shiftkey.LoginWrongPassword
	}
	if _, ok := errors.AsType[lookupError](err); ok {
		return shiftkey.LoginStoreError
	}
	// The login's deadline on the client's connection: it stopped
	// answering (the backend's waits have their own reasons).
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return shiftkey.LoginTimeout
	}
	// A client killed mid-exchange resets its socket rather than closing
	// it (so does any that leaves with the gateway's answer unread).
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, net.ErrClosed) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) {
		return shiftkey.LoginClientDisconnect
	}
	return shiftkey.LoginProtocol
}

// loginEvent describes the login of l as far as it went.
func (s *session) loginEvent(l *request, ok bool) *shiftkey.Login {
	e := &shiftkey.Login{Time: s.beginAt, Duration: time.Since(s.begin), Scope: s.t.Cluster, Region: s.t.Region, ConnID: s.id,
		Source: s.remote, User: l.user, Database: l.db, TLS: s.tls != nil, OK: ok, Reason: l.refused}
	if e.Database == "" {
		e.Database = l.params["database"]
	}
	if c := l.cred; c != nil {
		e.CredentialID, e.DBUser, e.PrincipalARN, e.Groups, e.AccessKeyID = c.ID, c.DBUser, c.PrincipalARN, c.DBGroups, c.AccessKeyID
		e.IssuedTo = c.IssuedTo
		e.Notices = l.notices
	}
	if !ok {
		// A login the gateway cut failed for that, whatever its phase saw.
		s.mu.Lock()
		closing, cause := s.closing, s.cause
		s.mu.Unlock()
		switch {
		case closing && cause == shiftkey.EndShutdown:
			e.Reason = shiftkey.LoginShutdown
		case closing && cause == shiftkey.EndRevoked:
			e.Reason = shiftkey.LoginRevoked
		case closing && cause == shiftkey.EndGroupUnsafe:
			e.Reason = shiftkey.LoginGroupUnsafe
		case e.Reason == "":
			e.Reason = shiftkey.LoginProtocol
		}
	}
	return e
}

// reportLogin tells the observer how the login of l ended.
func (s *session) reportLogin(l *request, ok bool) *shiftkey.Login {
	return s.reportLoginEvent(s.loginEvent(l, ok))
}

func (s *session) reportLoginEvent(e *shiftkey.Login) *shiftkey.Login {
	if o := s.g.Observer; o != nil {
		o.Login(e)
	}
	return e
}

// observeTLSFailed tells the observer, when it counts them, that the
// client's TLS handshake failed for reason (before any startup packet, so
// no login records it).
func (s *session) observeTLSFailed(reason string) {
	if o, ok := s.g.Observer.(shiftkey.TLSObserver); ok {
		o.TLSFailed(s.g.Cluster, reason)
	}
}

// reportEnd tells the observer that the session ls ended.
func (s *session) reportEnd(e *shiftkey.SessionEnd) {
	if o := s.g.Observer; o != nil {
		o.SessionEnd(e)
	}
}

// PoolIdle is how many backend connections the gateway keeps idle.
func (g *Gateway) PoolIdle() int {
	p := &g.pool
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for _, l := range p.conns {
		n += len(l)
	}
	return n
}
