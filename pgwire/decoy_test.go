package pgwire

import (
	"context"
	"encoding/base64"
	"fmt"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/shiftkey/shiftkey"
	"github.com/shiftkey/shiftkey/scram"
	"github.com/shiftkey/shiftkey/sqlite"
)

// An unknown login's decoy salt carries the iteration count new logins get,
// so the count does not tell an unknown login from a new one.
func TestDecoySaltIterations(t *testing.T) {
	secret := []byte("0123456789abcdef0123456789abcdef")
	if n := (&Gateway{Secret: secret}).decoySalt(context.Background(), "IAM:x").Iterations; n != scram.IssuedIterations {
		t.Fatalf("default decoy: %d iterations, want %d", n, scram.IssuedIterations)
	}
	if n := (&Gateway{Secret: secret, Iterations: 7}).decoySalt(context.Background(), "IAM:x").Iterations; n != 7 {
		t.Fatalf("configured decoy: %d iterations, want 7", n)
	}
}

// Against a gateway: an unknown name's SCRAM exchange looks like a known
// name's with a wrong password: same message sizes, same iteration count,
// a salt of the same length that is stable for the name (derived from the
// gateway secret, which survives restarts), and the same failure.
func TestDecoyExchangeLooksLikeAWrongPassword(t *testing.T) {
	_, addr := newGateway(t, func(g *Gateway) { g.Iterations = 4096 }) // memCreds' count
	type seen struct {
		contLen, salt, iters, code, msg string
	}
	exchange := func(user string) seen {
		t.Helper()
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(30 * time.Second))
		const nonce = "decoyclientnonce0123456"
		first, _ := (&pgproto3.SASLInitialResponse{AuthMechanism: "SCRAM-SHA-256", Data: []byte("n,,n=,r=" + nonce)}).Encode(nil)
		if _, err := c.Write(startup(map[string]string{"user": user, "database": "dev"})); err != nil {
			t.Fatal(err)
		}
		fe := pgproto3.NewFrontend(c, c)
		if m, err := fe.Receive(); err != nil {
			t.Fatal(err)
		} else if _, ok := m.(*pgproto3.AuthenticationSASL); !ok {
			t.Fatalf("%s: got %T, want AuthenticationSASL", user, m)
		}
		c.Write(first)
		m, err := fe.Receive()
		cont, ok := m.(*pgproto3.AuthenticationSASLContinue)
		if err != nil || !ok {
			t.Fatalf("%s: got %T %v, want AuthenticationSASLContinue", user, m, err)
		}
		var s seen
		s.contLen = fmt.Sprint(len(cont.Data))
		for _, f := range strings.Split(string(cont.Data), ",") {
			switch {
			case strings.HasPrefix(f, "s="):
				s.salt = f[2:]
			case strings.HasPrefix(f, "i="):
				s.iters = f[2:]
			}
		}
		r := strings.Split(string(cont.Data), ",")[0][2:]
		final, _ := (&pgproto3.SASLResponse{Data: []byte("c=biws,r=" + r + ",p=" + base64.StdEncoding.EncodeToString(make([]byte, 32)))}).Encode(nil)
		c.Write(final)
		m, err = fe.Receive()
		e, ok := m.(*pgproto3.ErrorResponse)
		if err != nil || !ok {
			t.Fatalf("%s: got %T %v, want ErrorResponse", user, m, err)
		}
		s.code, s.msg = e.Code, strings.ReplaceAll(e.Message, user, "NAME")
		return s
	}
	known, unknown := exchange("IAM:u"), exchange("IAM:nobody")
	if len(known.salt) != len(unknown.salt) || known.salt == unknown.salt {
		t.Fatalf("salts %q and %q: want the same length, different", known.salt, unknown.salt)
	}
	known.salt, unknown.salt = "", ""
	if known != unknown {
		t.Fatalf("known name with a wrong password: %+v\nunknown name: %+v", known, unknown)
	}
	if known.code != "28P01" {
		t.Fatalf("failure code %s, want 28P01", known.code)
	}
	// The decoy salt is the same on the next connection.
	a, b := exchange("IAM:other"), exchange("IAM:other")
	if a.salt != b.salt {
		t.Fatalf("an unknown name's salt changed between connections: %q, %q", a.salt, b.salt)
	}
}

