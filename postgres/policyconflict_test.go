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

// isolatedByDefault makes the database of url run every transaction at
// level unless it sets its own, as a server configured for safety by
// default does (default_transaction_isolation).
func isolatedByDefault(t *testing.T, url, level string) {
	t.Helper()
	if _, err := adminConn(t, url).Exec(context.Background(), fmt.Sprintf(
		`DO $$ BEGIN EXECUTE format('ALTER DATABASE %%I SET default_transaction_isolation = %%L', current_database(), %s); END $$`,
		quoteLiteral(level))); err != nil {
		t.Fatal(err)
	}
}

const contendedPolicy = "arn:aws:iam::1:policy/contended"

// contended creates the policy contendedPolicy (v1, its default) on db.
func contended(t *testing.T, db *postgres.DB) {
	t.Helper()
	if err := db.CreateManagedPolicy(context.Background(), &shiftkey.ManagedPolicy{ARN: contendedPolicy, Name: "contended",
		ID: "ANPACONTENDED", Path: "/", Document: `{"v":1}`, CreatedAt: time.Now(), UpdatedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
}

// policyVersions is the policy's versions: their ids and which is the
// default.
func policyVersions(t *testing.T, db *postgres.DB) (ids []string, defaults []string) {
	t.Helper()
	vs, err := db.PolicyVersions(context.Background(), contendedPolicy)
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range vs {
		ids = append(ids, v.ID)
		if v.IsDefault {
			defaults = append(defaults, v.ID)
		}
	}
	return ids, defaults
}

// A policy version write of one replica that waited for another's on the
// policy's row lock succeeds once the other commits, on a database whose
// transactions are REPEATABLE READ or SERIALIZABLE by default too: the
// row lock orders these writes, and READ COMMITTED (which lockPolicy
// assumes) lets the second read what the first committed. Found in
// review: there the second met a serialization failure (40001), answered
// ServiceUnavailable, for two replicas (or Terraform runs) changing one
// policy at once.
func TestPolicyWriteAfterAnotherReplicasSucceeds(t *testing.T) {
	for _, level := range []string{"repeatable read", "serializable"} {
		for _, c := range []struct {
			name string
			op   func(ctx context.Context, db *postgres.DB) error
			want string // the error code wanted, "" for success
			// ids and def are the versions and the default after A's v3
			// and the op.
			ids, def string
		}{
			{"CreatePolicyVersion", func(ctx context.Context, db *postgres.DB) error {
				return db.CreatePolicyVersion(ctx, contendedPolicy, &shiftkey.PolicyVersion{Document: `{"v":4}`, CreatedAt: time.Now()})
			}, "", "[v4 v3 v2 v1]", "[v1]"},
			{"SetDefaultPolicyVersion", func(ctx context.Context, db *postgres.DB) error {
				return db.SetDefaultPolicyVersion(ctx, contendedPolicy, "v2")
			}, "", "[v3 v2 v1]", "[v2]"},
			{"DeletePolicyVersion", func(ctx context.Context, db *postgres.DB) error {
				return db.DeletePolicyVersion(ctx, contendedPolicy, "v2")
			}, "", "[v3 v1]", "[v1]"},
			{"DeleteManagedPolicy", func(ctx context.Context, db *postgres.DB) error {
				return db.DeleteManagedPolicy(ctx, contendedPolicy)
			}, "DeleteConflict", "[v3 v2 v1]", "[v1]"},
		} {
			t.Run(level+"/"+c.name, func(t *testing.T) {
				ctx := context.Background()
				url := newURL(t)
				isolatedByDefault(t, url, level)
				a, b := open(t, url), open(t, url)
				contended(t, a)
				if err := a.CreatePolicyVersion(ctx, contendedPolicy, &shiftkey.PolicyVersion{Document: `{"v":2}`, CreatedAt: time.Now()}); err != nil {
					t.Fatal(err)
				}
				// A's write of v3 stops, the policy's row locked, at its
				// insert (a trigger waits for an advisory lock the test
				// holds) until B's op waits for that row.
				admin := adminConn(t, url)
				if _, err := admin.Exec(ctx, `CREATE FUNCTION hold() RETURNS trigger LANGUAGE plpgsql AS $$
					BEGIN
						IF NEW.document = '{"v":3}' THEN PERFORM pg_advisory_xact_lock(78); END IF;
						RETURN NEW;
					END $$;
					CREATE TRIGGER hold BEFORE INSERT ON policy_versions FOR EACH ROW EXECUTE FUNCTION hold();
					SELECT pg_advisory_lock(78)`); err != nil {
					t.Fatal(err)
				}
				var wg sync.WaitGroup
				var aErr, bErr error
				wg.Go(func() {
					aErr = a.CreatePolicyVersion(ctx, contendedPolicy, &shiftkey.PolicyVersion{Document: `{"v":3}`, CreatedAt: time.Now()})
				})
				waitForLockWait(t, admin, `wait_event = 'advisory'`, nil)
				wg.Go(func() { bErr = c.op(ctx, b) })
				waitForLockWait(t, admin, `query LIKE '%FOR UPDATE%'`, nil)
				if _, err := admin.Exec(ctx, `SELECT pg_advisory_unlock(78)`); err != nil {
					t.Fatal(err)
				}
				wg.Wait()
				if aErr != nil {
					t.Fatalf("A's CreatePolicyVersion: %v", aErr)
				}
				got := ""
				if bErr != nil {
					got = apiCode(bErr)
				}
				if got != c.want {
					t.Fatalf("B's %s after A's write: %v (answered %s), want %q", c.name, bErr, apiCode(bErr), c.want)
				}
				ids, defaults := policyVersions(t, a)
				if fmt.Sprint(ids) != c.ids || fmt.Sprint(defaults) != c.def {
					t.Errorf("versions %v, default %v; want %s, default %s", ids, defaults, c.ids, c.def)
				}
			})
		}
	}
}

// A policy version write that the server rolls back for a serialization
// failure or a deadlock is run again, after a short pause, and commits:
// a transient conflict is not the caller's failure. One that meets it at
// every try is answered ServiceUnavailable after a bounded number of
// them, and records nothing. Found in review: the first conflict was
// answered ServiceUnavailable.
func TestPolicyWriteConflictIsRetried(t *testing.T) {
	for _, code := range []string{"40001", "40P01"} {
		for _, c := range []struct {
			times int
			want  string
		}{{2, ""}, {1000, shiftkey.CodeServiceUnavailable}} {
			t.Run(fmt.Sprint(code, "/", c.times), func(t *testing.T) {
				ctx := context.Background()
				url := newURL(t)
				db := open(t, url)
				contended(t, db)
				if _, err := adminConn(t, url).Exec(ctx, fmt.Sprintf(`
					CREATE SEQUENCE conflicts;
					CREATE FUNCTION conflict() RETURNS trigger LANGUAGE plpgsql AS $$
					BEGIN
						IF nextval('conflicts') <= %d THEN
							RAISE EXCEPTION 'injected conflict' USING ERRCODE = %s;
						END IF;
						RETURN NEW;
					END $$;
					CREATE TRIGGER conflict BEFORE INSERT ON policy_versions FOR EACH ROW EXECUTE FUNCTION conflict()`,
					c.times, quoteLiteral(code))); err != nil {
					t.Fatal(err)
				}
				v := &shiftkey.PolicyVersion{Document: `{"v":2}`, CreatedAt: time.Now()}
				err := db.CreatePolicyVersion(ctx, contendedPolicy, v)
				n := conflictAttempts(t, url)
				ids, _ := policyVersions(t, db)
				if c.want == "" {
					if err != nil {
						t.Fatalf("CreatePolicyVersion that met %d conflicts: %v (answered %s)", c.times, err, apiCode(err))
					}
					if v.ID != "v2" || fmt.Sprint(ids) != "[v2 v1]" || n != c.times+1 {
						t.Errorf("created %s, versions %v, %d attempts; want v2, [v2 v1], %d", v.ID, ids, n, c.times+1)
					}
					return
				}
				if got := apiCode(err); got != c.want {
					t.Fatalf("CreatePolicyVersion that met a conflict at every try: %v, answered %s, want %s", err, got, c.want)
				}
				if n < 3 || n > 20 || fmt.Sprint(ids) != "[v1]" {
					t.Errorf("%d attempts, versions %v; want a few bounded retries and [v1]", n, ids)
				}
			})
		}
	}
}

// Concurrent version writes on one policy from two replicas, as two
// Terraform runs make them, on a database that runs transactions
// SERIALIZABLE by default (and on one that does not): each succeeds or is
// refused for the 5-version quota, never ServiceUnavailable or
// InternalFailure; at the end the policy has its one default, v1, and no
// other version (each writer deleted its own).
func TestConcurrentPolicyVersionWrites(t *testing.T) {
	for _, level := range []string{"read committed", "serializable"} {
		t.Run(level, func(t *testing.T) {
			ctx := context.Background()
			url := newURL(t)
			isolatedByDefault(t, url, level)
			replicas := []*postgres.DB{open(t, url), open(t, url)}
			contended(t, replicas[0])
			const writers, rounds = 8, 10
			var wg sync.WaitGroup
			var mu sync.Mutex
			var created, quota int
			for g := range writers {
				db := replicas[g%len(replicas)]
				wg.Go(func() {
					for i := range rounds {
						// Every third version is made the default, and the
						// default given back to v1 (which no writer deletes),
						// so that the writer can delete its own version.
						v := &shiftkey.PolicyVersion{Document: fmt.Sprintf(`{"g":%d,"i":%d}`, g, i), IsDefault: i%3 == 0, CreatedAt: time.Now()}
						err := db.CreatePolicyVersion(ctx, contendedPolicy, v)
						if shiftkey.ErrorCode(err) == shiftkey.CodeLimitExceeded {
							mu.Lock()
							quota++
							mu.Unlock()
							continue
						}
						if err != nil {
							t.Errorf("writer %d: CreatePolicyVersion: %v (answered %s)", g, err, apiCode(err))
							return
						}
						mu.Lock()
						created++
						mu.Unlock()
						if v.IsDefault {
							if err := db.SetDefaultPolicyVersion(ctx, contendedPolicy, "v1"); err != nil {
								t.Errorf("writer %d: SetDefaultPolicyVersion v1: %v (answered %s)", g, err, apiCode(err))
								return
							}
						}
						if err := db.DeletePolicyVersion(ctx, contendedPolicy, v.ID); err != nil {
							t.Errorf("writer %d: DeletePolicyVersion %s: %v (answered %s)", g, v.ID, err, apiCode(err))
							return
						}
					}
				})
			}
			wg.Wait()
			t.Logf("%d versions created, %d refused for the quota", created, quota)
			if created == 0 {
				t.Error("no version was created")
			}
			ids, defaults := policyVersions(t, replicas[1])
			if fmt.Sprint(ids) != "[v1]" || fmt.Sprint(defaults) != "[v1]" {
				t.Errorf("versions %v, default %v; want [v1], default [v1]", ids, defaults)
			}
		})
	}
}

// The store's writes that count under a lock (here AttachPolicy: the
// owner's row locked, then its attachments counted) keep their quota on a
// database whose transactions are REPEATABLE READ or SERIALIZABLE by
// default: the second of two attachments at once, which waited for the
// first's lock, counts the first's and is refused LimitExceeded. Found in
// review: at REPEATABLE READ it counted from the snapshot it took before
// waiting, missed the first's attachment and went over the quota; at
// SERIALIZABLE it was ServiceUnavailable.
func TestQuotaCountedUnderLockOnIsolatedDatabase(t *testing.T) {
	for _, level := range []string{"repeatable read", "serializable"} {
		t.Run(level, func(t *testing.T) {
			ctx := context.Background()
			url := newURL(t)
			isolatedByDefault(t, url, level)
			a, b := open(t, url), open(t, url)
			if err := a.CreateEntity(ctx, &shiftkey.Entity{Kind: shiftkey.KindUser, Name: "u", ID: "AIDAU", Path: "/",
				ARN: "arn:aws:iam::1:user/u", CreatedAt: time.Now()}); err != nil {
				t.Fatal(err)
			}
			arn := func(i int) string { return fmt.Sprintf("arn:aws:iam::1:policy/p%d", i) }
			for i := range shiftkey.MaxAttachedPolicies + 1 {
				if err := a.CreateManagedPolicy(ctx, &shiftkey.ManagedPolicy{ARN: arn(i), Name: fmt.Sprint("p", i),
					ID: fmt.Sprint("ANPAP", i), Path: "/", Document: `{}`, CreatedAt: time.Now(), UpdatedAt: time.Now()}); err != nil {
					t.Fatal(err)
				}
				if i < shiftkey.MaxAttachedPolicies-1 {
					if err := a.AttachPolicy(ctx, shiftkey.KindUser, "u", arn(i)); err != nil {
						t.Fatal(err)
					}
				}
			}
			// A's attachment of the last one the quota allows stops at
			// its insert, the user's row locked, until B's waits for that
			// row.
			last := arn(shiftkey.MaxAttachedPolicies - 1)
			admin := adminConn(t, url)
			if _, err := admin.Exec(ctx, fmt.Sprintf(`CREATE FUNCTION hold() RETURNS trigger LANGUAGE plpgsql AS $$
				BEGIN
					IF NEW.policy_arn = %s THEN PERFORM pg_advisory_xact_lock(79); END IF;
					RETURN NEW;
				END $$;
				CREATE TRIGGER hold BEFORE INSERT ON attachments FOR EACH ROW EXECUTE FUNCTION hold();
				SELECT pg_advisory_lock(79)`, quoteLiteral(last))); err != nil {
				t.Fatal(err)
			}
			var wg sync.WaitGroup
			var aErr, bErr error
			wg.Go(func() { aErr = a.AttachPolicy(ctx, shiftkey.KindUser, "u", last) })
			waitForLockWait(t, admin, `wait_event = 'advisory'`, nil)
			wg.Go(func() { bErr = b.AttachPolicy(ctx, shiftkey.KindUser, "u", arn(shiftkey.MaxAttachedPolicies)) })
			waitForLockWait(t, admin, `query LIKE '%FOR UPDATE%'`, nil)
			if _, err := admin.Exec(ctx, `SELECT pg_advisory_unlock(79)`); err != nil {
				t.Fatal(err)
			}
			wg.Wait()
			if aErr != nil {
				t.Fatalf("A's AttachPolicy: %v", aErr)
			}
			var n int
			if err := admin.QueryRow(ctx, `SELECT count(*) FROM attachments WHERE owner = 'u'`).Scan(&n); err != nil {
				t.Fatal(err)
			}
			got := "success"
			if bErr != nil {
				got = apiCode(bErr)
			}
			if got != shiftkey.CodeLimitExceeded || n != shiftkey.MaxAttachedPolicies {
				t.Errorf("B's AttachPolicy past the quota: %v (answered %s), %d attachments; want LimitExceeded and %d",
					bErr, got, n, shiftkey.MaxAttachedPolicies)
			}
		})
	}
}

// An issue whose batch waited for a rotation (the seal lock) is sealed
// under the key the rotation made current, on a database whose
// transactions are REPEATABLE READ or SERIALIZABLE by default too: the
// batch's insert, a statement after its wait, reads which key is
// current (READ COMMITTED). Found in review: at REPEATABLE READ the batch
// read the key from the snapshot it took before waiting, inserted its
// credential sealed under the key the rotation had just retired and
// forgotten, and acknowledged it: its verifiers could no longer be read.
func TestIssueAfterRotationOnIsolatedDatabase(t *testing.T) {
	for _, level := range []string{"repeatable read", "serializable"} {
		t.Run(level, func(t *testing.T) {
			ctx := context.Background()
			url := newURL(t)
			isolatedByDefault(t, url, level)
			old, oldFile, next, nextFile := twoKeys(t)
			a := open(t, url, postgres.WithKey(old, oldFile))
			if err := a.CreateCredential(ctx, newCredential("ROT0")); err != nil {
				t.Fatal(err)
			}
			admin, watch := adminConn(t, url), adminConn(t, url)
			// Held exclusively, as a rotation holds it: the rotation,
			// then the issue's batch, queue behind it.
			hold, err := admin.Begin(ctx)
			if err != nil {
				t.Fatal(err)
			}
			defer hold.Rollback(ctx)
			if _, err := hold.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, postgres.SealLock); err != nil {
				t.Fatal(err)
			}
			rotated := make(chan error, 1)
			go func() { _, err := postgres.RotateKey(ctx, url, old, next, nextFile); rotated <- err }()
			waitFor(t, 10*time.Second, "the rotation waits for the seal lock", func() bool { return sealLockWaiters(t, watch) == 1 })
			c := newCredential("ROT1")
			issued := make(chan error, 1)
			go func() { issued <- a.CreateCredential(ctx, c) }()
			waitFor(t, 10*time.Second, "the issue's batch waits behind the rotation", func() bool { return sealLockWaiters(t, watch) == 2 })
			if err := hold.Rollback(ctx); err != nil {
				t.Fatal(err)
			}
			if err := <-rotated; err != nil {
				t.Fatalf("rotation: %v", err)
			}
			if err := <-issued; err != nil {
				t.Fatalf("the issue after the rotation: %v", err)
			}
			var digests string
			if err := watch.QueryRow(ctx, `SELECT digests FROM credentials WHERE id = $1`, c.ID).Scan(&digests); err != nil {
				t.Fatal(err)
			}
			if id, err := secretbox.KeyID(digests); err != nil || id != next.ID() {
				t.Errorf("the acknowledged credential is sealed under %q (%v), want the key the rotation made current, %s (the retired one: %s)",
					id, err, next.ID(), old.ID())
			}
		})
	}
}
