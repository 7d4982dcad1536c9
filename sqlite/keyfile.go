package sqlite

import (
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/shiftkey/shiftkey/atomicfile"
	"github.com/shiftkey/shiftkey/secretbox"
)

// RotateKeyFile reseals the store at path, sealed under the key in
// keyFile, under a fresh key generated as keyFile.new, which then replaces
// keyFile atomically; the old key is kept as keyFile.old until the store no
// longer knows it, then destroyed. A rotation that stopped half way
// resumes with the same keyFile.new. A serving process keeps answering
// throughout: it reads whichever key file the store names when it meets
// it. batch is how many rows one resealing transaction rewrites.
func RotateKeyFile(ctx context.Context, path, keyFile string, batch int) (n int, oldKey, newKey *secretbox.Key, err error) {
	newPath, oldPath := keyFile+".new", keyFile+".old"
	oldKey, err = secretbox.LoadKeyFile(keyFile)
	if err != nil {
		return 0, nil, nil, err
	}
	next, err := secretbox.LoadOrCreateKeyFile(newPath)
	if err != nil {
		return 0, nil, nil, err
	}
	db, err := Open(ctx, path, WithKey(oldKey, keyFile))
	if err != nil {
		return 0, nil, nil, err
	}
	defer db.Close()
	if n, err = db.RotateKey(ctx, next, newPath, batch); err != nil {
		return 0, nil, nil, fmt.Errorf("resealing stopped (run it again to resume): %w", err)
	}
	if afterReseal != nil {
		afterReseal()
	}
	// Swap the files: keyFile.old keeps the old key until the end,
	// keyFile.new stays readable until the store records keyFile.
	if err := os.Remove(oldPath); err != nil && !errors.Is(err, os.ErrNotExist) {
		return 0, nil, nil, err
	}
	if err := os.Link(keyFile, oldPath); err != nil {
		return 0, nil, nil, err
	}
	if err := replaceFile(newPath, keyFile); err != nil {
		return 0, nil, nil, err
	}
	if err := db.SetKeyFile(ctx, next.ID(), keyFile); err != nil {
		return 0, nil, nil, err
	}
	if err := os.Remove(newPath); err != nil {
		return 0, nil, nil, err
	}
	if err := db.FinishRotation(ctx); err != nil {
		return 0, nil, nil, err
	}
	if err := os.Remove(oldPath); err != nil {
		return 0, nil, nil, err
	}
	return n, oldKey, next, nil
}

// afterReseal, when set (tests), runs once RotateKeyFile has resealed the
// store under keyFile.new, before it swaps the key files.
var afterReseal func()

// replaceFile copies src over dst atomically (0600), leaving src in place.
func replaceFile(src, dst string) error {
	b, err := os.ReadFile(src)
	if err != nil {
		return err
	}
	return atomicfile.Write(dst, b, 0o600)
}

// OpenKeyFile opens the store at path sealing secrets under the key in
// keyFile. With create, a missing key file is generated (0600); without,
// a missing key file opens the store without a key, as tools reading a
// data dir do, never creating one.
func OpenKeyFile(ctx context.Context, path, keyFile string, create bool) (*DB, error) {
	if !create {
		if _, err := os.Lstat(keyFile); err != nil {
			return Open(ctx, path)
		}
	}
	load := secretbox.LoadKeyFile
	generated := false
	if create {
		load = secretbox.LoadOrCreateKeyFile
		_, err := os.Lstat(keyFile)
		generated = errors.Is(err, os.ErrNotExist)
	}
	key, err := load(keyFile)
	if err != nil {
		return nil, err
	}
	db, err := Open(ctx, path, WithKey(key, keyFile))
	return db, RefuseFreshKey(err, generated, keyFile)
}

// RefuseFreshKey is Open's err for a store opened with a key generated
// just now (generated) in keyFile, where the store's own key file was
// missing: when the store is sealed under another key (ErrOtherKey), the
// fresh file is removed, never left where the old one is to be restored,
// and the error says the file is missing. Otherwise err as it is.
func RefuseFreshKey(err error, generated bool, keyFile string) error {
	if !generated || !errors.Is(err, ErrOtherKey) {
		return err
	}
	missing := fmt.Errorf("store key file %s is missing: restore the key it held (%w)", keyFile, err)
	if rerr := os.Remove(keyFile); rerr != nil && !errors.Is(rerr, os.ErrNotExist) {
		return errors.Join(missing, fmt.Errorf("removing the key generated in its place: %w", rerr))
	}
	return missing
}
