// Package scram implements the server side of SCRAM-SHA-256 and
// SCRAM-SHA-256-PLUS (RFC 5802, RFC 7677) as PostgreSQL uses them, for a
// login that may hold several live passwords at once.
//
// All passwords of one login share one salt and iteration count, so the
// server-first message can be sent before the server knows which password
// the client holds; at client-final the proof is tried against each
// candidate StoredKey. PBKDF2 is paid when a password is issued, never at
// login.
package scram

import (
	"bytes"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"iter"
	"strconv"
	"strings"
)

// Mechanism names.
const (
	Mechanism     = "SCRAM-SHA-256"
	MechanismPlus = "SCRAM-SHA-256-PLUS"
)

// DefaultIterations is PostgreSQL's default scram_iterations, kept for
// passwords people choose (a cluster's master password).
const DefaultIterations = 4096

// IssuedIterations is the default iteration count of the passwords shiftkey
// generates. They carry 288 random bits: no dictionary or brute-force
// search of a leaked verifier is feasible at any count, so iterations would
// only cost CPU on the server at every issue and on both sides at every
// login. The default is nevertheless 4096, the fewest pgJDBC accepts (it
// enforces RFC 5802's minimum; libpq, pgx, node-postgres, postgres.js and
// asyncpg accept 1): scram_iterations lowers it where no JDBC client
// connects. See the README's Security section.
const IssuedIterations = 4096

// maxMessage bounds client messages; real ones are around 100 bytes.
const maxMessage = 8 << 10

// ErrAuthFailed means the proof matched no candidate.
var ErrAuthFailed = errors.New("scram: authentication failed")

// ProtocolError is a malformed or out-of-order client message.
type ProtocolError struct{ Message string }

func (e *ProtocolError) Error() string { return "scram: " + e.Message }

func protoErr(format string, args ...any) error {
	return &ProtocolError{Message: fmt.Sprintf(format, args...)}
}

// Keys are what the server keeps of a password.
type Keys struct {
	StoredKey [32]byte
	ServerKey [32]byte
}

func hmacSum(key, msg []byte) []byte {
	m := hmac.New(sha256.New, key)
	m.Write(msg)
	return m.Sum(nil)
}

// NewKeys derives the keys of password. Passwords are used as their UTF-8
// bytes: SASLprep leaves printable ASCII unchanged, and PostgreSQL itself
// falls back to the raw bytes when SASLprep fails, so issued (ASCII)
// passwords derive the same keys as libpq computes.
func NewKeys(password string, salt []byte, iterations int) Keys {
	s := hi(password, salt, iterations)
	salted := s[:]
	clientKey := hmacSum(salted, []byte("Client Key"))
	var k Keys
	k.StoredKey = sha256.Sum256(clientKey)
	copy(k.ServerKey[:], hmacSum(salted, []byte("Server Key")))
	return k
}

// Verifier is PostgreSQL's stored form of SCRAM keys.
type Verifier struct {
	Iterations int
	Salt       []byte
	Keys
}

// String returns "SCRAM-SHA-256$<iter>:<salt>$<StoredKey>:<ServerKey>".
func (v Verifier) String() string {
	b64 := base64.StdEncoding.EncodeToString
	return fmt.Sprintf("%s$%d:%s$%s:%s", Mechanism, v.Iterations, b64(v.Salt), b64(v.StoredKey[:]), b64(v.ServerKey[:]))
}

