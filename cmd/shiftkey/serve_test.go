package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/x509"
	"encoding/pem"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/redshift"
	rss "github.com/aws/aws-sdk-go-v2/service/redshiftserverless"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/jackc/pgx/v5"
	"github.com/shiftkey/shiftkey"
	"github.com/shiftkey/shiftkey/config"
	"github.com/shiftkey/shiftkey/devca"
	"github.com/shiftkey/shiftkey/internal/pgtest"
	"github.com/shiftkey/shiftkey/pgwire"
	"github.com/shiftkey/shiftkey/server"
)

// startServe parses yaml (with env for ${NAME}) and runs serve until the
// test ends.
func startServe(t *testing.T, yaml string, env map[string]string) *Serve {
	t.Helper()
	cfg, err := config.Parse(strings.NewReader(yaml), func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	if err != nil {
		t.Fatal(err)
	}
	s := &Serve{Config: cfg, Logger: dev.Logger}
	t.Cleanup(func() { s.Close() })
	if err := s.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	return s
}

// serve with a config pointing at an existing PostgreSQL (dev's): the
// declared identities work through the SDK and the credentials log in.
func TestServeFromConfig(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	certFile, keyFile := writeServerCert(t, dir)
	yaml := `
store: {sqlite: ` + filepath.Join(dir, "serve.db") + `}
api: {listen: "127.0.0.1:0"}
clusters:
  - identifier: analytics
    database: dev
    gateway: {listen: "127.0.0.1:0"}
    backend: {host: ` + dev.PG.SocketDir() + `, port: ` + itoa(dev.PG.Port()) + `, admin_user: ` + dev.PG.Superuser() + `}
  - identifier: analytics-tls
    database: dev
    gateway: {listen: "127.0.0.1:0"}
    backend: {host: 127.0.0.1, port: ` + itoa(dev.PG.Port()) + `, admin_user: ` + dev.PG.Superuser() + `, login: cert}
backend_auth: {ca_cert_file: ` + dev.CAPath + `, ca_key_file: ` + filepath.Join(filepath.Dir(dev.CAPath), "ca.key") + `}
workgroups:
  - name: serve-wg
    namespace: serve-ns
    database: dev
    gateway: {listen: "127.0.0.1:0"}
    backend: {host: ` + dev.PG.SocketDir() + `, port: ` + itoa(dev.PG.Port()) + `, admin_user: ` + dev.PG.Superuser() + `}
tls: {cert_file: ` + certFile + `, key_file: ` + keyFile + `, require: true}
iam:
  policies:
    - name: own-user
      document: '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["redshift:GetClusterCredentials","redshift:CreateClusterUser"],"Resource":"arn:aws:redshift:*:*:dbuser:analytics*/${aws:username}"}]}'
  groups: [{name: analysts, managed_policies: [own-user]}]
  users:
    - name: ci
      groups: [analysts]
      access_keys: [{id: "${TEST_KEY_ID}", secret: "${TEST_SECRET}"}]
  roles:
    - name: etl
      tags: {RedshiftDbRoles: "loader:reader"}
      trust_policy: '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::000000000000:user/ci"},"Action":"sts:AssumeRole"}]}'
      policies:
        creds: '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"redshift:GetClusterCredentials","Resource":"arn:aws:redshift:*:*:dbuser:analytics/etl_*"}]}'
`
	env := map[string]string{"TEST_KEY_ID": "AKIACONFIGKEY0000001", "TEST_SECRET": "config-secret-0123456789"}
	s := startServe(t, yaml, env)
	cfg := s.Config
	// Applying the same config again changes nothing and does not fail.
	if changes, err := cfg.ApplyIdentities(ctx, s.Store); err != nil || len(changes) != 0 {
		t.Fatalf("second apply: %v %v", changes, err)
	}
	if keys, _ := s.Store.AccessKeys(ctx, "ci"); len(keys) != 1 {
		t.Fatalf("ci has %d keys after two applies", len(keys))
	}

	ci := aws.Credentials{AccessKeyID: env["TEST_KEY_ID"], SecretAccessKey: env["TEST_SECRET"]}
	rs := redshift.New(redshift.Options{Region: "us-east-1", BaseEndpoint: aws.String(s.APIURL), Credentials: provider(ci), Retryer: aws.NopRetryer{}})
	out, err := rs.GetClusterCredentials(ctx, &redshift.GetClusterCredentialsInput{ClusterIdentifier: aws.String("analytics"), DbUser: aws.String("ci"), AutoCreate: aws.Bool(true)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := rs.GetClusterCredentials(ctx, &redshift.GetClusterCredentialsInput{ClusterIdentifier: aws.String("analytics"), DbUser: aws.String("someone")}); !strings.Contains(errString(err), "AccessDenied") {
		t.Fatalf("config policy allowed another user: %v", err)
	}
	c, err := s.Store.Cluster(ctx, "analytics")
	if err != nil {
		t.Fatal(err)
	}
	base := "host=" + c.Endpoint.Address + " port=" + itoa(c.Endpoint.Port) + " dbname=dev user=" + aws.ToString(out.DbUser) + " password=" + aws.ToString(out.DbPassword)
	if _, err := pgx.Connect(ctx, base+" sslmode=disable"); sqlState(err) != "28000" {
		t.Fatalf("plaintext login with tls.require: %v, want 28000", err)
	}
	conn, err := pgx.Connect(ctx, base+" sslmode=verify-full sslrootcert="+dev.CAPath)
	if err != nil {
		t.Fatalf("login through serve's gateway: %v", err)
	}
	defer conn.Close(ctx)
	var user string
	if err := conn.QueryRow(ctx, "SELECT current_user").Scan(&user); err != nil || user != "ci" {
		t.Fatalf("current_user %q %v", user, err)
	}

	// The declared role trusts ci directly; its tag is the session principal's.
	st := sts.New(sts.Options{Region: "us-east-1", BaseEndpoint: aws.String(s.APIURL), Credentials: provider(ci), Retryer: aws.NopRetryer{}})
	ar, err := st.AssumeRole(ctx, &sts.AssumeRoleInput{RoleArn: aws.String("arn:aws:iam::000000000000:role/etl"), RoleSessionName: aws.String("nightly")})
	if err != nil {
		t.Fatal(err)
	}
	sess := aws.Credentials{AccessKeyID: aws.ToString(ar.Credentials.AccessKeyId), SecretAccessKey: aws.ToString(ar.Credentials.SecretAccessKey), SessionToken: aws.ToString(ar.Credentials.SessionToken)}
	srs := redshift.New(redshift.Options{Region: "us-east-1", BaseEndpoint: aws.String(s.APIURL), Credentials: provider(sess), Retryer: aws.NopRetryer{}})
	if _, err := srs.GetClusterCredentials(ctx, &redshift.GetClusterCredentialsInput{ClusterIdentifier: aws.String("analytics"), DbUser: aws.String("etl_loader")}); err != nil {
		t.Fatalf("role session: %v", err)
	}
	// A cluster whose backend login is by client certificate.
	tout, err := rs.GetClusterCredentials(ctx, &redshift.GetClusterCredentialsInput{ClusterIdentifier: aws.String("analytics-tls"), DbUser: aws.String("ci"), AutoCreate: aws.Bool(true)})
	if err != nil {
		t.Fatal(err)
	}
	tc, err := s.Store.Cluster(ctx, "analytics-tls")
	if err != nil {
		t.Fatal(err)
	}
	tconn, err := pgx.Connect(ctx, "host=127.0.0.1 port="+itoa(tc.Endpoint.Port)+" dbname=dev sslmode=verify-full sslrootcert="+dev.CAPath+
		" user="+aws.ToString(tout.DbUser)+" password="+aws.ToString(tout.DbPassword))
	if err != nil {
		t.Fatalf("login through the cert-mode cluster: %v", err)
	}
	var dn string
	if err := tconn.QueryRow(ctx, "SELECT coalesce(client_dn, '') FROM pg_stat_ssl WHERE pid = pg_backend_pid()").Scan(&dn); err != nil || dn != "/CN=ci" {
		t.Fatalf("backend client_dn %q %v", dn, err)
	}
	tconn.Close(ctx)

	// The declared workgroup serves GetCredentials; creating resources
	// needs a provisioner, which serve does not have.
	ciRSS := rss.New(rss.Options{Region: "us-east-1", BaseEndpoint: aws.String(s.APIURL), Credentials: provider(aws.Credentials{AccessKeyID: env["TEST_KEY_ID"], SecretAccessKey: env["TEST_SECRET"]}), Retryer: aws.NopRetryer{}})
	if _, err := ciRSS.GetCredentials(ctx, &rss.GetCredentialsInput{WorkgroupName: aws.String("serve-wg")}); !isCode(err, "AccessDeniedException") {
		t.Fatalf("ci has no GetCredentials permission: %v", err)
	}
	wg, err := s.Store.Workgroup(ctx, "serve-wg")
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Store.PutInlinePolicy(ctx, shiftkey.KindUser, "ci", shiftkey.PolicyDocument{Name: "serverless",
		Document: `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"redshift-serverless:*","Resource":"*"},{"Effect":"Allow","Action":"redshift:CreateCluster","Resource":"*"}]}`}); err != nil {
		t.Fatal(err)
	}
	sc, err := ciRSS.GetCredentials(ctx, &rss.GetCredentialsInput{WorkgroupName: aws.String("serve-wg")})
	if err != nil {
		t.Fatal(err)
	}
	wconn, err := pgx.Connect(ctx, "host=127.0.0.1 port="+itoa(wg.Endpoint.Port)+" dbname=dev sslmode=verify-full sslrootcert="+dev.CAPath+
		" user="+aws.ToString(sc.DbUser)+" password="+aws.ToString(sc.DbPassword))
	if err != nil {
		t.Fatalf("login through serve's workgroup gateway: %v", err)
	}
	wconn.Close(ctx)
	if _, err := ciRSS.CreateWorkgroup(ctx, &rss.CreateWorkgroupInput{WorkgroupName: aws.String("new-wg"), NamespaceName: aws.String("serve-ns")}); !isCode(err, "ValidationException") {
		t.Fatalf("CreateWorkgroup on serve: %v", err)
	}
	if _, err := rs.CreateCluster(ctx, &redshift.CreateClusterInput{ClusterIdentifier: aws.String("new-one"), NodeType: aws.String("dc2.large"),
		MasterUsername: aws.String("admin1"), MasterUserPassword: aws.String("Passw0rdX")}); !isCode(err, "UnsupportedOperation") {
		t.Fatalf("CreateCluster on serve: %v", err)
	}

	role, _ := s.Store.Entity(ctx, shiftkey.KindRole, "etl")
	tags, _ := s.Store.Tags(ctx, shiftkey.KindRole, "etl")
	p := &shiftkey.Principal{Type: shiftkey.PrincipalAssumedRole, RoleName: role.Name, Tags: tags}
	if p.DBUserName() != "IAMR:etl" || strings.Join(p.DBRoles(), ",") != "loader,reader" {
		t.Fatalf("Redshift mapping: %s %v", p.DBUserName(), p.DBRoles())
	}
}

// writeServerCert writes a certificate for 127.0.0.1 from the dev CA.
func writeServerCert(t *testing.T, dir string) (string, string) {
	t.Helper()
	ca, err := devca.LoadOrCreate(filepath.Dir(dev.CAPath))
	if err != nil {
		t.Fatal(err)
	}
	c, err := ca.Issue("127.0.0.1", "localhost")
	if err != nil {
		t.Fatal(err)
	}
	key, err := x509.MarshalECPrivateKey(c.PrivateKey.(*ecdsa.PrivateKey))
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile := filepath.Join(dir, "server.crt"), filepath.Join(dir, "server.key")
	os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Certificate[0]}), 0o600)
	os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: key}), 0o600)
	return certFile, keyFile
}

