// The authenticate phase: SCRAM-SHA-256 (with channel binding over TLS),
// or the cleartext password over TLS, against the login's live
// credentials; decoy salts for unknown logins; repeated failures slowed
// down per address.

package pgwire

import (
	"bytes"
	"cmp"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgproto3"
	"github.com/shiftkey/shiftkey"
	"github.com/shiftkey/shiftkey/scram"
)

// authenticate proves that the client holds a live credential of its
// login, and settles the database the session opens.
func (s *session) authenticate(ctx context.Context, l *request) bool {
	cred, err := s.verify(ctx, l)
	if err != nil {
		s.log.InfoContext(ctx, "login failed", "reason", err.Error())
		l.refused = loginReason(err)
		if r, ok := errors.AsType[revokedProof](err); ok {
			l.cred = r.cred // proved: its record names it and its principal
		}
		return false
	}
	// What the client sent after its last authentication message goes to
	// the backend first; nothing more is read until the relay starts.
	l.pipelined = s.in.rest()
	db := cmp.Or(l.params["database"], cred.DBName, s.t.DefaultDB)
	// Database names are case-sensitive in a startup packet: a credential
	// for dev does not open "DEV".
	if cred.DBName != "" && db != cred.DBName {
		s.sendError(codeInvalidAuthorization, fmt.Sprintf("credential is not valid for database %q", db))
		s.log.InfoContext(ctx, "login failed", "reason", "database not allowed", "credential_id", cred.ID, "database", db)
		l.refused, l.db, l.cred = shiftkey.LoginDatabase, db, cred
		return false
	}
	l.cred, l.db = cred, db
	s.mu.Lock()
	s.credID, s.login = cred.ID, cred.LoginName // so that Terminate can find it
	s.mu.Unlock()
	s.log.with("credential_id", cred.ID, "db_user", cred.DBUser, "database", db)
	return true
}

// maxLoginName bounds the login names worth looking up, well above the
// longest the API issues ("IAMA:" and a DbUser of at most 128 characters).
const maxLoginName = 256

// verify runs SCRAM-SHA-256 (or, where allowed, asks for the password)
// against the live credentials of the login user and returns the one the
// client proved it holds. Every failure answers 28P01 with the same
// message, so a client cannot tell an unknown login from a wrong or
// expired password.
func (s *session) verify(ctx context.Context, l *request) (*shiftkey.Credential, error) {
	g, user := s.t, l.user
	lookupFailed := func(err error) (*shiftkey.Credential, error) {
		g.logger().ErrorContext(ctx, "credential lookup failed", "error", err)
		s.sendError(codeConnectionFailure, "could not look up credentials")
		return nil, lookupError{err}
	}
	var cands *candidates
	fail := func(reason string) (*shiftkey.Credential, error) {
		if cands != nil && cands.err != nil { // the second lookup failed
			return lookupFailed(cands.err)
		}
		// Repeated failures from one address are answered ever later.
		if d := s.g.throttle.fail(s.source, time.Now()); d > 0 {
			g.logger().WarnContext(ctx, "login failures throttled", "remote", s.remote, "delay", d)
			if s.g.sleep != nil {
				s.g.sleep(d)
			} else {
				time.Sleep(d)
			}
		}
		s.sendError(codeInvalidPassword, fmt.Sprintf("password authentication failed for user %q", user))
		return nil, proofRefused(reason)
	}
	now := g.now()
	var creds []*shiftkey.Credential
	var salt shiftkey.LoginSalt
	ok := false
	// A name no credential can have is not looked up: a lookup caches the
	// name, so clients without any credential could fill the cache with
	// names of 10 KB. It fails as an unknown login does.
	if len(user) <= maxLoginName {
		var err error
		if creds, salt, ok, err = g.Credentials.LiveCredentials(ctx, g.Cluster, user, now); err != nil {
			return lookupFailed(err)
		}
	}
	if !ok {
		salt = g.decoySalt(ctx, user)
	}
	cands = &candidates{ctx: ctx, g: g, user: user, now: now, known: ok, lookedUp: len(user) <= maxLoginName, creds: creds}
	cred, err := s.prove(l, cands, salt, fail)
	if err == nil && cands.isRevoked(cred) {
		fail("revoked credential")
		return nil, revokedProof{cred}
	}
	if err == nil {
		// The proof was checked against what the login read when it began,
		// and a client may hold its proof back for as long as the auth
		// timeout: a revocation (deletion, expiry) that returned meanwhile
		// must refuse it, as it refuses the next login.
		live, gone, lerr := cands.stillLive(cred)
		switch {
		case lerr != nil:
			return lookupFailed(lerr)
		case gone != nil:
			fail("revoked credential")
			return nil, revokedProof{gone}
		case !live:
			return fail(reasonNoCredential)
		}
	}
	return cred, err
}

