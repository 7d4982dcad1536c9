package postgres_test

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/shiftkey/shiftkey/postgres"
	"github.com/shiftkey/shiftkey/secretbox"
)

// The group writer's batches and a key rotation are ordered by an advisory
// lock, not by a lock on the current key's row (which wrote a WAL record
// per batch, and a MultiXact whenever two replicas' batches overlapped):
// issuing leaves the key's row unlocked; a batch waits while a rotation
// holds the lock; a rotation waits for a batch in flight and then reseals
// the credential that batch committed under the old key.
func TestSealLockOrdersBatchesAndRotation(t *testing.T) {
	ctx := context.Background()
	url := newURL(t)
	old, oldFile, next, nextFile := twoKeys(t)
	a := open(t, url, postgres.WithKey(old, oldFile))
	if err := a.CreateCredential(ctx, newCredential("SEAL1")); err != nil {
		t.Fatal(err)
	}
	admin, watch := adminConn(t, url), adminConn(t, url)
	var xmax string
	if err := admin.QueryRow(ctx, `SELECT xmax::text FROM secret_keys WHERE state = 'current'`).Scan(&xmax); err != nil {
		t.Fatal(err)
	}
	if xmax != "0" {
		t.Errorf("after an issue the current key's row has xmax %s: the batch locked it", xmax)
	}

	// A rotation in progress (the lock held exclusively): the batch waits.
	tx, err := admin.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, postgres.SealLock); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- a.CreateCredential(ctx, newCredential("SEAL2")) }()
	waitFor(t, 5*time.Second, "the batch waits for the seal lock", func() bool { return sealLockWaiters(t, watch) > 0 })
	select {
	case err := <-done:
		t.Fatalf("the batch committed (%v) while a rotation held the seal lock", err)
	default:
	}
	if err := tx.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}

	// A batch in flight (the lock held shared, a credential sealed under
	// the old key inserted): the rotation waits, then reseals it.
	tx, err = admin.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock_shared($1)`, postgres.SealLock); err != nil {
		t.Fatal(err)
	}
	c := newCredential("SEAL3")
	sealed, err := old.SealPair(secretbox.CredentialDigests, c.ID, c.DigestSHA256, c.DigestMD5)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, `INSERT INTO credentials (id, cluster, login_name, db_user, db_name, db_groups, auto_create,
		stored_key, server_key, digests, principal_arn, request_id, created_at, expires_at)
		VALUES ($1, $2, $3, $4, '', '{}', false, $5, $6, $7, '', '', $8, $9)`,
		c.ID, c.Cluster, c.LoginName, c.DBUser, c.StoredKey, c.ServerKey, sealed, c.CreatedAt, c.ExpiresAt); err != nil {
		t.Fatal(err)
	}
	rotated := make(chan error, 1)
	go func() {
		_, err := postgres.RotateKey(ctx, url, old, next, nextFile)
		rotated <- err
	}()
	waitFor(t, 5*time.Second, "the rotation waits for the seal lock", func() bool { return sealLockWaiters(t, watch) > 0 })
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if err := <-rotated; err != nil {
		t.Fatal(err)
	}
	rows, err := watch.Query(ctx, `SELECT id, digests FROM credentials`)
	if err != nil {
		t.Fatal(err)
	}
	ids, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (id string, err error) {
		var v string
		if err := r.Scan(&id, &v); err != nil {
			return "", err
		}
		if k, err := secretbox.KeyID(v); err != nil || k != next.ID() {
			t.Errorf("credential %s sealed under %q (%v), want the new key %s", id, k, err, next.ID())
		}
		return id, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(ids) != 3 {
		t.Errorf("credentials %v, want SEAL1-3", ids)
	}
}
