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
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/redshift"
	"github.com/aws/aws-sdk-go-v2/service/redshift/types"
	rss "github.com/aws/aws-sdk-go-v2/service/redshiftserverless"
	"github.com/aws/smithy-go"
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
	// Without TLS the driver is never offered the digest; redshift_connector,
	// which cannot do SCRAM, is told it needs ssl=True.
	s, _, err := driverLogin(t, addr, nil, second)
	if rsCode(err) != "28000" || !strings.Contains(err.Error(), "ssl=True") || len(s.Auth) != 0 {
		t.Fatalf("plaintext: %v, authentication %v; want 28000 naming ssl=True", err, s.Auth)
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

// What redshift_connector does with iam=True and no host, step by step:
// DescribeClusters for the endpoint, the custom-domain probe with that host
// (not a custom domain: CustomDomainAssociationNotFoundFault, then the
// cluster identifier), GetClusterCredentials (DbName "" refused as AWS
// documents it, absent accepted), and, from its credential cache, several
// logins with the one credential.
func TestRedshiftDriverIAMFlow(t *testing.T) {
	ctx := context.Background()
	c := apiClient(dev)
	dc, err := c.DescribeClusters(ctx, &redshift.DescribeClustersInput{ClusterIdentifier: aws.String(DevCluster)})
	if err != nil {
		t.Fatal(err)
	}
	ep := dc.Clusters[0].Endpoint
	host := aws.ToString(ep.Address)
	var nf *types.CustomDomainAssociationNotFoundFault
	if _, err := c.DescribeCustomDomainAssociations(ctx, &redshift.DescribeCustomDomainAssociationsInput{CustomDomainName: aws.String(host)}); !errors.As(err, &nf) {
		t.Fatalf("custom-domain probe for %s: %v, want CustomDomainAssociationNotFoundFault", host, err)
	}
	// DbName "" (the driver without database=) is refused as AWS documents
	// the member (1-64 characters); absent, the credential opens any database.
	var ae smithy.APIError
	_, err = c.GetClusterCredentials(ctx, &redshift.GetClusterCredentialsInput{ClusterIdentifier: aws.String(DevCluster),
		DbUser: aws.String("cacheuser"), DbName: aws.String(""), AutoCreate: aws.Bool(true)})
	if !errors.As(err, &ae) || ae.ErrorCode() != "InvalidParameterValue" || !strings.Contains(ae.ErrorMessage(), "DbName") {
		t.Fatalf("DbName empty: %v, want InvalidParameterValue naming DbName", err)
	}
	out, err := c.GetClusterCredentials(ctx, &redshift.GetClusterCredentialsInput{ClusterIdentifier: aws.String(DevCluster),
		DbUser: aws.String("cacheuser"), AutoCreate: aws.Bool(true)})
	if err != nil {
		t.Fatalf("DbName absent: %v", err)
	}
	cr := cred{aws.ToString(out.DbUser), aws.ToString(out.DbPassword)}
	addr := net.JoinHostPort(host, strconv.Itoa(int(aws.ToInt32(ep.Port))))
	tc := &tls.Config{RootCAs: caPool(t), ServerName: "127.0.0.1"}
	adminExec(t, dev, "CREATE DATABASE cachedb")
	t.Cleanup(func() { adminExec(t, dev, "DROP DATABASE cachedb WITH (FORCE)") })
	// The cached credential, three times, in the default database ("" in
	// the startup packet, as the driver sends it) and another one.
	for i, db := range []string{"", "dev", "cachedb"} {
		p := rslogin.DriverParams(cr.user, db)
		cctx, cancel := context.WithTimeout(ctx, 20*time.Second)
		s, err := rslogin.Login(cctx, addr, rslogin.Config{Params: p, Password: cr.password, TLS: tc})
		if err != nil {
			cancel()
			t.Fatalf("login %d (database %q) with the cached credential: %v", i, db, err)
		}
		got, err := s.Query(cctx, "SELECT current_database()")
		s.Close()
		cancel()
		want := db
		if db == "" {
			want = "dev"
		}
		if err != nil || got != want {
			t.Fatalf("login %d: current_database %q %v, want %s", i, got, err, want)
		}
	}
	if _, err := c.GetClusterCredentialsWithIAM(ctx, &redshift.GetClusterCredentialsWithIAMInput{ClusterIdentifier: aws.String(DevCluster), DbName: aws.String("")}); !errors.As(err, &ae) || ae.ErrorCode() != "InvalidParameterValue" {
		t.Fatalf("GetClusterCredentialsWithIAM with DbName empty: %v, want InvalidParameterValue", err)
	}
	if _, err := serverlessClient().GetCredentials(ctx, &rss.GetCredentialsInput{WorkgroupName: aws.String(DevWorkgroup), DbName: aws.String("")}); !errors.As(err, &ae) || ae.ErrorCode() != "ValidationException" {
		t.Fatalf("Serverless GetCredentials with dbName empty: %v, want ValidationException", err)
	}
}
