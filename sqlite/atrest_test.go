package sqlite_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/shiftkey/shiftkey"
	"github.com/shiftkey/shiftkey/sqlite"
)

// storeFiles are the store and the files SQLite keeps beside it.
func storeFiles(path string) []string {
	return []string{path, path + "-wal", path + "-shm"}
}

// Finding 1: the -wal and -shm files were born 0644 (the store was chmodded
// only after the first open), so any local user could read secrets there.
func TestFinding1StoreFilesBornPrivate(t *testing.T) {
	path := filepath.Join(t.TempDir(), "s.db")
	db := mustOpen(t, path)
	defer db.Close()
	mustUserWithKey(t, db, "AKIAMODES", shiftkey.NewSecretKey())
	for _, f := range storeFiles(path) {
		fi, err := os.Stat(f)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("%s has mode %04o, want 0600", filepath.Base(f), fi.Mode().Perm())
		}
	}
}

// Finding 1: a store that group or others can read is refused, naming the
// file and the chmod that fixes it.
func TestFinding1RefusesReadableStore(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "s.db")
	mustOpen(t, path).Close()
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	db, err := sqlite.Open(ctx, path)
	if err == nil {
		db.Close()
		t.Fatal("a store readable by others was opened")
	}
	if want := "chmod 600 " + path; !strings.Contains(err.Error(), want) {
		t.Fatalf("error %q does not say %q", err, want)
	}
}

func mustUserWithKey(t *testing.T, db *sqlite.DB, id, secret string) {
	t.Helper()
	ctx := context.Background()
	name := "u" + strings.ToLower(id)
	if err := db.CreateEntity(ctx, &shiftkey.Entity{Kind: shiftkey.KindUser, Name: name, ID: shiftkey.NewID("AIDA"), Path: "/",
		ARN: "arn:aws:iam::123456789012:user/" + name, CreatedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	if err := db.CreateAccessKey(ctx, &shiftkey.AccessKey{ID: id, Secret: secret, UserName: name, Status: "Active", CreatedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
}

// secretForms are the encodings a secret could be found in on disk.
func secretForms(s string) [][]byte {
	return [][]byte{[]byte(s), []byte(base64.StdEncoding.EncodeToString([]byte(s))), []byte(hex.EncodeToString([]byte(s)))}
}

// assertNoSecretInFiles reads every byte of files and fails on any secret.
func assertNoSecretInFiles(t *testing.T, files []string, secrets map[string]string) {
	t.Helper()
	for _, f := range files {
		b, err := os.ReadFile(f)
		if os.IsNotExist(err) {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		for what, s := range secrets {
			for _, form := range secretForms(s) {
				if bytes.Contains(b, form) {
					t.Errorf("%s holds the %s", filepath.Base(f), what)
				}
			}
		}
	}
}
