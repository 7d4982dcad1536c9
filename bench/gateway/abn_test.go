package gateway

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// abn.sh starts each build of BUILDS beside run.sh's gateway, from
// run.sh's config. When run.sh's config came to turn the admin listener
// off itself, abn.sh's own line for it made the key appear twice: every
// build refused its config, and each round printed "tps 0" for it (its
// client could not connect) instead of stopping.
func TestABNRunsEachBuild(t *testing.T) {
	if testing.Short() {
		t.Skip("runs bench/gateway/abn.sh: PostgreSQL, PgBouncer and two serves")
	}
	for _, tool := range []string{"pgbouncer", "pgbench", "openssl", "/usr/bin/aws"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("needs %s: %v", tool, err)
		}
	}
	bin := filepath.Join(t.TempDir(), "shiftkey")
	if out, err := exec.Command("go", "build", "-o", bin, "../../cmd/shiftkey").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", "abn.sh")
	cmd.Env = append(os.Environ(), "BUILDS=other="+bin, "ROUNDS=1", "SECS=1", "MODE=pgx -c 2", "SCRAM_ITERATIONS=1", "HOLD=120")
	out, err := cmd.CombinedOutput()
	if err != nil && strings.Contains(string(out), " is taken (") {
		t.Skipf("another run holds run.sh's fixed ports: %s", out) // a shared machine
	}
	if m := regexp.MustCompile(`round 1 other +tps ([0-9]+)`).FindStringSubmatch(string(out)); err != nil || m == nil || m[1] == "0" {
		t.Fatalf("abn.sh: %v, want a round of the build 'other' with logins:\n%s", err, out)
	}
}
