package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/redshift"
)

// smallFS mounts a tmpfs of size for the test and unmounts it at cleanup.
// It needs root (CAP_SYS_ADMIN): the test is skipped only where mounting
// is impossible (not root, or a container that forbids it); CI runs as
// root.
func smallFS(t *testing.T, size string) string {
	t.Helper()
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size="+size+",mode=0700", "tmpfs", dir).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a small file system here (needs root): %v %s", err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", "-l", dir).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v %s", dir, err, out)
		}
	})
	return dir
}

// fillFS writes a file in dir until its file system is full and returns
// its path: removing it gives the space back.
func fillFS(t *testing.T, dir string) string {
	t.Helper()
	path := filepath.Join(dir, "filler")
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	buf := make([]byte, 4096)
	for {
		if _, err := f.Write(buf); err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatal(err)
			}
			return path
		}
	}
}

// The SQLite store's file system fills up under a serve issuing at
// concurrency 16 (needs root to mount a small tmpfs; skipped where it
// cannot): every issue fails with a 5xx AWS error and none is
// acknowledged unwritten; a credential issued before still logs in;
// /readyz says the store's writes fail (found in a failure-injecting
// review: it answered 200 "ok" while every issue failed, as the store
// still answered reads); and once there is room again, issuing works
// without a restart and /readyz is ready.
func TestSQLiteStoreDiskFullFailsIssuesAndRecovers(t *testing.T) {
	ctx := context.Background()
	dir := smallFS(t, "8m")
	s := startServe(t, opsYAML(dir, ""), opsEnv)
	rs := opsClient(s, opsEnv["OPS_SECRET"])
	issue := func(user string) (*redshift.GetClusterCredentialsOutput, error) {
		return rs.GetClusterCredentials(ctx, &redshift.GetClusterCredentialsInput{ClusterIdentifier: aws.String("opsc"),
			DbUser: aws.String(user), DbName: aws.String("dev"), AutoCreate: aws.Bool(true)})
	}
	user := fresh("fulldisk")
	before, err := issue(user)
	if err != nil {
		t.Fatal(err)
	}
	filler := fillFS(t, dir)

	var (
		mu     sync.Mutex
		acked  []*redshift.GetClusterCredentialsOutput
		codes  = map[string]int{}
		wg     sync.WaitGroup
		status = map[int]int{}
	)
	for w := range 16 {
		wg.Go(func() {
			for i := range 20 {
				out, err := issue(fmt.Sprintf("%s_%d", user, (w+i)%4))
				mu.Lock()
				if err != nil {
					var re interface{ HTTPStatusCode() int }
					if errors.As(err, &re) {
						status[re.HTTPStatusCode()]++
					}
					codes[apiCode(err)]++
				} else {
					acked = append(acked, out)
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	t.Logf("disk full: %d acknowledged, errors by code %v, by status %v", len(acked), codes, status)
	if len(codes) == 0 {
		t.Fatal("no issue failed on a full disk")
	}
	for code := range codes {
		if code != "InternalFailure" && code != "ServiceUnavailable" {
			t.Fatalf("an issue on a full disk failed with %q, want a 5xx (InternalFailure or ServiceUnavailable)", code)
		}
	}
	for st := range status {
		if st < 500 {
			t.Fatalf("an issue on a full disk failed with HTTP %d, want 5xx", st)
		}
	}
	conn, err := gatewayConn(ctx, s, aws.ToString(before.DbUser), aws.ToString(before.DbPassword))
	if err != nil {
		t.Fatalf("a credential issued before the disk filled does not log in while it is full: %v", err)
	}
	conn.Close(ctx)
	code, body := getStatus(t, s.AdminURL+"/readyz")
	t.Logf("readyz while full: %d %q", code, body)
	if code != http.StatusServiceUnavailable || !strings.Contains(body, "store writes") {
		t.Errorf("readyz while every issue fails on a full disk: %d %q, want 503 naming the store", code, body)
	}

	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	var after *redshift.GetClusterCredentialsOutput
	for {
		if after, err = issue(user); err == nil {
			break
		}
		if time.Since(start) > 10*time.Second {
			t.Fatalf("issuing still fails 10 s after the disk has room again: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("issuing works again %v after the disk has room", time.Since(start).Round(time.Millisecond))
	if code, body := getStatus(t, s.AdminURL+"/readyz"); code != 200 {
		t.Errorf("readyz once issuing works again: %d %q", code, body)
	}
	for i, out := range append(acked, after) {
		conn, err := gatewayConn(ctx, s, aws.ToString(out.DbUser), aws.ToString(out.DbPassword))
		if err != nil {
			t.Fatalf("acknowledged credential %d (%s) does not log in: %v", i, aws.ToString(out.DbUser), err)
		}
		conn.Close(ctx)
	}
}

// /readyz names a SQLite store file deleted under the running serve at the
// next look, before any write has failed: a balancer takes the replica out
// of rotation instead of sending it calls every write of which would fail.
func TestReadyzSeesADeletedStoreFile(t *testing.T) {
	dir := t.TempDir()
	s := startServe(t, opsYAML(dir, ""), opsEnv)
	if code, body := getStatus(t, s.AdminURL+"/readyz"); code != http.StatusOK {
		t.Fatalf("readyz before: %d %q", code, body)
	}
	if err := os.Remove(filepath.Join(dir, "serve.db")); err != nil {
		t.Fatal(err)
	}
	code, body := getStatus(t, s.AdminURL+"/readyz")
	if code != http.StatusServiceUnavailable || !strings.Contains(body, "store writes") || !strings.Contains(body, "deleted or replaced") {
		t.Errorf("readyz with the store file deleted and no write since: %d %q, want 503 naming store writes and the deleted file", code, body)
	}
}
