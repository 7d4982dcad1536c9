package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/shiftkey/shiftkey/config"
	"github.com/shiftkey/shiftkey/secretbox"
	"github.com/shiftkey/shiftkey/server"
)

// Found in an operator-surface review: `store rotate-key --config` given
// the store's own key as --new-key-file (the file the config already
// names, or a rotation run twice after the config was changed) resealed
// nothing and then said "The old key (FILE, id X) opens nothing any more:
// destroy it", of the only key the store opens: an operator who did so
// lost every access key secret and session. Rotating to the current key
// is now refused, with nothing changed and nothing to destroy.
func TestRotateKeyToTheCurrentKeyIsRefused(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	keyFile := filepath.Join(dir, "store.key")
	if _, err := secretbox.CreateKeyFile(keyFile); err != nil {
		t.Fatal(err)
	}
	cfgPath := filepath.Join(dir, "shiftkey.yaml")
	yaml := "store: {sqlite: " + filepath.Join(dir, "serve.db") + ", secret_key_file: " + keyFile + "}\n"
	if err := os.WriteFile(cfgPath, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.LoadForTool(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	db, err := server.OpenStore(ctx, cfg.Store, dev.Logger) // the store, sealed under store.key
	if err != nil {
		t.Fatal(err)
	}
	db.Close()
	var stdout, stderr bytes.Buffer
	err = run(ctx, []string{"store", "rotate-key", "--config", cfgPath, "--new-key-file", keyFile}, &stdout, &stderr)
	if err == nil || strings.Contains(stdout.String(), "destroy it") {
		t.Fatalf("rotate-key to the store's current key: %v, printed:\n%s\nwant it refused, telling nobody to destroy the key", err, stdout.String())
	}
	if !strings.Contains(err.Error(), "already the store's key") {
		t.Fatalf("rotate-key to the current key: %v, want it to say the key is already the store's", err)
	}
}
