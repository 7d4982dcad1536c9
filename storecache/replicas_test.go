package storecache_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/shiftkey/shiftkey"
	"github.com/shiftkey/shiftkey/internal/pgtest"
	"github.com/shiftkey/shiftkey/postgres"
	"github.com/shiftkey/shiftkey/storecache"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// openReplica opens a PostgreSQL store on url, as one replica does.
func openReplica(t *testing.T, url string) *postgres.DB {
	t.Helper()
	db, err := postgres.Open(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// keyStatus is the status replica c answers for access key id.
func keyStatus(t *testing.T, c *storecache.Store, id string) string {
	t.Helper()
	k, err := c.AccessKey(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return k.Status
}

// Replicas A and B share a PostgreSQL store; B serves through its cache.
// A key A deactivates is refused by B within 1 s, also when B's change
// feed has stopped delivering (a stalled LISTEN connection, one that is
// cut and cannot connect again): B must then read the store, not keep
// answering from memory what it last heard.
func TestReplicaStopsAnsweringFromMemoryWithoutItsFeed(t *testing.T) {
	for _, tc := range []struct {
		name string
		// blind stops B's feed from delivering A's next writes.
		blind func(t *testing.T, url string, a, b *postgres.DB)
	}{
		{"stalled", func(t *testing.T, _ string, a, b *postgres.DB) {
			// A subscriber that does not return stands for a LISTEN
			// connection that hangs, as postgres' own feed tests do.
			var stall atomic.Bool
			release := make(chan struct{})
			t.Cleanup(func() { close(release) })
			b.Subscribe(func(shiftkey.Change) {
				if stall.Load() {
					<-release
				}
			})
			stall.Store(true)
			// Its change stalls B's feed (and drops nothing B's cache
			// holds of the key).
			if err := a.CreateCluster(context.Background(), &shiftkey.Cluster{Identifier: "stall", NamespaceID: "5ca9e12f-eaa3-4255-9a16-97a9c100d60e",
				NodeType: "dc2.large", DBName: "dev", MasterUsername: "awsuser", Status: "available", CreatedAt: time.Now()}); err != nil {
				t.Fatal(err)
			}
		}},
		{"cut and unable to reconnect", func(t *testing.T, url string, _, _ *postgres.DB) {
			// The pools keep the connections they have; no new one is let
			// in (as with the server's connection slots used up).
			ctx := context.Background()
			cfg, err := pgx.ParseConfig(url)
			if err != nil {
				t.Fatal(err)
			}
			name := cfg.Database
			db := pgx.Identifier{name}.Sanitize()
			cfg.Database = "postgres"
			admin, err := pgx.ConnectConfig(ctx, cfg)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() {
				admin.Exec(ctx, `ALTER DATABASE `+db+` ALLOW_CONNECTIONS true`)
				admin.Close(ctx)
			})
			if _, err := admin.Exec(ctx, `ALTER DATABASE `+db+` ALLOW_CONNECTIONS false`); err != nil {
				t.Fatal(err)
			}
			if _, err := admin.Exec(ctx, `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE query LIKE 'LISTEN %' AND datname = $1`,
				name); err != nil {
				t.Fatal(err)
			}
			// Gone before A writes: a backend still exiting would deliver it.
			waitFor(t, 5*time.Second, "the LISTEN connections are gone", func() bool {
				var n int
				if err := admin.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity WHERE query LIKE 'LISTEN %' AND datname = $1`, name).Scan(&n); err != nil {
					t.Fatal(err)
				}
				return n == 0
			})
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			s := pgtest.Server(t)
			url := s.ConnString(s.Superuser(), pgtest.NewDatabase(t))
			a, b := openReplica(t, url), openReplica(t, url)
			cb := storecache.New(b)
			_, id := addUser(t, a, "bob", "")
			// B hears A: its cache answers, and follows A's writes.
			if got := keyStatus(t, cb, id); got != "Active" {
				t.Fatalf("B answers %s, want Active", got)
			}
			if err := a.UpdateAccessKey(ctx, id, "Inactive"); err != nil {
				t.Fatal(err)
			}
			waitFor(t, time.Second, "B follows A's deactivation", func() bool { return keyStatus(t, cb, id) == "Inactive" })
			if err := a.UpdateAccessKey(ctx, id, "Active"); err != nil {
				t.Fatal(err)
			}
			waitFor(t, time.Second, "B follows A's reactivation", func() bool { return keyStatus(t, cb, id) == "Active" })
			// B answers from memory (no store read) once its feed is known
			// to be current.
			var reads atomic.Int64
			storecache.SetAfterRead(cb, func() { reads.Add(1) })
			waitFor(t, 10*time.Second, "B answers the key from memory", func() bool {
				before := reads.Load()
				return keyStatus(t, cb, id) == "Active" && reads.Load() == before
			})

			// And a custom domain (the gateway routes TLS clients by it).
			if err := a.CreateCustomDomain(ctx, &shiftkey.CustomDomain{Name: "db.example.com", CertificateARN: "arn:aws:acm:us-east-1:123456789012:certificate/x",
				Kind: shiftkey.DomainWorkgroup, Target: "wg-a", CertExpiry: time.Now().Add(time.Hour)}); err != nil {
				t.Fatal(err)
			}
			domainGone := func() bool {
				_, err := cb.CustomDomain(ctx, "db.example.com")
				return shiftkey.ErrorCode(err) == shiftkey.CodeResourceNotFound
			}
			waitFor(t, 10*time.Second, "B answers the domain from memory", func() bool {
				before := reads.Load()
				return !domainGone() && reads.Load() == before
			})

			tc.blind(t, url, a, b)
			if err := a.UpdateAccessKey(ctx, id, "Inactive"); err != nil {
				t.Fatal(err)
			}
			if err := a.DeleteCustomDomain(ctx, "db.example.com"); err != nil {
				t.Fatal(err)
			}
			start := time.Now()
			waitFor(t, time.Second, "B refuses the key A deactivated while B's feed was "+tc.name, func() bool { return keyStatus(t, cb, id) == "Inactive" })
			t.Logf("refused after %v", time.Since(start).Round(time.Millisecond))
			waitFor(t, time.Second, "B no longer finds the domain A deleted while B's feed was "+tc.name, domainGone)
		})
	}
}

// waitFor polls cond until it holds or d passes.
func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("after %v: %s", d, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// A rename on replica A reaches replica B's cache: B, which answered the
// user's key, the user and its groups from memory, answers them under the
// new names within 1 s (A's notifications name both names, the key and
// the groups), and nothing under the old ones.
func TestReplicaFollowsARename(t *testing.T) {
	ctx := context.Background()
	s := pgtest.Server(t)
	url := s.ConnString(s.Superuser(), pgtest.NewDatabase(t))
	a, b := openReplica(t, url), openReplica(t, url)
	cb := storecache.New(b)
	_, id := addUser(t, a, "bob", "")
	if err := a.CreateEntity(ctx, &shiftkey.Entity{Kind: shiftkey.KindGroup, Name: "devs", ID: shiftkey.NewID("AGPA"), Path: "/", ARN: "arn:aws:iam::" + account + ":group/devs", CreatedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	if err := a.AddUserToGroup(ctx, "devs", "bob"); err != nil {
		t.Fatal(err)
	}
	var reads atomic.Int64
	storecache.SetAfterRead(cb, func() { reads.Add(1) })
	// B answers the key, the user and its groups from memory.
	waitFor(t, 10*time.Second, "B answers bob from memory", func() bool {
		before := reads.Load()
		k, kerr := cb.AccessKey(ctx, id)
		u, uerr := cb.Entity(ctx, shiftkey.KindUser, "bob")
		gs, gerr := cb.GroupsForUser(ctx, "bob")
		return kerr == nil && uerr == nil && gerr == nil && k.UserName == "bob" && u.Name == "bob" && len(gs) == 1 && reads.Load() == before
	})

	if err := a.RenameEntity(ctx, shiftkey.KindUser, &shiftkey.Entity{Name: "bob"}, &shiftkey.Entity{Name: "robert", Path: "/eng/", ARN: "arn:aws:iam::" + account + ":user/eng/robert"}); err != nil {
		t.Fatal(err)
	}
	if err := a.RenameEntity(ctx, shiftkey.KindGroup, &shiftkey.Entity{Name: "devs"}, &shiftkey.Entity{Name: "builders", Path: "/", ARN: "arn:aws:iam::" + account + ":group/builders"}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, time.Second, "B follows A's renames", func() bool {
		k, kerr := cb.AccessKey(ctx, id)
		_, gone := cb.Entity(ctx, shiftkey.KindUser, "bob")
		u, uerr := cb.Entity(ctx, shiftkey.KindUser, "robert")
		old, _ := cb.GroupsForUser(ctx, "bob")
		gs, gerr := cb.GroupsForUser(ctx, "robert")
		return kerr == nil && k.UserName == "robert" && shiftkey.ErrorCode(gone) == shiftkey.CodeNoSuchEntity && uerr == nil && u.Path == "/eng/" &&
			len(old) == 0 && gerr == nil && len(gs) == 1 && gs[0].Name == "builders"
	})
}
