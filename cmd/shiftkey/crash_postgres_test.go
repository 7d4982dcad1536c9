package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/redshift"
	"github.com/shiftkey/shiftkey"
	"github.com/shiftkey/shiftkey/config"
	"github.com/shiftkey/shiftkey/secretbox"
)

// The PostgreSQL store's group commit acknowledges a credential only after
// its batch committed: a replica killed with SIGKILL in the middle of a
// burst of 64 concurrent issuers loses none that it acknowledged, and
// every one logs in through another replica.
func TestKill9MidBurstPostgresStoreKeepsEveryAcknowledgedCredential(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a replica as a child process")
	}
	ctx := context.Background()
	storeDB := "burst_" + strings.ToLower(shiftkey.NewID("B"))
	if err := dev.PG.CreateDatabase(ctx, storeDB); err != nil {
		t.Fatal(err)
	}
	storeURL := dev.PG.ConnString(dev.PG.Superuser(), storeDB)
	dir := t.TempDir()
	keyFile := filepath.Join(dir, "store.key")
	if _, err := secretbox.CreateKeyFile(keyFile); err != nil {
		t.Fatal(err)
	}
	a := &replica{api: freePort(t), gw: freePort(t)}
	b := &replica{api: freePort(t), gw: freePort(t)}
	cfg := map[*replica]string{a: filepath.Join(dir, "a.yaml"), b: filepath.Join(dir, "b.yaml")}
	for r, path := range cfg {
		y := strings.Replace(replicaYAML(storeURL, r.api, r.gw), "grant_lease: 3s}", "grant_lease: 3s, secret_key_file: "+keyFile+"}", 1)
		if err := os.WriteFile(path, []byte(y), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	pa := startReplicaProcess(t, cfg[a])
	a.cmd = pa.cmd
	rs := a.redshift("CI_KEY", "CI_SECRET")

	type acked struct{ user, password string }
	var (
		mu   sync.Mutex
		got  []acked
		stop atomic.Bool
		wgr  sync.WaitGroup
	)
	exited := make(chan struct{})
	go func() { a.cmd.Process.Wait(); close(exited) }()
	const killAfter = 300
	for w := range 64 {
		wgr.Go(func() {
			for i := 0; !stop.Load(); i++ {
				out, err := rs.GetClusterCredentials(ctx, &redshift.GetClusterCredentialsInput{ClusterIdentifier: aws.String("shared"),
					DbUser: aws.String(fmt.Sprintf("burst%d", (w+i)%4)), AutoCreate: aws.Bool(true), DurationSeconds: aws.Int32(3600)})
				if err != nil {
					select {
					case <-exited:
						return
					default:
						continue
					}
				}
				mu.Lock()
				got = append(got, acked{aws.ToString(out.DbUser), aws.ToString(out.DbPassword)})
				n := len(got)
				mu.Unlock()
				if n == killAfter {
					a.cmd.Process.Kill() // kill -9 with requests in flight
				}
			}
		})
	}
	<-exited
	stop.Store(true)
	wgr.Wait()
	mu.Lock()
	all := append([]acked(nil), got...)
	mu.Unlock()
	if len(all) < killAfter {
		t.Fatalf("only %d credentials acknowledged", len(all))
	}

	for k, v := range replicaKeys {
		t.Setenv(k, v)
	}
	cfgB, err := config.Load(cfg[b])
	if err != nil {
		t.Fatal(err)
	}
	sb := &Serve{Config: cfgB, Logger: dev.Logger}
	t.Cleanup(func() { sb.Close() })
	if err := sb.Start(ctx); err != nil {
		t.Fatal(err)
	}
	for i, c := range all {
		conn, err := b.connect(ctx, c.user, c.password)
		if err != nil {
			t.Fatalf("acknowledged credential %d of %d (%s) does not log in on B after A's kill -9: %v", i+1, len(all), c.user, err)
		}
		conn.Close(ctx)
	}
	t.Logf("%d credentials acknowledged by A before and around its kill -9; all log in on B", len(all))
}
