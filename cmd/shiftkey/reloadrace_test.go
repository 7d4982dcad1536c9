package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/redshift"
	"github.com/jackc/pgx/v5"
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
