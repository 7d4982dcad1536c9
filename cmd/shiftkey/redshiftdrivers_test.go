package main

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/redshift"
	rss "github.com/aws/aws-sdk-go-v2/service/redshiftserverless"
	"github.com/shiftkey/shiftkey/rslogin"
)

// driverLogin logs in to addr as redshift_connector 2.1.15 does (every
// driver parameter of the reference), over TLS verified against dev's CA
// when tc is set, and returns the session's current_user.
func driverLogin(t *testing.T, addr string, tc *tls.Config, c cred) (*rslogin.Session, string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	s, err := rslogin.Login(ctx, addr, rslogin.Config{Params: rslogin.DriverParams(c.user, "dev"), Password: c.password, TLS: tc})
	if err != nil {
		return s, "", err
	}
	defer s.Close()
	u, err := s.Query(ctx, "SELECT current_user")
	return s, u, err
}

func rsCode(err error) string {
	var se *rslogin.ServerError
	if errors.As(err, &se) {
		return se.Code
	}
	return ""
}

func noWarnings(t *testing.T, s *rslogin.Session) {
	t.Helper()
	for _, n := range s.Notices {
		if n.Severity == "WARNING" {
			t.Errorf("WARNING at login: %s", n.Message)
		}
	}
}

var majorMinor = regexp.MustCompile(`^[0-9]+\.[0-9]+$`)

// Issued credentials log in with Redshift's SHA-256 digest (code 13) over
// verify-full TLS, as AWS's drivers do: two live credentials of one user
// both, a wrong password and an expired credential 28P01; no WARNING for
// the driver's parameters, and a server_version that parses as MAJOR.MINOR.
func TestRedshiftDriverDigestLogin(t *testing.T) {
	addr := net.JoinHostPort(dev.Gateway.Address, strconv.Itoa(dev.Gateway.Port))
	tc := &tls.Config{RootCAs: caPool(t), ServerName: "127.0.0.1"}
	in := func(d int32) *redshift.GetClusterCredentialsInput {
		return &redshift.GetClusterCredentialsInput{DbUser: aws.String("rsdriver"), AutoCreate: aws.Bool(true), DurationSeconds: aws.Int32(d)}
	}
	first, second := getCreds(t, dev, in(900)), getCreds(t, dev, in(3600))
	for _, c := range []cred{first, second} {
		s, u, err := driverLogin(t, addr, tc, c)
		if err != nil {
			t.Fatalf("login: %v", err)
		}
		if u != "rsdriver" || !slices.Equal(s.Auth, []int{rslogin.AuthDigest, rslogin.AuthOK}) {
			t.Fatalf("current_user %q, authentication %v; want rsdriver by code 13", u, s.Auth)
		}
		noWarnings(t, s)
		if v := s.Status["server_version"]; !majorMinor.MatchString(v) {
			t.Fatalf("server_version %q, want MAJOR.MINOR", v)
		}
	}
	if _, _, err := driverLogin(t, addr, tc, cred{first.user, first.password + "x"}); rsCode(err) != "28P01" {
		t.Fatalf("wrong password: %v, want 28P01", err)
	}
	clockShift.Store(int64(901 * time.Second))
	defer clockShift.Store(0)
	if _, _, err := driverLogin(t, addr, tc, first); rsCode(err) != "28P01" {
		t.Fatalf("expired credential: %v, want 28P01", err)
	}
	if _, u, err := driverLogin(t, addr, tc, second); err != nil || u != "rsdriver" {
		t.Fatalf("the live credential after the other expired: %q %v", u, err)
	}
	// A client without the drivers' parameters is offered SCRAM, over TLS
	// too, never the digest or MD5.
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	plain, err := rslogin.Login(ctx, addr, rslogin.Config{Params: map[string]string{"user": second.user, "database": "dev", "application_name": "psql"},
		Password: second.password, TLS: tc})
	if !errors.Is(err, rslogin.ErrUnsupported) || !slices.Equal(plain.Auth, []int{rslogin.AuthSASL}) {
		t.Fatalf("a PostgreSQL client over TLS: %v, authentication %v; want SCRAM offered", err, plain.Auth)
	}
	// Without TLS the driver is offered SCRAM, never the digest.
	s, _, err := driverLogin(t, addr, nil, second)
	if !errors.Is(err, rslogin.ErrUnsupported) || !slices.Equal(s.Auth, []int{rslogin.AuthSASL}) {
		t.Fatalf("plaintext: %v, authentication %v; want SCRAM offered", err, s.Auth)
	}
}

