package sqlite_test

import (
	"context"
	"crypto/rand"
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
	cred := newCredential("CREDSCAN")
	if err := db.CreateCredential(ctx, cred); err != nil {
		t.Fatal(err)
	}
	secrets := map[string]string{"IAM secret key": secret, "session secret": sess.Secret, "session token": sess.Token,
		"code-13 digest": string(cred.DigestSHA256), "MD5 digest": string(cred.DigestMD5)}
	assertNoSecretInFiles(t, storeFiles(path), secrets) // open: WAL not checkpointed
	db.Close()
	assertNoSecretInFiles(t, storeFiles(path), secrets)
}

// newCredential is a credential of (c, IAM:d) with random digests, as
// redshift issues them.
func newCredential(id string) *shiftkey.Credential {
	now := time.Now()
	sha, md := make([]byte, 32), make([]byte, 16)
	rand.Read(sha)
	rand.Read(md)
	return &shiftkey.Credential{ID: id, Cluster: "c", LoginName: "IAM:d", DBUser: "d", StoredKey: []byte("stored-" + id), ServerKey: []byte("server-" + id),
		DigestSHA256: sha, DigestMD5: md, CreatedAt: now, ExpiresAt: now.Add(time.Hour)}
}
