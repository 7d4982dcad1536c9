package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/redshift"
	"github.com/shiftkey/shiftkey/secretbox"
)

// Issue 16, against `shiftkey serve` itself (main, as its own process) on
// each store: a kill -9 in the middle of a burst of 64 concurrent
// GetClusterCredentials calls, half of them for a login never seen before
// (its salt written in the same batches as others' credentials), loses
// nothing acknowledged: a fresh serve on the same store lets every
// password the API returned log in through its gateway.
func TestKill9MidBurstServeKeepsEveryAcknowledgedCredential(t *testing.T) {
	if testing.Short() {
		t.Skip("runs serve as a child process")
	}
	dir := t.TempDir()
	keyFile := filepath.Join(dir, "store.key")
	if _, err := secretbox.CreateKeyFile(keyFile); err != nil {
		t.Fatal(err)
	}
	for _, store := range []struct{ name, line string }{
		{"sqlite", `store: {sqlite: ` + filepath.Join(dir, "serve.db") + `}`},
		{"postgres", `store: {postgres: "` + newStoreDB(t, "servekill_") + `", secret_key_file: ` + keyFile + `}`},
	} {
		t.Run(store.name, func(t *testing.T) {
			api, gw := freePort(t), freePort(t)
			y := replicaYAML("STORE", "KEY", api, gw)
			first, _, _ := strings.Cut(y[1:], "\n")
			y = strings.Replace(y, first, store.line, 1)
			cfg := filepath.Join(t.TempDir(), "serve.yaml")
			if err := os.WriteFile(cfg, []byte(y), 0o600); err != nil {
				t.Fatal(err)
			}
			r := &replica{api: api, gw: gw}
			rs := r.redshift("CI_KEY", "CI_SECRET")
			cmd, exited := startServeMain(t, cfg, rs)
			gone := make(chan struct{})
			go func() { <-exited; close(gone) }()
			prefix := fresh("kill" + store.name)
			all := burstUntilKilledUsers(t, rs, "shared", func() { cmd.Process.Kill() }, gone, func(w, i int) string {
				if i%2 == 0 {
					return fmt.Sprintf("%s_w%d_%d", prefix, w, i) // a new login
				}
				return fmt.Sprintf("%s_%d", prefix, w%4)
			})

			startServeMain(t, cfg, rs)
			ctx := context.Background()
			for i, c := range all {
				conn, err := r.connect(ctx, c.user, c.password)
				if err != nil {
					t.Fatalf("acknowledged credential %d of %d (%s) does not log in after serve's kill -9: %v", i+1, len(all), c.user, err)
				}
				conn.Close(ctx)
			}
			t.Logf("%d credentials acknowledged before and around the kill -9; all log in through a fresh serve", len(all))
		})
	}
}

// startServeMain runs `shiftkey serve --config cfg` as its own process and
// waits until its API answers rs.
func startServeMain(t *testing.T, cfg string, rs *redshift.Client) (*exec.Cmd, <-chan error) {
	t.Helper()
	cmd, exited, _ := startMain(t, "serve --config "+cfg, replicaKeys)
	deadline := time.Now().Add(time.Minute)
	for {
		_, err := rs.DescribeClusters(context.Background(), &redshift.DescribeClustersInput{ClusterIdentifier: aws.String("shared")})
		if err == nil || strings.Contains(err.Error(), "AccessDenied") || strings.Contains(err.Error(), "StatusCode: 403") {
			return cmd, exited
		}
		select {
		case err := <-exited:
			t.Fatalf("serve exited: %v", err)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("serve did not answer within a minute: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
