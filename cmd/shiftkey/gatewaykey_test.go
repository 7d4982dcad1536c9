package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/redshift"
	"github.com/jackc/pgx/v5/pgproto3"
	"github.com/shiftkey/shiftkey/config"
)

// scramSalt opens a SCRAM-SHA-256 exchange as user on the gateway at addr
// and returns the salt it is offered (s= of the server-first message).
func scramSalt(t *testing.T, addr, user string) string {
	salt, _ := scramFirst(t, addr, user)
	return salt
}

// scramFirst is the salt and iteration count of the server-first message
// the gateway at addr sends user.
func scramFirst(t *testing.T, addr, user string) (salt string, iterations int) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(30 * time.Second))
	fe := pgproto3.NewFrontend(c, c)
	fe.Send(&pgproto3.StartupMessage{ProtocolVersion: pgproto3.ProtocolVersionNumber, Parameters: map[string]string{"user": user, "database": "dev"}})
	if err := fe.Flush(); err != nil {
		t.Fatal(err)
	}
	if m, err := fe.Receive(); err != nil {
		t.Fatal(err)
	} else if _, ok := m.(*pgproto3.AuthenticationSASL); !ok {
		t.Fatalf("%s: got %T, want AuthenticationSASL", user, m)
	}
	fe.Send(&pgproto3.SASLInitialResponse{AuthMechanism: "SCRAM-SHA-256", Data: []byte("n,,n=,r=gatewaykeyclientnonce0")})
	if err := fe.Flush(); err != nil {
		t.Fatal(err)
	}
	m, err := fe.Receive()
	cont, ok := m.(*pgproto3.AuthenticationSASLContinue)
	if err != nil || !ok {
		t.Fatalf("%s: got %T %v, want AuthenticationSASLContinue", user, m, err)
	}
	for _, f := range strings.Split(string(cont.Data), ",") {
		if v, ok := strings.CutPrefix(f, "s="); ok {
			salt = v
		}
		if v, ok := strings.CutPrefix(f, "i="); ok {
			iterations, _ = strconv.Atoi(v)
		}
	}
	if salt == "" || iterations == 0 {
		t.Fatalf("%s: no salt or iteration count in %q", user, cont.Data)
	}
	return salt, iterations
}

// gatewayKeyServe is serve on a SQLite store of its own with cluster
// "gwkey", stopped after one credential was issued (for login known) and
// the salts of known and of a name without credentials were noted.
type gatewayKeyServe struct {
	cfg                    *config.Config
	keyFile                string
	known                  string
	knownSalt, unknownSalt string
	startErr               error
}

