package main

import (
	"archive/zip"
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/redshift"
	"github.com/jackc/pgx/v5"
	"github.com/shiftkey/shiftkey/pgwire"
	"github.com/shiftkey/shiftkey/relay"
	"github.com/shiftkey/shiftkey/scram"
	"github.com/shiftkey/shiftkey/server"
)

// requireTool skips locally and fails in CI when a client is missing.
func requireTool(t *testing.T, ok bool, what string) {
	t.Helper()
	if ok {
		return
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("%s is missing (make test installs it)", what)
	}
	t.Skipf("%s is missing", what)
}

const nodeDir = "../../tests/clients/node"

// requireNodeModule needs node and the npm package mod in tests/clients/node.
func requireNodeModule(t *testing.T, mod string) {
	t.Helper()
	_, err := exec.LookPath("node")
	requireTool(t, err == nil, "node")
	_, err = os.Stat(filepath.Join(nodeDir, "node_modules", mod))
	requireTool(t, err == nil, "tests/clients/node/node_modules/"+mod+" (scripts/ensure-test-tools runs npm ci)")
}

// gatewayTarget is one gateway a client script logs in to: the PG*
// variables, CA_FILE for verify-full TLS ("" for plaintext), and the
// database role the credentials must log in as (current_user).
type gatewayTarget struct {
	host   string
	port   int
	c      cred
	caFile string
	role   string
}

func (g gatewayTarget) String() string {
	return fmt.Sprintf("%s:%d tls=%v", g.host, g.port, g.caFile != "")
}

func (g gatewayTarget) env() []string {
	return append(os.Environ(), "PGHOST="+g.host, "PGPORT="+strconv.Itoa(g.port),
		"PGUSER="+g.c.user, "PGPASSWORD="+g.c.password, "PGDATABASE=dev", "CA_FILE="+g.caFile)
}

// expectClient runs a client (what names it in the log, which shows no
// arguments: they may hold the password) against g; it must succeed and
// print the session's role followed by want.
func expectClient(t *testing.T, g gatewayTarget, want, dir, what, name string, args ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	cmd.Env = g.env()
	start := time.Now()
	b, err := cmd.CombinedOutput()
	t.Logf("%s against %s: %v", what, g, time.Since(start).Round(time.Millisecond))
	want = g.role + " " + want
	if out := strings.TrimSpace(string(b)); err != nil || out != want {
		t.Fatalf("%s against %s: %v: %s (want %q)", what, g, err, out, want)
	}
}

// onBothRelays runs login against dev's gateway, plaintext and verify-full
// TLS (its backend login is by client certificate over TLS 1.3, which the
// event loops carry on too), then plaintext and TLS against a serve whose
// trust-socket backend puts them on the event relay, and against one on
// the goroutine relay. sessions is how many sessions one run of login
// opens; each relay must have carried exactly those.
func onBothRelays(t *testing.T, dbUser string, sessions int64, login func(t *testing.T, g gatewayTarget)) {
	t.Helper()
	t.Run("TLS backend", func(t *testing.T) {
		c := getCreds(t, dev, &redshift.GetClusterCredentialsInput{DbUser: aws.String(dbUser), AutoCreate: aws.Bool(true)})
		var before relay.Stats
		if r := dev.Server.Relay(); r != nil {
			before = r.Stats()
		}
		for _, ca := range []string{"", dev.CAPath} {
			login(t, gatewayTarget{dev.Gateway.Address, dev.Gateway.Port, c, ca, dbUser})
		}
		if r := dev.Server.Relay(); r != nil {
			after := r.Stats()
			if n, b := after.Started-before.Started, after.StartedBackendTLS-before.StartedBackendTLS; n != 2*sessions || b != n {
				t.Errorf("dev's event relay carried %d of the sessions, %d with a TLS backend; want all %d, all with it", n, b, 2*sessions)
			}
		}
	})
	t.Run("event relay", func(t *testing.T) {
		if !pgwire.EventRelaySupported {
			t.Skip("the event relay is Linux only")
		}
		// Plaintext, then verify-full TLS: both on the loops.
		certFile, keyFile := writeServerCert(t, t.TempDir())
		s := startRelayServeWith(t, "", "tls: {cert_file: "+certFile+", key_file: "+keyFile+"}\n")
		role := dbUser + "_ev"
		c := s.creds(t, &redshift.GetClusterCredentialsInput{DbUser: aws.String(role), AutoCreate: aws.Bool(true)})
		login(t, gatewayTarget{s.endpoint.Address, s.endpoint.Port, c, "", role})
		if n := relayStarted(&s.Server); n != sessions {
			t.Errorf("the event relay carried %d sessions, want the client's %d", n, sessions)
		}
		login(t, gatewayTarget{s.endpoint.Address, s.endpoint.Port, c, dev.CAPath, role})
		if r := s.Server.Relay(); r == nil || r.Stats().Started != 2*sessions || r.Stats().StartedTLS != sessions {
			t.Errorf("the event relay carried %+v, want the client's %d sessions plaintext and %d with TLS", r.Stats(), sessions, sessions)
		}
	})
	t.Run("goroutine relay", func(t *testing.T) {
		certFile, keyFile := writeServerCert(t, t.TempDir())
		s := startRelayServeWith(t, "goroutine", "tls: {cert_file: "+certFile+", key_file: "+keyFile+"}\n")
		role := dbUser + "_gr"
		c := s.creds(t, &redshift.GetClusterCredentialsInput{DbUser: aws.String(role), AutoCreate: aws.Bool(true)})
		for _, ca := range []string{"", dev.CAPath} {
			login(t, gatewayTarget{s.endpoint.Address, s.endpoint.Port, c, ca, role})
		}
		if n := relayStarted(&s.Server); n != 0 {
			t.Errorf("%d sessions on an event relay with relay: goroutine", n)
		}
	})
}

