// Package gateway holds the tests of the gateway benchmark's script.
package gateway

import (
	"context"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// BACKEND_TLS=1 runs a second serve, the twin on the goroutine relay. It
// shared the first one's SQLite store, which serve has refused since a
// store is locked to one process (0ca4b1d, "is in use by another shiftkey
// serve"): the twin exited, its round failed, and run.sh stopped in the
// first workload with status 1 and no message. With MODES='pgx …' the
// direct target also failed: its pgx client was not given the client
// certificate that pg_hba requires ("connection requires a valid client
// certificate").
func TestRunShBackendTLSRunsBothGateways(t *testing.T) {
	if testing.Short() {
		t.Skip("runs bench/gateway/run.sh: PostgreSQL, PgBouncer and two serves")
	}
	for _, tool := range []string{"pgbouncer", "pgbench", "openssl", "/usr/bin/aws"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("needs %s: %v", tool, err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", "run.sh", "1", "1")
	cmd.Env = append(os.Environ(), "BACKEND_TLS=1", "MODES=pgx -c 2", "SCRAM_ITERATIONS=1")
	out, err := cmd.CombinedOutput()
	if err != nil && strings.Contains(string(out), " is taken (") {
		t.Skipf("another run holds run.sh's fixed ports: %s", out) // a shared machine
	}
	if err != nil || !strings.Contains(string(out), "gateway-goroutine: median tps") || strings.Contains(string(out), "gateway-goroutine 0 tps") {
		t.Fatalf("run.sh: %v\n%s", err, out)
	}
}
