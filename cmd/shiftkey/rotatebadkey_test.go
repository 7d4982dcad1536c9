package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/shiftkey/shiftkey"
	"github.com/shiftkey/shiftkey/config"
	"github.com/shiftkey/shiftkey/secretbox"
	"github.com/shiftkey/shiftkey/server"
)

// `store rotate-key --config` with a --new-key-file it cannot use (readable
// by others, the wrong length, not a key, a directory, in a missing
// directory) fails naming the file, prints nothing, and leaves the store
// opening with its key; then rotating to a new key and back to the old one
// keeps the access key secret.
func TestRotateKeyRefusesABadNewKeyFileAndRotatesBack(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	keyFile := filepath.Join(dir, "store.key")
	if _, err := secretbox.CreateKeyFile(keyFile); err != nil {
		t.Fatal(err)
	}
	cfgPath := filepath.Join(dir, "shiftkey.yaml")
	writeCfg := func(key string) {
		yaml := "store: {sqlite: " + filepath.Join(dir, "serve.db") + ", secret_key_file: " + key + "}\n"
		if err := os.WriteFile(cfgPath, []byte(yaml), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	writeCfg(keyFile)
	secret := shiftkey.NewSecretKey()
	withStore := func(f func(server.Store)) {
		t.Helper()
		cfg, err := config.LoadForTool(cfgPath)
		if err != nil {
			t.Fatal(err)
		}
		db, err := server.OpenStore(ctx, cfg.Store, dev.Logger)
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		f(db)
	}
	withStore(func(db server.Store) {
		if err := db.CreateEntity(ctx, &shiftkey.Entity{Kind: shiftkey.KindUser, Name: "u", ID: "AIDABADKEY", Path: "/", ARN: "arn", CreatedAt: time.Now()}); err != nil {
			t.Fatal(err)
		}
		if err := db.CreateAccessKey(ctx, &shiftkey.AccessKey{ID: "AKIABADKEY", Secret: secret, UserName: "u", Status: "Active", CreatedAt: time.Now()}); err != nil {
			t.Fatal(err)
		}
	})
	readsBack := func(when string) {
		t.Helper()
		withStore(func(db server.Store) {
			if k, err := db.AccessKey(ctx, "AKIABADKEY"); err != nil || k.Secret != secret {
				t.Fatalf("%s: the access key does not read back: %v", when, err)
			}
		})
	}

	short := base64.StdEncoding.EncodeToString(make([]byte, 16)) + "\n"
	for _, c := range []struct {
		name, content string
		mode          os.FileMode
		want          string
	}{
		{"open.key", "", 0o644, "chmod 600"},
		{"short.key", short, 0o600, "32 bytes"},
		{"text.key", "not a key at all\n", 0o600, "32 bytes"},
		{"dir.key", "", 0, ""},
		{"missing/new.key", "", 0, ""},
	} {
		path := filepath.Join(dir, c.name)
		switch {
		case c.name == "open.key":
			if _, err := secretbox.CreateKeyFile(path); err != nil {
				t.Fatal(err)
			}
			os.Chmod(path, c.mode)
		case c.name == "dir.key":
			os.Mkdir(path, 0o700)
		case c.content != "":
			os.WriteFile(path, []byte(c.content), c.mode)
		}
		var stdout, stderr bytes.Buffer
		err := run(ctx, []string{"store", "rotate-key", "--config", cfgPath, "--new-key-file", path}, &stdout, &stderr)
		if err == nil {
			t.Fatalf("%s: rotate-key succeeded:\n%s", c.name, stdout.String())
		}
		t.Logf("%s: %v", c.name, err)
		if !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %q; want it to name the file and say %q", c.name, err, c.want)
		}
		if stdout.Len() != 0 {
			t.Errorf("%s: printed %q", c.name, stdout.String())
		}
		readsBack("after a refused " + c.name)
	}

	// To a new key and back: the output names key ids and files, never key bytes.
	nextFile := filepath.Join(dir, "next.key")
	for _, to := range []string{nextFile, keyFile} {
		var stdout, stderr bytes.Buffer
		if err := run(ctx, []string{"store", "rotate-key", "--config", cfgPath, "--new-key-file", to}, &stdout, &stderr); err != nil {
			t.Fatalf("rotate-key to %s: %v", to, err)
		}
		for _, f := range []string{keyFile, nextFile} {
			b, err := os.ReadFile(f)
			if err != nil {
				continue
			}
			if k := strings.TrimSpace(string(b)); strings.Contains(stdout.String()+stderr.String(), k) {
				t.Errorf("rotate-key printed the key in %s", f)
			}
		}
		if fi, err := os.Stat(to); err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("%s after rotate-key: %v, %v; want mode 0600", to, fi.Mode(), err)
		}
		writeCfg(to)
		readsBack("after rotating to " + to)
	}
}
