package main

import (
	"context"
	"hash/fnv"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/redshift"
	"github.com/jackc/pgx/v5"
)

// shiftkey_session_grants_held counts a session group membership until
// its REVOKE has run: a scrape while the revoke waits (here on the
// membership's lock, held by the test) sees it held, as PostgreSQL still
// has it. It dropped before the REVOKE ran: the gauge said 0 while the
// role was still a member.
func TestGrantsHeldUntilTheRevokeRan(t *testing.T) {
	ctx := context.Background()
	adminExec(t, dev, `DO $$ BEGIN CREATE ROLE ops_reader NOLOGIN; EXCEPTION WHEN duplicate_object THEN NULL; END $$`)
	s := startServe(t, opsYAML(t.TempDir(), ""), opsEnv)
	held := func() float64 {
		fams, _ := scrape(t, s.AdminURL)
		return sample(fams, "shiftkey_session_grants_held", map[string]string{"scope": "opsc"})
	}
	dbUser := fresh("heldrevoke")
	out, err := opsClient(s, opsEnv["OPS_SECRET"]).GetClusterCredentials(ctx, &redshift.GetClusterCredentialsInput{
		ClusterIdentifier: aws.String("opsc"), DbUser: aws.String(dbUser), AutoCreate: aws.Bool(true), DbGroups: []string{"ops_reader"}})
	if err != nil {
		t.Fatal(err)
	}
	conn, err := gatewayConn(ctx, s, aws.ToString(out.DbUser), aws.ToString(out.DbPassword))
	if err != nil {
		t.Fatal(err)
	}
	if n := held(); n != 1 || !member(t, dbUser, "ops_reader") {
		t.Fatalf("during the session: grants held %v, member %v; want 1, true", n, member(t, dbUser, "ops_reader"))
	}
	// The membership's advisory lock (pgbackend.membershipLockKey), in
	// the cluster's database, where the gateway's admin pool takes it.
	h := fnv.New64a()
	h.Write([]byte("shiftkey membership\x00" + dbUser + "\x00ops_reader"))
	key := int64(h.Sum64())
	locker, err := pgx.Connect(ctx, dev.PG.ConnString(dev.PG.Superuser(), DevDatabase))
	if err != nil {
		t.Fatal(err)
	}
	defer locker.Close(ctx)
	if _, err := locker.Exec(ctx, "SELECT pg_advisory_lock($1)", key); err != nil {
		t.Fatal(err)
	}
	conn.Close(ctx)
	waitUntil(t, 10*time.Second, "the revoke waits for the membership's lock", func() bool {
		var n int
		if err := locker.QueryRow(ctx, `SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted
			AND classid = (($1::bigint >> 32) & 4294967295)::oid AND objid = ($1::bigint & 4294967295)::oid`, key).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n > 0
	})
	if n := held(); n != 1 || !member(t, dbUser, "ops_reader") {
		t.Errorf("while the revoke waits: grants held %v, member %v; want 1 while the role is still a member", n, member(t, dbUser, "ops_reader"))
	}
	if _, err := locker.Exec(ctx, "SELECT pg_advisory_unlock($1)", key); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, 10*time.Second, "the group revoked", func() bool { return !member(t, dbUser, "ops_reader") })
	waitUntil(t, 10*time.Second, "grants held back to 0", func() bool { return held() == 0 })
}
