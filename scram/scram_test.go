package scram

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"
)

var rfcSalt, _ = base64.StdEncoding.DecodeString("W22ZaJ0SNY7soEsUEjb6gQ==")

// TestRFC7677 checks the exchange of RFC 7677 section 3 byte for byte.
func TestRFC7677(t *testing.T) {
	s := &Server{Salt: rfcSalt, Iterations: 4096}
	first, err := s.Start(Mechanism, []byte("n,,n=user,r=rOprNGfwEbeRWgbNEkqO"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(first), "r=rOprNGfwEbeRWgbNEkqO") || !strings.HasSuffix(string(first), ",s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096") {
		t.Fatalf("server-first %q", first)
	}
	// The RFC's server nonce is not base64; put it in place of ours.
	s.nonce = "rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0"
	s.serverFirst = "r=" + s.nonce + ",s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096"
	keys := NewKeys("pencil", rfcSalt, 4096)
	other := NewKeys("not pencil", rfcSalt, 4096)
	final, idx, err := s.Finish([]byte("c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="), []Keys{other, keys})
	if err != nil {
		t.Fatal(err)
	}
	if idx != 1 || string(final) != "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=" {
		t.Fatalf("server-final %q index %d", final, idx)
	}
}

func TestVerifierRoundTrip(t *testing.T) {
	v := Verifier{Iterations: 4096, Salt: rfcSalt, Keys: NewKeys("pencil", rfcSalt, 4096)}
	s := v.String()
	if !strings.HasPrefix(s, "SCRAM-SHA-256$4096:W22ZaJ0SNY7soEsUEjb6gQ==$") {
		t.Fatalf("verifier %q", s)
	}
	got, err := ParseVerifier(s)
	if err != nil {
		t.Fatal(err)
	}
	if got.Iterations != 4096 || !bytes.Equal(got.Salt, rfcSalt) || got.Keys != v.Keys {
		t.Fatalf("round trip: %+v", got)
	}
	for _, bad := range []string{"", "md5abc", "SCRAM-SHA-256$x:W22Z$a:b", "SCRAM-SHA-256$4096:W22ZaJ0SNY7soEsUEjb6gQ==$YQ==:YQ=="} {
		if _, err := ParseVerifier(bad); err == nil {
			t.Errorf("ParseVerifier(%q) accepted", bad)
		}
	}
}

// client is an independent RFC 5802 client for the tests.
type client struct {
	password, nonce, gs2 string
	cbind                []byte
	first, serverFirst   string
}

func (c *client) clientFirst() []byte {
	c.first = "n=,r=" + c.nonce
	return []byte(c.gs2 + c.first)
}

func (c *client) clientFinal(serverFirst []byte) ([]byte, []byte) {
	c.serverFirst = string(serverFirst)
	var nonce, salt string
	var iter int
	for _, a := range strings.Split(c.serverFirst, ",") {
		switch {
		case strings.HasPrefix(a, "r="):
			nonce = a[2:]
		case strings.HasPrefix(a, "s="):
			salt = a[2:]
		case strings.HasPrefix(a, "i="):
			fmt.Sscan(a[2:], &iter)
		}
	}
	rawSalt, _ := base64.StdEncoding.DecodeString(salt)
	keys := NewKeys(c.password, rawSalt, iter)
	withoutProof := "c=" + base64.StdEncoding.EncodeToString(append([]byte(c.gs2), c.cbind...)) + ",r=" + nonce
	auth := c.first + "," + c.serverFirst + "," + withoutProof
	// Recompute ClientKey from scratch rather than through the server's code.
	salted := pbkdf(c.password, rawSalt, iter)
	clientKey := mac(salted, "Client Key")
	sig := mac(keys.StoredKey[:], auth)
	proof := make([]byte, len(clientKey))
	for i := range proof {
		proof[i] = clientKey[i] ^ sig[i]
	}
	return []byte(withoutProof + ",p=" + base64.StdEncoding.EncodeToString(proof)), mac(mac(salted, "Server Key"), auth)
}

func mac(key []byte, msg string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(msg))
	return m.Sum(nil)
}

