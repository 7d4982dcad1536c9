package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/redshift"
	"github.com/jackc/pgx/v5"
)

// serveChild is a `shiftkey serve` run as its own process (startMain),
// with the listeners it logged.
type serveChild struct {
	exited              <-chan error
	signal              func(os.Signal)
	api, gateway, admin string // host:port
	logPath, auditPath  string
}

// startServeChild writes opsYAML(extra) with an audit file, starts serve on
// it and waits until it is ready.
func startServeChild(t *testing.T, extra string, env ...map[string]string) *serveChild {
	t.Helper()
	dir := t.TempDir()
	c := &serveChild{auditPath: filepath.Join(dir, "audit.log")}
	cfgPath := filepath.Join(dir, "serve.yaml")
	if err := os.WriteFile(cfgPath, []byte(opsYAML(dir, "audit: {file: "+c.auditPath+"}\n"+extra)), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd, exited, logPath := startMain(t, "serve --config "+cfgPath, append([]map[string]string{opsEnv}, env...)...)
	c.exited, c.logPath = exited, logPath
	c.signal = func(sig os.Signal) { cmd.Process.Signal(sig) }
	waitUntil(t, 60*time.Second, "serve logs its listeners", func() bool {
		b, _ := os.ReadFile(logPath)
		for _, line := range strings.Split(string(b), "\n") {
			var r struct{ Msg, API, Admin, Listen string }
			if json.Unmarshal([]byte(line), &r) != nil {
				continue
			}
			switch r.Msg {
			case "gateway listening":
				c.gateway = r.Listen
			case "shiftkey serving":
				c.api, c.admin = strings.TrimPrefix(r.API, "http://"), strings.TrimPrefix(r.Admin, "http://")
			}
		}
		return c.api != "" && c.gateway != ""
	})
	waitUntil(t, 10*time.Second, "serve ready", func() bool {
		code, _ := c.readyz()
		return code == 200
	})
	return c
}

// readyz is /readyz's status and body (0 when the admin listener does not answer).
func (c *serveChild) readyz() (int, string) {
	resp, err := http.Get("http://" + c.admin + "/readyz")
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// login issues a credential for a fresh user of cluster opsc (in group
// ops_reader) and logs in with it.
func (c *serveChild) login(t *testing.T, name string) (dbUser string, conn *pgx.Conn) {
	t.Helper()
	ctx := context.Background()
	dbUser = fresh(name)
	out, err := rsClient(c.api, opsEnv["OPS_KEY_ID"], opsEnv["OPS_SECRET"]).GetClusterCredentials(ctx, &redshift.GetClusterCredentialsInput{
		ClusterIdentifier: aws.String("opsc"), DbUser: aws.String(dbUser), AutoCreate: aws.Bool(true), DbGroups: []string{"ops_reader"}})
	if err != nil {
		t.Fatal(err)
	}
	pc, err := pgx.ParseConfig("host=127.0.0.1 port=" + strings.Split(c.gateway, ":")[1] + " dbname=dev sslmode=disable connect_timeout=10")
	if err != nil {
		t.Fatal(err)
	}
	pc.User, pc.Password = aws.ToString(out.DbUser), aws.ToString(out.DbPassword)
	if conn, err = pgx.ConnectConfig(ctx, pc); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return dbUser, conn
}

// auditEnds are the end reasons of the sessions in the audit log, by
// DbUser, and the users whose session group was revoked.
func (c *serveChild) auditEnds(t *testing.T) (ends map[string]string, revoked map[string]bool) {
	t.Helper()
	b, _ := os.ReadFile(c.auditPath)
	ends, revoked = map[string]string{}, map[string]bool{}
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		var r struct {
			EventName           string
			RequestParameters   struct{ DbUser string }
			ResponseElements    struct{ DbUser string }
			AdditionalEventData struct{ EndReason string }
		}
		if json.Unmarshal([]byte(line), &r) != nil {
			continue
		}
		switch r.EventName {
		case "GatewaySessionEnd":
			ends[r.ResponseElements.DbUser] = r.AdditionalEventData.EndReason
		case "RevokeSessionGroup":
			revoked[r.RequestParameters.DbUser] = true
		}
	}
	return ends, revoked
}

// SIGTERM as an operator meets it: /readyz fails before the listeners
// close, a session left at the end of the grace period gets PostgreSQL's
// FATAL 57P01 (not a bare hang-up), its session group is revoked, the
// audit log has its end and the revocation, and serve exits 0.
func TestDrainAsAnOperatorSeesIt(t *testing.T) {
	adminExec(t, dev, `DO $$ BEGIN CREATE ROLE ops_reader NOLOGIN; EXCEPTION WHEN duplicate_object THEN NULL; END $$`)
	c := startServeChild(t, "limits: {shutdown_grace: 3s, unready_delay: 0s}")
	dbUser, conn := c.login(t, "drainuser")
	if !member(t, dbUser, "ops_reader") {
		t.Fatalf("%s is not in ops_reader during its session", dbUser)
	}
	// A query running when the grace period ends is cut with FATAL 57P01.
	query := make(chan error, 1)
	go func() { _, err := conn.Exec(context.Background(), "SELECT pg_sleep(60)"); query <- err }()
	waitUntil(t, 10*time.Second, "the query runs", func() bool { return sleeping(t, dbUser) })
	c.signal(syscall.SIGTERM)
	waitUntil(t, 5*time.Second, "the gateway stops accepting", func() bool { return refusesConnections(c.gateway) })
	// Draining began before the listener closed: /readyz says so already.
	if code, body := c.readyz(); code != 503 || !strings.Contains(body, "draining") {
		t.Errorf("/readyz once the gateway refuses connections: %d %q, want 503 naming draining", code, body)
	}
	if err := <-query; sqlState(err) != "57P01" {
		t.Errorf("query cut by the shutdown: %v, want SQLSTATE 57P01", err)
	}
	select {
	case err := <-c.exited:
		if err != nil {
			t.Fatalf("serve exited with %v after SIGTERM, want 0", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("serve did not exit after SIGTERM")
	}
	if member(t, dbUser, "ops_reader") {
		t.Errorf("%s is still in ops_reader after the shutdown ended its session", dbUser)
	}
	ends, revoked := c.auditEnds(t)
	if ends[dbUser] != "gateway_shutdown" || !revoked[dbUser] {
		t.Errorf("audit: session ends %v, group revocations %v: want %s ended by gateway_shutdown and its group revoked", ends, revoked, dbUser)
	}
}

// An API call still running when the grace period ends is cut, as the
// docs say, and the drain is still a clean one: serve exits 0 (it exited
// 1, "shiftkey: context deadline exceeded", as if the shutdown had failed).
func TestDrainCutsAnAPICallOverTheGraceAndExitsZero(t *testing.T) {
	c := startServeChild(t, "limits: {shutdown_grace: 1s, unready_delay: 0s}")
	// A call whose client never sends its body: its handler is in flight
	// (100 Continue sent) until the read timeout, past the grace period.
	head, _, _ := bytes.Cut(signedRequest(t, c.api, fresh("slowbody")), []byte("\r\n\r\n"))
	apiConn, err := net.Dial("tcp", c.api)
	if err != nil {
		t.Fatal(err)
	}
	defer apiConn.Close()
	if _, err := apiConn.Write(append(slices.Clip(head), "\r\nExpect: 100-continue\r\n\r\n"...)); err != nil {
		t.Fatal(err)
	}
	apiConn.SetReadDeadline(time.Now().Add(10 * time.Second))
	if line, err := bufio.NewReader(apiConn).ReadString('\n'); err != nil || !strings.HasPrefix(line, "HTTP/1.1 100 ") {
		t.Fatalf("waiting for 100 Continue: %q %v", line, err)
	}
	c.signal(syscall.SIGTERM)
	select {
	case err := <-c.exited:
		if err != nil {
			log, _ := os.ReadFile(c.logPath)
			t.Fatalf("serve exited with %v after SIGTERM, want 0; its last lines:\n%s", err, lastLines(string(log), 3))
		}
	case <-time.After(30 * time.Second):
		t.Fatal("serve did not exit after SIGTERM")
	}
}

// sleeping reports whether a session of role runs pg_sleep in the backend.
func sleeping(t *testing.T, role string) bool {
	t.Helper()
	conn, err := pgx.Connect(context.Background(), dev.PG.ConnString(dev.PG.Superuser(), DevDatabase))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var n int
	err = conn.QueryRow(context.Background(), `SELECT count(*) FROM pg_stat_activity
		WHERE usename = $1 AND state = 'active' AND query LIKE 'SELECT pg_sleep%'`, role).Scan(&n)
	if err != nil {
		t.Fatal(err)
	}
	return n > 0
}

// lastLines is the last n lines of s.
func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

// A second SIGTERM or SIGINT during the drain ends the grace period at
// once, cleanly: the sessions left are cut as at its end (FATAL 57P01,
// their groups revoked, their ends audited) and serve exits 0. It was
// ignored: the operator's second Ctrl-C did nothing for the rest of the
// grace period, and only SIGKILL, which cuts without any of that, stopped it.
func TestSecondSignalEndsTheGracePeriod(t *testing.T) {
	for _, second := range []syscall.Signal{syscall.SIGINT, syscall.SIGTERM} {
		t.Run(second.String(), func(t *testing.T) {
			adminExec(t, dev, `DO $$ BEGIN CREATE ROLE ops_reader NOLOGIN; EXCEPTION WHEN duplicate_object THEN NULL; END $$`)
			c := startServeChild(t, "limits: {shutdown_grace: 1h, unready_delay: 0s}")
			dbUser, conn := c.login(t, "secondsig")
			c.signal(syscall.SIGTERM)
			waitUntil(t, 5*time.Second, "the gateway stops accepting", func() bool { return refusesConnections(c.gateway) })
			if _, err := conn.Exec(context.Background(), "SELECT 1"); err != nil {
				t.Fatalf("session within the grace period: %v", err)
			}
			// A query runs (the backend says so) when the second signal comes:
			// the cut must reach the client as PostgreSQL's FATAL, not a bare
			// hang-up. Bounded, so that a drain that goes on fails the test.
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			query := make(chan error, 1)
			go func() { _, err := conn.Exec(ctx, "SELECT pg_sleep(3600)"); query <- err }()
			waitUntil(t, 10*time.Second, "the query runs", func() bool { return sleeping(t, dbUser) })
			c.signal(second)
			if err := <-query; sqlState(err) != "57P01" {
				t.Errorf("query when the second signal came: %v, want SQLSTATE 57P01", err)
			}
			select {
			case err := <-c.exited:
				if err != nil {
					t.Fatalf("serve exited with %v after a second signal, want 0", err)
				}
			case <-time.After(30 * time.Second):
				t.Fatal("serve still draining 30 s after a second signal (shutdown_grace 1h)")
			}
			if member(t, dbUser, "ops_reader") {
				t.Errorf("%s is still in ops_reader after its session was cut", dbUser)
			}
			if ends, revoked := c.auditEnds(t); ends[dbUser] != "gateway_shutdown" || !revoked[dbUser] {
				t.Errorf("audit: session ends %v, group revocations %v: want %s ended by gateway_shutdown and its group revoked", ends, revoked, dbUser)
			}
		})
	}
}