// relayStarted is how many sessions s's event relay has carried.
func relayStarted(s *server.Server) int64 {
	if r := s.Relay(); r != nil {
		return r.Started()
	}
	return 0
}

// node-postgres (pg from npm) logs in, on both relays, plaintext and with
// verify-full TLS.
func TestNodePostgresClient(t *testing.T) {
	requireNodeModule(t, "pg")
	onBothRelays(t, "nodeuser", 1, func(t *testing.T, g gatewayTarget) {
		expectClient(t, g, "42", nodeDir, "node-postgres", "node", "login.js")
	})
}

// postgres.js (npm "postgres": its own protocol and SCRAM in JS) on a pool
// of two: a parameter, 20 queries pipelined, a 1000-row transaction, a
// cancelled pg_sleep that must fail with 57014 from the server, and the
// pool still working after it.
func TestPostgresJSClient(t *testing.T) {
	requireNodeModule(t, "postgres")
	// The pool opens its second connection for the pipelined queries; the
	// CancelRequest is no session.
	onBothRelays(t, "pgjsuser", 2, func(t *testing.T, g gatewayTarget) {
		expectClient(t, g, "42 20 1000 57014 ok", nodeDir, "postgres.js", "node", "postgresjs.mjs")
	})
}

// asyncpg (Debian's python3-asyncpg: binary extended protocol, its own
// SCRAM) logs in: a prepared statement, COPY of 5000 rows, and a timeout
// whose CancelRequest must free the connection at once.
func TestAsyncpgClient(t *testing.T) {
	const python = "/usr/bin/python3"
	_, err := os.Stat(python)
	requireTool(t, err == nil, python)
	requireTool(t, exec.Command(python, "-c", "import asyncpg").Run() == nil, "python3-asyncpg")
	onBothRelays(t, "asyncpguser", 1, func(t *testing.T, g gatewayTarget) {
		expectClient(t, g, "42 5000 timeout 7 ok", "../../tests/clients/python", "asyncpg", python, "asyncpg_login.py")
	})
}

// psycopg2 (Debian's python3-psycopg2, over libpq) logs in with SCRAM, and
// with channel_binding=require over verify-full TLS, on both relays.
func TestPsycopg2Client(t *testing.T) {
	const python = "/usr/bin/python3"
	_, err := os.Stat(python)
	requireTool(t, err == nil, python)
	requireTool(t, exec.Command(python, "-c", "import psycopg2").Run() == nil, "python3-psycopg2")
	onBothRelays(t, "psycopg2user", 1, func(t *testing.T, g gatewayTarget) {
		expectClient(t, g, "42", "../../tests/clients/python", "psycopg2", python, "psycopg2_login.py")
	})
}