// Serverless GetCredentials logs in by code 13 on the workgroup's endpoint.
func TestRedshiftDriverServerless(t *testing.T) {
	ctx := context.Background()
	c := serverlessClient()
	wg, err := c.GetWorkgroup(ctx, &rss.GetWorkgroupInput{WorkgroupName: aws.String(DevWorkgroup)})
	if err != nil {
		t.Fatal(err)
	}
	out, err := c.GetCredentials(ctx, &rss.GetCredentialsInput{WorkgroupName: aws.String(DevWorkgroup)})
	if err != nil {
		t.Fatal(err)
	}
	addr := net.JoinHostPort(aws.ToString(wg.Workgroup.Endpoint.Address), strconv.Itoa(int(aws.ToInt32(wg.Workgroup.Endpoint.Port))))
	s, u, err := driverLogin(t, addr, &tls.Config{RootCAs: caPool(t), ServerName: "127.0.0.1"}, cred{aws.ToString(out.DbUser), aws.ToString(out.DbPassword)})
	if err != nil || u != aws.ToString(out.DbUser) || s.Auth[0] != rslogin.AuthDigest {
		t.Fatalf("workgroup login: %q %v, authentication %v", u, err, s.Auth)
	}
}

// A gateway configured for MD5 in plaintext, with server_version 8.0.2:
// MD5 (code 5) with issued credentials, several live ones, 28P01 for a
// wrong password.
func TestRedshiftDriverMD5FromConfig(t *testing.T) {
	dir := t.TempDir()
	yaml := `
store: {sqlite: ` + filepath.Join(dir, "serve.db") + `}
api: {listen: "127.0.0.1:0"}
clusters:
  - identifier: md5cluster
    database: dev
    gateway: {listen: "127.0.0.1:0", redshift_auth: md5, redshift_auth_plaintext: true, server_version: 8.0.2}
    backend: {host: ` + dev.PG.SocketDir() + `, port: ` + itoa(dev.PG.Port()) + `, admin_user: ` + dev.PG.Superuser() + `}
iam:
  users:
    - name: ci
      access_keys: [{id: "${TEST_KEY_ID}", secret: "${TEST_SECRET}"}]
      policies:
        creds: '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["redshift:GetClusterCredentials","redshift:CreateClusterUser"],"Resource":"*"}]}'
`
	env := map[string]string{"TEST_KEY_ID": "AKIACONFIGKEY0000015", "TEST_SECRET": "config-secret-0123456789"}
	s := startServe(t, yaml, env)
	rs := redshift.New(redshift.Options{Region: "us-east-1", BaseEndpoint: aws.String(s.APIURL),
		Credentials: provider(aws.Credentials{AccessKeyID: env["TEST_KEY_ID"], SecretAccessKey: env["TEST_SECRET"]}), Retryer: aws.NopRetryer{}})
	cl, err := s.Store.Cluster(context.Background(), "md5cluster")
	if err != nil {
		t.Fatal(err)
	}
	addr := net.JoinHostPort(cl.Endpoint.Address, strconv.Itoa(cl.Endpoint.Port))
	var creds []cred
	for range 2 {
		out, err := rs.GetClusterCredentials(context.Background(), &redshift.GetClusterCredentialsInput{ClusterIdentifier: aws.String("md5cluster"),
			DbUser: aws.String("md5user"), AutoCreate: aws.Bool(true)})
		if err != nil {
			t.Fatal(err)
		}
		creds = append(creds, cred{aws.ToString(out.DbUser), aws.ToString(out.DbPassword)})
	}
	for _, c := range creds {
		sess, u, err := driverLogin(t, addr, nil, c)
		if err != nil || u != "md5user" || !slices.Equal(sess.Auth, []int{rslogin.AuthMD5, rslogin.AuthOK}) {
			t.Fatalf("md5 login: %q %v, authentication %v", u, err, sess.Auth)
		}
		if v := sess.Status["server_version"]; v != "8.0.2" {
			t.Fatalf("server_version %q, want the configured 8.0.2", v)
		}
		noWarnings(t, sess)
	}
	if _, _, err := driverLogin(t, addr, nil, cred{creds[0].user, creds[1].password[:10]}); rsCode(err) != "28P01" {
		t.Fatalf("wrong password: %v, want 28P01", err)
	}
}
