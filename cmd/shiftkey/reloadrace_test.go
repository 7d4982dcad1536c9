package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/redshift"
	"github.com/jackc/pgx/v5"
	"github.com/shiftkey/shiftkey/config"
	"github.com/shiftkey/shiftkey/secretbox"
)

// Reloads racing issues and TLS logins: one edit narrows an Allow, the
// other widens it and adds a Deny in a second inline policy, so that under
// either file a "prod" DbUser is refused and a "dev" one allowed, and the
// certificate files change at each reload. Nothing fails but what either
// file refuses, and no request is decided by half of one edit and half of
// the other: the widened Allow without its Deny.
func TestReloadRacingIssuesAndLogins(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	certs := [2][2]string{}
	for i := range certs {
		certs[i][0], certs[i][1] = writeServerCert(t, t.TempDir())
	}
	narrow := `'{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["redshift:GetClusterCredentials","redshift:CreateClusterUser"],"Resource":"arn:aws:redshift:*:*:dbuser:opsc/dev*"}]}'`
	wide := `'{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["redshift:GetClusterCredentials","redshift:CreateClusterUser"],"Resource":"*"}]}'`
	deny := `'{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Action":"redshift:GetClusterCredentials","Resource":"arn:aws:redshift:*:*:dbuser:opsc/prod*"}]}'`
	yaml := func(i int) string {
		policies := "        access: " + narrow + "\n"
		if i%2 == 1 {
			policies = "        access: " + wide + "\n        deny-prod: " + deny + "\n"
		}
		c := certs[i%2]
		return `
store: {sqlite: ` + filepath.Join(dir, "serve.db") + `}
api: {listen: "127.0.0.1:0"}
tls: {cert_file: ` + c[0] + `, key_file: ` + c[1] + `}
clusters:
  - identifier: opsc
    database: dev
    gateway: {listen: "127.0.0.1:0"}
    backend: {host: ` + dev.PG.SocketDir() + `, port: ` + itoa(dev.PG.Port()) + `, admin_user: ` + dev.PG.Superuser() + `}
iam:
  users:
    - name: racer
      access_keys: [{id: "${TEST_KEY_ID}", secret: "${TEST_SECRET}"}]
      policies:
` + policies
	}
	s := startServe(t, yaml(0), limitsEnv)
	for k, v := range limitsEnv {
		t.Setenv(k, v)
	}
	cl, err := s.Store.Cluster(ctx, "opsc")
	if err != nil {
		t.Fatal(err)
	}
	rs := redshift.New(redshift.Options{Region: "us-east-1", BaseEndpoint: aws.String(s.APIURL), Retryer: aws.NopRetryer{},
		Credentials: provider(aws.Credentials{AccessKeyID: limitsEnv["TEST_KEY_ID"], SecretAccessKey: limitsEnv["TEST_SECRET"]})})
	issue := func(dbUser string) (*redshift.GetClusterCredentialsOutput, error) {
		return rs.GetClusterCredentials(ctx, &redshift.GetClusterCredentialsInput{ClusterIdentifier: aws.String("opsc"), DbUser: aws.String(dbUser), AutoCreate: aws.Bool(true)})
	}
	var (
		stop                atomic.Bool
		prodAllowed, issues atomic.Int64
		wg                  sync.WaitGroup
		errMu               sync.Mutex
		errs                []string
	)
	fail := func(format string, args ...any) {
		errMu.Lock()
		defer errMu.Unlock()
		if len(errs) < 5 {
			errs = append(errs, fmt.Sprintf(format, args...))
		}
	}
	for w := range 2 {
		dbUser := fmt.Sprintf("dev%s", fresh(fmt.Sprintf("racer%d", w)))
		wg.Go(func() {
			for !stop.Load() {
				out, err := issue(dbUser)
				if err != nil {
					fail("issue for %s: %v", dbUser, err)
					continue
				}
				issues.Add(1)
				pc, err := pgx.ParseConfig(fmt.Sprintf("host=%s port=%d dbname=dev sslmode=require connect_timeout=10", cl.Endpoint.Address, cl.Endpoint.Port))
				if err != nil {
					fail("%v", err)
					return
				}
				pc.User, pc.Password = aws.ToString(out.DbUser), aws.ToString(out.DbPassword)
				conn, err := pgx.ConnectConfig(ctx, pc)
				if err != nil {
					fail("TLS login as %s: %v", dbUser, err)
					continue
				}
				if _, err := conn.Exec(ctx, "SELECT 1"); err != nil {
					fail("query as %s: %v", dbUser, err)
				}
				conn.Close(ctx)
			}
		})
	}
	for range 2 {
		wg.Go(func() {
			for !stop.Load() {
				_, err := issue("produser")
				switch code := apiCode(err); {
				case err == nil:
					prodAllowed.Add(1)
				case code != "AccessDenied":
					fail("issue for produser: %v, want AccessDenied", err)
				}
			}
		})
	}
	cfgPath := filepath.Join(dir, "serve.yaml")
	for i := 1; i <= 40; i++ {
		if err := os.WriteFile(cfgPath, []byte(yaml(i)), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := s.Reload(ctx, cfgPath); err != nil {
			t.Fatalf("reload %d: %v", i, err)
		}
	}
	stop.Store(true)
	wg.Wait()
	for _, e := range errs {
		t.Error(e)
	}
	if n := prodAllowed.Load(); n > 0 {
		t.Errorf("%d credentials issued for produser while the reloads landed: neither file allows it", n)
	}
	if issues.Load() == 0 {
		t.Error("no credential issued during the reloads")
	}
}

// The incident runbook's "status: Inactive in the config and SIGHUP to
// every replica": replicas sharing a PostgreSQL store reload at once, each
// while its API answers (its reload holds its calls off only once the
// store's declaring lock is its own), and the key is refused on each.
func TestReplicasReloadTogether(t *testing.T) {
	ctx := context.Background()
	for k, v := range replicaKeys {
		t.Setenv(k, v)
	}
	storeURL := newStoreDB(t, "reload_")
	dir := t.TempDir()
	keyFile := filepath.Join(dir, "store.key")
	if _, err := secretbox.CreateKeyFile(keyFile); err != nil {
		t.Fatal(err)
	}
	type rep struct {
		*replica
		s    *Serve
		path string
	}
	reps := make([]rep, 3)
	for i := range reps {
		r := &replica{api: freePort(t), gw: freePort(t)}
		path := filepath.Join(dir, fmt.Sprintf("r%d.yaml", i))
		if err := os.WriteFile(path, []byte(replicaYAML(storeURL, keyFile, r.api, r.gw)), 0o600); err != nil {
			t.Fatal(err)
		}
		cfg, err := config.Load(path)
		if err != nil {
			t.Fatal(err)
		}
		s := &Serve{Config: cfg, Logger: dev.Logger}
		t.Cleanup(func() { s.Close() })
		if err := s.Start(ctx); err != nil {
			t.Fatal(err)
		}
		reps[i] = rep{r, s, path}
	}
	issue := func(r rep) error {
		_, err := r.redshift("OPS_KEY", "OPS_SECRET").GetClusterCredentials(ctx, &redshift.GetClusterCredentialsInput{
			ClusterIdentifier: aws.String("shared"), DbUser: aws.String("ops")})
		return err
	}
	for i, r := range reps {
		if err := issue(r); err != nil {
			t.Fatalf("ops on replica %d before the reload: %v", i, err)
		}
		y := strings.Replace(replicaYAML(storeURL, keyFile, r.api, r.gw), `secret: "${OPS_SECRET}"}`, `secret: "${OPS_SECRET}", status: Inactive}`, 1)
		if err := os.WriteFile(r.path, []byte(y), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	var (
		stop atomic.Bool
		wg   sync.WaitGroup
	)
	for i, r := range reps { // calls on every replica while the reloads land
		wg.Go(func() {
			for !stop.Load() {
				if err := issue(r); err != nil && apiCode(err) != "InvalidClientTokenId" {
					t.Errorf("ops on replica %d during the reloads: %v", i, err)
					return
				}
			}
		})
	}
	errs := make([]error, len(reps))
	var reloads sync.WaitGroup
	for i, r := range reps {
		reloads.Go(func() { errs[i] = r.s.Reload(ctx, r.path) })
	}
	reloads.Wait()
	stop.Store(true)
	wg.Wait()
	for i, r := range reps {
		if errs[i] != nil {
			t.Errorf("reload of replica %d: %v", i, errs[i])
		}
		if err := issue(r); apiCode(err) != "InvalidClientTokenId" {
			t.Errorf("ops on replica %d after every replica reloaded: %v, want InvalidClientTokenId", i, err)
		}
	}
}
