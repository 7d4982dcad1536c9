package postgres_test

import (
	"context"
	"testing"
	"time"

	"github.com/shiftkey/shiftkey"
	"github.com/shiftkey/shiftkey/postgres"
)

// A rotation whose connection dies half way (its backend terminated while
// it has resealed the access key and waits on a credential's row, as when
// the rotate-key process is killed) changes nothing: the store still
// records only the old key, every value still opens with it, a replica
// starts with it; run again, the rotation completes.
func TestRotateKeyKilledHalfWayChangesNothing(t *testing.T) {
	ctx := context.Background()
	url := newURL(t)
	old, oldFile, next, nextFile := twoKeys(t)
	a := open(t, url, postgres.WithKey(old, oldFile))
	secret := shiftkey.NewSecretKey()
	if err := a.CreateEntity(ctx, &shiftkey.Entity{Kind: shiftkey.KindUser, Name: "u", ID: "AIDAKILL", Path: "/", ARN: "arn", CreatedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	if err := a.CreateAccessKey(ctx, &shiftkey.AccessKey{ID: "AKIAKILL", Secret: secret, UserName: "u", Status: "Active", CreatedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	c := newCredential("KILL1")
	if err := a.CreateCredential(ctx, c); err != nil {
		t.Fatal(err)
	}

	holder, watch := adminConn(t, url), adminConn(t, url)
	tx, err := holder.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, `SELECT 1 FROM credentials WHERE id = 'KILL1' FOR UPDATE`); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { _, err := postgres.RotateKey(ctx, url, old, next, nextFile); done <- err }()
	var pid int
	waitFor(t, 10*time.Second, "the rotation waits on the credential's row", func() bool {
		err := watch.QueryRow(ctx, `SELECT pid FROM pg_stat_activity WHERE wait_event_type = 'Lock'
			AND query LIKE '%FROM credentials%FOR UPDATE%'`).Scan(&pid)
		return err == nil
	})
	if _, err := watch.Exec(ctx, `SELECT pg_terminate_backend($1)`, pid); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err == nil {
		t.Fatal("the rotation whose connection was terminated succeeded")
	} else {
		t.Logf("rotation killed: %v", err)
	}
	tx.Rollback(ctx)

	var keys []string
	rows, err := watch.Query(ctx, `SELECT id || ':' || state FROM secret_keys`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var s string
		rows.Scan(&s)
		keys = append(keys, s)
	}
	rows.Close()
	if len(keys) != 1 || keys[0] != old.ID()+":current" {
		t.Fatalf("after the killed rotation secret_keys holds %v; want only %s:current", keys, old.ID())
	}
	b := open(t, url, postgres.WithKey(old, oldFile))
	if k, err := b.AccessKey(ctx, "AKIAKILL"); err != nil || k.Secret != secret {
		t.Fatalf("the access key after the killed rotation: %v", err)
	}
	assertDigests(t, b, c)

	if n, err := postgres.RotateKey(ctx, url, old, next, nextFile); err != nil || n != 2 {
		t.Fatalf("run again: resealed %d, %v; want 2 (access key, credential), nil", n, err)
	}
	nb := open(t, url, postgres.WithKey(next, nextFile))
	if k, err := nb.AccessKey(ctx, "AKIAKILL"); err != nil || k.Secret != secret {
		t.Fatalf("the access key after the rotation: %v", err)
	}
	assertDigests(t, nb, c)
}
