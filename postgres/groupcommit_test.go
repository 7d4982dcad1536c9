package postgres_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/shiftkey/shiftkey"
	"github.com/shiftkey/shiftkey/postgres"
	"github.com/shiftkey/shiftkey/secretbox"
)

func testCredential(id, login string) *shiftkey.Credential {
	return &shiftkey.Credential{ID: id, Cluster: "gc", LoginName: login, DBUser: login, StoredKey: []byte{1}, ServerKey: []byte{2},
		DigestSHA256: []byte{3}, CreatedAt: time.Now(), ExpiresAt: time.Now().Add(time.Hour)}
}

// holdCredentials locks the credentials table from another session until
// the returned release is called, so that the writer's batch in flight
// waits and the next writes queue up behind it.
func holdCredentials(t *testing.T, url string) (release func()) {
	t.Helper()
	ctx := context.Background()
	c := adminConn(t, url)
	tx, err := c.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, `LOCK TABLE credentials IN EXCLUSIVE MODE`); err != nil {
		t.Fatal(err)
	}
	return func() { tx.Rollback(ctx) }
}

// Concurrent issues share a transaction: 64 credentials (sealed under the
// store key) and new logins' salts written while the first is held commit
// in two transactions, and every one is stored.
func TestGroupCommitSharesTransactions(t *testing.T) {
	ctx := context.Background()
	url := newURL(t)
	key, _, err := secretbox.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	db := open(t, url, postgres.WithKey(key, ""))
	if _, err := db.LoginSalt(ctx, "gc", "u", "", shiftkey.LoginSalt{Salt: []byte{9}, Iterations: 1}); err != nil {
		t.Fatal(err)
	}
	before, taken := postgres.WriterCommits(db), postgres.WriterTaken(db)
	release := holdCredentials(t, url)
	errs := make(chan error, 72)
	var wg sync.WaitGroup
	wg.Go(func() { errs <- db.CreateCredential(ctx, testCredential("first", "u")) })
	waitFor(t, 5*time.Second, "the first write was taken", func() bool { return postgres.WriterTaken(db) == taken+1 })
	salts := make([]shiftkey.LoginSalt, 8)
	for i := range 63 + len(salts) {
		// Salts queued among the credentials, one before the first of them.
		if i%9 == 0 {
			wg.Go(func() {
				s, err := db.LoginSalt(ctx, "gc", fmt.Sprint("new", i/9), "", shiftkey.LoginSalt{Salt: []byte{byte(i)}, Iterations: 1})
				salts[i/9] = s
				errs <- err
			})
		} else {
			wg.Go(func() { errs <- db.CreateCredential(ctx, testCredential(fmt.Sprint("c", i), "u")) })
		}
		waitFor(t, 5*time.Second, "the write queued", func() bool { return postgres.WriterQueued(db) == i+1 })
	}
	release()
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if n := postgres.WriterCommits(db) - before; n != 2 {
		t.Errorf("64 queued credentials took %d commits, want 2", n)
	}
	live, _, _, err := db.LiveCredentials(ctx, "gc", "u", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if len(live) != 64 {
		t.Fatalf("%d credentials stored, want 64", len(live))
	}
	for _, c := range live {
		if len(c.DigestSHA256) != 1 || c.DigestSHA256[0] != 3 {
			t.Fatalf("credential %s read back digest %x", c.ID, c.DigestSHA256)
		}
	}
	for i, s := range salts {
		if len(s.Salt) != 1 || s.Salt[0] != byte(9*i) {
			t.Fatalf("new login %d got salt %x, want the one it offered", i, s.Salt)
		}
	}
}

// A write that fails (a duplicate id) fails only itself, not the others
// of its batch.
func TestGroupCommitFailureIsolated(t *testing.T) {
	ctx := context.Background()
	url := newURL(t)
	db := open(t, url)
	if _, err := db.LoginSalt(ctx, "gc", "u", "", shiftkey.LoginSalt{Salt: []byte{9}, Iterations: 1}); err != nil {
		t.Fatal(err)
	}
	if err := db.CreateCredential(ctx, testCredential("dup", "u")); err != nil {
		t.Fatal(err)
	}
	taken := postgres.WriterTaken(db)
	release := holdCredentials(t, url)
	var wg sync.WaitGroup
	wg.Go(func() { db.CreateCredential(ctx, testCredential("first", "u")) })
	waitFor(t, 5*time.Second, "the first write was taken", func() bool { return postgres.WriterTaken(db) == taken+1 })
	errs := make([]error, 5)
	for i := range errs {
		id := fmt.Sprint("ok", i)
		if i == 2 {
			id = "dup"
		}
		wg.Go(func() { errs[i] = db.CreateCredential(ctx, testCredential(id, "u")) })
	}
	wg.Go(func() {
		_, err := db.LoginSalt(ctx, "gc", "fresh", "", shiftkey.LoginSalt{Salt: []byte{7}, Iterations: 1})
		if err != nil {
			t.Error(err)
		}
	})
	waitFor(t, 5*time.Second, "six writes queued", func() bool { return postgres.WriterQueued(db) == 6 })
	release()
	wg.Wait()
	for i, err := range errs {
		if (err != nil) != (i == 2) {
			t.Errorf("write %d: err = %v", i, err)
		}
	}
	live, _, _, err := db.LiveCredentials(ctx, "gc", "u", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if len(live) != 6 { // dup, first, ok0, ok1, ok3, ok4
		t.Fatalf("%d credentials stored, want 6", len(live))
	}
	if _, _, ok, err := db.LiveCredentials(ctx, "gc", "fresh", time.Now()); err != nil || !ok {
		t.Fatalf("the salt written in the failed batch: ok %v, err %v", ok, err)
	}
}

// An issue announces its credential when it gets the login's salt (from
// memory or not), so that the group writer can wait for it instead of
// committing a lone write (groupcommit.Gather); storing the credential
// takes the announcement back.
func TestLoginSaltAnnouncesTheCredential(t *testing.T) {
	ctx := context.Background()
	db := open(t, newURL(t))
	salt := func(login string) {
		t.Helper()
		if _, err := db.LoginSalt(ctx, "gc", login, "", shiftkey.LoginSalt{Salt: []byte{9}, Iterations: 1}); err != nil {
			t.Fatal(err)
		}
	}
	salt("u") // a new salt: written, then announced
	if n := postgres.WriterComing(db); n != 1 {
		t.Fatalf("after a new login's salt, %d credentials announced, want 1", n)
	}
	salt("u") // from memory
	if n := postgres.WriterComing(db); n != 2 {
		t.Fatalf("after a known login's salt, %d credentials announced, want 2", n)
	}
	for i := range 2 {
		if err := db.CreateCredential(ctx, testCredential(fmt.Sprint("a", i), "u")); err != nil {
			t.Fatal(err)
		}
	}
	if n := postgres.WriterComing(db); n != 0 {
		t.Errorf("after both credentials, %d still announced, want 0", n)
	}
}