// pbkdf is RFC 5802's Hi(), written out independently of crypto/pbkdf2.
func pbkdf(password string, salt []byte, iter int) []byte {
	u := mac([]byte(password), string(append(append([]byte{}, salt...), 0, 0, 0, 1)))
	out := append([]byte(nil), u...)
	for i := 1; i < iter; i++ {
		u = mac([]byte(password), string(u))
		for j := range out {
			out[j] ^= u[j]
		}
	}
	return out
}

func run(t *testing.T, s *Server, mech string, c *client, candidates []Keys) (int, error) {
	t.Helper()
	first, err := s.Start(mech, c.clientFirst())
	if err != nil {
		return -1, err
	}
	final, wantV := c.clientFinal(first)
	v, idx, err := s.Finish(final, candidates)
	if err != nil {
		return idx, err
	}
	if string(v) != "v="+base64.StdEncoding.EncodeToString(wantV) {
		t.Fatalf("server signature %q does not verify", v)
	}
	return idx, nil
}

func TestCandidates(t *testing.T) {
	salt := []byte("0123456789abcdef")
	cands := []Keys{NewKeys("one", salt, 4096), NewKeys("two", salt, 4096), NewKeys("three", salt, 4096)}
	idx, err := run(t, &Server{Salt: salt, Iterations: 4096}, Mechanism, &client{password: "two", nonce: "abc", gs2: "n,,"}, cands)
	if err != nil || idx != 1 {
		t.Fatalf("idx %d err %v, want 1", idx, err)
	}
	_, err = run(t, &Server{Salt: salt, Iterations: 4096}, Mechanism, &client{password: "four", nonce: "abc", gs2: "n,,"}, cands)
	if !errors.Is(err, ErrAuthFailed) {
		t.Fatalf("unknown password: %v", err)
	}
	_, err = run(t, &Server{Salt: salt, Iterations: 4096}, Mechanism, &client{password: "one", nonce: "abc", gs2: "n,,"}, nil)
	if !errors.Is(err, ErrAuthFailed) {
		t.Fatalf("no candidates: %v", err)
	}
}

// FinishSeq asks for no candidate after the one the proof matches, and a
// wrong proof is tried against every candidate.
func TestFinishSeqStopsAtMatch(t *testing.T) {
	salt := []byte("0123456789abcdef")
	cands := []Keys{NewKeys("new", salt, 1), NewKeys("old", salt, 1), NewKeys("older", salt, 1)}
	for _, tc := range []struct {
		password      string
		wantIdx, asks int
	}{{"new", 0, 1}, {"old", 1, 2}, {"wrong", -1, 3}} {
		s := &Server{Salt: salt, Iterations: 1}
		c := &client{password: tc.password, nonce: "abc", gs2: "n,,"}
		first, err := s.Start(Mechanism, c.clientFirst())
		if err != nil {
			t.Fatal(err)
		}
		final, _ := c.clientFinal(first)
		asks := 0
		_, idx, err := s.FinishSeq(final, func(yield func([]byte, []byte) bool) {
			for i := range cands {
				asks++
				if !yield(cands[i].StoredKey[:], cands[i].ServerKey[:]) {
					return
				}
			}
		})
		if idx != tc.wantIdx || asks != tc.asks || (err == nil) != (tc.wantIdx >= 0) {
			t.Errorf("password %q: index %d after %d candidates (%v); want %d after %d", tc.password, idx, asks, err, tc.wantIdx, tc.asks)
		}
	}
}

