package config

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/shiftkey/shiftkey/secretbox"
)

// EnvStoreKey may hold serve's store key, base64 of 32 bytes, instead of
// store.secret_key_file (for secret managers that inject environment
// variables). It is removed from the environment once read.
const EnvStoreKey = "SHIFTKEY_STORE_KEY"

// DefaultKeyFile is where serve keeps a generated store key when none is
// configured: beside the store.
func (c StoreConfig) DefaultKeyFile() string { return c.SQLite + ".secret-key" }

// Key is serve's store key and the file it is read from ("" for the
// environment): store.secret_key_file, SHIFTKEY_STORE_KEY, or else a key
// generated beside the store (generate) on first start.
func (c StoreConfig) Key(generate bool, logger *slog.Logger) (*secretbox.Key, string, error) {
	env, inEnv := os.LookupEnv(EnvStoreKey)
	switch {
	case c.SecretKeyFile != "" && inEnv:
		return nil, "", fmt.Errorf("store.secret_key_file and %s are both set: keep one", EnvStoreKey)
	case c.SecretKeyFile != "":
		path, err := filepath.Abs(c.SecretKeyFile)
		if err != nil {
			return nil, "", err
		}
		k, err := secretbox.LoadKeyFile(path)
		if err != nil {
			return nil, "", fmt.Errorf("store.secret_key_file: %w", err)
		}
		return k, path, nil
	case inEnv:
		os.Unsetenv(EnvStoreKey) // not inherited by anything started later
		k, err := secretbox.ParseKey([]byte(env))
		if err != nil {
			return nil, "", fmt.Errorf("%s: %w", EnvStoreKey, err)
		}
		return k, "", nil
	}
	if c.Postgres != "" {
		// A key generated beside one replica would not be the others'.
		return nil, "", fmt.Errorf("store.postgres needs store.secret_key_file or %s: every replica seals secrets with the same key", EnvStoreKey)
	}
	path, err := filepath.Abs(c.DefaultKeyFile())
	if err != nil {
		return nil, "", err
	}
	if !generate {
		k, err := secretbox.LoadKeyFile(path)
		return k, path, err
	}
	if _, err := os.Lstat(path); errors.Is(err, os.ErrNotExist) {
		logger.Warn("store.secret_key_file is not set: secrets are sealed under a key generated beside the store; set store.secret_key_file to keep the key apart from the database and its backups", "key_file", path)
	}
	k, err := secretbox.LoadOrCreateKeyFile(path)
	return k, path, err
}
