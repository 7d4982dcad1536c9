package sqlite_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/shiftkey/shiftkey"
	"github.com/shiftkey/shiftkey/secretbox"
	"github.com/shiftkey/shiftkey/sqlite"
)

// RotateKeyFile reseals under a fresh key that replaces the key file: the
// store opens with the file afterwards (and no longer with the old key),
// secrets read back as issued, and neither .new nor .old is left.
func TestRotateKeyFile(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	path := filepath.Join(dir, "s.db")
	old, keyPath := keyFile(t, dir, "store.key")
	db, err := sqlite.Open(ctx, path, sqlite.WithKey(old, keyPath))
	if err != nil {
		t.Fatal(err)
	}
	secret := shiftkey.NewSecretKey()
	mustUserWithKey(t, db, "AKIAROTATEFILE", secret)
	db.Close()

	n, oldKey, newKey, err := sqlite.RotateKeyFile(ctx, path, keyPath, 1)
	if err != nil {
		t.Fatal(err)
	}
	if n != 1 || oldKey.ID() != old.ID() || newKey.ID() == old.ID() {
		t.Fatalf("resealed %d, old %s (want %s), new %s", n, oldKey.ID(), old.ID(), newKey.ID())
	}
	for _, left := range []string{keyPath + ".new", keyPath + ".old"} {
		if _, err := os.Stat(left); !os.IsNotExist(err) {
			t.Errorf("%s left behind: %v", left, err)
		}
	}
	inFile, err := secretbox.LoadKeyFile(keyPath)
	if err != nil || inFile.ID() != newKey.ID() {
		t.Fatalf("key file holds %v, want the new key: %v", inFile, err)
	}
	db, err = sqlite.Open(ctx, path, sqlite.WithKey(inFile, keyPath))
	if err != nil {
		t.Fatal(err)
	}
	k, err := db.AccessKey(ctx, "AKIAROTATEFILE")
	db.Close()
	if err != nil || k.Secret != secret {
		t.Fatalf("secret after rotation: %v", err)
	}
	if db, err := sqlite.Open(ctx, path, sqlite.WithKey(old, "")); err == nil {
		db.Close()
		t.Fatal("the old key still opens the store")
	}
}

// dev's key file deleted between runs: OpenKeyFile (create) is refused
// with an error naming the missing file, and leaves no fresh key there.
func TestOpenKeyFileRefusesAMissingKeyFile(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	path, keyPath := filepath.Join(dir, "s.db"), filepath.Join(dir, "store.key")
	db, err := sqlite.OpenKeyFile(ctx, path, keyPath, true)
	if err != nil {
		t.Fatal(err)
	}
	mustUserWithKey(t, db, "AKIAMISSINGKEYFILE", shiftkey.NewSecretKey())
	db.Close()
	if err := os.Remove(keyPath); err != nil {
		t.Fatal(err)
	}
	if db, err = sqlite.OpenKeyFile(ctx, path, keyPath, true); err == nil {
		db.Close()
		t.Fatal("opened a store whose key file is missing")
	}
	if !strings.Contains(err.Error(), keyPath+" is missing") {
		t.Errorf("error does not say the key file is missing: %v", err)
	}
	if _, serr := os.Lstat(keyPath); !os.IsNotExist(serr) {
		t.Errorf("after the refusal %s exists (%v): a fresh key was left in place of the store's", keyPath, serr)
	}
}