// stillLive tells whether cred, proved, is live now; when it is not and an
// operator revoked it, gone is its revocation's record. A credential of
// the first answer is looked up again, from memory where the store caches
// logins (its writes, and between replicas its change feed, drop what
// they revoke or delete): an answer that had it and now lacks it means it
// went. One that MissedCredentials found was read at the proof already.
func (c *candidates) stillLive(cred *shiftkey.Credential) (live bool, gone *shiftkey.Credential, err error) {
	if slices.Contains(c.missed, cred) {
		return true, nil, nil
	}
	g, now := c.g, c.g.now()
	creds, _, ok, err := g.Credentials.LiveCredentials(c.ctx, g.Cluster, c.user, now)
	if err != nil {
		return false, nil, err
	}
	if ok && slices.ContainsFunc(creds, func(x *shiftkey.Credential) bool { return x.ID == cred.ID }) {
		return true, nil, nil
	}
	if g.Revoked != nil {
		revoked, err := g.Revoked.RevokedCredentials(c.ctx, g.Cluster, c.user, now)
		if err != nil {
			g.logger().WarnContext(c.ctx, "revoked credentials not looked up", "error", err)
		}
		for _, r := range revoked {
			if r.ID == cred.ID {
				return false, r, nil
			}
		}
	}
	return false, nil, nil
}

// revokedProof is a login refused because the client proved a credential
// an operator had revoked.
type revokedProof struct{ cred *shiftkey.Credential }

func (r revokedProof) Error() string { return "revoked credential " + r.cred.ID }

// candidates are the credentials a client's proof is checked against,
// newest first (a client most likely holds the one it was issued last):
// the store's answer, then, when none of it matched and the login exists,
// those the answer lacked (MissedCredentials), and last the login's
// revoked ones (Gateway.Revoked), which a match refuses as revoked. A store shared by replicas
// answers from memory, which can lack a credential another replica issued
// a moment ago; a wrong password costs that one more read, as an unknown
// login's costs its uncached lookup.
type candidates struct {
	ctx   context.Context
	g     *Gateway
	user  string
	now   time.Time
	known bool
	// lookedUp: the name was looked up (not too long to be a login).
	lookedUp bool

	creds, missed, revoked []*shiftkey.Credential
	err                    error // of MissedCredentials
}

// all yields the candidates, newest first: creds, then missed.
func (c *candidates) all(yield func(*shiftkey.Credential) bool) {
	for i := len(c.creds) - 1; i >= 0; i-- {
		if !yield(c.creds[i]) {
			return
		}
	}
	if !c.known {
		// A wrong password of a known login costs the revoked lookup
		// below; an unknown login's failure makes it too (and ignores
		// it), or it would answer that much sooner and tell which names
		// have credentials, which its decoy salt hides. (Its uncached
		// LiveCredentials stands for MissedCredentials' read.)
		if c.lookedUp && c.g.Revoked != nil {
			c.g.Revoked.RevokedCredentials(c.ctx, c.g.Cluster, c.user, c.now)
		}
		return
	}
	c.missed, c.err = c.g.Credentials.MissedCredentials(c.ctx, c.g.Cluster, c.user, c.creds, c.now)
	for i := len(c.missed) - 1; i >= 0; i-- {
		if !yield(c.missed[i]) {
			return
		}
	}
	if c.g.Revoked == nil || c.err != nil {
		return
	}
	// Failing on an error here would turn a wrong password into a store
	// error; the login fails as it would have, only less well described.
	var err error
	if c.revoked, err = c.g.Revoked.RevokedCredentials(c.ctx, c.g.Cluster, c.user, c.now); err != nil {
		c.g.logger().WarnContext(c.ctx, "revoked credentials not looked up", "error", err)
	}
	for _, r := range c.revoked {
		if !yield(r) {
			return
		}
	}
}