// The PostgreSQL JDBC driver (Debian's libpostgresql-jdbc-java) logs in,
// on both relays.
func TestJDBCClient(t *testing.T) {
	_, err := exec.LookPath("javac")
	requireTool(t, err == nil, "javac")
	jar, _ := pgJDBCJar(t)
	classes := t.TempDir()
	if out, err := exec.Command("javac", "-d", classes, "../../tests/clients/jdbc/Login.java").CombinedOutput(); err != nil {
		t.Fatalf("javac: %v: %s", err, out)
	}
	onBothRelays(t, "jdbcuser", 1, func(t *testing.T, g gatewayTarget) {
		params := "sslmode=disable"
		if g.caFile != "" {
			params = "sslmode=verify-full&sslrootcert=" + g.caFile
		}
		url := fmt.Sprintf("jdbc:postgresql://%s:%d/dev?%s", g.host, g.port, params)
		expectClient(t, g, "42", ".", "JDBC", "java", "-cp", classes+string(filepath.ListSeparator)+jar, "Login", url, g.c.user, g.c.password)
	})
}

// Every client family logs in to credentials issued at the default
// scram_iterations (scram.IssuedIterations): libpq (psql and psycopg2),
// pgx, node-postgres, postgres.js, pgJDBC and asyncpg. At 1 iteration all
// of them do too except pgJDBC before 42.7.4, which refuses fewer than 4096
// (RFC 5802's minimum; Debian 12's 42.5.5) and so sets the default
// (PGJDBC_JAR tries another jar). SCRAM_ITERATIONS_TRY
// (comma-separated) adds counts to try.
func TestClientsAtScramIterations(t *testing.T) {
	counts := []int{scram.IssuedIterations, 1}
	for _, f := range strings.Split(os.Getenv("SCRAM_ITERATIONS_TRY"), ",") {
		if n, err := strconv.Atoi(strings.TrimSpace(f)); err == nil {
			counts = append(counts, n)
		}
	}
	const python = "/usr/bin/python3"
	classes, compiled := t.TempDir(), false
	for _, n := range counts {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			s := startRelayServeWith(t, "", fmt.Sprintf("scram_iterations: %d", n))
			target := func(t *testing.T, role string) gatewayTarget {
				t.Helper()
				c := s.creds(t, &redshift.GetClusterCredentialsInput{DbUser: aws.String(role), AutoCreate: aws.Bool(true)})
				_, salt, ok, err := s.Store.LiveCredentials(context.Background(), "relayed", c.user, time.Now())
				if err != nil || !ok || salt.Iterations != n {
					t.Fatalf("%s's salt: %d iterations (%v %v), want %d", c.user, salt.Iterations, ok, err, n)
				}
				return gatewayTarget{s.endpoint.Address, s.endpoint.Port, c, "", role}
			}
			t.Run("psql", func(t *testing.T) {
				_, err := exec.LookPath("psql")
				requireTool(t, err == nil, "psql")
				expectClient(t, target(t, "iterpsql"), "42", ".", "psql", "psql", "-Atqc", "SELECT current_user || ' ' || 42")
			})
			t.Run("psycopg2", func(t *testing.T) {
				requireTool(t, exec.Command(python, "-c", "import psycopg2").Run() == nil, "python3-psycopg2")
				expectClient(t, target(t, "iterpsycopg"), "42", "../../tests/clients/python", "psycopg2", python, "psycopg2_login.py")
			})
			t.Run("pgx", func(t *testing.T) {
				g := target(t, "iterpgx")
				conn, err := pgx.Connect(context.Background(), fmt.Sprintf("host=%s port=%d dbname=dev sslmode=disable user=%s password=%s",
					g.host, g.port, g.c.user, g.c.password))
				if err != nil {
					t.Fatal(err)
				}
				defer conn.Close(context.Background())
				var who string
				if err := conn.QueryRow(context.Background(), "SELECT current_user").Scan(&who); err != nil || who != g.role {
					t.Fatalf("pgx: %q %v", who, err)
				}
			})
			t.Run("node-postgres", func(t *testing.T) {
				requireNodeModule(t, "pg")
				expectClient(t, target(t, "iternode"), "42", nodeDir, "node-postgres", "node", "login.js")
			})
			t.Run("postgres.js", func(t *testing.T) {
				requireNodeModule(t, "postgres")
				expectClient(t, target(t, "iterpgjs"), "42 20 1000 57014 ok", nodeDir, "postgres.js", "node", "postgresjs.mjs")
			})
			t.Run("pgJDBC", func(t *testing.T) {
				_, err := exec.LookPath("javac")
				requireTool(t, err == nil, "javac")
				jar, minJDBCIterations := pgJDBCJar(t)
				if !compiled {
					compiled = true
					if out, err := exec.Command("javac", "-d", classes, "../../tests/clients/jdbc/Login.java").CombinedOutput(); err != nil {
						t.Fatalf("javac: %v: %s", err, out)
					}
				}
				g := target(t, "iterjdbc")
				url := fmt.Sprintf("jdbc:postgresql://%s:%d/dev?sslmode=disable", g.host, g.port)
				args := []string{"-cp", classes + string(filepath.ListSeparator) + jar, "Login", url, g.c.user, g.c.password}
				if n < minJDBCIterations {
					out, err := exec.Command("java", args...).CombinedOutput()
					if err == nil {
						t.Fatalf("%s logged in at %d iterations, below the %d its SCRAM library should accept: %s", jar, n, minJDBCIterations, out)
					}
					return
				}
				expectClient(t, g, "42", ".", "JDBC", "java", args...)
			})
			t.Run("asyncpg", func(t *testing.T) {
				requireTool(t, exec.Command(python, "-c", "import asyncpg").Run() == nil, "python3-asyncpg")
				expectClient(t, target(t, "iterasyncpg"), "42 5000 timeout 7 ok", "../../tests/clients/python", "asyncpg", python, "asyncpg_login.py")
			})
		})
	}
}