// A serving process that read a value sealed under a key it did not hold
// yet then asked the store for that key's file; a rotation that finished
// between the two had resealed the value and forgotten the key, so the
// read failed: "a secret is sealed under store key …, which this store
// does not know" (a failed login, an InternalFailure). Or the store still
// recorded the key's file, which the rotation then overwrote with its new
// key: "store key …: … now holds key …". Ordered here: the serving store b
// reads after rotation 1, and rotation 2 runs until it has forgotten
// rotation 1's key just before b asks for that key's file, or just after.
func TestARotationBetweenReadingAValueAndItsKeyFileDoesNotFailTheRead(t *testing.T) {
	ctx := context.Background()
	for _, read := range []struct {
		name string
		read func(b *sqlite.DB, c *shiftkey.Credential, s *shiftkey.Session, secret string) error
	}{
		{"credentials", func(b *sqlite.DB, c *shiftkey.Credential, _ *shiftkey.Session, _ string) error {
			got, _, _, err := b.LiveCredentials(ctx, c.Cluster, c.LoginName, time.Now())
			if err == nil && (len(got) != 1 || string(got[0].DigestSHA256) != string(c.DigestSHA256)) {
				return fmt.Errorf("read back %d credentials, not the one issued with its verifier", len(got))
			}
			return err
		}},
		{"revoked credentials", func(b *sqlite.DB, c *shiftkey.Credential, _ *shiftkey.Session, _ string) error {
			got, err := b.RevokedCredentials(ctx, c.Cluster, c.LoginName, time.Now())
			if err == nil && (len(got) != 1 || string(got[0].DigestSHA256) != string(c.DigestSHA256)) {
				return fmt.Errorf("read back %d revoked credentials, not the one revoked with its verifier", len(got))
			}
			return err
		}},
		{"session", func(b *sqlite.DB, _ *shiftkey.Credential, s *shiftkey.Session, _ string) error {
			got, err := b.Session(ctx, s.AccessKeyID)
			if err == nil && got.Secret != s.Secret {
				return errors.New("read back another secret")
			}
			return err
		}},
		{"access key", func(b *sqlite.DB, _ *shiftkey.Credential, _ *shiftkey.Session, secret string) error {
			got, err := b.AccessKey(ctx, "AKIAREAD")
			if err == nil && got.Secret != secret {
				return errors.New("read back another secret")
			}
			return err
		}},
		{"access keys", func(b *sqlite.DB, _ *shiftkey.Credential, _ *shiftkey.Session, secret string) error {
			got, err := b.AccessKeys(ctx, "uakiaread")
			if err == nil && (len(got) != 1 || got[0].Secret != secret) {
				return fmt.Errorf("read back %d keys, not the one made with its secret", len(got))
			}
			return err
		}},
	} {
		for _, at := range []struct {
			name string
			set  func(*sqlite.DB, func())
		}{
			// The store then no longer records the key.
			{"before b asks for the key's file", sqlite.SetBeforeKeyFile},
			// The file the store answered then holds the third key.
			{"after the store answers the file", sqlite.SetAfterKeyFile},
		} {
			t.Run(read.name+", rotation 2 "+at.name, func(t *testing.T) {
				path, keyPath, a, b, secret := servedStore(t)
				s := &shiftkey.Session{AccessKeyID: "ASIAREAD", Secret: shiftkey.NewSecretKey(), Token: "SKtoken" + shiftkey.NewSecretKey(), RoleName: "r",
					SessionName: "s", SourceARN: "arn", Tags: []shiftkey.Tag{}, CreatedAt: time.Now(), ExpiresAt: time.Now().Add(time.Hour)}
				if err := a.CreateSession(ctx, s); err != nil {
					t.Fatal(err)
				}
				c := newCredential("CREDREAD")
				if err := a.CreateCredential(ctx, c); err != nil {
					t.Fatal(err)
				}
				if _, err := a.LoginSalt(ctx, c.Cluster, c.LoginName, "", shiftkey.LoginSalt{Salt: []byte("0123456789abcdef"), Iterations: 1}); err != nil {
					t.Fatal(err)
				}
				if read.name == "revoked credentials" {
					if _, err := a.RevokeCredentials(ctx, shiftkey.CredentialFilter{ID: c.ID}, time.Now(), false); err != nil {
						t.Fatal(err)
					}
				}
				_, _, second, err := sqlite.RotateKeyFile(ctx, path, keyPath, 100)
				if err != nil {
					t.Fatal(err)
				}
				raw, err := sql.Open("sqlite", "file:"+path)
				if err != nil {
					t.Fatal(err)
				}
				defer raw.Close()
				rotations, rotated := 0, make(chan error, 1)
				at.set(b, func() {
					if rotations++; rotations > 1 {
						return
					}
					// Until rotation 2 has forgotten the second key: its last
					// step, a checkpoint, waits for b's read to end.
					go func() { _, _, _, err := sqlite.RotateKeyFile(ctx, path, keyPath, 100); rotated <- err }()
					waitFor(t, "rotation 2 forgets the second key", func() bool {
						var n int
						return raw.QueryRowContext(ctx, `SELECT count(*) FROM secret_keys WHERE id = ?`, second.ID()).Scan(&n) == nil && n == 0
					})
				})
				if err := read.read(b, c, s, secret); err != nil {
					t.Fatalf("the read as rotation 2 finished: %v", err)
				}
				if rotations == 0 {
					t.Fatal("b never asked for a key's file: the read did not meet rotation 1")
				}
				if err := <-rotated; err != nil {
					t.Fatalf("rotation 2: %v", err)
				}
			})
		}
	}
}

// A read that meets a value a rotation under way has resealed asks the
// store for the new key's file, which the store names store.key.new until
// the rotation has copied the new key over store.key; the rotation may
// remove store.key.new before the read opens it. The read reads again,
// and the store then names store.key, which holds the new key.
func TestARotationThatRemovesTheNewKeyFileMidReadDoesNotFailTheRead(t *testing.T) {
	ctx := context.Background()
	path, keyPath, _, b, secret := servedStore(t)
	told, resume := make(chan struct{}), make(chan struct{})
	var once sync.Once
	sqlite.SetAfterKeyFile(b, func() {
		once.Do(func() { close(told) })
		<-resume
	})
	read := make(chan error, 1)
	sqlite.SetAfterReseal(t, func() {
		go func() {
			got, err := b.AccessKey(ctx, "AKIAREAD")
			if err == nil && got.Secret != secret {
				err = errors.New("read back another secret")
			}
			read <- err
		}()
		<-told // the store named store.key.new to b
	})
	rotated := make(chan error, 1)
	go func() { _, _, _, err := sqlite.RotateKeyFile(ctx, path, keyPath, 100); rotated <- err }()
	select {
	case <-told:
	case err := <-rotated:
		t.Fatalf("the rotation ended (%v) before b asked for the new key's file", err)
	case <-time.After(10 * time.Second):
		t.Fatal("b never asked for the new key's file")
	}
	waitFor(t, "the rotation removes store.key.new", func() bool {
		_, err := os.Stat(keyPath + ".new")
		return errors.Is(err, os.ErrNotExist)
	})
	close(resume)
	if err := <-read; err != nil {
		t.Fatalf("the read told store.key.new as the rotation removed it: %v", err)
	}
	if err := <-rotated; err != nil {
		t.Fatalf("rotation: %v", err)
	}
}

// servedStore is a store at path sealed under the key in keyPath, holding
// user access key AKIAREAD with secret, open twice: a writes, b is the
// serving process whose reads meet the rotations. Both close at the end.
func servedStore(t *testing.T) (path, keyPath string, a, b *sqlite.DB, secret string) {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	path = filepath.Join(dir, "s.db")
	first, keyPath := keyFile(t, dir, "store.key")
	for _, d := range []**sqlite.DB{&a, &b} {
		db, err := sqlite.Open(ctx, path, sqlite.WithKey(first, keyPath))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		*d = db
	}
	secret = shiftkey.NewSecretKey()
	mustUserWithKey(t, a, "AKIAREAD", secret)
	return path, keyPath, a, b, secret
}
