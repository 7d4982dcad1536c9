package postgres_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/shiftkey/shiftkey"
	"github.com/shiftkey/shiftkey/postgres"
	"github.com/shiftkey/shiftkey/secretbox"
)

// sealLockWaiters is how many sessions wait for the seal lock in this
// test's database (advisory locks are per database).
func sealLockWaiters(t *testing.T, c *pgx.Conn) int {
	t.Helper()
	var n int
	// An advisory lock on a bigint key: classid is its high half, objid its low half.
	err := c.QueryRow(context.Background(), `SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted
		AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
		AND classid::bigint = ($1::bigint >> 32) AND objid::bigint = ($1::bigint & 4294967295)`, postgres.SealLock).Scan(&n)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// Found as a known gap: two rotations in quick succession failed an issue
// under way. Its batch waited for the first rotation, found its credential
// sealed under the retired key, read the new current key and went again;
// the second rotation committed meanwhile, and the issue failed with a
// plain error ("the store key keeps changing; try again"), which the API
// answers as an InternalFailure (500) the SDKs do not retry. Ordered here
// by the seal lock's queue: rotation 1, the issue's batch, rotation 2.
// Every issue now succeeds, sealed under the key the store ends with.
func TestTwoRapidRotationsDoNotFailAnIssue(t *testing.T) {
	ctx := context.Background()
	url := newURL(t)
	old, oldFile, next, nextFile := twoKeys(t)
	a := open(t, url, postgres.WithKey(old, oldFile))
	if err := a.CreateCredential(ctx, newCredential("TWICE0")); err != nil {
		t.Fatal(err)
	}
	c := newCredential("TWICE1")
	if err := issueBetweenTwoRotations(t, a, url, c, old, oldFile, next, nextFile); err != nil {
		t.Fatalf("the issue between two rotations failed (%s): %v", shiftkey.ErrorCode(err), err)
	}
	watch := adminConn(t, url)
	var digests string
	if err := watch.QueryRow(ctx, `SELECT digests FROM credentials WHERE id = $1`, c.ID).Scan(&digests); err != nil {
		t.Fatal(err)
	}
	if id, err := secretbox.KeyID(digests); err != nil || id != old.ID() {
		t.Errorf("the credential is sealed under %q (%v), want the store's key after both rotations, %s", id, err, old.ID())
	}
	a.LoginSalt(ctx, c.Cluster, c.LoginName, "", shiftkey.LoginSalt{Salt: []byte("0123456789abcdef"), Iterations: 1})
	got, _, _, err := a.LiveCredentials(ctx, c.Cluster, c.LoginName, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, g := range got {
		if g.ID == c.ID {
			found = string(g.DigestSHA256) == string(c.DigestSHA256)
		}
	}
	if !found {
		t.Errorf("the credential does not read back with its verifier (%d credentials of the login)", len(got))
	}
}

// A write whose key changed at every retry (here with no retry allowed:
// with one, whether the retry read the key before or after rotation 2
// committed was up to the two connections) is answered ServiceUnavailable,
// which the SDKs retry, and nothing of it is recorded; tried again, it is
// issued.
func TestAnIssueOutOfKeyRetriesIsServiceUnavailable(t *testing.T) {
	ctx := context.Background()
	url := newURL(t)
	old, oldFile, next, nextFile := twoKeys(t)
	a := open(t, url, postgres.WithKey(old, oldFile))
	postgres.SetKeyChangeRetries(a, 0)
	if err := a.CreateCredential(ctx, newCredential("RETRY0")); err != nil {
		t.Fatal(err)
	}
	c := newCredential("RETRY1")
	err := issueBetweenTwoRotations(t, a, url, c, old, oldFile, next, nextFile)
	if shiftkey.ErrorCode(err) != shiftkey.CodeServiceUnavailable {
		t.Fatalf("the issue out of retries: %v (code %q), want ServiceUnavailable", err, shiftkey.ErrorCode(err))
	}
	var n int
	if err := adminConn(t, url).QueryRow(ctx, `SELECT count(*) FROM credentials WHERE id = $1`, c.ID).Scan(&n); err != nil || n != 0 {
		t.Fatalf("%d rows of the refused credential (%v), want none", n, err)
	}
	if err := a.CreateCredential(ctx, c); err != nil {
		t.Fatalf("tried again: %v", err)
	}
}

// issueBetweenTwoRotations issues c on a while the store at url rotates
// from old to next and back, ordered by the seal lock's queue: rotation 1,
// the issue's batch, rotation 2. It returns the issue's error.
func issueBetweenTwoRotations(t *testing.T, a *postgres.DB, url string, c *shiftkey.Credential, old *secretbox.Key, oldFile string, next *secretbox.Key, nextFile string) error {
	t.Helper()
	ctx := context.Background()
	admin, watch := adminConn(t, url), adminConn(t, url)
	// Held exclusively, as a rotation holds it: everything below queues.
	hold, err := admin.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer hold.Rollback(ctx)
	if _, err := hold.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, postgres.SealLock); err != nil {
		t.Fatal(err)
	}
	rotated := make(chan error, 2)
	rotate := func(from, to *secretbox.Key, toFile string) {
		go func() { _, err := postgres.RotateKey(ctx, url, from, to, toFile); rotated <- err }()
	}
	queued := func(n int, what string) {
		t.Helper()
		waitFor(t, 10*time.Second, what, func() bool { return sealLockWaiters(t, watch) == n })
	}
	rotate(old, next, nextFile)
	queued(1, "rotation 1 waits for the seal lock")
	issued := make(chan error, 1)
	go func() { issued <- a.CreateCredential(ctx, c) }()
	queued(2, "the issue's batch waits behind rotation 1")
	rotate(next, old, oldFile)
	queued(3, "rotation 2 waits behind the issue's batch")
	if err := hold.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if err := <-rotated; err != nil {
			t.Fatalf("rotation: %v", err)
		}
	}
	return <-issued
}

