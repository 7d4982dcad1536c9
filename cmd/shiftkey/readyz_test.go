package main

import (
	"context"
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	"github.com/shiftkey/shiftkey/internal/pgtest"
	"github.com/shiftkey/shiftkey/secretbox"
)

// /readyz follows what it checks both ways, at the first probe: a shared
// PostgreSQL store stopped makes it 503 naming the store, started again
// (pg_ctl start -w: it answers) ready; a cluster's backend likewise.
// /healthz answers throughout.
func TestReadinessFollowsStoreAndBackend(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	storeSrv := pgtest.Start(t)
	if err := storeSrv.CreateDatabase(ctx, "store"); err != nil {
		t.Fatal(err)
	}
	backend := pgtest.Start(t)
	keyFile := filepath.Join(dir, "store.key")
	if _, err := secretbox.CreateKeyFile(keyFile); err != nil {
		t.Fatal(err)
	}
	s := startServe(t, `
store: {postgres: "`+storeSrv.ConnString(storeSrv.Superuser(), "store")+`", secret_key_file: `+keyFile+`}
api: {listen: "127.0.0.1:0"}
admin: {listen: "127.0.0.1:0"}
clusters:
  - identifier: rdy
    database: postgres
    gateway: {listen: "127.0.0.1:0"}
    backend: {host: `+backend.SocketDir()+`, port: `+itoa(backend.Port())+`, admin_user: `+backend.Superuser()+`}
`, nil)
	ready := func(what string, want int, names ...string) {
		t.Helper()
		code, body := getStatus(t, s.AdminURL+"/readyz")
		if code != want {
			t.Errorf("readyz %s: %d %q, want %d", what, code, body, want)
		}
		for _, n := range names {
			if !strings.Contains(body, n) {
				t.Errorf("readyz %s: %q does not name %q", what, body, n)
			}
		}
		if code, _ := getStatus(t, s.AdminURL+"/healthz"); code != http.StatusOK {
			t.Errorf("healthz %s: %d", what, code)
		}
	}
	ready("with everything up", http.StatusOK)

	pgtest.PgCtl(t, storeSrv, "stop", "-m", "fast", "-w", "-s")
	ready("with the store stopped", http.StatusServiceUnavailable, "store: ")
	pgtest.PgCtl(t, storeSrv, "start", "-w", "-s", "-l", filepath.Join(storeSrv.DataDir(), "restart.log"))
	ready("with the store started again", http.StatusOK)

	pgtest.PgCtl(t, backend, "stop", "-m", "fast", "-w", "-s")
	ready("with the backend stopped", http.StatusServiceUnavailable, "backend rdy: ")
	pgtest.PgCtl(t, backend, "start", "-w", "-s", "-l", filepath.Join(backend.DataDir(), "restart.log"))
	ready("with the backend started again", http.StatusOK)
}