func TestChannelBinding(t *testing.T) {
	salt := []byte("0123456789abcdef")
	cands := []Keys{NewKeys("pw", salt, 4096)}
	cb := []byte("certificate hash")
	if _, err := run(t, &Server{Salt: salt, Iterations: 4096, ChannelBinding: cb}, MechanismPlus,
		&client{password: "pw", nonce: "n1", gs2: "p=tls-server-end-point,,", cbind: cb}, cands); err != nil {
		t.Fatalf("PLUS with the right binding: %v", err)
	}
	var pe *ProtocolError
	if _, err := run(t, &Server{Salt: salt, Iterations: 4096, ChannelBinding: cb}, MechanismPlus,
		&client{password: "pw", nonce: "n1", gs2: "p=tls-server-end-point,,", cbind: []byte("other cert")}, cands); !errors.As(err, &pe) {
		t.Fatalf("wrong binding data: %v", err)
	}
	if _, err := run(t, &Server{Salt: salt, Iterations: 4096, ChannelBinding: cb}, Mechanism,
		&client{password: "pw", nonce: "n1", gs2: "y,,"}, cands); !errors.As(err, &pe) {
		t.Fatalf("y,, while PLUS is offered: %v", err)
	}
	if _, err := run(t, &Server{Salt: salt, Iterations: 4096}, Mechanism,
		&client{password: "pw", nonce: "n1", gs2: "y,,"}, cands); err != nil {
		t.Fatalf("y,, without TLS: %v", err)
	}
	if _, err := run(t, &Server{Salt: salt, Iterations: 4096, ChannelBinding: cb}, Mechanism,
		&client{password: "pw", nonce: "n1", gs2: "p=tls-server-end-point,,", cbind: cb}, cands); !errors.As(err, &pe) {
		t.Fatalf("p= with the non-PLUS mechanism: %v", err)
	}
	if _, err := run(t, &Server{Salt: salt, Iterations: 4096}, MechanismPlus,
		&client{password: "pw", nonce: "n1", gs2: "p=tls-server-end-point,,"}, cands); !errors.As(err, &pe) {
		t.Fatalf("PLUS without TLS: %v", err)
	}
}

func TestMalformed(t *testing.T) {
	for _, first := range []string{"", "n", "n,", "n,,", "x,,n=,r=a", "n,a=admin,n=,r=abc", "n,,m=ext,n=,r=a", "n,,n=,r=", "n,,r=abc"} {
		s := &Server{Salt: []byte("s"), Iterations: 1}
		if _, err := s.Start(Mechanism, []byte(first)); err == nil {
			t.Errorf("client-first %q accepted", first)
		}
	}
	s := &Server{Salt: []byte("s"), Iterations: 1}
	if _, err := s.Start(Mechanism, []byte("n,,n=,r=abc")); err != nil {
		t.Fatal(err)
	}
	for _, final := range []string{"", "c=biws", "c=biws,r=abc,p=AAAA", "c=biws,r=wrong,p=" + base64.StdEncoding.EncodeToString(make([]byte, 32)), "c=!!,r=abc,p=x"} {
		if _, _, err := s.Finish([]byte(final), nil); err == nil {
			t.Errorf("client-final %q accepted", final)
		}
	}
	if _, _, err := (&Server{}).Finish([]byte("c=biws,r=a,p=a"), nil); err == nil {
		t.Error("Finish before Start accepted")
	}
}

// TestPgconnClient runs pgx's SCRAM client against a minimal server.
func TestPgconnClient(t *testing.T) {
	salt := []byte("fedcba9876543210")
	cands := []Keys{NewKeys("first-password", salt, 4096), NewKeys("second-password", salt, 4096)}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go serveOne(c, salt, cands)
		}
	}()
	for pw, ok := range map[string]bool{"second-password": true, "first-password": true, "wrong": false} {
		conn, err := pgconn.Connect(context.Background(), fmt.Sprintf("postgres://u:%s@%s/db?sslmode=disable", pw, ln.Addr()))
		if ok != (err == nil) {
			t.Fatalf("password %q: err %v", pw, err)
		}
		if err == nil {
			conn.Close(context.Background())
		}
	}
}