// lockWaiters is how many sessions of this test's database wait for a
// lock (another test's leftovers in its own database are not counted), and
// whether one of them runs a query that contains text.
func lockWaiters(t *testing.T, c *pgx.Conn, text string) (n int, found bool) {
	t.Helper()
	if err := c.QueryRow(context.Background(), `SELECT count(*), coalesce(bool_or(strpos(query, $1) > 0), false)
		FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'`, text).Scan(&n, &found); err != nil {
		t.Fatal(err)
	}
	return n, found
}

// A write that seals in its own transaction (an STS session, an access
// key) read the current key's row FOR SHARE, waiting for a rotation that
// held it; the rotation deleted the row, so the read found none and read
// again. When a second rotation held the new key's row by then, that read
// found none either, and the secret was stored in the clear in a store
// with a key, until some later rotation. Ordered: rotation 1 holds the
// seal lock and the key's row, waiting on a table the test holds; the
// session's write waits for it; rotation 2 waits for the seal lock; the
// test lets go. Which of the session's second read and rotation 2 came
// first was then up to the two connections (about one trial in five went
// wrong), so this is tried 50 times. Such writes now take the seal lock,
// as issues do: the session is sealed under rotation 1's key, and
// rotation 2 reseals it.
func TestTwoRapidRotationsLeaveNoSecretInTheClear(t *testing.T) {
	ctx := context.Background()
	url := newURL(t)
	old, oldFile, next, nextFile := twoKeys(t)
	a := open(t, url, postgres.WithKey(old, oldFile))
	admin, watch := adminConn(t, url), adminConn(t, url)
	keys := [2]*secretbox.Key{old, next}
	files := [2]string{oldFile, nextFile}
	cur := 0
	const trials = 50
	var clear []string
	for i := range trials {
		hold, err := admin.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := hold.Exec(ctx, `LOCK TABLE access_keys IN EXCLUSIVE MODE`); err != nil {
			t.Fatal(err)
		}
		rotated := make(chan error, 2)
		rotate := func(from, to int) {
			go func() { _, err := postgres.RotateKey(ctx, url, keys[from], keys[to], files[to]); rotated <- err }()
		}
		rotate(cur, 1-cur)
		waitFor(t, 10*time.Second, "rotation 1 waits on access_keys", func() bool {
			n, found := lockWaiters(t, watch, "FROM access_keys")
			return n == 1 && found
		})
		s := &shiftkey.Session{AccessKeyID: fmt.Sprint("ASIATWICE", i), Secret: shiftkey.NewSecretKey(), Token: "tok" + shiftkey.NewSecretKey(),
			RoleName: "r", SessionName: "s", SourceARN: "arn", CreatedAt: time.Now(), ExpiresAt: time.Now().Add(time.Hour)}
		created := make(chan error, 1)
		go func() { created <- a.CreateSession(ctx, s) }()
		waitFor(t, 10*time.Second, "the session's write waits for rotation 1", func() bool { n, _ := lockWaiters(t, watch, ""); return n == 2 })
		rotate(1-cur, cur)
		waitFor(t, 10*time.Second, "rotation 2 waits too", func() bool { n, _ := lockWaiters(t, watch, ""); return n == 3 })
		if err := hold.Rollback(ctx); err != nil {
			t.Fatal(err)
		}
		for range 2 {
			if err := <-rotated; err != nil {
				t.Fatalf("trial %d: rotation: %v", i, err)
			}
		}
		if err := <-created; err != nil {
			t.Fatalf("trial %d: the session between two rotations failed: %v", i, err)
		}
		var sealed bool
		var secret string
		if err := watch.QueryRow(ctx, `SELECT sealed, secret FROM sessions WHERE access_key_id = $1`, s.AccessKeyID).Scan(&sealed, &secret); err != nil {
			t.Fatal(err)
		}
		if !sealed || secret == s.Secret {
			clear = append(clear, s.AccessKeyID)
		}
		if got, err := a.Session(ctx, s.AccessKeyID); err != nil || got.Secret != s.Secret {
			t.Errorf("trial %d: session %s reads back %v", i, s.AccessKeyID, err)
		}
	}
	if len(clear) > 0 {
		t.Errorf("%d of %d sessions written between two rotations stored their secret in the clear: %v", len(clear), trials, clear)
	}
}