// pgJDBCJar is the pgJDBC jar to try, PGJDBC_JAR or Debian's, and the
// fewest SCRAM iterations it accepts, known from the SCRAM library it
// bundles: com.ongres.scram 2.x (pgJDBC 42.2.0 to 42.7.3; Debian 12 has
// 42.5.5) refuses fewer than 4096, 3.x (42.7.4 on) takes any count.
func pgJDBCJar(t *testing.T) (jar string, minIterations int) {
	t.Helper()
	jar = cmp.Or(os.Getenv("PGJDBC_JAR"), "/usr/share/java/postgresql.jar")
	z, err := zip.OpenReader(jar)
	if os.IsNotExist(err) && os.Getenv("PGJDBC_JAR") == "" {
		requireTool(t, false, "libpostgresql-jdbc-java")
	}
	if err != nil {
		t.Fatal(err)
	}
	defer z.Close()
	for _, f := range z.File {
		switch {
		case strings.HasPrefix(f.Name, "META-INF/licenses/com.ongres.scram/client-2."):
			return jar, 4096
		case strings.HasPrefix(f.Name, "META-INF/licenses/com.ongres.scram/scram-client-3."):
			return jar, 1
		}
	}
	t.Fatalf("%s bundles no com.ongres.scram 2.x or 3.x that this test knows", jar)
	return "", 0
}