// isRevoked reports whether cred is one of the revoked candidates.
func (c *candidates) isRevoked(cred *shiftkey.Credential) bool {
	for _, r := range c.revoked {
		if r == cred {
			return true
		}
	}
	return false
}

// at is the i-th candidate all yielded.
func (c *candidates) at(i int) *shiftkey.Credential {
	if i < len(c.creds) {
		return c.creds[len(c.creds)-1-i]
	}
	i -= len(c.creds)
	if i < len(c.missed) {
		return c.missed[len(c.missed)-1-i]
	}
	return c.revoked[i-len(c.missed)]
}

// none tells that the login had no live credential at all.
func (c *candidates) none() bool { return len(c.creds)+len(c.missed) == 0 }

// prove runs the exchange the client's connection calls for.
func (s *session) prove(l *request, cands *candidates, salt shiftkey.LoginSalt, fail func(string) (*shiftkey.Credential, error)) (*shiftkey.Credential, error) {
	if s.g.AllowCleartext && s.tls != nil {
		return s.cleartext(cands, salt, fail)
	}
	switch s.redshiftAuth(l.params) {
	case RedshiftAuthSHA256:
		return s.extensibleDigest(cands, salt, fail)
	case RedshiftAuthMD5:
		return s.md5(cands, fail)
	}
	if msg := s.noSCRAMFor(l.params); msg != "" {
		s.sendError(codeInvalidAuthorization, msg)
		return nil, errors.New("redshift_connector cannot do SCRAM")
	}
	srv := &scram.Server{Salt: salt.Salt, Iterations: salt.Iterations, ChannelBinding: s.channelBinding()}
	mechanisms := []string{scram.Mechanism}
	if srv.ChannelBinding != nil {
		mechanisms = []string{scram.MechanismPlus, scram.Mechanism}
	}
	first, err := exchange[*pgproto3.SASLInitialResponse](s, &pgproto3.AuthenticationSASL{AuthMechanisms: mechanisms}, pgproto3.AuthTypeSASL, "SASL response")
	if err != nil {
		return nil, err
	}
	if first.AuthMechanism != scram.Mechanism && (first.AuthMechanism != scram.MechanismPlus || srv.ChannelBinding == nil) {
		s.sendError(codeProtocolViolation, "client selected an invalid SASL authentication mechanism")
		return nil, errors.New("bad mechanism")
	}
	clientFirst := first.Data
	if clientFirst == nil {
		// No initial response: the client-first message answers an empty
		// challenge, as PostgreSQL asks for it.
		next, err := exchange[*pgproto3.SASLResponse](s, &pgproto3.AuthenticationSASLContinue{}, pgproto3.AuthTypeSASLContinue, "SASL response")
		if err != nil {
			return nil, err
		}
		clientFirst = next.Data
	}
	serverFirst, err := srv.Start(first.AuthMechanism, clientFirst)
	if err != nil {
		s.sendError(codeProtocolViolation, "malformed SCRAM message")
		return nil, err
	}
	final, err := exchange[*pgproto3.SASLResponse](s, &pgproto3.AuthenticationSASLContinue{Data: serverFirst}, pgproto3.AuthTypeSASLContinue, "SASL response")
	if err != nil {
		return nil, err
	}
	// Newest first, and FinishSeq stops at the first match. The keys are
	// read in place, never copied, so a login costs the same however many
	// older credentials its name has.
	serverFinal, idx, err := srv.FinishSeq(final.Data, func(yield func(storedKey, serverKey []byte) bool) {
		for c := range cands.all {
			if !yield(c.StoredKey, c.ServerKey) {
				return
			}
		}
	})
	if errors.Is(err, scram.ErrAuthFailed) {
		if cands.none() {
			return fail(reasonNoCredential)
		}
		return fail("wrong password")
	}
	if err != nil {
		s.sendError(codeProtocolViolation, "malformed SCRAM message")
		return nil, err
	}
	c := cands.at(idx)
	if !cands.isRevoked(c) { // refused by verify: no server proof for it
		s.fe.Send(&pgproto3.AuthenticationSASLFinal{Data: serverFinal})
	}
	return c, nil
}

