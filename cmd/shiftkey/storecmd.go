package main

import (
	"context"
	"errors"
	"fmt"
	"github.com/shiftkey/shiftkey/devenv"
	"io"
	"log/slog"
	"path/filepath"

	"github.com/shiftkey/shiftkey/config"
	"github.com/shiftkey/shiftkey/pgserver"
	"github.com/shiftkey/shiftkey/postgres"
	"github.com/shiftkey/shiftkey/secretbox"
	"github.com/shiftkey/shiftkey/sqlite"
)

// rotateBatch is how many rows one resealing transaction rewrites: small,
// so that a serving process's writes wait little.
const rotateBatch = 50

func runStore(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	_, fs, err := verbFlags(args, stderr, "store", "store: want rotate-key", "rotate-key")
	if err != nil {
		return err
	}
	configPath := fs.String("config", "", "serve's YAML config file")
	newKey := fs.String("new-key-file", "", "with --config: the new key's file (created 0600 when missing)")
	dataDir := fs.String("data-dir", "", "dev's data dir (default: "+pgserver.DefaultHomeHelp()+")")
	if err := parseFlags(fs, args[1:]); err != nil {
		return err
	}
	if *configPath != "" {
		if *newKey == "" || *dataDir != "" {
			return errors.New("store rotate-key: --config needs --new-key-file, and no --data-dir")
		}
		return rotateServeKey(ctx, *configPath, *newKey, stdout)
	}
	if *newKey != "" {
		return errors.New("store rotate-key: --new-key-file goes with --config; dev's new key is generated")
	}
	dir := *dataDir
	if dir == "" {
		d, err := pgserver.DefaultHome()
		if err != nil {
			return err
		}
		dir = d
	}
	return rotateDevKey(ctx, dir, stdout)
}

// rotateServeKey reseals serve's store under the key in newKeyFile. The
// running server keeps answering: it reads the new key from that file when
// it meets it. The config is the operator's to change.
func rotateServeKey(ctx context.Context, configPath, newKeyFile string, stdout io.Writer) error {
	cfg, err := config.LoadForTool(configPath)
	if err != nil {
		return err
	}
	if err := storeExists(cfg.Store); err != nil {
		return err
	}
	oldKey, oldFile, err := cfg.Store.Key(false, slog.New(slog.DiscardHandler))
	if err != nil {
		return err
	}
	path, err := filepath.Abs(newKeyFile)
	if err != nil {
		return err
	}
	next, err := secretbox.LoadOrCreateKeyFile(path)
	if err != nil {
		return err
	}
	if next.ID() == oldKey.ID() {
		// Nothing would be resealed, and the old key the output tells the
		// operator to destroy would be the one the store opens with.
		return fmt.Errorf("store rotate-key: %s holds store key %s, which is already the store's key (%s): give --new-key-file a new file (it is created)", path, next.ID(), describeKey(oldFile))
	}
	var n int
	if cfg.Store.Postgres != "" {
		if n, err = postgres.RotateKey(ctx, cfg.Store.Postgres, oldKey, next, path); err != nil {
			return fmt.Errorf("rotate-key (nothing changed; run it again): %w", err)
		}
	} else if n, err = rotateSQLiteKey(ctx, cfg.Store.SQLite, oldKey, oldFile, next, path); err != nil {
		return err
	}
	old := describeKey(oldFile)
	running := "the running server already uses it"
	if cfg.Store.Postgres != "" {
		running = "running replicas read it from that path, which must hold it on every replica's machine"
	}
	fmt.Fprintf(stdout, `Resealed %d secrets under store key %s (%s); %s.
Now point the config at it, before the next start (which refuses the old key):

  store:
    secret_key_file: %s
`, n, next.ID(), path, running, path)
	if oldFile == "" {
		fmt.Fprintf(stdout, "\nand remove %s from the environment.\n", config.EnvStoreKey)
	}
	fmt.Fprintf(stdout, "The old key (%s, id %s) opens nothing any more: destroy it once the config is changed.\n", old, oldKey.ID())
	return nil
}

// describeKey names where serve's store key came from: its file, or the
// environment.
func describeKey(file string) string {
	if file == "" {
		return config.EnvStoreKey
	}
	return file
}

func rotateSQLiteKey(ctx context.Context, file string, oldKey *secretbox.Key, oldFile string, next *secretbox.Key, path string) (int, error) {
	db, err := sqlite.Open(ctx, file, sqlite.WithKey(oldKey, oldFile))
	if err != nil {
		return 0, err
	}
	defer db.Close()
	n, err := db.RotateKey(ctx, next, path, rotateBatch)
	if err != nil {
		return 0, fmt.Errorf("rotate-key (run it again to resume): %w", err)
	}
	return n, db.FinishRotation(ctx)
}

// rotateDevKey reseals dev's store under a fresh key that replaces
// store.key (see sqlite.RotateKeyFile).
func rotateDevKey(ctx context.Context, dir string, stdout io.Writer) error {
	keyPath := filepath.Join(dir, devenv.StoreKeyName)
	n, oldKey, next, err := sqlite.RotateKeyFile(ctx, filepath.Join(dir, devenv.StoreName), keyPath, rotateBatch)
	if err != nil {
		return fmt.Errorf("rotate-key: %w", err)
	}
	fmt.Fprintf(stdout, "Resealed %d secrets under a new store key (id %s) in %s; the old key (id %s) is destroyed.\n", n, next.ID(), keyPath, oldKey.ID())
	return nil
}
