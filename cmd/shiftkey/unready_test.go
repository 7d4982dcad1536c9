package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// SIGTERM with limits.unready_delay: /readyz fails at once while the API
// and the gateway go on accepting new calls and logins, so that a load
// balancer reading /readyz stops sending before they are refused. Before,
// the listeners closed at the moment /readyz failed: a new login right
// after the SIGTERM was refused. A second SIGTERM within the delay ends
// everything at once (the open session cut with 57P01, exit 0).
func TestUnreadyDelayKeepsAcceptingWhileReadyzFails(t *testing.T) {
	adminExec(t, dev, `DO $$ BEGIN CREATE ROLE ops_reader NOLOGIN; EXCEPTION WHEN duplicate_object THEN NULL; END $$`)
	c := startServeChild(t, "limits: {unready_delay: 1h, shutdown_grace: 1h}")
	_, before := c.login(t, "unreadyold")
	c.signal(syscall.SIGTERM)
	waitUntil(t, 10*time.Second, "/readyz fails", func() bool { code, _ := c.readyz(); return code == 503 })
	if _, body := c.readyz(); !strings.Contains(body, "draining") {
		t.Errorf("/readyz after SIGTERM: %q, want it to name draining", body)
	}
	// An API call and a login on new connections, while /readyz is 503.
	dbUser, conn := c.login(t, "unreadynew")
	var who string
	if err := conn.QueryRow(context.Background(), "SELECT current_user").Scan(&who); err != nil || who != dbUser {
		t.Fatalf("session opened during the unready delay: %q %v, want %s", who, err, dbUser)
	}
	if code, _ := c.readyz(); code != 503 {
		t.Errorf("/readyz during the unready delay: %d, want 503", code)
	}
	// The second SIGTERM ends the delay and the grace period at once.
	c.signal(syscall.SIGTERM)
	select {
	case err := <-c.exited:
		if err != nil {
			t.Fatalf("serve exited with %v after a second SIGTERM, want 0", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("serve still running 30 s after a second SIGTERM (unready_delay and shutdown_grace 1h)")
	}
	if _, err := before.Exec(context.Background(), "SELECT 1"); err == nil {
		t.Error("a session opened before the SIGTERM still runs after serve exited")
	}
	ends, _ := c.auditEnds(t)
	if ends[dbUser] != "gateway_shutdown" {
		t.Errorf("audit: session ends %v, want %s ended by gateway_shutdown", ends, dbUser)
	}
}

// Once limits.unready_delay has passed, the drain runs: the API and the
// gateway refuse new connections, not before the delay, and serve exits 0.
func TestUnreadyDelayThenTheDrain(t *testing.T) {
	const delay = 2 * time.Second
	c := startServeChild(t, "limits: {unready_delay: 2s, shutdown_grace: 1s}")
	sent := time.Now()
	c.signal(syscall.SIGTERM)
	waitUntil(t, 10*time.Second, "/readyz fails", func() bool { code, _ := c.readyz(); return code == 503 })
	waitUntil(t, 30*time.Second, "the API and the gateway refuse connections", func() bool {
		return refusesConnections(c.api) && refusesConnections(c.gateway)
	})
	if waited := time.Since(sent); waited < delay {
		t.Errorf("the listeners closed %v after SIGTERM, before unready_delay (%v)", waited, delay)
	}
	select {
	case err := <-c.exited:
		if err != nil {
			t.Fatalf("serve exited with %v after SIGTERM, want 0", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("serve did not exit after SIGTERM")
	}
}

// Without an admin listener no /readyz tells the balancers anything: the
// drain begins at SIGTERM, unready_delay or not.
func TestUnreadyDelayNeedsTheAdminListener(t *testing.T) {
	dir := t.TempDir()
	yaml := strings.Replace(opsYAML(dir, "limits: {unready_delay: 1h, shutdown_grace: 1s}"), `admin: {listen: "127.0.0.1:0"}`, `admin: {listen: "off"}`, 1)
	cfgPath := filepath.Join(dir, "serve.yaml")
	if err := os.WriteFile(cfgPath, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd, exited, logPath := startMain(t, "serve --config "+cfgPath, opsEnv)
	waitUntil(t, 60*time.Second, "serve serving", func() bool {
		b, _ := os.ReadFile(logPath)
		return strings.Contains(string(b), `"msg":"shiftkey serving"`)
	})
	cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-exited:
		if err != nil {
			t.Fatalf("serve exited with %v after SIGTERM, want 0", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("serve without an admin listener still running 30 s after SIGTERM (unready_delay 1h)")
	}
}