// cleartext asks for the password itself (TLS only) and checks it against
// every live credential: one PBKDF2 with the login's salt, then a
// constant-time comparison per credential.
func (s *session) cleartext(cands *candidates, salt shiftkey.LoginSalt, fail func(string) (*shiftkey.Credential, error)) (*shiftkey.Credential, error) {
	pw, err := exchange[*pgproto3.PasswordMessage](s, &pgproto3.AuthenticationCleartextPassword{}, pgproto3.AuthTypeCleartextPassword, "password response")
	if err != nil {
		return nil, err
	}
	keys := scram.NewKeys(pw.Password, salt.Salt, salt.Iterations)
	var found *shiftkey.Credential
	for c := range cands.all {
		if subtle.ConstantTimeCompare(keys.StoredKey[:], c.StoredKey) == 1 {
			found = c
			break
		}
	}
	if found == nil {
		return fail("wrong password (cleartext)")
	}
	return found, nil
}

// exchange sends one authentication request and reads the client's answer,
// which must be a T; authType tells pgproto3 how to decode a 'p' message (0:
// no change). Any other message is answered 08P01.
func exchange[T pgproto3.FrontendMessage](s *session, req pgproto3.BackendMessage, authType uint32, what string) (T, error) {
	var zero T
	s.fe.Send(req)
	if err := s.fe.Flush(); err != nil {
		return zero, err
	}
	if authType != 0 {
		if err := s.fe.SetAuthType(authType); err != nil {
			return zero, err
		}
	}
	msg, err := s.receive()
	if err != nil {
		return zero, fmt.Errorf("read %s: %w", what, err)
	}
	m, ok := msg.(T)
	if !ok {
		s.sendError(codeProtocolViolation, fmt.Sprintf("expected %s, got %s", what, messageName(msg)))
		return zero, errors.New("protocol violation")
	}
	return m, nil
}

// messageName names a client message as the protocol does ("Terminate"),
// not as Go does ("*pgproto3.Terminate").
func messageName(m pgproto3.FrontendMessage) string {
	name := fmt.Sprintf("%T", m)
	return name[strings.LastIndexByte(name, '.')+1:]
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

// decoySalt derives a stable salt for a login without credentials, and
// picks its iteration count (decoyIterations).
func (g *Gateway) decoySalt(ctx context.Context, user string) shiftkey.LoginSalt {
	m := hmac.New(sha256.New, g.Secret)
	io.WriteString(m, g.Cluster+"\x00"+user)
	return shiftkey.LoginSalt{Salt: m.Sum(nil)[:16], Iterations: g.decoyIterations(ctx, user)}
}

// decoyIterations is the iteration count of user's decoy: among the
// counts new logins get and the cluster's logins were salted with, the
// one whose keyed hash with the name is highest (rendezvous hashing). A
// name keeps its count until a new count comes into use, and then
// changes only to that one, as a new login would have it.
func (g *Gateway) decoyIterations(ctx context.Context, user string) int {
	best, bestScore := cmp.Or(g.Iterations, scram.IssuedIterations), []byte(nil)
	counts := g.decoyCounts.get(ctx, g)
	if len(counts) == 0 || len(counts) == 1 && counts[0] == best {
		return best
	}
	// counts is shared: not appended to.
	for _, n := range slices.Concat(counts, []int{best}) {
		m := hmac.New(sha256.New, g.Secret)
		fmt.Fprintf(m, "decoy iterations\x00%s\x00%s\x00%d", g.Cluster, user, n)
		if score := m.Sum(nil); bestScore == nil || bytes.Compare(score, bestScore) > 0 {
			best, bestScore = n, score
		}
	}
	return best
}

// decoyCountsFresh is how long the cluster's salt iteration counts are
// used before they are read again (in the background). A variable for
// tests only.
var decoyCountsFresh = 5 * time.Minute

// decoyCounts are the iteration counts the cluster's logins were salted
// with (Gateway.SaltIterations), read at the first unknown login and
// again every decoyCountsFresh.
type decoyCounts struct {
	first    sync.Mutex // held by the first read
	mu       sync.Mutex
	counts   []int
	at       time.Time // of the last read; zero: none yet
	fetching bool
}

// get returns the counts, reading them first if they never were (the
// decoys would otherwise change once they are) and, when they are old, in
// the background: the answer to an unknown login is not delayed by it.
func (d *decoyCounts) get(ctx context.Context, g *Gateway) []int {
	if g.SaltIterations == nil {
		return nil
	}
	d.mu.Lock()
	counts, at := d.counts, d.at
	stale := !at.IsZero() && time.Since(at) >= decoyCountsFresh && !d.fetching
	if stale {
		d.fetching = true
	}
	d.mu.Unlock()
	switch {
	case at.IsZero():
		d.first.Lock()
		defer d.first.Unlock()
		d.mu.Lock()
		done := !d.at.IsZero()
		d.mu.Unlock()
		if !done {
			d.read(ctx, g)
		}
		d.mu.Lock()
		defer d.mu.Unlock()
		return d.counts
	case stale:
		g.wg.Go(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			d.read(ctx, g)
		})
	}
	return counts
}

