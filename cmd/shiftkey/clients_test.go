package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/redshift"
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

// node-postgres (pg from npm) logs in, plaintext and with verify-full TLS.
func TestNodePostgresClient(t *testing.T) {
	_, err := exec.LookPath("node")
	requireTool(t, err == nil, "node")
	_, err = os.Stat("../../tests/clients/node/node_modules/pg")
	requireTool(t, err == nil, "tests/clients/node/node_modules (npm install --prefix tests/clients/node)")
	c := getCreds(t, dev, &redshift.GetClusterCredentialsInput{DbUser: aws.String("nodeuser"), AutoCreate: aws.Bool(true)})
	for _, tlsOn := range []bool{false, true} {
		cmd := exec.Command("node", "login.js")
		cmd.Dir = "../../tests/clients/node"
		cmd.Env = append(os.Environ(), "PGHOST="+dev.Gateway.Address, "PGPORT="+strconv.Itoa(dev.Gateway.Port),
			"PGUSER="+c.user, "PGPASSWORD="+c.password, "PGDATABASE=dev", "CA_FILE=")
		if tlsOn {
			cmd.Env = append(cmd.Env, "CA_FILE="+dev.CAPath)
		}
		out, err := cmd.CombinedOutput()
		if err != nil || strings.TrimSpace(string(out)) != "nodeuser 42" {
			t.Fatalf("node-postgres (tls=%v): %v: %s", tlsOn, err, out)
		}
	}
}

// The PostgreSQL JDBC driver (Debian's libpostgresql-jdbc-java) logs in.
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
	c := getCreds(t, dev, &redshift.GetClusterCredentialsInput{DbUser: aws.String("jdbcuser"), AutoCreate: aws.Bool(true)})
	for _, params := range []string{"sslmode=disable", "sslmode=verify-full&sslrootcert=" + dev.CAPath} {
		url := fmt.Sprintf("jdbc:postgresql://%s:%d/dev?%s", dev.Gateway.Address, dev.Gateway.Port, params)
		out, err := exec.Command("java", "-cp", classes+string(filepath.ListSeparator)+jar, "Login", url, c.user, c.password).CombinedOutput()
		if err != nil || strings.TrimSpace(string(out)) != "jdbcuser 42" {
			t.Fatalf("JDBC %s: %v: %s", params, err, out)
		}
	}
}
