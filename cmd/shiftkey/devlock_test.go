package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/redshift"
)

// Found in an operator's review: a second shiftkey dev on the data dir of
// a running one stopped the first one's PostgreSQL (as if its parent had
// been killed), then failed on the ports, leaving the first one up but
// unable to log anyone in. The data dir is now locked; the second one
// says so and touches nothing.
func TestSecondDevOnTheDataDirIsRefused(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	second := newTestDev(dev.DataDir)
	err := second.Start(ctx)
	second.Close()
	if err == nil || !strings.Contains(err.Error(), "in use by another shiftkey dev") {
		t.Fatalf("a second dev on %s: %v, want it refused as in use", dev.DataDir, err)
	}
	c := getCreds(t, dev, &redshift.GetClusterCredentialsInput{ClusterIdentifier: aws.String(DevCluster), DbUser: aws.String(fresh("lockcheck")), AutoCreate: aws.Bool(true)})
	conn := mustConnect(t, dev, c, DevDatabase)
	defer conn.Close(ctx)
	if u := currentUser(t, conn); !strings.HasPrefix(u, "lockcheck") {
		t.Fatalf("the running dev logs in as %q", u)
	}
}

// Found in an operator's review: SIGHUP (log rotation, a closed terminal)
// killed shiftkey dev, whose PostgreSQL servers ran on, orphaned. It now
// reopens the audit log, as serve does, and SIGTERM still stops it all.
func TestDevSurvivesSIGHUP(t *testing.T) {
	dir, err := tempDataDir()
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	cmd, exited, _ := startMain(t, "dev --data-dir "+dir+" --api-addr 127.0.0.1:0 --gateway-addr 127.0.0.1:0 --workgroup-addr 127.0.0.1:0 --admin-addr off")
	postmaster := filepath.Join(dir, "postgres", "postmaster.pid")
	waitUntil(t, 90*time.Second, "dev is up", func() bool {
		_, err1 := os.Stat(filepath.Join(dir, "dev.env"))
		_, err2 := os.Stat(postmaster)
		return err1 == nil && err2 == nil
	})
	audit := filepath.Join(dir, "audit.log")
	if err := os.Rename(audit, audit+".1"); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, 10*time.Second, "the audit log reopened", func() bool {
		_, err := os.Stat(audit)
		return err == nil
	})
	select {
	case err := <-exited:
		t.Fatalf("dev exited on SIGHUP: %v", err)
	default:
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-exited:
		if err != nil {
			t.Fatalf("dev after SIGTERM: %v", err)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("dev did not stop on SIGTERM")
	}
	if _, err := os.Stat(postmaster); err == nil {
		t.Fatal("dev stopped and left its PostgreSQL running")
	}
}