// read reads the counts; on an error it keeps the last ones until the
// next try, decoyCountsFresh later.
func (d *decoyCounts) read(ctx context.Context, g *Gateway) {
	counts, err := g.SaltIterations.LoginIterations(ctx, g.Cluster)
	if err != nil {
		g.logger().WarnContext(ctx, "salt iteration counts not read: unknown logins' decoys show the last ones read", "error", err)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if err == nil {
		d.counts = counts
	}
	d.at, d.fetching = time.Now(), false
}

// throttle slows down repeated authentication failures from one source
// address: after freeFailures within window, each further failure answers
// after a delay that doubles up to maxDelay.
type throttle struct {
	sourceCounts
	total atomic.Uint64
}

const (
	freeFailures = 5
	baseDelay    = 100 * time.Millisecond
	maxDelay     = 5 * time.Second
)

// fail records a failure from source and returns how long to wait before
// answering it.
func (t *throttle) fail(source string, now time.Time) time.Duration {
	n := t.add(source, now)
	t.total.Add(1)
	if n <= freeFailures {
		return 0
	}
	return min(baseDelay<<min(n-freeFailures-1, 10), maxDelay)
}

// Failures is the number of failed logins since the gateway started.
func (g *Gateway) Failures() uint64 { return g.throttle.total.Load() }

// authReader holds the client's authentication messages as they are read,
// and hands them out one at a time (next). Nothing is read past what a
// message needs but in the same read: a client that pipelines a query
// after its last SCRAM or password message would lose it when the session
// moves to the relay. Those bytes stay in buf, and rest hands them over.
type authReader struct {
	r     io.Reader
	store []byte
	buf   []byte // read from r, not yet handed out (a slice of store)
}

// next returns the next message: its type and body, valid until the next
// call. A body longer than max is an error, as is a length below 4.
func (a *authReader) next(max int) (byte, []byte, error) {
	if err := a.fill(5); err != nil {
		return 0, nil, err
	}
	n := int(int32(binary.BigEndian.Uint32(a.buf[1:5])))
	if n < 4 {
		return 0, nil, fmt.Errorf("invalid message length: %d", n)
	}
	if n-4 > max {
		return 0, nil, &pgproto3.ExceededMaxBodyLenErr{MaxExpectedBodyLen: max, ActualBodyLen: n - 4}
	}
	if err := a.fill(1 + n); err != nil {
		return 0, nil, err
	}
	msg := a.take(1 + n)
	return msg[0], msg[5:], nil
}

// take hands out the next n bytes, which fill(n) has buffered; they are
// valid until the next fill.
func (a *authReader) take(n int) []byte {
	b := a.buf[:n:n]
	a.buf = a.buf[n:]
	return b
}

// fill reads from r until buf holds n bytes; the end of the stream before
// them is io.ErrUnexpectedEOF.
func (a *authReader) fill(n int) error {
	for len(a.buf) < n {
		if cap(a.store) < n {
			a.store = make([]byte, max(1024, n))
		}
		k := copy(a.store, a.buf)
		m, err := a.r.Read(a.store[k:])
		a.buf = a.store[:k+m]
		if m > 0 {
			continue
		}
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		if err == nil {
			err = io.ErrNoProgress
		}
		return err
	}
	return nil
}

// rest returns the bytes read past the last message handed out, and lets
// go of the buffer (the session keeps a for its life).
func (a *authReader) rest() []byte {
	var b []byte
	if len(a.buf) > 0 {
		b = append([]byte(nil), a.buf...)
	}
	a.store, a.buf = nil, nil
	return b
}
