package postgres_test

import (
	"bytes"
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/shiftkey/shiftkey"
	"github.com/shiftkey/shiftkey/postgres"
	"github.com/shiftkey/shiftkey/secretbox"
)

// rotate-key on the PostgreSQL store: one transaction reseals every
// sealed value under the new key and forgets the old one; run again it
// finds nothing to do; a replica still running with the old key reads the
// new values (from the recorded file) and seals its next credential under
// the new key; a replica started with the old key is refused, one with the
// new key reads everything.
func TestRotateKey(t *testing.T) {
	ctx := context.Background()
	url := newURL(t)
	old, oldFile, next, nextFile := twoKeys(t)
	a := open(t, url, postgres.WithKey(old, oldFile))
	secret := shiftkey.NewSecretKey()
	if err := a.CreateEntity(ctx, &shiftkey.Entity{Kind: shiftkey.KindUser, Name: "u", ID: "AIDAROT", Path: "/", ARN: "arn", CreatedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	if err := a.CreateAccessKey(ctx, &shiftkey.AccessKey{ID: "AKIAROT", Secret: secret, UserName: "u", Status: "Active", CreatedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	sess := &shiftkey.Session{AccessKeyID: "ASIAROT", Secret: shiftkey.NewSecretKey(), Token: "tok" + shiftkey.NewSecretKey(), RoleName: "r",
		SessionName: "s", SourceARN: "arn", CreatedAt: time.Now(), ExpiresAt: time.Now().Add(time.Hour)}
	if err := a.CreateSession(ctx, sess); err != nil {
		t.Fatal(err)
	}
	gw, err := a.GatewaySecret(ctx)
	if err != nil {
		t.Fatal(err)
	}
	c1 := newCredential("ROT1")
	if err := a.CreateCredential(ctx, c1); err != nil {
		t.Fatal(err)
	}
	// A revoked credential keeps its verifiers, sealed, with its revocation.
	gone := newCredential("ROTGONE")
	gone.LoginName = "IAM:gone"
	if err := a.CreateCredential(ctx, gone); err != nil {
		t.Fatal(err)
	}
	if _, err := a.RevokeCredentials(ctx, shiftkey.CredentialFilter{ID: "ROTGONE"}, time.Now(), false); err != nil {
		t.Fatal(err)
	}

	n, err := postgres.RotateKey(ctx, url, old, next, nextFile)
	if err != nil {
		t.Fatal(err)
	}
	if n != 5 { // access key, session, gateway secret, credential, revocation
		t.Errorf("resealed %d values, want 5", n)
	}
	if n, err := postgres.RotateKey(ctx, url, old, next, nextFile); err != nil || n != 0 {
		t.Errorf("run again: resealed %d, err %v; want 0, nil", n, err)
	}
	sealedUnder := func() map[string]int {
		t.Helper()
		got := map[string]int{}
		rows, err := adminConn(t, url).Query(ctx, `SELECT secret FROM access_keys UNION ALL SELECT secret FROM sessions
			UNION ALL SELECT value FROM shared_secrets UNION ALL SELECT digests FROM credentials UNION ALL SELECT digests FROM credential_revocations`)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		for rows.Next() {
			var v string
			if err := rows.Scan(&v); err != nil {
				t.Fatal(err)
			}
			id, err := secretbox.KeyID(v)
			if err != nil {
				t.Fatalf("a value not sealed: %v", err)
			}
			got[id]++
		}
		return got
	}
	if got := sealedUnder(); got[next.ID()] != 5 || len(got) != 1 {
		t.Fatalf("after the rotation, values per key: %v; want all 5 under %s", got, next.ID())
	}
	var keys int
	if err := adminConn(t, url).QueryRow(ctx, `SELECT count(*) FROM secret_keys`).Scan(&keys); err != nil || keys != 1 {
		t.Fatalf("secret_keys holds %d rows (%v), want only the new key", keys, err)
	}

	// A, still holding only the old key, reads the new values and seals
	// under the new key.
	if k, err := a.AccessKey(ctx, "AKIAROT"); err != nil || k.Secret != secret {
		t.Fatalf("the running replica reads the resealed access key: %v", err)
	}
	c2 := newCredential("ROT2")
	if err := a.CreateCredential(ctx, c2); err != nil {
		t.Fatal(err)
	}
	assertDigests(t, a, c1, c2)
	if got := sealedUnder(); got[next.ID()] != 6 || len(got) != 1 {
		t.Fatalf("the running replica's next credential: values per key %v; want all 6 under %s", got, next.ID())
	}

	if d, err := postgres.Open(ctx, url, postgres.WithKey(old, oldFile)); err == nil {
		d.Close()
		t.Fatal("a replica started with the retired key was let in")
	} else if !strings.Contains(err.Error(), next.ID()) {
		t.Errorf("the refusal does not name the current key: %v", err)
	}
	b := open(t, url, postgres.WithKey(next, nextFile))
	assertDigests(t, b, c1, c2)
	if k, err := b.AccessKey(ctx, "AKIAROT"); err != nil || k.Secret != secret {
		t.Fatalf("a replica with the new key reads the access key: %v", err)
	}
	if s, err := b.Session(ctx, "ASIAROT"); err != nil || s.Secret != sess.Secret {
		t.Fatalf("a replica with the new key reads the session: %v", err)
	}
	if got, err := b.GatewaySecret(ctx); err != nil || string(got) != string(gw) {
		t.Fatalf("the gateway secret after the rotation: %v", err)
	}
	if got, err := b.RevokedCredentials(ctx, gone.Cluster, gone.LoginName, time.Now()); err != nil || len(got) != 1 ||
		!bytes.Equal(got[0].DigestSHA256, gone.DigestSHA256) || !bytes.Equal(got[0].DigestMD5, gone.DigestMD5) {
		t.Fatalf("a replica with the new key reads the revoked credential's verifiers: %+v, %v", got, err)
	}
}

// twoKeys creates a store key file and the one a rotation moves to.
func twoKeys(t *testing.T) (old *secretbox.Key, oldFile string, next *secretbox.Key, nextFile string) {
	t.Helper()
	dir := t.TempDir()
	oldFile, nextFile = filepath.Join(dir, "old.key"), filepath.Join(dir, "next.key")
	var err error
	if old, err = secretbox.CreateKeyFile(oldFile); err != nil {
		t.Fatal(err)
	}
	if next, err = secretbox.CreateKeyFile(nextFile); err != nil {
		t.Fatal(err)
	}
	return old, oldFile, next, nextFile
}
