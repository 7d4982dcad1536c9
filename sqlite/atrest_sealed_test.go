package sqlite_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/shiftkey/shiftkey"
	"github.com/shiftkey/shiftkey/secretbox"
	"github.com/shiftkey/shiftkey/sqlite"
)

// Finding 2: IAM secret keys, STS session secrets and tokens were plaintext
// in the store and its WAL.
func TestFinding2SecretsNotInStoreFiles(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "s.db")
	key, _, err := secretbox.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	db := mustOpen(t, path, sqlite.WithKey(key, ""))
	secret := shiftkey.NewSecretKey()
	mustUserWithKey(t, db, "AKIASCAN", secret)
	sess := &shiftkey.Session{AccessKeyID: "ASIASCAN", Secret: shiftkey.NewSecretKey(), Token: "SKtoken" + shiftkey.NewSecretKey(), RoleName: "r",
		SessionName: "s", SourceARN: "arn", Tags: []shiftkey.Tag{}, CreatedAt: time.Now(), ExpiresAt: time.Now().Add(time.Hour)}
	if err := db.CreateSession(ctx, sess); err != nil {
		t.Fatal(err)
	}
	secrets := map[string]string{"IAM secret key": secret, "session secret": sess.Secret, "session token": sess.Token}
	assertNoSecretInFiles(t, storeFiles(path), secrets) // open: WAL not checkpointed
	db.Close()
	assertNoSecretInFiles(t, storeFiles(path), secrets)
}
