package postgres_test

import (
	"context"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/shiftkey/shiftkey"
	"github.com/shiftkey/shiftkey/postgres"
)

// issue stores a credential of (c, login) as the issue path does.
func issue(t *testing.T, d *postgres.DB, id, login string, now time.Time) *shiftkey.Credential {
	t.Helper()
	ctx := context.Background()
	if _, err := d.LoginSalt(ctx, "c", login, "", shiftkey.LoginSalt{Salt: []byte("salt"), Iterations: 1}); err != nil {
		t.Fatal(err)
	}
	c := &shiftkey.Credential{ID: id, Cluster: "c", LoginName: login, DBUser: "u", StoredKey: []byte(id), ServerKey: []byte{2},
		CreatedAt: now, ExpiresAt: now.Add(time.Hour)}
	if err := d.CreateCredential(ctx, c); err != nil {
		t.Fatal(err)
	}
	return c
}

func liveIDs(t *testing.T, d *postgres.DB, login string, now time.Time) []string {
	t.Helper()
	creds, _, _, err := d.LiveCredentials(context.Background(), "c", login, now)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, c := range creds {
		ids = append(ids, c.ID)
	}
	return ids
}

// cached waits until d answers login from memory (its change feed has
// confirmed it is current) and returns that answer.
func cached(t *testing.T, d *postgres.DB, login string, now time.Time) []string {
	t.Helper()
	var ids []string
	waitFor(t, 10*time.Second, "the login answered from memory", func() bool {
		before := postgres.CredReads(d)
		ids = liveIDs(t, d, login, now)
		return postgres.CredReads(d) == before
	})
	return ids
}

// A login is answered from memory on every replica; what another replica
// issues is found by MissedCredentials, what it revokes or deletes is
// refused within 1 s, also when B's LISTEN connection is cut or its feed
// stalls.
func TestLoginsFromMemoryAcrossReplicas(t *testing.T) {
	ctx := context.Background()
	url := newURL(t)
	a, b := open(t, url), open(t, url)
	now := time.Now()
	issue(t, a, "one", "IAM:kim", now)

	// Before, B read every live row at each login.
	if got := cached(t, b, "IAM:kim", now); !slices.Equal(got, []string{"one"}) {
		t.Fatalf("B answers %v, want [one]", got)
	}
	for range 10 {
		liveIDs(t, b, "IAM:kim", now)
	}

	// A's new credential announces nothing: B's answer may lack it, and
	// MissedCredentials finds it at once.
	issue(t, a, "two", "IAM:kim", now.Add(time.Millisecond))
	known, _, _, err := b.LiveCredentials(ctx, "c", "IAM:kim", now)
	if err != nil {
		t.Fatal(err)
	}
	missed, err := b.MissedCredentials(ctx, "c", "IAM:kim", known, now)
	if err != nil {
		t.Fatal(err)
	}
	all := append(slices.Clone(known), missed...)
	if len(all) != 2 || !slices.ContainsFunc(all, func(c *shiftkey.Credential) bool { return c.ID == "two" }) {
		t.Fatalf("B's answer %v and missed %v lack A's new credential", known, missed)
	}
	if got := cached(t, b, "IAM:kim", now); !slices.Equal(got, []string{"one", "two"}) {
		t.Fatalf("after MissedCredentials B answers %v from memory, want [one two]", got)
	}

	refusedWithin := func(what, id string) {
		t.Helper()
		start := time.Now()
		waitFor(t, time.Second, what, func() bool { return !slices.Contains(liveIDs(t, b, "IAM:kim", now), id) })
		t.Logf("%s after %v", what, time.Since(start).Round(time.Millisecond))
	}

	// Revoke on A: B refuses within 1 s.
	if _, err := a.RevokeCredentials(ctx, shiftkey.CredentialFilter{ID: "two"}, time.Now(), false); err != nil {
		t.Fatal(err)
	}
	refusedWithin("B refuses the credential A revoked", "two")

	// B's LISTEN connection cut, then a revoke on A at once.
	issue(t, a, "three", "IAM:kim", now.Add(2*time.Millisecond))
	cached(t, b, "IAM:kim", now) // B lacks three until it misses it
	missed, err = b.MissedCredentials(ctx, "c", "IAM:kim", []*shiftkey.Credential{}, now)
	if err != nil || len(missed) != 2 {
		t.Fatalf("MissedCredentials(nothing known) = %v, %v; want both live credentials", missed, err)
	}
	if got := cached(t, b, "IAM:kim", now); !slices.Equal(got, []string{"one", "three"}) {
		t.Fatalf("B answers %v from memory, want [one three]", got)
	}
	admin := adminConn(t, url)
	if _, err := admin.Exec(ctx, `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE query LIKE 'LISTEN %' AND pid <> pg_backend_pid()`); err != nil {
		t.Fatal(err)
	}
	if _, err := a.RevokeCredentials(ctx, shiftkey.CredentialFilter{ID: "three"}, time.Now(), false); err != nil {
		t.Fatal(err)
	}
	refusedWithin("B refuses the credential A revoked while B's feed was cut", "three")

	// B's feed stalls (a subscriber that does not return): B stops
	// answering from memory, and A's delete is refused within 1 s.
	if got := cached(t, b, "IAM:kim", now); !slices.Equal(got, []string{"one"}) {
		t.Fatalf("B answers %v from memory, want [one]", got)
	}
	var stall atomic.Bool
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	b.Subscribe(func(shiftkey.Change) {
		if stall.Load() {
			<-release
		}
	})
	stall.Store(true)
	if err := a.CreateEntity(ctx, &shiftkey.Entity{Kind: shiftkey.KindUser, Name: "kim", ID: "AIDASTALL", Path: "/", ARN: "arn:aws:iam::1:user/kim", CreatedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	if err := a.DeleteCredentials(ctx, "c", "IAM:kim"); err != nil {
		t.Fatal(err)
	}
	refusedWithin("B refuses the credentials A deleted while B's feed stalled", "one")
}
