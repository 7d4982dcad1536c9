package postgres_test

import (
	"bytes"
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/shiftkey/shiftkey"
	"github.com/shiftkey/shiftkey/postgres"
	"github.com/shiftkey/shiftkey/secretbox"
)

// Rotations (to a new key, back to the old one, and again) race issues,
// new access keys and STS sessions committing on two replicas started
// with the old key: every write acknowledged is sealed under the store's
// current key afterwards (none under a key the store forgot), and reads
// back, through the running replicas and through one started with the
// final key.
func TestRotateKeyRacingWrites(t *testing.T) {
	ctx := context.Background()
	url := newURL(t)
	old, oldFile, next, nextFile := twoKeys(t)
	a := open(t, url, postgres.WithKey(old, oldFile))
	b := open(t, url, postgres.WithKey(old, oldFile))

	var (
		mu       sync.Mutex
		creds    = map[string]*shiftkey.Credential{}
		keys     = map[string]string{}
		sessions = map[string]string{}
		stop     atomic.Bool
		wg       sync.WaitGroup
	)
	var done [4]atomic.Int64 // each writer's completed rounds
	writer := func(w int, name string, db *postgres.DB) {
		defer wg.Done()
		for i := 0; !stop.Load(); i++ {
			c := newCredential(fmt.Sprintf("RACE%s%d", name, i))
			if err := db.CreateCredential(ctx, c); err != nil {
				t.Errorf("credential %s: %v", c.ID, err)
				return
			}
			user := fmt.Sprintf("u%s%d", name, i) // two keys a user at most
			if err := db.CreateEntity(ctx, &shiftkey.Entity{Kind: shiftkey.KindUser, Name: user, ID: "AIDA" + user, Path: "/", ARN: "arn:" + user, CreatedAt: time.Now()}); err != nil {
				t.Errorf("user %s: %v", user, err)
				return
			}
			k := &shiftkey.AccessKey{ID: fmt.Sprintf("AKIA%s%d", name, i), Secret: shiftkey.NewSecretKey(), UserName: user, Status: "Active", CreatedAt: time.Now()}
			if err := db.CreateAccessKey(ctx, k); err != nil {
				t.Errorf("access key %s: %v", k.ID, err)
				return
			}
			s := &shiftkey.Session{AccessKeyID: fmt.Sprintf("ASIA%s%d", name, i), Secret: shiftkey.NewSecretKey(), Token: "tok" + shiftkey.NewSecretKey(),
				RoleName: "r", SessionName: "s", SourceARN: "arn", CreatedAt: time.Now(), ExpiresAt: time.Now().Add(time.Hour)}
			if err := db.CreateSession(ctx, s); err != nil {
				t.Errorf("session %s: %v", s.AccessKeyID, err)
				return
			}
			mu.Lock()
			creds[c.ID], keys[k.ID], sessions[s.AccessKeyID] = c, k.Secret, s.Secret
			mu.Unlock()
			done[w].Add(1)
		}
	}
	for w, name := range []string{"A", "B", "C", "D"} {
		wg.Add(1)
		go writer(w, name, []*postgres.DB{a, b}[w%2])
	}
	// Each rotation waits until every writer has finished a round begun
	// after the previous one, so that every rotation meets writes of
	// every kind (rotations back to back under an issue:
	// TestTwoRapidRotationsDoNotFailAnIssue).
	final := old
	for i := 0; i < 6; i++ {
		from, to, toFile := old, next, nextFile
		if i%2 == 1 {
			from, to, toFile = next, old, oldFile
		}
		var at [len(done)]int64
		for w := range done {
			at[w] = done[w].Load()
		}
		waitFor(t, 30*time.Second, "every writer completes a round between rotations", func() bool {
			for w := range done {
				if done[w].Load() < at[w]+2 && !t.Failed() {
					return false
				}
			}
			return true
		})
		if t.Failed() {
			break
		}
		if _, err := postgres.RotateKey(ctx, url, from, to, toFile); err != nil {
			t.Fatalf("rotation %d: %v", i, err)
		}
		final = to
	}
	stop.Store(true)
	wg.Wait()
	if t.Failed() {
		return
	}

	// Every value sealed under the final key.
	under := map[string]int{}
	rows, err := adminConn(t, url).Query(ctx, `SELECT secret FROM access_keys UNION ALL SELECT secret FROM sessions
		UNION ALL SELECT value FROM shared_secrets UNION ALL SELECT digests FROM credentials UNION ALL SELECT digests FROM credential_revocations`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var v string
		if err := rows.Scan(&v); err != nil {
			t.Fatal(err)
		}
		id, err := secretbox.KeyID(v)
		if err != nil {
			t.Fatalf("a value not sealed: %v", err)
		}
		under[id]++
	}
	rows.Close()
	if len(under) != 1 || under[final.ID()] == 0 {
		t.Errorf("values per key after the rotations: %v; want all under %s", under, final.ID())
	}
	t.Logf("%d credentials, %d access keys, %d sessions written during 6 rotations", len(creds), len(keys), len(sessions))

	fresh := open(t, url, postgres.WithKey(final, map[bool]string{true: oldFile, false: nextFile}[final == old]))
	for _, db := range []*postgres.DB{a, b, fresh} {
		db.LoginSalt(ctx, "c", "IAM:d", "", shiftkey.LoginSalt{Salt: []byte("0123456789abcdef"), Iterations: 1})
		got, _, _, err := db.LiveCredentials(ctx, "c", "IAM:d", time.Now())
		if err != nil {
			t.Fatal(err)
		}
		seen := 0
		for _, c := range got {
			if w, ok := creds[c.ID]; ok {
				seen++
				if !bytes.Equal(c.DigestSHA256, w.DigestSHA256) || !bytes.Equal(c.DigestMD5, w.DigestMD5) {
					t.Errorf("credential %s reads back other verifiers", c.ID)
				}
			}
		}
		if seen != len(creds) {
			t.Errorf("%d of %d credentials read back", seen, len(creds))
		}
		for id, secret := range keys {
			if k, err := db.AccessKey(ctx, id); err != nil || k.Secret != secret {
				t.Errorf("access key %s: %v", id, err)
			}
		}
		for id, secret := range sessions {
			if s, err := db.Session(ctx, id); err != nil || s.Secret != secret {
				t.Errorf("session %s: %v", id, err)
			}
		}
	}
}
