package relay

import (
	"context"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Finding 6: with asynchronous preemption off, the runtime cannot signal a
// loop out of its wait, so only a bounded wait lets a stop-the-world
// through. TestEventLoopLetsGCStopTheWorld runs again in a child process
// with GODEBUG=asyncpreemptoff=1; a frozen child is killed at the deadline
// and fails this test instead of hanging CI.
func TestEventLoopLetsGCStopTheWorldWithoutAsyncPreemption(t *testing.T) {
	if os.Getenv("SHIFTKEY_TEST_CHILD") != "" {
		t.Skip("in the child already")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestEventLoopLetsGCStopTheWorld$", "-test.count=1", "-test.v")
	cmd.Env = append(os.Environ(), "GODEBUG=asyncpreemptoff=1", "SHIFTKEY_TEST_CHILD=1")
	// A frozen child gets SIGQUIT, to its process group (Go prints every
	// goroutine and exits even with the world stopped).
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGQUIT) }
	cmd.WaitDelay = 5 * time.Second
	start := time.Now()
	out, err := cmd.CombinedOutput()
	if ctx.Err() != nil {
		t.Fatalf("the child froze (killed after %v):\n%s", time.Since(start).Round(time.Second), out)
	}
	if err != nil || !strings.Contains(string(out), "--- PASS: TestEventLoopLetsGCStopTheWorld") {
		t.Fatalf("child: %v\n%s", err, out)
	}
	for _, line := range strings.Split(string(out), "\n") {
		if strings.Contains(line, "collections with an idle loop") {
			t.Log(strings.TrimSpace(line))
		}
	}
}
