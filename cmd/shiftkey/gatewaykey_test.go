package main

import (
	"context"
	"net"
	"os"
	"path/filepath"
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
		if s, ok := strings.CutPrefix(f, "s="); ok {
			return s
		}
	}
	t.Fatalf("%s: no salt in %q", user, cont.Data)
	return ""
}

// The SQLite store's generated gateway key (<store.sqlite>.gateway-key)
// keys the decoy salts of logins without credentials. Found as a known
// gap: a file of the wrong length was silently replaced by a fresh key.
// That changes every unknown name's salt while known names keep theirs,
// so anyone who asked a list of names for their salts before and after
// learns which have credentials: the very thing the decoys hide. A
// truncated or corrupted file is refused, named, and left as it was.
func TestServeRefusesACorruptGatewayKeyFile(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	store := filepath.Join(dir, "serve.db")
	keyFile := store + ".gateway-key"
	yaml := `
store: {sqlite: ` + store + `}
api: {listen: "127.0.0.1:0"}
` + declaredClusterYAML("gwkey", `"redshift:GetClusterCredentials","redshift:CreateClusterUser"`)
	env := map[string]string{"TEST_KEY_ID": "AKIACONFIGKEY0000031", "TEST_SECRET": "config-secret-0123456789"}
	cfg, err := config.Parse(strings.NewReader(yaml), func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	if err != nil {
		t.Fatal(err)
	}
	gateway := func(s *Serve) string {
		t.Helper()
		c, err := s.Store.Cluster(ctx, "gwkey")
		if err != nil {
			t.Fatal(err)
		}
		return net.JoinHostPort(c.Endpoint.Address, itoa(c.Endpoint.Port))
	}

	s := &Serve{Config: cfg, Logger: dev.Logger}
	if err := s.Start(ctx); err != nil {
		s.Close()
		t.Fatal(err)
	}
	ci := aws.Credentials{AccessKeyID: env["TEST_KEY_ID"], SecretAccessKey: env["TEST_SECRET"]}
	rs := redshift.New(redshift.Options{Region: "us-east-1", BaseEndpoint: aws.String(s.APIURL), Credentials: provider(ci), Retryer: aws.NopRetryer{}})
	out, err := rs.GetClusterCredentials(ctx, &redshift.GetClusterCredentialsInput{ClusterIdentifier: aws.String("gwkey"), DbUser: aws.String("known"), AutoCreate: aws.Bool(true)})
	if err != nil {
		s.Close()
		t.Fatal(err)
	}
	known := aws.ToString(out.DbUser)
	addr := gateway(s)
	knownSalt, unknownSalt := scramSalt(t, addr, known), scramSalt(t, addr, "IAMA:nobody")
	s.Close()

	// A torn write, a bad restore: the file is no longer 32 bytes.
	good, err := os.ReadFile(keyFile)
	if err != nil {
		t.Fatal(err)
	}
	if len(good) != 32 {
		t.Fatalf("%s is %d bytes, want 32", keyFile, len(good))
	}
	corrupt := good[:20]
	if err := os.WriteFile(keyFile, corrupt, 0o600); err != nil {
		t.Fatal(err)
	}
	s2 := &Serve{Config: cfg, Logger: dev.Logger}
	err = s2.Start(ctx)
	if err == nil {
		defer s2.Close()
		addr := gateway(s2)
		t.Fatalf("serve started with a %d-byte %s and replaced it; the decoy salt of a name without credentials went from %s to %s, "+
			"a known name's stayed %s (now %s): asking before and after tells which names have credentials",
			len(corrupt), keyFile, unknownSalt, scramSalt(t, addr, "IAMA:nobody"), knownSalt, scramSalt(t, addr, known))
	}
	s2.Close()
	if !strings.Contains(err.Error(), keyFile) {
		t.Errorf("the refusal does not name %s: %v", keyFile, err)
	}
	if b, rerr := os.ReadFile(keyFile); rerr != nil || string(b) != string(corrupt) {
		t.Errorf("after the refusal %s holds %d bytes (%v), want the %d it had, untouched", keyFile, len(b), rerr, len(corrupt))
	}

	// Restored, serve starts and every salt is what it was.
	if err := os.WriteFile(keyFile, good, 0o600); err != nil {
		t.Fatal(err)
	}
	s3 := &Serve{Config: cfg, Logger: dev.Logger}
	defer s3.Close()
	if err := s3.Start(ctx); err != nil {
		t.Fatalf("with %s restored: %v", keyFile, err)
	}
	addr = gateway(s3)
	if got := scramSalt(t, addr, "IAMA:nobody"); got != unknownSalt {
		t.Errorf("unknown name's salt %s after the restore, want %s", got, unknownSalt)
	}
	if got := scramSalt(t, addr, known); got != knownSalt {
		t.Errorf("known name's salt %s after the restore, want %s", got, knownSalt)
	}
}
