package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/redshift"
	"github.com/shiftkey/shiftkey/pgwire"
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
// TLS (its backend login is by client certificate, so the sessions run on
// the goroutine relay), then plaintext against a serve whose trust-socket
// backend puts them on the event relay. sessions is how many sessions one
// run of login opens; the event relay must have carried exactly those.
func onBothRelays(t *testing.T, dbUser string, sessions int64, login func(t *testing.T, g gatewayTarget)) {
	t.Helper()
	t.Run("goroutine relay", func(t *testing.T) {
		c := getCreds(t, dev, &redshift.GetClusterCredentialsInput{DbUser: aws.String(dbUser), AutoCreate: aws.Bool(true)})
		before := relayStarted(&dev.server)
		for _, ca := range []string{"", dev.CAPath} {
			login(t, gatewayTarget{dev.Gateway.Address, dev.Gateway.Port, c, ca, dbUser})
		}
		if n := relayStarted(&dev.server) - before; n != 0 {
			t.Errorf("dev's event relay carried %d of the sessions; its backend login is TLS, so none should be", n)
		}
	})
	t.Run("event relay", func(t *testing.T) {
		if !pgwire.EventRelaySupported {
			t.Skip("the event relay is Linux only")
		}
		s := startRelayServe(t, "")
		role := dbUser + "_ev"
		c := s.creds(t, &redshift.GetClusterCredentialsInput{DbUser: aws.String(role), AutoCreate: aws.Bool(true)})
		login(t, gatewayTarget{s.endpoint.Address, s.endpoint.Port, c, "", role})
		if n := relayStarted(&s.server); n != sessions {
			t.Errorf("the event relay carried %d sessions, want the client's %d", n, sessions)
		}
	})
}

// relayStarted is how many sessions s's event relay has carried.
func relayStarted(s *server) int64 {
	if r := s.currentRelay(); r != nil {
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
	jar := "/usr/share/java/postgresql.jar"
	_, err = os.Stat(jar)
	requireTool(t, err == nil, "libpostgresql-jdbc-java")
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