func provider(c aws.Credentials) aws.CredentialsProviderFunc {
	return func(context.Context) (aws.Credentials, error) { return c, nil }
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

func itoa(n int) string { return strconv.Itoa(n) }

// relayServe is serve with one cluster, "relayed", in front of dev's
// PostgreSQL over its unix socket (trust): plaintext sessions run on the
// relay limits.relay names ("" is the event relay on Linux), one loop.
type relayServe struct {
	*Serve
	rs       *redshift.Client // as the IAM user ci, who may get any DbUser's credentials
	endpoint shiftkey.Endpoint
}

func startRelayServe(t *testing.T, relay string) *relayServe {
	t.Helper()
	return startRelayServeWith(t, relay, "")
}

// startRelayServeWith is startRelayServe with extra top-level config lines.
func startRelayServeWith(t *testing.T, relay, extra string) *relayServe {
	t.Helper()
	dir := t.TempDir()
	yaml := extra + `
store: {sqlite: ` + filepath.Join(dir, "serve.db") + `}
api: {listen: "127.0.0.1:0"}
limits: {pool_size: 2, relay: "` + relay + `", relay_threads: 1}
` + declaredClusterYAML("relayed", `"redshift:GetClusterCredentials","redshift:CreateClusterUser","redshift:JoinGroup"`)
	env := map[string]string{"TEST_KEY_ID": "AKIACONFIGKEY0000002", "TEST_SECRET": "config-secret-0123456789"}
	s := startServe(t, yaml, env)
	ci := aws.Credentials{AccessKeyID: env["TEST_KEY_ID"], SecretAccessKey: env["TEST_SECRET"]}
	rs := redshift.New(redshift.Options{Region: "us-east-1", BaseEndpoint: aws.String(s.APIURL), Credentials: provider(ci), Retryer: aws.NopRetryer{}})
	c, err := s.Store.Cluster(context.Background(), "relayed")
	if err != nil {
		t.Fatal(err)
	}
	return &relayServe{Serve: s, rs: rs, endpoint: c.Endpoint}
}

// creds issues credentials for the cluster "relayed".
func (r *relayServe) creds(t *testing.T, in *redshift.GetClusterCredentialsInput) cred {
	t.Helper()
	in.ClusterIdentifier = aws.String("relayed")
	out, err := r.rs.GetClusterCredentials(context.Background(), in)
	if err != nil {
		t.Fatal(err)
	}
	return cred{aws.ToString(out.DbUser), aws.ToString(out.DbPassword)}
}

// serve's default relay: plaintext sessions to a trust-socket backend run on
// the event loops, back-to-back sessions share a backend, limits.relay:
// epoll or io_uring picks the loops' engine, and limits.relay: goroutine
// leaves the loops out.
func TestServeRelayFromConfig(t *testing.T) {
	if !pgwire.EventRelaySupported {
		t.Skip("the event relay is Linux only")
	}
	ctx := context.Background()
	for _, relay := range []string{"", pgwire.EngineEpoll, pgwire.EngineIOURing, "goroutine"} {
		t.Run("relay="+relay, func(t *testing.T) {
			s := startRelayServe(t, relay)
			out := s.creds(t, &redshift.GetClusterCredentialsInput{DbUser: aws.String("relay_user"), AutoCreate: aws.Bool(true)})
			c := s.endpoint
			dsn := "host=" + c.Address + " port=" + itoa(c.Port) + " dbname=dev sslmode=disable user=" + out.user + " password=" + out.password
			// Six, not two: on a loaded machine a reconnect can come before
			// the last backend's reset is announced (and then starts its
			// own); that every one of them does is what must not happen.
			pids := map[string]bool{}
			for range 6 {
				conn, err := pgx.Connect(ctx, dsn)
				if err != nil {
					t.Fatal(err)
				}
				var user, pid string
				if err := conn.QueryRow(ctx, "SELECT current_user, pg_backend_pid()::text").Scan(&user, &pid); err != nil || user != "relay_user" {
					t.Fatalf("current_user %q %v", user, err)
				}
				pids[pid] = true
				conn.Close(ctx)
			}
			if len(pids) == 6 {
				t.Errorf("6 back-to-back sessions used 6 backends: none was shared")
			}

			// A session's group is granted while it runs and revoked when it
			// ends, whichever relay carried it.
			adminExec(t, dev, "CREATE ROLE relay_readers NOLOGIN")
			t.Cleanup(func() { adminExec(t, dev, "DROP ROLE relay_readers") })
			grp := s.creds(t, &redshift.GetClusterCredentialsInput{DbUser: aws.String("relay_user"), AutoCreate: aws.Bool(true), DbGroups: []string{"relay_readers"}})
			member := func() bool {
				t.Helper()
				conn, err := pgx.Connect(ctx, dev.PG.ConnString(dev.PG.Superuser(), DevDatabase))
				if err != nil {
					t.Fatal(err)
				}
				defer conn.Close(ctx)
				return pgtest.Member(t, conn, "relay_user", "relay_readers")
			}
			gconn, err := pgx.Connect(ctx, "host="+c.Address+" port="+itoa(c.Port)+" dbname=dev sslmode=disable user="+grp.user+" password="+grp.password)
			if err != nil {
				t.Fatal(err)
			}
			if !member() {
				t.Fatal("group not granted during the session")
			}
			gconn.Close(ctx)
			deadline := time.Now().Add(5 * time.Second)
			for member() {
				if time.Now().After(deadline) {
					t.Fatal("group still granted after the session ended")
				}
				time.Sleep(20 * time.Millisecond)
			}
			r := s.Relay()
			switch {
			case relay == "goroutine" && r != nil:
				t.Error("limits.relay goroutine started an event relay")
			case relay != "goroutine" && (r == nil || r.Started() != 7):
				t.Errorf("relay %q: %v, want the 7 sessions on the event relay", relay, r)
			case relay != "goroutine" && relay != "" && r.Engine() != relay:
				t.Errorf("relay %q ran on %s", relay, r.Engine())
			case relay == "" && r.Engine() != pgwire.EngineIOURing && r.Engine() != pgwire.EngineEpoll:
				t.Errorf("default relay ran on %q", r.Engine())
			}
		})
	}
}

// declaredClusterYAML is the clusters and iam blocks of a serve config: one
// cluster id on dev's PostgreSQL, and user ci (key ${TEST_KEY_ID}) allowed
// actions (quoted, comma-separated) on every resource, plus more statements.
func declaredClusterYAML(id, actions string, more ...string) string {
	statements := `{"Effect":"Allow","Action":[` + actions + `],"Resource":"*"}`
	for _, st := range more {
		statements += "," + st
	}
	return `clusters:
  - identifier: ` + id + `
    database: dev
    gateway: {listen: "127.0.0.1:0"}
    backend: {host: ` + dev.PG.SocketDir() + `, port: ` + itoa(dev.PG.Port()) + `, admin_user: ` + dev.PG.Superuser() + `}
iam:
  users:
    - name: ci
      access_keys: [{id: "${TEST_KEY_ID}", secret: "${TEST_SECRET}"}]
      policies:
        creds: '{"Version":"2012-10-17","Statement":[` + statements + `]}'
`
}

// Found in an operator's review: a serve that failed to start (its admin
// port taken) had already written the declared identities of its config
// into the store; with a shared store one mis-deployed host changes them
// for the whole fleet. Listeners and certificates are now checked first.
func TestServeThatCannotListenWritesNothing(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	failedServeWritesNothing(t, `admin: {listen: "`+taken.Addr().String()+`"}`, "nolisten", "admin listen")
}

// The same for an audit log that cannot be opened (its directory is
// missing): the identities were written before the log was opened.
func TestServeThatCannotOpenItsAuditLogWritesNothing(t *testing.T) {
	dir := t.TempDir()
	failedServeWritesNothing(t, `audit: {file: `+filepath.Join(dir, "missing", "audit.log")+`}`, "noaudit", "audit.file")
}

// failedServeWritesNothing starts serve with a config (extra, and a
// declared cluster and user ci) that must fail with an error saying
// wantErr, and checks that neither the user nor the cluster reached the
// store.
func failedServeWritesNothing(t *testing.T, extra, cluster, wantErr string) {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	yaml := `
store: {sqlite: ` + filepath.Join(dir, "serve.db") + `}
api: {listen: "127.0.0.1:0"}
` + extra + `
` + declaredClusterYAML(cluster, `"redshift:GetClusterCredentials"`)
	cfg, err := config.Parse(strings.NewReader(yaml), func(k string) (string, bool) { v, ok := limitsEnv[k]; return v, ok })
	if err != nil {
		t.Fatal(err)
	}
	s := &Serve{Config: cfg, Logger: dev.Logger}
	err = s.Start(ctx)
	s.Close()
	if err == nil || !strings.Contains(err.Error(), wantErr) {
		t.Fatalf("Start: %v, want an error saying %q", err, wantErr)
	}
	db, err := server.OpenStore(ctx, cfg.Store, dev.Logger)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Entity(ctx, shiftkey.KindUser, "ci"); shiftkey.ErrorCode(err) != shiftkey.CodeNoSuchEntity {
		t.Fatalf("the declared user ci was written by a serve that did not start (%v)", err)
	}
	if _, err := db.Cluster(ctx, cluster); shiftkey.ErrorCode(err) != shiftkey.CodeClusterNotFound {
		t.Fatalf("the declared cluster was written by a serve that did not start (%v)", err)
	}
}
