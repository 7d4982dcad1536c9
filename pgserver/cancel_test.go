package pgserver_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/shiftkey/shiftkey/pgserver"
)

// Found in an operator-surface review: a start cancelled once pg_ctl had
// launched the postmaster (shiftkey dev given Ctrl-C or SIGTERM while its
// PostgreSQL came up) returned the error and left that PostgreSQL running,
// its data dir held, with nobody to stop it: the caller has no Server to
// Stop. A start that fails now stops the postmaster it launched.
func TestCancelledStartLeavesNoServerRunning(t *testing.T) {
	bin, err := pgserver.FindBinDir()
	if err != nil {
		t.Skip(err)
	}
	base, err := os.MkdirTemp("", "pgcancel-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(base)
	os.Chmod(base, 0o755) // the postgres OS user passes through when root
	cfg := pgserver.Config{DataDir: filepath.Join(base, "data"), SocketDir: filepath.Join(base, "run")}
	// initdb once, so that the cancelled starts below only start.
	s, err := pgserver.Start(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	pid := filepath.Join(cfg.DataDir, "postmaster.pid")
	for attempt := 0; attempt < 5; attempt++ {
		ctx, cancel := context.WithCancel(context.Background())
		go func() { // cancel as soon as the postmaster is up
			for ctx.Err() == nil {
				if _, err := os.Stat(pid); err == nil {
					cancel()
					return
				}
				time.Sleep(time.Millisecond)
			}
		}()
		s, err := pgserver.Start(ctx, cfg)
		cancel()
		if err == nil { // it was all done before the cancel: try again
			s.Stop(context.Background())
			continue
		}
		out, statusErr := pgCtl(bin, cfg.DataDir, "status")
		if statusErr == nil {
			pgCtl(bin, cfg.DataDir, "stop", "-m", "immediate")
			t.Fatalf("start cancelled (%v); PostgreSQL still runs on the data dir: %s", err, out)
		}
		return
	}
	t.Skip("every start finished before its cancel")
}

func pgCtl(bin, dataDir string, args ...string) ([]byte, error) {
	args = append([]string{filepath.Join(bin, "pg_ctl"), "-D", dataDir}, args...)
	if os.Geteuid() == 0 {
		args = append([]string{"runuser", "-u", "postgres", "--"}, args...)
	}
	return exec.Command(args[0], args[1:]...).CombinedOutput()
}
