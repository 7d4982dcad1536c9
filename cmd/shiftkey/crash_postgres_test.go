package main

import (
	"context"
	"os"
	"path/filepath"
	"testing"

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
	storeURL := newStoreDB(t, "burst_")
	dir := t.TempDir()
	keyFile := filepath.Join(dir, "store.key")
	if _, err := secretbox.CreateKeyFile(keyFile); err != nil {
		t.Fatal(err)
	}
	a := &replica{api: freePort(t), gw: freePort(t)}
	b := &replica{api: freePort(t), gw: freePort(t)}
	cfg := map[*replica]string{a: filepath.Join(dir, "a.yaml"), b: filepath.Join(dir, "b.yaml")}
	for r, path := range cfg {
		y := replicaYAML(storeURL, keyFile, r.api, r.gw)
		if err := os.WriteFile(path, []byte(y), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	pa := startReplicaProcess(t, cfg[a])
	a.cmd = pa.cmd
	rs := a.redshift("CI_KEY", "CI_SECRET")

	exited := make(chan struct{})
	go func() { a.cmd.Process.Wait(); close(exited) }()
	all := burstUntilKilled(t, rs, "shared", func() { a.cmd.Process.Kill() }, exited)

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
