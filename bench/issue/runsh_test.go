package main

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/shiftkey/shiftkey/internal/pgtest"
)

// Helpers share this machine and run run.sh at the same time. When a port
// it wants is held by another process (another run's shiftkey, with the
// same bench key), run.sh must stop and say so, not benchmark that process
// as its own build. Before, its serve failed to bind, the wait for the
// port found the other listener, and the run printed that server's
// numbers and exited 0.
func TestRunShStopsWhenItsPortIsTaken(t *testing.T) {
	if testing.Short() {
		t.Skip("runs bench/issue/run.sh: PostgreSQL and two builds")
	}
	pgtest.Server(t)     // skips where there is no PostgreSQL
	const port = "29541" // run.sh's first target, by default
	l, err := net.Listen("tcp", "127.0.0.1:"+port)
	if err != nil {
		t.Skipf("port %s is in use here already: %v", port, err)
	}
	// Another run's shiftkey, as the load client sees it.
	other := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, `<GetClusterCredentialsResponse><GetClusterCredentialsResult><DbUser>IAM:u1</DbUser><DbPassword>p</DbPassword></GetClusterCredentialsResult></GetClusterCredentialsResponse>`)
	})}
	go other.Serve(l)
	defer other.Close()

	bin := filepath.Join(t.TempDir(), "shiftkey")
	if out, err := exec.Command("go", "build", "-o", bin, "../../cmd/shiftkey").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", "run.sh", "1", "1")
	cmd.Env = append(os.Environ(), "MOTO=0", "CONC=1", "USERS=10", "BINS=mine="+bin)
	out, err := cmd.CombinedOutput()
	if err == nil {
		t.Fatalf("run.sh benchmarked what held port %s and exited 0:\n%s", port, out)
	}
	if !strings.Contains(string(out), "port "+port+" is taken") {
		t.Fatalf("run.sh failed (%v) without naming the taken port:\n%s", err, out)
	}
}
