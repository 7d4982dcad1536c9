// The password exchanges of AWS's Redshift drivers (reference/
// redshift-drivers.md): Redshift's extensible digest (AuthenticationRequest
// code 13, SHA-256) and PostgreSQL's MD5 (code 5), checked against the
// verifiers derived when each credential was issued.

package pgwire

import (
	"crypto/md5"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"strings"

	"github.com/jackc/pgx/v5/pgproto3"
	"github.com/shiftkey/shiftkey"
)

// Gateway.RedshiftAuth values.
const (
	RedshiftAuthSHA256 = "sha256"
	RedshiftAuthMD5    = "md5"
	RedshiftAuthOff    = "off"
)

// AuthDigest is Redshift's AuthenticationRequest code for its extensible
// digest; DigestSHA256 its one algorithm id the drivers all know.
const (
	AuthDigest   = 13
	DigestSHA256 = 0
)

// redshiftAuth is the exchange this session's client gets instead of SCRAM:
// "" unless it is a Redshift driver, on TLS or where plaintext is allowed.
func (s *session) redshiftAuth(params map[string]string) string {
	if !redshiftDriver(params) || s.t.RedshiftAuth == RedshiftAuthOff {
		return ""
	}
	if s.tls == nil && !s.t.RedshiftAuthPlaintext {
		return ""
	}
	if s.t.RedshiftAuth == RedshiftAuthMD5 {
		return RedshiftAuthMD5
	}
	return RedshiftAuthSHA256
}

// pythonDriver reports whether a Redshift driver is redshift_connector,
// whose SCRAM fails with every scramp release pip installs (it hands scramp
// an empty mechanism name).
func pythonDriver(params map[string]string) bool {
	return strings.HasPrefix(params["driver_version"], "Redshift Python Driver")
}

// noSCRAMFor is what redshift_connector is told instead of being offered
// SCRAM, which ends in scramp's "mechanism name ” is not supported" and
// says nothing of the cause; "" for every other client.
func (s *session) noSCRAMFor(params map[string]string) string {
	if !pythonDriver(params) {
		return ""
	}
	const why = "redshift_connector cannot log in with SCRAM (its scramp client rejects the mechanism list), "
	if s.t.RedshiftAuth == RedshiftAuthOff {
		return why + "and this gateway's Redshift password exchange is off: set gateway.redshift_auth to sha256 or md5"
	}
	return why + "and this gateway offers Redshift's password exchange only over TLS: connect with ssl=True " +
		"(the driver's default), or set gateway.redshift_auth_plaintext: true"
}

// authDigestRequest is AuthenticationRequest code 13: algorithm, salt and
// server nonce, each length-prefixed.
type authDigestRequest struct{ salt, nonce []byte }

func (*authDigestRequest) Backend()                {}
func (*authDigestRequest) AuthenticationResponse() {}
func (*authDigestRequest) Decode([]byte) error     { return errors.New("not decoded by the server") }

func (m *authDigestRequest) Encode(dst []byte) ([]byte, error) {
	body := binary.BigEndian.AppendUint32(nil, AuthDigest)
	body = binary.BigEndian.AppendUint32(body, DigestSHA256)
	body = binary.BigEndian.AppendUint32(body, uint32(len(m.salt)))
	body = append(body, m.salt...)
	body = binary.BigEndian.AppendUint32(body, uint32(len(m.nonce)))
	body = append(body, m.nonce...)
	dst = append(dst, 'R')
	dst = binary.BigEndian.AppendUint32(dst, uint32(4+len(body)))
	return append(dst, body...), nil
}

// maxClientNonce bounds the client's nonce (drivers send the time in
// milliseconds, 13 digits).
const maxClientNonce = 256

// extensibleDigest runs code 13 with the login's salt: the client proves
// SHA256(SHA256(password ‖ salt) ‖ server nonce ‖ client nonce). Every live
// credential is compared, newest first, in constant time.
func (s *session) extensibleDigest(cands *candidates, salt shiftkey.LoginSalt, fail func(string) (*shiftkey.Credential, error)) (*shiftkey.Credential, error) {
	nonce := make([]byte, 32)
	rand.Read(nonce)
	cd, err := exchange[*pgproto3.CopyData](s, &authDigestRequest{salt: salt.Salt, nonce: nonce}, 0, "digest response") // the driver's message type 'd'
	if err != nil {
		return nil, err
	}
	digest, clientNonce, ok := parseDigestResponse(cd.Data)
	if !ok {
		s.sendError(codeProtocolViolation, "malformed digest response")
		return nil, errors.New("malformed digest response")
	}
	var found *shiftkey.Credential
	for c := range cands.all {
		if len(c.DigestSHA256) == 0 {
			continue // issued before the digests existed
		}
		h := sha256.New()
		h.Write(c.DigestSHA256)
		h.Write(nonce)
		h.Write(clientNonce)
		if subtle.ConstantTimeCompare(h.Sum(nil), digest) == 1 {
			found = c // newest first: the one a client most likely holds
			break
		}
	}
	if found == nil {
		if cands.none() {
			return fail("no live credential (digest)")
		}
		return fail("wrong password (digest)")
	}
	return found, nil
}

// parseDigestResponse reads the body of the client's 'd' message: Int32
// digest length, digest, Int32 nonce length, nonce, and nothing after.
func parseDigestResponse(b []byte) (digest, nonce []byte, ok bool) {
	field := func() ([]byte, bool) {
		if len(b) < 4 {
			return nil, false
		}
		n := binary.BigEndian.Uint32(b)
		if uint64(n) > uint64(len(b)-4) {
			return nil, false
		}
		f := b[4 : 4+n]
		b = b[4+n:]
		return f, true
	}
	if digest, ok = field(); !ok || len(digest) != sha256.Size {
		return nil, nil, false
	}
	if nonce, ok = field(); !ok || len(nonce) == 0 || len(nonce) > maxClientNonce || len(b) != 0 {
		return nil, nil, false
	}
	return digest, nonce, true
}

// md5 runs PostgreSQL's MD5 exchange: the client proves
// md5(hex(md5(password ‖ login)) ‖ salt), sent as "md5" and hex.
func (s *session) md5(cands *candidates, fail func(string) (*shiftkey.Credential, error)) (*shiftkey.Credential, error) {
	var salt [4]byte
	rand.Read(salt[:])
	pw, err := exchange[*pgproto3.PasswordMessage](s, &pgproto3.AuthenticationMD5Password{Salt: salt}, pgproto3.AuthTypeMD5Password, "password response")
	if err != nil {
		return nil, err
	}
	var found *shiftkey.Credential
	for c := range cands.all {
		if len(c.DigestMD5) == 0 {
			continue
		}
		inner := make([]byte, hex.EncodedLen(len(c.DigestMD5)), hex.EncodedLen(len(c.DigestMD5))+len(salt))
		hex.Encode(inner, c.DigestMD5)
		sum := md5.Sum(append(inner, salt[:]...))
		want := "md5" + hex.EncodeToString(sum[:])
		if subtle.ConstantTimeCompare([]byte(want), []byte(pw.Password)) == 1 {
			found = c
			break
		}
	}
	if found == nil {
		if cands.none() {
			return fail("no live credential (md5)")
		}
		return fail("wrong password (md5)")
	}
	return found, nil
}