func serveOne(c net.Conn, salt []byte, cands []Keys) {
	defer c.Close()
	be := pgproto3.NewBackend(c, c)
	if _, err := be.ReceiveStartupMessage(); err != nil {
		return
	}
	be.Send(&pgproto3.AuthenticationSASL{AuthMechanisms: []string{Mechanism}})
	be.Flush()
	be.SetAuthType(pgproto3.AuthTypeSASL)
	msg, err := be.Receive()
	if err != nil {
		return
	}
	init := msg.(*pgproto3.SASLInitialResponse)
	s := &Server{Salt: salt, Iterations: 4096}
	first, err := s.Start(init.AuthMechanism, init.Data)
	if err != nil {
		return
	}
	be.Send(&pgproto3.AuthenticationSASLContinue{Data: first})
	be.Flush()
	be.SetAuthType(pgproto3.AuthTypeSASLContinue)
	msg, err = be.Receive()
	if err != nil {
		return
	}
	final, _, err := s.Finish(msg.(*pgproto3.SASLResponse).Data, cands)
	if err != nil {
		be.Send(&pgproto3.ErrorResponse{Severity: "FATAL", Code: "28P01", Message: "password authentication failed"})
		be.Flush()
		return
	}
	be.Send(&pgproto3.AuthenticationSASLFinal{Data: final})
	be.Send(&pgproto3.AuthenticationOk{})
	be.Send(&pgproto3.ReadyForQuery{TxStatus: 'I'})
	be.Flush()
	be.Receive() // Terminate
}

func FuzzServer(f *testing.F) {
	f.Add([]byte("n,,n=,r=abc"), []byte("c=biws,r=abc,p=AAAA"))
	f.Add([]byte("p=tls-server-end-point,,n=,r=x"), []byte("c=cD10bHMtc2VydmVyLWVuZC1wb2ludCws,r=x,p="))
	f.Add([]byte("y,,n=user,r=rOprNGfwEbeRWgbNEkqO"), []byte("c=eSws,r=rOprNGfwEbeRWgbNEkqO,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="))
	cands := []Keys{NewKeys("pw", []byte("salt"), 1)}
	f.Fuzz(func(t *testing.T, first, final []byte) {
		for _, mech := range []string{Mechanism, MechanismPlus} {
			s := &Server{Salt: []byte("salt"), Iterations: 1, ChannelBinding: []byte("cb")}
			sf, err := s.Start(mech, first)
			if err != nil {
				continue
			}
			// Splice the server's nonce in so Finish gets past the nonce check sometimes.
			fin := bytes.Replace(final, []byte("r=x"), []byte("r="+s.nonce), 1)
			_ = sf
			if _, idx, err := s.Finish(fin, cands); err == nil && idx != 0 {
				t.Fatalf("index %d", idx)
			}
		}
	})
}

// An attacker who knows a candidate's StoredKey is empty or short (a stored
// row without full SCRAM keys) can compute the client signature and choose
// any ClientKey; such a candidate must never match, and the search must go
// on to (and refuse) the rest.
func TestFinishSeqRefusesShortStoredKeys(t *testing.T) {
	salt := []byte("0123456789abcdef")
	real := NewKeys("pw", salt, 1)
	chosen := make([]byte, 32) // the attacker's ClientKey
	h := sha256.Sum256(chosen)
	for _, stored := range [][]byte{nil, {}, h[:16], h[:31]} {
		s := &Server{Salt: salt, Iterations: 1}
		c := &client{nonce: "abc", gs2: "n,,"}
		first, err := s.Start(Mechanism, c.clientFirst())
		if err != nil {
			t.Fatal(err)
		}
		var nonce string
		for _, a := range strings.Split(string(first), ",") {
			if strings.HasPrefix(a, "r=") {
				nonce = a[2:]
			}
		}
		withoutProof := "c=" + base64.StdEncoding.EncodeToString([]byte("n,,")) + ",r=" + nonce
		sig := mac(stored, c.first+","+string(first)+","+withoutProof)
		proof := make([]byte, 32)
		for i := range proof {
			proof[i] = chosen[i] ^ sig[i]
		}
		final := []byte(withoutProof + ",p=" + base64.StdEncoding.EncodeToString(proof))
		_, idx, err := s.FinishSeq(final, func(yield func([]byte, []byte) bool) {
			if yield(stored, make([]byte, 32)) {
				yield(real.StoredKey[:], real.ServerKey[:])
			}
		})
		if !errors.Is(err, ErrAuthFailed) || idx != -1 {
			t.Errorf("a proof forged for a %d-byte StoredKey: index %d, %v; want ErrAuthFailed", len(stored), idx, err)
		}
	}
}
