package main

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/redshift"
	"github.com/jackc/pgx/v5"
	"github.com/shiftkey/shiftkey"
	"github.com/shiftkey/shiftkey/audit"
)

// A group that turns unsafe is revoked from the role by the replica that
// looks (A: a new session asking for it), and A ends its own sessions of
// the role; but B, none of whose sessions asked for the group, never
// looked, and its session of the role that had run SET ROLE g before the
// REVOKE went on acting as g. Now A's revoke reaches B through the store's
// change feed, and B ends the role's sessions within a second, with the
// same FATAL and audit reason as A's; a session of another role on B goes
// on.
func TestAGroupThatTurnedUnsafeEndsTheRolesSessionsOnEveryReplica(t *testing.T) {
	ctx := context.Background()
	group, user, bystander := fresh("xunsafe_grp"), fresh("xunsafe_user"), fresh("xunsafe_other")
	groupToTurnUnsafe(t, group)

	dir := t.TempDir()
	reps, _, _ := servedReplicasWith(t, func(name string) string {
		return "audit: {file: " + filepath.Join(dir, name+"-audit.log") + "}\n"
	}, "a", "b")
	a, b := reps[0], reps[1]

	issue := func(dbUser string, groups ...string) *redshift.GetClusterCredentialsOutput {
		t.Helper()
		out, err := a.redshift("CI_KEY", "CI_SECRET").GetClusterCredentials(ctx, &redshift.GetClusterCredentialsInput{
			ClusterIdentifier: aws.String("shared"), DbUser: aws.String(dbUser), AutoCreate: aws.Bool(true), DbGroups: groups})
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	login := func(r *replica, c *redshift.GetClusterCredentialsOutput) *pgx.Conn {
		t.Helper()
		conn, err := r.connect(ctx, aws.ToString(c.DbUser), aws.ToString(c.DbPassword))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { conn.Close(ctx) })
		return conn
	}
	withGroup, plain := issue(user, group), issue(user)

	onA := login(a, withGroup)
	if !member(t, user, group) {
		t.Fatalf("%s was not granted %s for its session on A", user, group)
	}
	// B's session of the role never asked for the group, but the
	// membership is the role's: it may act as the group.
	onB := login(b, plain)
	if _, err := onB.Exec(ctx, "SET ROLE "+group); err != nil {
		t.Fatalf("SET ROLE %s in the role's session on B: %v", group, err)
	}
	other := login(b, issue(bystander))

	revokedAt := revokedAsUnsafe(t, user, group, "a new session on A", func() (*pgx.Conn, error) {
		return a.connect(ctx, aws.ToString(withGroup.DbUser), aws.ToString(withGroup.DbPassword))
	})
	// A ends its own session of the role (as before).
	if _, err := onA.Exec(ctx, "SELECT 1"); sqlState(err) != "57P01" {
		t.Fatalf("the role's session on A after A's revoke: %v, want 57P01", err)
	}

	// B hears of it within a second and ends its session of the role.
	endedAsUnsafe(t, onB, user, group, revokedAt, "B's session of the role that ran SET ROLE "+group)
	t.Logf("B's session of the role ended %v after A's revoke", time.Since(revokedAt).Round(time.Millisecond))
	if _, err := other.Exec(ctx, "SELECT 1"); err != nil {
		t.Fatalf("another role's session on B was ended: %v", err)
	}

	// B's audit record of the end says why.
	poll(t, 5*time.Second, "B's audit log records the end as group_unsafe", func() bool {
		records, _ := auditRecords(t, filepath.Join(dir, "b-audit.log"))
		for _, r := range records {
			if r.EventName == audit.EventSessionEnd && r.ResponseElements["dbUser"] == user &&
				r.AdditionalEventData["endReason"] == shiftkey.EndGroupUnsafe {
				return true
			}
		}
		return false
	})
}

// groupToTurnUnsafe creates group, a plain group role, on dev's server, and
// takes back, when the test ends, the CREATE on schema public that
// revokedAsUnsafe gives it.
func groupToTurnUnsafe(t *testing.T, group string) {
	t.Helper()
	adminExec(t, dev, "DO $$ BEGIN CREATE ROLE "+group+" NOLOGIN; EXCEPTION WHEN duplicate_object THEN NULL; END $$")
	t.Cleanup(func() {
		ctx := context.Background()
		conn, err := pgx.Connect(ctx, dev.PG.ConnString(dev.PG.Superuser(), DevDatabase))
		if err != nil {
			return
		}
		defer conn.Close(ctx)
		conn.Exec(ctx, "REVOKE CREATE ON SCHEMA public FROM "+group)
	})
}

// revokedAsUnsafe gives group CREATE on schema public, which makes it
// unsafe, and logs in with connect (a credential asking for the group)
// until a login finds it so and revokes it from user: once the verdict and
// catalogs the gateway reuses (5 s) are read again; until then a login
// shares the membership, and leaves. It returns the instant before the
// login that revoked it. who names the logins in a failure.
func revokedAsUnsafe(t *testing.T, user, group, who string, connect func() (*pgx.Conn, error)) time.Time {
	t.Helper()
	adminExec(t, dev, "GRANT CREATE ON SCHEMA public TO "+group)
	var revokedAt time.Time
	poll(t, 20*time.Second, who+" revoked the group that may now create in a schema", func() bool {
		// The revoke, if this login makes it, comes after this instant.
		before := time.Now()
		c, err := connect()
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close(context.Background())
		if member(t, user, group) {
			time.Sleep(200 * time.Millisecond)
			return false
		}
		revokedAt = before
		return true
	})
	return revokedAt
}

// endedAsUnsafe waits until a second after revokedAt for conn's session
// (what) to end, and fails the test unless it ended with the FATAL 57P01
// that names group of user as turned unsafe, and why.
func endedAsUnsafe(t *testing.T, conn *pgx.Conn, user, group string, revokedAt time.Time, what string) {
	t.Helper()
	wantMsg := fmt.Sprintf("group %q of role %q turned unsafe (", group, user)
	var endErr error
	poll(t, time.Second+time.Since(revokedAt), what+" ended", func() bool {
		_, endErr = conn.Exec(context.Background(), "SELECT 1")
		return endErr != nil
	})
	if sqlState(endErr) != "57P01" || !strings.Contains(endErr.Error(), wantMsg) || !strings.Contains(endErr.Error(), "create in a schema") {
		t.Fatalf("%s ended with %v, want 57P01 %q naming why", what, endErr, wantMsg)
	}
}