// rotateOnFirstCall is a test hook that, the first time it is called,
// rotates the store at url from one key to another, to the rotation's end;
// calls counts its calls.
func rotateOnFirstCall(t *testing.T, url string, from, to *secretbox.Key, toFile string) (hook func(), calls *int) {
	calls = new(int)
	return func() {
		if *calls++; *calls == 1 {
			if _, err := postgres.RotateKey(context.Background(), url, from, to, toFile); err != nil {
				t.Errorf("rotation 2: %v", err)
			}
		}
	}, calls
}

// Found when CI failed TestTwoRapidRotationsDoNotFailAnIssue: after its
// batch met rotation 1, the writer read the current key's id, then, in a
// second statement, the file the store records for it. Rotation 2
// committed between the two and deleted that key's row, so the issue
// failed with "a secret is sealed under store key …, which this store
// does not know" (an InternalFailure). Ordered here: rotation 2 runs to
// its end right after the writer reads the current key.
func TestARotationBetweenReadingTheKeyAndItsFileDoesNotFailAnIssue(t *testing.T) {
	ctx := context.Background()
	url := newURL(t)
	old, oldFile, next, nextFile := twoKeys(t)
	a := open(t, url, postgres.WithKey(old, oldFile))
	first := newCredential("GONE0")
	if err := a.CreateCredential(ctx, first); err != nil {
		t.Fatal(err)
	}
	if _, err := postgres.RotateKey(ctx, url, old, next, nextFile); err != nil {
		t.Fatal(err)
	}
	hook, rotations := rotateOnFirstCall(t, url, next, old, oldFile)
	postgres.SetAfterKeyRead(a, hook)
	c := newCredential("GONE1")
	if err := a.CreateCredential(ctx, c); err != nil {
		t.Fatalf("the issue as rotation 2 committed failed (%s): %v", shiftkey.ErrorCode(err), err)
	}
	if *rotations == 0 {
		t.Fatal("the writer never read the key again: the issue did not meet rotation 1")
	}
	assertDigests(t, a, first, c)
}

