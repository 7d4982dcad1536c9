package main

import (
	"context"
	"database/sql"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/redshift"
	"github.com/jackc/pgx/v5"
	"github.com/shiftkey/shiftkey"
	"github.com/shiftkey/shiftkey/config"
	"github.com/shiftkey/shiftkey/secretbox"
)

// A reload whose application of identities meets a store error midway
// (here a trigger that refuses the inline policy of the new user newbie,
// after the reload has already created newbie and deactivated ops's key) changes
// nothing: the old config still decides calls (ops's key still works),
// and nothing of the new one is visible (no newbie, the key still
// Active). Found in review: each change was its own transaction, so a
// failed reload left a partial apply, only logged.
func TestReloadThatFailsInTheStoreAppliesNothing(t *testing.T) {
	for k, v := range replicaKeys {
		t.Setenv(k, v)
	}
	for k, v := range newbieEnv {
		t.Setenv(k, v)
	}
	t.Run("postgres", func(t *testing.T) {
		storeURL := newStoreDB(t, "reloadatomic_")
		dir := t.TempDir()
		keyFile := filepath.Join(dir, "store.key")
		if _, err := secretbox.CreateKeyFile(keyFile); err != nil {
			t.Fatal(err)
		}
		r := &replica{api: freePort(t), gw: freePort(t)}
		yaml := replicaYAML(storeURL, keyFile, r.api, r.gw)
		reloadFailsInTheStore(t, r, dir, yaml, func(ctx context.Context, sqlText string) {
			c, err := pgx.Connect(ctx, storeURL)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close(ctx)
			if _, err := c.Exec(ctx, sqlText); err != nil {
				t.Fatal(err)
			}
		}, `CREATE FUNCTION failer() RETURNS trigger LANGUAGE plpgsql AS $$
			BEGIN RAISE EXCEPTION 'injected store failure'; END $$;
			CREATE TRIGGER failer BEFORE INSERT ON inline_policies FOR EACH ROW WHEN (NEW.owner = 'newbie') EXECUTE FUNCTION failer()`)
	})
	t.Run("sqlite", func(t *testing.T) {
		dir := t.TempDir()
		r := &replica{api: freePort(t), gw: freePort(t)}
		dbPath := filepath.Join(dir, "serve.db")
		yaml := replicaYAML("", "", r.api, r.gw)
		yaml = strings.Replace(yaml, yaml[strings.Index(yaml, "store:"):strings.Index(yaml, "\napi:")], "store: {sqlite: "+dbPath+"}", 1)
		reloadFailsInTheStore(t, r, dir, yaml, func(ctx context.Context, sqlText string) {
			db, err := sql.Open("sqlite", "file:"+dbPath+"?_pragma=busy_timeout(10000)")
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			if _, err := db.ExecContext(ctx, sqlText); err != nil {
				t.Fatal(err)
			}
		}, `CREATE TRIGGER failer BEFORE INSERT ON inline_policies WHEN NEW.owner = 'newbie' BEGIN SELECT RAISE(ABORT, 'injected store failure'); END`)
	})
}

// reloadFailsInTheStore starts serve on yaml, installs the trigger with
// exec, reloads a config that deactivates ops's key and adds the users
// newbie, and checks that the failed reload changed nothing.
func reloadFailsInTheStore(t *testing.T, r *replica, dir, yaml string, exec func(context.Context, string), trigger string) {
	ctx := context.Background()
	path := filepath.Join(dir, "serve.yaml")
	if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	s := &Serve{Config: cfg, Logger: dev.Logger}
	t.Cleanup(func() { s.Close() })
	if err := s.Start(ctx); err != nil {
		t.Fatal(err)
	}
	issue := func() error {
		_, err := r.redshift("OPS_KEY", "OPS_SECRET").GetClusterCredentials(ctx, &redshift.GetClusterCredentialsInput{
			ClusterIdentifier: aws.String("shared"), DbUser: aws.String("ops")})
		return err
	}
	if err := issue(); err != nil {
		t.Fatalf("ops before the reload: %v", err)
	}
	exec(ctx, trigger)
	next := strings.Replace(yaml, `secret: "${OPS_SECRET}"}`, `secret: "${OPS_SECRET}", status: Inactive}`, 1) + newbieUser
	if err := os.WriteFile(path, []byte(next), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := s.Reload(ctx, path); err == nil || !strings.Contains(err.Error(), "injected store failure") {
		t.Fatalf("the reload that met the store's failure: %v, want its error", err)
	}
	if err := issue(); err != nil {
		t.Errorf("ops after the failed reload: %v (%s), want its credentials: the old config decides", err, apiCode(err))
	}
	if _, err := s.Store.Entity(ctx, shiftkey.KindUser, "newbie"); shiftkey.ErrorCode(err) != shiftkey.CodeNoSuchEntity {
		t.Errorf("user newbie after the failed reload: %v, want NoSuchEntity", err)
	}
	if k, err := s.Store.AccessKey(ctx, replicaKeys["OPS_KEY"]); err != nil || k.Status != "Active" {
		t.Errorf("ops's key after the failed reload: Active %v, %v; want Active", k != nil && k.Status == "Active", err)
	}
}
