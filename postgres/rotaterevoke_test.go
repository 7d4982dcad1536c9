package postgres_test

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/shiftkey/shiftkey"
	"github.com/shiftkey/shiftkey/postgres"
	"github.com/shiftkey/shiftkey/secretbox"
)

// A revocation that waits on a credential the rotation has resealed, and
// commits after it: the revocation keeps the verifiers as resealed (under
// the new key), not as its statement first saw them (under the key the
// rotation forgot).
func TestRevocationWaitingOnARotationKeepsTheResealedVerifiers(t *testing.T) {
	ctx := context.Background()
	url := newURL(t)
	old, oldFile, next, nextFile := twoKeys(t)
	a := open(t, url, postgres.WithKey(old, oldFile))
	live := newCredential("RRLIVE")
	gone := newCredential("RRGONE")
	gone.LoginName = "IAM:gone"
	for _, c := range []*shiftkey.Credential{live, gone} {
		if err := a.CreateCredential(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := a.RevokeCredentials(ctx, shiftkey.CredentialFilter{ID: "RRGONE"}, time.Now(), false); err != nil {
		t.Fatal(err)
	}

	// Hold the rotation after it has resealed the live credential: on the
	// revocation it reseals next.
	holder, watch := adminConn(t, url), adminConn(t, url)
	tx, err := holder.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, `SELECT 1 FROM credential_revocations WHERE id = 'RRGONE' FOR UPDATE`); err != nil {
		t.Fatal(err)
	}
	waiting := func(like string) func() bool {
		return func() bool {
			var n int
			watch.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE $1`, like).Scan(&n)
			return n > 0
		}
	}
	rotated := make(chan error, 1)
	go func() { _, err := postgres.RotateKey(ctx, url, old, next, nextFile); rotated <- err }()
	waitFor(t, 10*time.Second, "the rotation waits on the revocation's row", waiting("%FROM credential_revocations%FOR UPDATE%"))
	revoked := make(chan error, 1)
	go func() {
		_, err := a.RevokeCredentials(ctx, shiftkey.CredentialFilter{ID: "RRLIVE"}, time.Now(), false)
		revoked <- err
	}()
	waitFor(t, 10*time.Second, "the revocation waits on the rotation", waiting("%DELETE FROM credentials%"))
	tx.Rollback(ctx)
	if err := <-rotated; err != nil {
		t.Fatal(err)
	}
	if err := <-revoked; err != nil {
		t.Fatal(err)
	}

	var digests string
	if err := watch.QueryRow(ctx, `SELECT digests FROM credential_revocations WHERE id = 'RRLIVE'`).Scan(&digests); err != nil {
		t.Fatal(err)
	}
	if id, _ := secretbox.KeyID(digests); id != next.ID() {
		t.Errorf("the revocation keeps verifiers sealed under %s; the store's key is %s", id, next.ID())
	}
	b := open(t, url, postgres.WithKey(next, nextFile))
	got, err := b.RevokedCredentials(ctx, live.Cluster, live.LoginName, time.Now())
	if err != nil || len(got) != 1 || !bytes.Equal(got[0].DigestSHA256, live.DigestSHA256) || !bytes.Equal(got[0].DigestMD5, live.DigestMD5) {
		t.Fatalf("the revoked credential's verifiers with the new key: %+v, %v", got, err)
	}
}