// serverFirst starts a SCRAM exchange as user and returns the salt and
// iteration count of the server-first message.
func serverFirst(t *testing.T, addr, user string) (salt, iters string) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(30 * time.Second))
	c.Write(startup(map[string]string{"user": user, "database": "dev"}))
	fe := pgproto3.NewFrontend(c, c)
	if m, err := fe.Receive(); err != nil {
		t.Fatal(err)
	} else if _, ok := m.(*pgproto3.AuthenticationSASL); !ok {
		t.Fatalf("%s: got %T, want AuthenticationSASL", user, m)
	}
	first, _ := (&pgproto3.SASLInitialResponse{AuthMechanism: "SCRAM-SHA-256", Data: []byte("n,,n=,r=decoyclientnonce0123456")}).Encode(nil)
	c.Write(first)
	m, err := fe.Receive()
	cont, ok := m.(*pgproto3.AuthenticationSASLContinue)
	if err != nil || !ok {
		t.Fatalf("%s: got %T %v, want AuthenticationSASLContinue", user, m, err)
	}
	for _, f := range strings.Split(string(cont.Data), ",") {
		switch {
		case strings.HasPrefix(f, "s="):
			salt = f[2:]
		case strings.HasPrefix(f, "i="):
			iters = f[2:]
		}
	}
	return salt, iters
}

// A login salted before scram_iterations changed keeps its own count (its
// credentials' keys were derived with it). Unknown names showed only the
// configured count, so the old count singled out the names that exist.
// Decoys now show each a count among those the cluster's logins were
// salted with (and the configured one), stable per name: no count is
// shown by existing logins alone. The store is the embedded one.
func TestDecoyIterationsDoNotSingleOutOldLogins(t *testing.T) {
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "s.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	// Issued under scram_iterations 4096, before it became 8192.
	salt, err := st.LoginSalt(ctx, "c", "IAM:old", "", shiftkey.LoginSalt{Salt: []byte("0123456789abcdef"), Iterations: 4096})
	if err != nil {
		t.Fatal(err)
	}
	keys := scram.NewKeys("pw", salt.Salt, salt.Iterations)
	now := time.Now()
	if err := st.CreateCredential(ctx, &shiftkey.Credential{ID: "old", Cluster: "c", LoginName: "IAM:old", DBUser: "old", StoredKey: keys.StoredKey[:],
		ServerKey: keys.ServerKey[:], CreatedAt: now, ExpiresAt: now.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	_, addr := fakeGateway(t, &fakeBackend{}, func(g *Gateway) {
		g.Credentials, g.Iterations, g.Secret = st, 8192, []byte("0123456789abcdef0123456789abcdef")
		if si, ok := any(st).(shiftkey.SaltIterations); ok {
			g.SaltIterations = si
		}
	})
	oldSalt, n := serverFirst(t, addr, "IAM:old")
	if n != "4096" {
		t.Fatalf("the old login shows i=%s, want its own 4096", n)
	}
	shown := map[string]int{}
	for i := range 32 {
		user := fmt.Sprintf("IAM:nobody%d", i)
		s1, n1 := serverFirst(t, addr, user)
		s2, n2 := serverFirst(t, addr, user)
		if s1 != s2 || n1 != n2 {
			t.Fatalf("%s: salt and count changed between connections: %s i=%s, %s i=%s", user, s1, n1, s2, n2)
		}
		if len(s1) != len(oldSalt) {
			t.Fatalf("%s: salt %q, the old login's %q: want the same length", user, s1, oldSalt)
		}
		shown[n1]++
	}
	if shown["4096"] == 0 || shown["4096"]+shown["8192"] != 32 {
		t.Fatalf("32 unknown names show iteration counts %v while the login salted before the change shows 4096: the count tells which names exist", shown)
	}
}

// The counts are read again in the background once they are old: a count
// that comes into use meanwhile (a replica configured with another
// scram_iterations issued a login) is then among the decoys' too.
func TestDecoyIterationsFollowTheStore(t *testing.T) {
	// Put back after the gateway has closed (cleanups run last first).
	fresh := decoyCountsFresh
	t.Cleanup(func() { decoyCountsFresh = fresh })
	decoyCountsFresh = 0
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "s.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	_, addr := fakeGateway(t, &fakeBackend{}, func(g *Gateway) {
		g.Credentials, g.SaltIterations, g.Iterations, g.Secret = st, st, 8192, []byte("0123456789abcdef0123456789abcdef")
	})
	shows := func(n string) bool {
		for i := range 16 {
			if _, got := serverFirst(t, addr, fmt.Sprintf("IAM:nobody%d", i)); got == n {
				return true
			}
		}
		return false
	}
	if shows("2048") {
		t.Fatal("a decoy shows 2048 before any login has it")
	}
	if _, err := st.LoginSalt(ctx, "c", "IAM:elsewhere", "", shiftkey.LoginSalt{Salt: []byte("0123456789abcdef"), Iterations: 2048}); err != nil {
		t.Fatal(err)
	}
	if !waitUntil(10*time.Second, func() bool { return shows("2048") }) {
		t.Fatal("no decoy shows 2048 once a login has it")
	}
}
