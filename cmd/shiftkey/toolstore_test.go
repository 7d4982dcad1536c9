package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/shiftkey/shiftkey/postgres"
	"github.com/shiftkey/shiftkey/secretbox"
)

// Found in an operator-surface review: the tools run beside serve
// (credentials, policy) opened the store of --config as serve does, so a
// store.sqlite that is not there (a relative path read from another
// directory than serve's, a config copied from another host) was created
// empty, with a store key generated beside it, and `credentials revoke
// --all-for-principal` of a leaked key answered "0 credentials revoked",
// exit 0, while the real store's credentials stayed live. Like dev's
// --data-dir, a missing store is now an error and nothing is created.
func TestToolsDoNotCreateAMissingServeStore(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	store := filepath.Join(dir, "shiftkey.db")
	cfgPath := filepath.Join(dir, "shiftkey.yaml")
	if err := os.WriteFile(cfgPath, []byte("store: {sqlite: "+store+"}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{
		{"credentials", "revoke", "--config", cfgPath, "--all-for-principal", "arn:aws:iam::000000000000:user/leaked"},
		{"credentials", "list", "--config", cfgPath},
		{"policy", "why", "--config", cfgPath, "00000000-0000-0000-0000-000000000000"},
	} {
		var out bytes.Buffer
		err := run(ctx, args, &out, &out)
		if err == nil || !strings.Contains(err.Error(), "no store at "+store) {
			t.Errorf("%s on a config whose store is missing: %v, printed %q; want an error saying no store at %s", strings.Join(args[:2], " "), err, out.String(), store)
		}
	}
	for _, p := range []string{store, store + ".secret-key", store + "-wal"} {
		if _, err := os.Lstat(p); err == nil {
			t.Errorf("%s was created", p)
		}
	}
}

// The same for `store rotate-key --config` with store.secret_key_file set:
// on a store.sqlite that is not there it created an empty store, "resealed
// 0 secrets" and told the operator to destroy the old key, which the real
// store still needs for every secret it holds.
func TestRotateKeyDoesNotCreateAMissingServeStore(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	store, keyFile := filepath.Join(dir, "shiftkey.db"), filepath.Join(dir, "store.key")
	if _, err := secretbox.CreateKeyFile(keyFile); err != nil {
		t.Fatal(err)
	}
	cfgPath := filepath.Join(dir, "shiftkey.yaml")
	if err := os.WriteFile(cfgPath, []byte("store: {sqlite: "+store+", secret_key_file: "+keyFile+"}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	err := run(ctx, []string{"store", "rotate-key", "--config", cfgPath, "--new-key-file", filepath.Join(dir, "new.key")}, &out, &out)
	if err == nil || !strings.Contains(err.Error(), "no store at "+store) {
		t.Errorf("rotate-key on a config whose store is missing: %v, printed %q; want an error saying no store at %s", err, out.String(), store)
	}
	if _, err := os.Lstat(store); err == nil {
		t.Errorf("%s was created", store)
	}
}

// Found while closing the last note's gaps: the tools (credentials,
// policy) opened the shared PostgreSQL store of --config as serve does,
// migrating it to their own schema. An operator trying a newer shiftkey's
// `credentials list` in the middle of a rolling upgrade migrated the store
// under the running replicas, which a migration that is not additive stops
// from restarting (docs/deployment.md, Upgrading). A tool now opens the
// store as the replicas left it and refuses one lacking this version's
// migrations, changing nothing.
func TestToolsDoNotMigrateASharedStore(t *testing.T) {
	ctx := context.Background()
	storeURL, keyFile := newStoreDB(t, "toolmig"), newStoreKey(t)
	cfgPath := filepath.Join(t.TempDir(), "shiftkey.yaml")
	if err := os.WriteFile(cfgPath, []byte(`store: {postgres: "`+storeURL+`", secret_key_file: `+keyFile+"}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tools := [][]string{
		{"credentials", "revoke", "--config", cfgPath, "--all-for-principal", "arn:aws:iam::000000000000:user/leaked"},
		{"credentials", "list", "--config", cfgPath},
		{"policy", "why", "--config", cfgPath, "00000000-0000-0000-0000-000000000000"},
	}
	for _, args := range tools {
		var out bytes.Buffer
		err := run(ctx, args, &out, &out)
		if err == nil || !strings.Contains(err.Error(), "not migrated") || !strings.Contains(err.Error(), "no shiftkey has served it") {
			t.Errorf("%s on a shared store no replica has migrated: %v, printed %q; want an error naming the migrations it lacks", strings.Join(args[:2], " "), err, out.String())
		}
	}
	conn, err := pgx.Connect(ctx, storeURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var tables int
	if err := conn.QueryRow(ctx, `SELECT count(*) FROM pg_tables WHERE schemaname = 'public'`).Scan(&tables); err != nil || tables != 0 {
		t.Fatalf("the tools left %d tables (%v) in a store they must not migrate", tables, err)
	}
	// Once a replica of this version has migrated it, the tools run.
	key, err := secretbox.LoadKeyFile(keyFile)
	if err != nil {
		t.Fatal(err)
	}
	st, err := postgres.Open(ctx, storeURL, postgres.WithKey(key, keyFile))
	if err != nil {
		t.Fatal(err)
	}
	st.Close()
	var out bytes.Buffer
	if err := run(ctx, tools[1], &out, &out); err != nil {
		t.Fatalf("credentials list on a migrated store: %v\n%s", err, out.String())
	}
}