func newGatewayKeyServe(t *testing.T, keyID string) *gatewayKeyServe {
	t.Helper()
	ctx := context.Background()
	store := filepath.Join(t.TempDir(), "serve.db")
	yaml := `
store: {sqlite: ` + store + `}
api: {listen: "127.0.0.1:0"}
` + declaredClusterYAML("gwkey", `"redshift:GetClusterCredentials","redshift:CreateClusterUser"`)
	env := map[string]string{"TEST_KEY_ID": keyID, "TEST_SECRET": "config-secret-0123456789"}
	cfg, err := config.Parse(strings.NewReader(yaml), func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	if err != nil {
		t.Fatal(err)
	}
	g := &gatewayKeyServe{cfg: cfg, keyFile: store + ".gateway-key"}
	s := g.start(t)
	defer s.Close()
	if s == nil {
		t.Fatal("serve did not start")
	}
	ci := aws.Credentials{AccessKeyID: env["TEST_KEY_ID"], SecretAccessKey: env["TEST_SECRET"]}
	rs := redshift.New(redshift.Options{Region: "us-east-1", BaseEndpoint: aws.String(s.APIURL), Credentials: provider(ci), Retryer: aws.NopRetryer{}})
	out, err := rs.GetClusterCredentials(ctx, &redshift.GetClusterCredentialsInput{ClusterIdentifier: aws.String("gwkey"), DbUser: aws.String("known"), AutoCreate: aws.Bool(true)})
	if err != nil {
		t.Fatal(err)
	}
	g.known = aws.ToString(out.DbUser)
	g.knownSalt, g.unknownSalt = g.salts(t, s)
	return g
}

// start starts serve, and returns nil if it refused to start (the error
// in startErr).
func (g *gatewayKeyServe) start(t *testing.T) *Serve {
	t.Helper()
	s := &Serve{Config: g.cfg, Logger: dev.Logger}
	if err := s.Start(context.Background()); err != nil {
		s.Close()
		g.startErr = err
		return nil
	}
	return s
}

// salts are the salts s's gateway offers the known login and a name
// without credentials.
func (g *gatewayKeyServe) salts(t *testing.T, s *Serve) (known, unknown string) {
	t.Helper()
	addr := g.addrOf(t, s)
	return scramSalt(t, addr, g.known), scramSalt(t, addr, "IAMA:nobody")
}

// addrOf is the address of s's gateway of the cluster.
func (g *gatewayKeyServe) addrOf(t *testing.T, s *Serve) string {
	t.Helper()
	c, err := s.Store.Cluster(context.Background(), "gwkey")
	if err != nil {
		t.Fatal(err)
	}
	return net.JoinHostPort(c.Endpoint.Address, itoa(c.Endpoint.Port))
}

// refused checks that serve refuses to start naming the key file, leaves
// the file as it was (want: its content, nil for missing), and that
// with the file restored it starts with the salts it had.
func (g *gatewayKeyServe) refused(t *testing.T, how string, want []byte, good []byte) {
	t.Helper()
	if s := g.start(t); s != nil {
		defer s.Close()
		known, unknown := g.salts(t, s)
		t.Fatalf("serve started with %s and made a new one; the decoy salt of a name without credentials went from %s to %s, "+
			"a known name's stayed %s (now %s): asking before and after tells which names have credentials",
			how, g.unknownSalt, unknown, g.knownSalt, known)
	}
	if !strings.Contains(g.startErr.Error(), g.keyFile) {
		t.Errorf("the refusal does not name %s: %v", g.keyFile, g.startErr)
	}
	b, err := os.ReadFile(g.keyFile)
	switch {
	case want == nil && !errors.Is(err, os.ErrNotExist):
		t.Errorf("after the refusal %s exists (%d bytes, %v), want it still missing", g.keyFile, len(b), err)
	case want != nil && (err != nil || string(b) != string(want)):
		t.Errorf("after the refusal %s holds %d bytes (%v), want the %d it had, untouched", g.keyFile, len(b), err, len(want))
	}
	// Restored, serve starts and every salt is what it was.
	if err := os.WriteFile(g.keyFile, good, 0o600); err != nil {
		t.Fatal(err)
	}
	s := g.start(t)
	if s == nil {
		t.Fatalf("with %s restored: %v", g.keyFile, g.startErr)
	}
	defer s.Close()
	if known, unknown := g.salts(t, s); known != g.knownSalt || unknown != g.unknownSalt {
		t.Errorf("after the restore the salts are %s (known) and %s (unknown), want %s and %s", known, unknown, g.knownSalt, g.unknownSalt)
	}
}

// The SQLite store's generated gateway key (<store.sqlite>.gateway-key)
// keys the decoy salts of logins without credentials. Found as a known
// gap: a file of the wrong length was silently replaced by a fresh key.
// That changes every unknown name's salt while known names keep theirs,
// so anyone who asked a list of names for their salts before and after
// learns which have credentials: the very thing the decoys hide. A
// truncated or corrupted file is refused, named, and left as it was.
func TestServeRefusesACorruptGatewayKeyFile(t *testing.T) {
	g := newGatewayKeyServe(t, "AKIACONFIGKEY0000031")
	good, err := os.ReadFile(g.keyFile)
	if err != nil {
		t.Fatal(err)
	}
	if len(good) != 32 {
		t.Fatalf("%s is %d bytes, want 32", g.keyFile, len(good))
	}
	// A torn write, a bad restore: the file is no longer 32 bytes.
	corrupt := good[:20]
	if err := os.WriteFile(g.keyFile, corrupt, 0o600); err != nil {
		t.Fatal(err)
	}
	g.refused(t, fmt.Sprintf("a %d-byte %s", len(corrupt), g.keyFile), corrupt, good)
}

// The same file missing (lost with a restore of the store alone, deleted)
// from a store that has issued logins: a new key would tell them apart
// from unknown names as above. Refused, naming the file; none is created.
func TestServeRefusesAMissingGatewayKeyFileOfAStoreWithLogins(t *testing.T) {
	g := newGatewayKeyServe(t, "AKIACONFIGKEY0000032")
	good, err := os.ReadFile(g.keyFile)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(g.keyFile); err != nil {
		t.Fatal(err)
	}
	g.refused(t, "no "+g.keyFile, nil, good)
}

// Dev's gateway.key, the same secret beside dev's store: missing after a
// credential was issued, dev refuses to start, names it and makes none;
// restored, dev starts.
func TestDevRefusesAMissingGatewayKeyOfAStoreWithLogins(t *testing.T) {
	d, dir := startOwnDev(t)
	ctx := context.Background()
	getCreds(t, d, &redshift.GetClusterCredentialsInput{DbUser: aws.String("gwkey"), AutoCreate: aws.Bool(true)})
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	keyFile := filepath.Join(dir, "gateway.key")
	good, err := os.ReadFile(keyFile)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(keyFile); err != nil {
		t.Fatal(err)
	}
	d2 := newTestDev(dir)
	err = d2.Start(ctx)
	d2.Close()
	if err == nil || !strings.Contains(err.Error(), keyFile) {
		t.Fatalf("dev without %s: %v, want a refusal naming it", keyFile, err)
	}
	if _, err := os.Lstat(keyFile); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("after the refusal %s exists (%v): a new key was made", keyFile, err)
	}
	if err := os.WriteFile(keyFile, good, 0o600); err != nil {
		t.Fatal(err)
	}
	d3 := newTestDev(dir)
	defer d3.Close()
	if err := d3.Start(ctx); err != nil {
		t.Fatalf("with %s restored: %v", keyFile, err)
	}
}

// Decoys follow the iteration counts serve's store holds (the store reaches
// the gateway through server.StartGateway): after a restart with another
// scram_iterations, a login salted before keeps its count, and unknown
// names must show it as often as the new one, or the old count would
// single out the names that exist. pgwire's tests give the gateway the
// store themselves; this one goes through serve's wiring.
func TestDecoysFollowServesStoredIterationCounts(t *testing.T) {
	g := newGatewayKeyServe(t, "AKIACONFIGKEY0000007") // its login salted at the default, 4096
	g.cfg.ScramIterations = 8192
	s := g.start(t)
	if s == nil {
		t.Fatal(g.startErr)
	}
	defer s.Close()
	addr := g.addrOf(t, s)
	if _, n := scramFirst(t, addr, g.known); n != 4096 {
		t.Fatalf("after the restart the known login shows %d iterations, want its 4096", n)
	}
	seen := map[int]int{}
	for i := range 32 {
		_, n := scramFirst(t, addr, fmt.Sprintf("IAMA:nobody%02d", i))
		seen[n]++
	}
	if seen[4096] == 0 || seen[8192] == 0 || len(seen) != 2 {
		t.Errorf("32 unknown names show iteration counts %v; want both 4096 (the stored login's) and 8192 (the configured)", seen)
	}
}
