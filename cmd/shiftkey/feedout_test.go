package main

import (
	"context"
	"io"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/redshift"
	"github.com/jackc/pgx/v5"
	"github.com/shiftkey/shiftkey"
	"github.com/shiftkey/shiftkey/revocation"
)

// A replica whose change feed is out (its LISTEN connection cut, and no
// new connection to the store let in, as with the server's slots used
// up) still ends, within a second, the session of a credential another
// store client revokes with --terminate: it cannot hear of the
// revocation, so while its feed is not current it asks the store.
func TestRevokeTerminatesOnAReplicaWhoseFeedIsOut(t *testing.T) {
	ctx := context.Background()
	storeURL := newStoreDB(t, "feedout_")
	// B's checks of the store (revoked sessions, group cuts) run at once
	// while its feed is out, on connections its pool opened before new
	// ones were refused: a pool that keeps a few open, so that this holds
	// however many the calls before happened to open (applying the
	// config's identities, in one transaction, opens one fewer).
	b, cfgPath := replicaConfig(t, storeURL+" pool_min_conns=4", newStoreKey(t), "")
	serveInProcess(t, cfgPath)
	// The revoking client (as `shiftkey credentials revoke` opens it),
	// opened while connections are still let in.
	revoker, err := openToolStore(ctx, cfgPath, "")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { revoker.Close() })

	out, err := b.redshift("CI_KEY", "CI_SECRET").GetClusterCredentials(ctx, &redshift.GetClusterCredentialsInput{
		ClusterIdentifier: aws.String("shared"), DbUser: aws.String("ci"), AutoCreate: aws.Bool(true)})
	if err != nil {
		t.Fatal(err)
	}
	onB, err := b.connect(ctx, aws.ToString(out.DbUser), aws.ToString(out.DbPassword))
	if err != nil {
		t.Fatal(err)
	}
	defer onB.Close(ctx)

	// Cut the store's LISTEN connections; let no new connection in.
	storeCfg, err := pgx.ParseConfig(storeURL)
	if err != nil {
		t.Fatal(err)
	}
	name := storeCfg.Database
	storeCfg.Database = "postgres"
	admin, err := pgx.ConnectConfig(ctx, storeCfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		admin.Exec(ctx, `ALTER DATABASE `+pgx.Identifier{name}.Sanitize()+` ALLOW_CONNECTIONS true`)
		admin.Close(ctx)
	})
	poll(t, 5*time.Second, "B's and the revoker's pools hold their 4 connections", func() bool {
		var n int
		if err := admin.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity WHERE datname = $1 AND query NOT LIKE 'LISTEN %'`, name).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n >= 8
	})
	if _, err := admin.Exec(ctx, `ALTER DATABASE `+pgx.Identifier{name}.Sanitize()+` ALLOW_CONNECTIONS false`); err != nil {
		t.Fatal(err)
	}
	if _, err := admin.Exec(ctx, `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE query LIKE 'LISTEN %' AND datname = $1`, name); err != nil {
		t.Fatal(err)
	}
	poll(t, 5*time.Second, "the LISTEN connections are gone", func() bool {
		var n int
		if err := admin.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity WHERE query LIKE 'LISTEN %' AND datname = $1`, name).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n == 0
	})

	if _, err := revocation.Revoke(ctx, revoker, shiftkey.CredentialFilter{Scope: "shared", LoginName: aws.ToString(out.DbUser)}, time.Now(), true, io.Discard); err != nil {
		t.Fatal(err)
	}
	took := poll(t, time.Second, "the revoked credential's session on B ended", func() bool {
		_, err := onB.Exec(ctx, "SELECT 1")
		return err != nil
	})
	t.Logf("session ended %v after the revocation", took)
}