// The AWS SDK for JavaScript v3 (tests/clients/node/awssdk.mjs: its own
// awsQuery and awsJson1_1 serializers, SigV4 signer, error parsing and
// retries) against dev with the issued static keys: GetClusterCredentials
// with every member, WithIAM, AssumeRole and the session's keys,
// Serverless GetCredentials, node-postgres logging in with each, a client
// configured by nothing but dev.env's environment (HTTPS), the SDK's
// clock-skew correction from a client clock 10 minutes off, and the
// errors (name and HTTP status the SDK surfaces, no retry) of an unknown
// cluster and workgroup, an IAM denial, an out-of-range duration and a
// wrong secret key. The script asserts each check and prints them all;
// they are compared here too.
func TestJSSDKClient(t *testing.T) {
	for _, mod := range []string{"pg", "@aws-sdk/client-redshift", "@aws-sdk/client-redshift-serverless", "@aws-sdk/client-sts"} {
		requireNodeModule(t, mod)
	}
	ctx := context.Background()
	role, group := fresh("JSSDK"), fresh("js_group")
	adminExec(t, dev, "CREATE ROLE "+group+" NOLOGIN")
	admin := iam.New(iam.Options{Region: DevRegion, BaseEndpoint: aws.String(dev.APIURL), Credentials: provider(devCreds()), Retryer: aws.NopRetryer{}})
	trust := `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::000000000000:user/admin"},"Action":"sts:AssumeRole"}]}`
	if _, err := admin.CreateRole(ctx, &iam.CreateRoleInput{RoleName: aws.String(role), AssumeRolePolicyDocument: aws.String(trust)}); err != nil {
		t.Fatal(err)
	}
	// GetClusterCredentials, but not for DbUser js_denied, and nothing on Serverless.
	pol := `{"Version":"2012-10-17","Statement":[
		{"Effect":"Allow","Action":["redshift:GetClusterCredentials","redshift:CreateClusterUser"],"Resource":"*"},
		{"Effect":"Deny","Action":"redshift:GetClusterCredentials","Resource":"arn:aws:redshift:*:*:dbuser:*/js_denied"}]}`
	if _, err := admin.PutRolePolicy(ctx, &iam.PutRolePolicyInput{RoleName: aws.String(role), PolicyName: aws.String("p"), PolicyDocument: aws.String(pol)}); err != nil {
		t.Fatal(err)
	}
	wg, err := dev.Store.Workgroup(ctx, DevWorkgroup)
	if err != nil {
		t.Fatal(err)
	}
	cctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(cctx, "node", "awssdk.mjs")
	cmd.Dir = nodeDir
	// The environment of a user who sourced dev.env, which the script's
	// dev.env check uses as it finds it; the other clients are given the
	// plain-HTTP endpoint.
	cmd.Env = os.Environ()
	for k, v := range devEnvFile(t) {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	cmd.Env = append(cmd.Env, "SHIFTKEY_ENDPOINT="+dev.APIURL, "AWS_SESSION_TOKEN=", "AWS_PROFILE=",
		"AWS_CONFIG_FILE=/dev/null", "AWS_SHARED_CREDENTIALS_FILE=/dev/null",
		"CLUSTER="+DevCluster, "WORKGROUP="+DevWorkgroup, "ROLE_ARN=arn:aws:iam::000000000000:role/"+role, "DB_GROUP="+group,
		"PGHOST="+dev.Gateway.Address, "PGPORT="+strconv.Itoa(dev.Gateway.Port),
		"WG_HOST="+wg.Endpoint.Address, "WG_PORT="+strconv.Itoa(wg.Endpoint.Port))
	var stderr strings.Builder
	cmd.Stderr = &stderr
	start := time.Now()
	out, err := cmd.Output()
	t.Logf("awssdk.mjs: %v: %s", time.Since(start).Round(time.Millisecond), out)
	if err != nil {
		t.Fatalf("awssdk.mjs: %v: %s\n%s", err, strings.TrimSpace(stderr.String()), out)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	var got map[string]string
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &got); err != nil {
		t.Fatalf("awssdk.mjs printed %q: %v", out, err)
	}
	want := map[string]string{
		"GetCallerIdentity Arn":                  "user/admin",
		"GetClusterCredentials DbUser":           "IAMA:js_user",
		"GetClusterCredentials login":            "js_user member=true",
		"GetClusterCredentialsWithIAM DbUser":    "IAM:admin",
		"GetClusterCredentialsWithIAM login":     "IAM:admin",
		"GetCallerIdentity (session) Arn":        "arn:aws:sts::000000000000:assumed-role/" + role + "/jssdk",
		"GetClusterCredentials (session) login":  "js_session_user",
		"GetCredentials dbUser":                  "IAM:admin",
		"GetCredentials login":                   "IAM:admin",
		"GetClusterCredentials (dev.env) login":  "js_env_user",
		"client clock 10 minutes slow: attempts": "2 2 2",
		"client clock 10 minutes fast: attempts": "2 2 2",
		"unknown cluster":                        "ClusterNotFoundFault 404 attempts=1",
		"unknown cluster (WithIAM)":              "ClusterNotFoundFault 404 attempts=1",
		"unknown workgroup":                      "ResourceNotFoundException 400 attempts=1",
		"access denied":                          "AccessDenied 403 attempts=1",
		"access denied (Serverless)":             "AccessDeniedException 403 attempts=1",
		"DurationSeconds 60":                     "InvalidParameterValue 400 attempts=1",
		"durationSeconds 10 (Serverless)":        "ValidationException 400 attempts=1",
		"wrong secret key":                       "SignatureDoesNotMatch 403 attempts=1",
		"wrong secret key (Serverless)":          "InvalidSignatureException 403 attempts=1",
		"wrong secret key (STS)":                 "SignatureDoesNotMatch 403 attempts=1",
	}
	for k, w := range want {
		if g, ok := got[k]; g != w || !ok {
			t.Errorf("%s: got %q, want %q", k, g, w)
		}
	}
	if len(got) != len(want) {
		t.Errorf("awssdk.mjs made %d checks, want %d: %v", len(got), len(want), got)
	}
}