// ParseVerifier parses the form String returns.
func ParseVerifier(s string) (Verifier, error) {
	var v Verifier
	mech, rest, ok := strings.Cut(s, "$")
	if !ok || mech != Mechanism {
		return v, errors.New("scram: not a SCRAM-SHA-256 verifier")
	}
	params, keys, ok := strings.Cut(rest, "$")
	if !ok {
		return v, errors.New("scram: malformed verifier")
	}
	iter, salt, ok := strings.Cut(params, ":")
	if !ok {
		return v, errors.New("scram: malformed verifier")
	}
	n, err := strconv.Atoi(iter)
	if err != nil || n < 1 {
		return v, errors.New("scram: bad iteration count")
	}
	v.Iterations = n
	if v.Salt, err = base64.StdEncoding.DecodeString(salt); err != nil || len(v.Salt) == 0 {
		return v, errors.New("scram: bad salt")
	}
	stored, server, ok := strings.Cut(keys, ":")
	if !ok {
		return v, errors.New("scram: malformed verifier")
	}
	for _, kv := range []struct {
		src string
		dst []byte
	}{{stored, v.StoredKey[:]}, {server, v.ServerKey[:]}} {
		b, err := base64.StdEncoding.DecodeString(kv.src)
		if err != nil || len(b) != 32 {
			return v, errors.New("scram: bad key")
		}
		copy(kv.dst, b)
	}
	return v, nil
}

// Server runs one server-side exchange: Start, then Finish.
type Server struct {
	Salt       []byte
	Iterations int
	// ChannelBinding is the tls-server-end-point data when the connection
	// is TLS and the server offers SCRAM-SHA-256-PLUS; nil otherwise.
	ChannelBinding []byte
	Rand           io.Reader // nil → crypto/rand

	started         bool
	gs2Header       string
	clientFirstBare string
	serverFirst     string
	nonce           string
}

// Start consumes client-first-message and returns server-first-message.
func (s *Server) Start(mechanism string, clientFirst []byte) ([]byte, error) {
	if s.started {
		return nil, protoErr("exchange already started")
	}
	s.started = true
	if len(clientFirst) > maxMessage {
		return nil, protoErr("message too long")
	}
	msg := string(clientFirst)
	plus := mechanism == MechanismPlus
	if mechanism != Mechanism && !plus {
		return nil, protoErr("unsupported mechanism")
	}
	if plus && s.ChannelBinding == nil {
		return nil, protoErr("channel binding is not available on this connection")
	}
	// gs2-header = gs2-cbind-flag "," [authzid] ","
	flag, rest, ok := strings.Cut(msg, ",")
	if !ok {
		return nil, protoErr("malformed client-first-message")
	}
	switch {
	case flag == "n":
		if plus {
			return nil, protoErr("SCRAM-SHA-256-PLUS requires channel binding")
		}
	case flag == "y":
		// The client could have used channel binding but thinks the
		// server cannot: if we offer PLUS this is a downgrade.
		if plus || s.ChannelBinding != nil {
			return nil, protoErr("channel binding downgrade refused")
		}
	case strings.HasPrefix(flag, "p="):
		if !plus {
			return nil, protoErr("channel binding requested with a mechanism that does not support it")
		}
		if flag != "p=tls-server-end-point" {
			return nil, protoErr("unsupported channel binding type")
		}
	default:
		return nil, protoErr("malformed gs2 header")
	}
	authzid, bare, ok := strings.Cut(rest, ",")
	if !ok {
		return nil, protoErr("malformed client-first-message")
	}
	if authzid != "" {
		return nil, protoErr("authorization identity is not supported")
	}
	s.gs2Header = flag + ",,"
	// client-first-message-bare = [reserved-mext ","] username "," nonce ["," extensions]
	attrs := strings.Split(bare, ",")
	if len(attrs) < 2 {
		return nil, protoErr("malformed client-first-message")
	}
	if strings.HasPrefix(attrs[0], "m=") {
		return nil, protoErr("mandatory extensions are not supported")
	}
	if !strings.HasPrefix(attrs[0], "n=") {
		return nil, protoErr("missing username attribute")
	}
	clientNonce, ok := strings.CutPrefix(attrs[1], "r=")
	if !ok || clientNonce == "" || !printable(clientNonce) {
		return nil, protoErr("missing or invalid nonce")
	}
	r := s.Rand
	if r == nil {
		r = rand.Reader
	}
	raw := make([]byte, 18)
	if _, err := io.ReadFull(r, raw); err != nil {
		return nil, fmt.Errorf("scram: random: %w", err)
	}
	s.nonce = clientNonce + base64.StdEncoding.EncodeToString(raw)
	s.clientFirstBare = bare
	s.serverFirst = "r=" + s.nonce + ",s=" + base64.StdEncoding.EncodeToString(s.Salt) + ",i=" + strconv.Itoa(s.Iterations)
	return []byte(s.serverFirst), nil
}

