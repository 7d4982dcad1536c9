package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/redshift"
	"github.com/shiftkey/shiftkey/config"
	"github.com/shiftkey/shiftkey/secretbox"
)

// Found in an operator-surface review: a second serve on the SQLite file
// of a running one started, although a SQLite store is one process's.
// Each keeps identities, keys and policies in memory and drops them only
// on its own writes (SQLite has no change feed), so what the second wrote
// (here: its config declares ops's key Inactive) never reached the first,
// which went on honouring the key. The store is now locked; the second
// serve says so, and one started after the first stopped runs.
func TestSecondServeOnTheSQLiteStoreIsRefused(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	parse := func(yaml string) *config.Config {
		cfg, err := config.Parse(strings.NewReader(yaml), func(k string) (string, bool) { v, ok := opsEnv[k]; return v, ok })
		if err != nil {
			t.Fatal(err)
		}
		return cfg
	}
	first := &Serve{Config: parse(opsYAML(dir, "")), Logger: dev.Logger}
	if err := first.Start(ctx); err != nil {
		first.Close()
		t.Fatal(err)
	}
	firstOpen := true
	defer func() {
		if firstOpen {
			first.Close()
		}
	}()
	in := &redshift.GetClusterCredentialsInput{ClusterIdentifier: aws.String("opsc"), DbUser: aws.String("locker"), AutoCreate: aws.Bool(true)}
	if _, err := opsClient(first, opsEnv["OPS_SECRET"]).GetClusterCredentials(ctx, in); err != nil {
		t.Fatal(err)
	}
	inactive := strings.Replace(opsYAML(dir, ""), `secret: "${OPS_SECRET}"}`, `secret: "${OPS_SECRET}", status: Inactive}`, 1)
	cfg := parse(inactive)
	second := &Serve{Config: cfg, Logger: dev.Logger}
	err := second.Start(ctx)
	if err == nil {
		_, callErr := opsClient(first, opsEnv["OPS_SECRET"]).GetClusterCredentials(ctx, in)
		second.Close()
		t.Fatalf("a second serve on the store started; the first, after the second declared the key Inactive, answers: %v", callErr)
	}
	second.Close()
	if !strings.Contains(err.Error(), "in use by another shiftkey serve") {
		t.Fatalf("a second serve on the store: %v, want it refused as in use", err)
	}
	first.Close()
	firstOpen = false
	third := &Serve{Config: cfg, Logger: dev.Logger}
	defer third.Close()
	if err := third.Start(ctx); err != nil {
		t.Fatalf("a serve started after the first stopped: %v", err)
	}
}

// Found in a file-handling review: the lock was <store.sqlite>.lock as
// written, so a second serve given a symbolic link to the first's store
// locked another file and ran on the same store. The lock now sits beside
// the file the path really names.
func TestSecondServeThroughALinkToTheStoreIsRefused(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	store, link := filepath.Join(dir, "serve.db"), filepath.Join(dir, "link.db")
	serve := func(path string) (*Serve, error) {
		yaml := "store: {sqlite: " + path + ", secret_key_file: " + filepath.Join(dir, "store.key") + "}\napi: {listen: \"127.0.0.1:0\"}\n"
		cfg, err := config.Parse(strings.NewReader(yaml), func(string) (string, bool) { return "", false })
		if err != nil {
			t.Fatal(err)
		}
		s := &Serve{Config: cfg, Logger: dev.Logger}
		return s, s.Start(ctx)
	}
	if _, err := secretbox.CreateKeyFile(filepath.Join(dir, "store.key")); err != nil {
		t.Fatal(err)
	}
	first, err := serve(store)
	defer first.Close()
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(store, link); err != nil {
		t.Fatal(err)
	}
	second, err := serve(link)
	second.Close()
	if err == nil || !strings.Contains(err.Error(), "in use by another shiftkey serve") {
		t.Fatalf("a second serve through a link to the store: %v, want it refused as in use", err)
	}
}
