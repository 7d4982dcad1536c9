package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/redshift"
	"github.com/jackc/pgx/v5"
	"github.com/shiftkey/shiftkey/devca"
	"github.com/shiftkey/shiftkey/internal/pgtest"
	"github.com/shiftkey/shiftkey/pgserver"
	"github.com/shiftkey/shiftkey/secretbox"
)

// copyOver writes the contents of from over to, in place (the same inode,
// as an operator's cp does), keeping to's mode and owner.
func copyOver(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	writeOver(t, to, b)
}

func writeOver(t *testing.T, path string, b []byte) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_TRUNC, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

// backend_auth's CA files replaced in place are read again on SIGHUP: new
// backend connections sign their client certificates with, and verify the
// backend by, the new CA, while a session open before goes on. They were
// never read again: after the backend moved to a new CA, every new login
// failed until a restart.
func TestReloadReadsTheBackendCAAgain(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	first, err := devca.LoadOrCreate(filepath.Join(dir, "ca1"))
	if err != nil {
		t.Fatal(err)
	}
	second, err := devca.LoadOrCreate(filepath.Join(dir, "ca2"))
	if err != nil {
		t.Fatal(err)
	}
	cert, key, caPEM, err := first.ServerFiles("127.0.0.1", "localhost")
	if err != nil {
		t.Fatal(err)
	}
	backend := pgtest.Start(t, func(c *pgserver.Config) {
		c.AnyPort = true
		c.TLS = &pgserver.TLSFiles{Cert: cert, Key: key, CA: caPEM}
	})
	// The config's CA files: copies of the first CA's.
	caCert, caKey := filepath.Join(dir, "backend-ca.crt"), filepath.Join(dir, "backend-ca.key")
	for from, to := range map[string]string{filepath.Join(dir, "ca1", "ca.crt"): caCert, filepath.Join(dir, "ca1", "ca.key"): caKey} {
		b, err := os.ReadFile(from)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(to, b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	yaml := `
store: {sqlite: ` + filepath.Join(dir, "serve.db") + `}
api: {listen: "127.0.0.1:0"}
clusters:
  - identifier: carot
    database: postgres
    gateway: {listen: "127.0.0.1:0"}
    backend: {host: 127.0.0.1, port: ` + itoa(backend.Port()) + `, admin_user: ` + backend.Superuser() + `, login: cert}
backend_auth: {ca_cert_file: ` + caCert + `, ca_key_file: ` + caKey + `}
iam:
  users:
    - name: ci
      access_keys: [{id: "${TEST_KEY_ID}", secret: "${TEST_SECRET}"}]
      policies:
        creds: '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["redshift:GetClusterCredentials","redshift:CreateClusterUser"],"Resource":"*"}]}'
`
	cfgPath := filepath.Join(dir, "serve.yaml")
	if err := os.WriteFile(cfgPath, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	for k, v := range limitsEnv {
		t.Setenv(k, v)
	}
	s := startServe(t, yaml, limitsEnv)
	login := func(name string) (*pgx.Conn, error) {
		out, err := rsClient(strings.TrimPrefix(s.APIURL, "http://"), limitsEnv["TEST_KEY_ID"], limitsEnv["TEST_SECRET"]).GetClusterCredentials(ctx, &redshift.GetClusterCredentialsInput{
			ClusterIdentifier: aws.String("carot"), DbUser: aws.String(fresh(name)), AutoCreate: aws.Bool(true)})
		if err != nil {
			t.Fatal(err)
		}
		c, err := s.Store.Cluster(ctx, "carot")
		if err != nil {
			t.Fatal(err)
		}
		pc, err := pgx.ParseConfig(fmt.Sprintf("host=%s port=%d dbname=postgres sslmode=disable connect_timeout=10", c.Endpoint.Address, c.Endpoint.Port))
		if err != nil {
			t.Fatal(err)
		}
		pc.User, pc.Password = aws.ToString(out.DbUser), aws.ToString(out.DbPassword)
		return pgx.ConnectConfig(ctx, pc)
	}
	before, err := login("caold")
	if err != nil {
		t.Fatalf("login under the first CA: %v", err)
	}
	defer before.Close(ctx)

	// The backend moves to the second CA (its certificate and the CA it
	// takes client certificates from), then the config's files do, in place.
	cert, key, caPEM, err = second.ServerFiles("127.0.0.1", "localhost")
	if err != nil {
		t.Fatal(err)
	}
	for name, b := range map[string][]byte{"server.crt": cert, "server.key": key, "root.crt": caPEM} {
		writeOver(t, filepath.Join(backend.DataDir(), name), b)
	}
	pgtest.PgCtl(t, backend, "reload", "-s")
	copyOver(t, filepath.Join(dir, "ca2", "ca.crt"), caCert)
	copyOver(t, filepath.Join(dir, "ca2", "ca.key"), caKey)
	if err := s.Reload(ctx, cfgPath); err != nil {
		t.Fatal(err)
	}
	after, err := login("canew")
	if err != nil {
		t.Fatalf("login after the backend and the config's CA files moved to a new CA and a reload: %v", err)
	}
	defer after.Close(ctx)
	var one int
	if err := before.QueryRow(ctx, "SELECT 1").Scan(&one); err != nil {
		t.Errorf("the session opened before the reload: %v", err)
	}
}

// The store key file replaced in place by another key is not taken (the
// store's secrets are sealed under the key in use; only `store rotate-key`
// changes it), but SIGHUP says so, naming the file: it said nothing, and
// the operator learned at the next restart, which refuses the new key.
// A reload with the file unchanged says nothing of it.
func TestReloadWarnsOfAReplacedStoreKeyFile(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	keyFile := filepath.Join(dir, "store.key")
	if _, err := secretbox.CreateKeyFile(keyFile); err != nil {
		t.Fatal(err)
	}
	yaml := `
store: {sqlite: ` + filepath.Join(dir, "serve.db") + `, secret_key_file: ` + keyFile + `}
api: {listen: "127.0.0.1:0"}
` + declaredClusterYAML("reloadkey", `"redshift:GetClusterCredentials"`)
	cfgPath := filepath.Join(dir, "serve.yaml")
	if err := os.WriteFile(cfgPath, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	for k, v := range limitsEnv {
		t.Setenv(k, v)
	}
	s := startServe(t, yaml, limitsEnv)
	var logs lockedBuffer
	s.Logger = slog.New(slog.NewJSONHandler(&logs, nil))
	if err := s.Reload(ctx, cfgPath); err != nil {
		t.Fatal(err)
	}
	if out := logs.String(); strings.Contains(out, "store key") {
		t.Errorf("a reload with the store key file unchanged warned of it:\n%s", out)
	}
	other := filepath.Join(t.TempDir(), "other.key")
	if _, err := secretbox.CreateKeyFile(other); err != nil {
		t.Fatal(err)
	}
	copyOver(t, other, keyFile)
	if err := s.Reload(ctx, cfgPath); err != nil {
		t.Fatal(err)
	}
	var warned bool
	for _, r := range logs.records(t) {
		if r["level"] == "WARN" && strings.Contains(fmt.Sprint(r["msg"]), "store key") && r["file"] == keyFile {
			warned = true
		}
	}
	if !warned {
		t.Errorf("a reload after %s was replaced by another key logged no warning naming it:\n%s", keyFile, logs.String())
	}
	// The running server still opens the secrets sealed under the store's
	// key: the declared user's signed call is authenticated and answered.
	if _, err := rsClient(strings.TrimPrefix(s.APIURL, "http://"), limitsEnv["TEST_KEY_ID"], limitsEnv["TEST_SECRET"]).GetClusterCredentials(ctx, &redshift.GetClusterCredentialsInput{
		ClusterIdentifier: aws.String("reloadkey"), DbUser: aws.String("keyuser")}); err != nil {
		t.Errorf("API call after the reload: %v", err)
	}
}