// printable reports whether v is printable ASCII without ',' (RFC 5802 nonce).
func printable(v string) bool {
	for i := 0; i < len(v); i++ {
		if v[i] < 0x21 || v[i] > 0x7e || v[i] == ',' {
			return false
		}
	}
	return true
}

// Finish consumes client-final-message, finds the first candidate whose
// StoredKey the proof matches and returns server-final-message and its
// index.
func (s *Server) Finish(clientFinal []byte, candidates []Keys) ([]byte, int, error) {
	return s.FinishSeq(clientFinal, func(yield func(storedKey, serverKey []byte) bool) {
		for i := range candidates {
			if !yield(candidates[i].StoredKey[:], candidates[i].ServerKey[:]) {
				return
			}
		}
	})
}

// FinishSeq is Finish over candidates given as (StoredKey, ServerKey)
// pairs, likeliest first: the keys are read where the caller keeps them,
// and candidates after the match are never asked for, so a login whose
// client holds the first candidate costs the same however many follow.
// The index returned counts the pairs before the match.
func (s *Server) FinishSeq(clientFinal []byte, candidates iter.Seq2[[]byte, []byte]) ([]byte, int, error) {
	if !s.started || s.nonce == "" {
		return nil, -1, protoErr("exchange not started")
	}
	if len(clientFinal) > maxMessage {
		return nil, -1, protoErr("message too long")
	}
	msg := string(clientFinal)
	// client-final-message = channel-binding "," nonce ["," extensions] "," proof
	i := strings.LastIndex(msg, ",p=")
	if i < 0 {
		return nil, -1, protoErr("missing proof")
	}
	withoutProof, proofB64 := msg[:i], msg[i+3:]
	attrs := strings.Split(withoutProof, ",")
	if len(attrs) < 2 {
		return nil, -1, protoErr("malformed client-final-message")
	}
	cb, ok := strings.CutPrefix(attrs[0], "c=")
	if !ok {
		return nil, -1, protoErr("missing channel binding attribute")
	}
	gotCB, err := base64.StdEncoding.DecodeString(cb)
	if err != nil {
		return nil, -1, protoErr("malformed channel binding attribute")
	}
	wantCB := []byte(s.gs2Header)
	if strings.HasPrefix(s.gs2Header, "p=") {
		wantCB = append(wantCB, s.ChannelBinding...)
	}
	if !bytes.Equal(gotCB, wantCB) {
		return nil, -1, protoErr("channel binding does not match")
	}
	nonce, ok := strings.CutPrefix(attrs[1], "r=")
	if !ok || nonce != s.nonce {
		return nil, -1, protoErr("nonce does not match")
	}
	proof, err := base64.StdEncoding.DecodeString(proofB64)
	if err != nil || len(proof) != sha256.Size {
		return nil, -1, protoErr("malformed proof")
	}
	authMessage := []byte(s.clientFirstBare + "," + s.serverFirst + "," + withoutProof)
	found, idx := -1, 0
	var serverKey []byte
	for storedKey, sk := range candidates {
		sig := hmacSum(storedKey, authMessage)
		var clientKey [32]byte
		for j := range clientKey {
			clientKey[j] = proof[j] ^ sig[j]
		}
		h := sha256.Sum256(clientKey[:])
		// The first match ends the search, so callers pass the likeliest
		// candidate first. Timing then tells only where among the login's
		// live credentials the client's own one stands, which the client
		// knows; a failed proof is checked against every candidate.
		if subtle.ConstantTimeCompare(h[:], storedKey) == 1 {
			found, serverKey = idx, sk
			break
		}
		idx++
	}
	s.nonce = "" // an exchange is single-use
	if found < 0 {
		return nil, -1, ErrAuthFailed
	}
	sig := hmacSum(serverKey, authMessage)
	return []byte("v=" + base64.StdEncoding.EncodeToString(sig)), found, nil
}