// A replica that read a value sealed under a key it did not hold yet
// then asked the store for that key's file; a rotation committed between
// the two had resealed the value and deleted the key's row, so the read
// failed: "a secret is sealed under store key …, which this store does
// not know" (a failed login, an InternalFailure). Ordered here: replica
// b reads after rotation 1, and rotation 2 runs to its end just before b
// asks for rotation 1's key file. (The gateway secret's read goes the
// same way, but b seals a candidate first, under the seal lock, and so
// holds the key before it reads.)
func TestARotationBetweenReadingAValueAndItsKeyDoesNotFailTheRead(t *testing.T) {
	ctx := context.Background()
	type sealed struct {
		c   *shiftkey.Credential
		s   *shiftkey.Session
		key *shiftkey.AccessKey
	}
	for _, read := range []struct {
		name string
		read func(b *postgres.DB, w sealed) error
	}{
		{"credentials", func(b *postgres.DB, w sealed) error {
			b.LoginSalt(ctx, w.c.Cluster, w.c.LoginName, "", shiftkey.LoginSalt{Salt: []byte("0123456789abcdef"), Iterations: 1})
			got, _, _, err := b.LiveCredentials(ctx, w.c.Cluster, w.c.LoginName, time.Now())
			if err == nil && (len(got) != 1 || string(got[0].DigestSHA256) != string(w.c.DigestSHA256)) {
				return fmt.Errorf("read back %d credentials, not the one issued with its verifier", len(got))
			}
			return err
		}},
		{"revoked credentials", func(b *postgres.DB, w sealed) error {
			got, err := b.RevokedCredentials(ctx, w.c.Cluster, w.c.LoginName, time.Now())
			if err == nil && (len(got) != 1 || string(got[0].DigestSHA256) != string(w.c.DigestSHA256)) {
				return fmt.Errorf("read back %d revoked credentials, not the one revoked with its verifier", len(got))
			}
			return err
		}},
		{"session", func(b *postgres.DB, w sealed) error {
			got, err := b.Session(ctx, w.s.AccessKeyID)
			if err == nil && got.Secret != w.s.Secret {
				return errors.New("read back another secret")
			}
			return err
		}},
		{"access key", func(b *postgres.DB, w sealed) error {
			got, err := b.AccessKey(ctx, w.key.ID)
			if err == nil && got.Secret != w.key.Secret {
				return errors.New("read back another secret")
			}
			return err
		}},
		{"access keys", func(b *postgres.DB, w sealed) error {
			got, err := b.AccessKeys(ctx, w.key.UserName)
			if err == nil && (len(got) != 1 || got[0].Secret != w.key.Secret) {
				return fmt.Errorf("read back %d keys, not the one made with its secret", len(got))
			}
			return err
		}},
	} {
		t.Run(read.name, func(t *testing.T) {
			url := newURL(t)
			old, oldFile, next, nextFile := twoKeys(t)
			a := open(t, url, postgres.WithKey(old, oldFile))
			w := sealed{c: newCredential("READ0"),
				s: &shiftkey.Session{AccessKeyID: "ASIAREAD0", Secret: shiftkey.NewSecretKey(), Token: "tok" + shiftkey.NewSecretKey(),
					RoleName: "r", SessionName: "s", SourceARN: "arn", CreatedAt: time.Now(), ExpiresAt: time.Now().Add(time.Hour)},
				key: &shiftkey.AccessKey{ID: "AKIAREAD0", Secret: shiftkey.NewSecretKey(), UserName: "u", Status: "Active", CreatedAt: time.Now()}}
			var err error
			if err = a.CreateCredential(ctx, w.c); err != nil {
				t.Fatal(err)
			}
			if read.name == "revoked credentials" {
				if _, err = a.RevokeCredentials(ctx, shiftkey.CredentialFilter{ID: w.c.ID}, time.Now(), false); err != nil {
					t.Fatal(err)
				}
			}
			if err = a.CreateSession(ctx, w.s); err != nil {
				t.Fatal(err)
			}
			if err = a.CreateEntity(ctx, &shiftkey.Entity{Kind: shiftkey.KindUser, Name: "u", ID: "AIDAREAD", Path: "/", ARN: "arn", CreatedAt: time.Now()}); err != nil {
				t.Fatal(err)
			}
			if err = a.CreateAccessKey(ctx, w.key); err != nil {
				t.Fatal(err)
			}
			b := open(t, url, postgres.WithKey(old, oldFile))
			if _, err := postgres.RotateKey(ctx, url, old, next, nextFile); err != nil {
				t.Fatal(err)
			}
			hook, rotations := rotateOnFirstCall(t, url, next, old, oldFile)
			postgres.SetBeforeKeyFile(b, hook)
			if err := read.read(b, w); err != nil {
				t.Fatalf("the read as rotation 2 committed: %v", err)
			}
			if *rotations == 0 {
				t.Fatal("b never asked for a key's file: the read did not meet rotation 1")
			}
		})
	}
}
