package main

import (
	"context"
	"net"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// run.sh's ports are fixed, and other jobs on a shared machine run the
// bench scripts too. A size whose API port another process holds must
// stop the run, naming the port, before anything is built or filled: its
// serve would fail to bind, and the wait for the port would find the
// other process and measure it as that size's server.
func TestRunShStopsWhenItsPortIsTaken(t *testing.T) {
	if testing.Short() {
		t.Skip("runs bench/scale/run.sh")
	}
	const port = "29641" // the first size's API port
	l, err := net.Listen("tcp", "127.0.0.1:"+port)
	if err != nil {
		t.Skipf("port %s is in use here already: %v", port, err)
	}
	defer l.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", "run.sh", "1")
	cmd.Env = append(os.Environ(), "SIZES=1000", "HOT=0")
	out, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "port "+port+" is taken") {
		t.Fatalf("run.sh with its port %s taken: %v, want a failure naming the port:\n%s", port, err, out)
	}
}
