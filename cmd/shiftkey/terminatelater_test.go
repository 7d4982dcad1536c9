package main

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/redshift"
	"github.com/jackc/pgx/v5"
)

// heardRevoked returns once dev's gateway refuses c as revoked: the server
// has taken in its revocation (a login catches up with the store), as it
// had long before the operator ran the revoke again by hand. Without this
// the two revokes can land before the server's next look at the store,
// which then reads only the second's outcome as one revocation.
func heardRevoked(t *testing.T, c cred) {
	t.Helper()
	conn, err := connectFrom(dev, c, DevDatabase, "127.0.10.1") // an address of its own: refusals slow an address down
	if err == nil {
		conn.Close(context.Background())
	}
	if sqlState(err) != "28P01" {
		t.Fatalf("a login with the revoked credential %s: %v, want SQLSTATE 28P01", c.user, err)
	}
}

// Found in a review: an operator revoked a login's credential while its
// session was open, saw the session stay, and ran the revoke again with
// --terminate. That said "nothing revoked: no credential matches", exited
// 1, and the session kept running: an already-revoked credential's
// sessions could not be ended. Now the second run marks the revocation
// terminate, says so, exits 0 and audits it, and the session ends within
// the bound of a fresh revoke --terminate (dev: SQLite, the CLI's commit
// heard through CatchUp).
func TestCredentialsRevokeThenTerminate(t *testing.T) {
	ctx := context.Background()
	victim, bystander := fresh("termlater"), fresh("termbystander")
	cv := getCreds(t, dev, &redshift.GetClusterCredentialsInput{DbUser: aws.String(victim), AutoCreate: aws.Bool(true)})
	cb := getCreds(t, dev, &redshift.GetClusterCredentialsInput{DbUser: aws.String(bystander), AutoCreate: aws.Bool(true)})
	open := mustConnect(t, dev, cv, DevDatabase)
	other := mustConnect(t, dev, cb, DevDatabase)

	var out bytes.Buffer
	if err := run(ctx, []string{"credentials", "revoke", "--data-dir", dev.DataDir, "--login", cv.user}, &out, &out); err != nil {
		t.Fatalf("revoke: %v\n%s", err, out.String())
	}
	heardRevoked(t, cv)
	// Revoked without --terminate: its session stays (as documented).
	if currentUser(t, open) != victim {
		t.Fatal("the session of a credential revoked without --terminate changed")
	}
	out.Reset()
	err := run(ctx, []string{"credentials", "revoke", "--data-dir", dev.DataDir, "--login", cv.user, "--terminate"}, &out, &out)
	if err != nil || !strings.Contains(out.String(), "1 credentials already revoked, now terminated") {
		t.Fatalf("revoke --terminate of an already-revoked credential: err %v, said:\n%s", err, out.String())
	}
	poll(t, time.Second, "the already-revoked credential's open session ended", func() bool {
		_, err := open.Exec(ctx, "SELECT 1")
		return err != nil
	})
	if currentUser(t, other) != bystander {
		t.Fatal("the bystander's session changed")
	}
	// The second run is audited, with terminate and the credential it
	// terminated.
	var rec map[string]any
	b, _ := os.ReadFile(dev.AuditFile)
	for _, line := range strings.Split(string(b), "\n") {
		var r map[string]any
		if json.Unmarshal([]byte(line), &r) != nil {
			continue
		}
		if params, _ := r["requestParameters"].(map[string]any); r["eventName"] == "RevokeCredentials" && params["loginName"] == cv.user && params["terminate"] == true {
			rec = r
		}
	}
	if rec == nil {
		t.Fatal("no audit record of the revoke --terminate")
	}
	resp, _ := rec["responseElements"].(map[string]any)
	term, _ := resp["terminated"].([]any)
	if len(term) != 1 || term[0].(map[string]any)["loginName"] != cv.user || resp["terminatedCount"] != float64(1) {
		t.Fatalf("audit record of the revoke --terminate: %v", rec)
	}
	// A third run matches nothing new: exit 1, as before.
	out.Reset()
	if err := run(ctx, []string{"credentials", "revoke", "--data-dir", dev.DataDir, "--login", cv.user, "--terminate"}, &out, &out); err == nil {
		t.Fatalf("a third revoke --terminate exited 0:\n%s", out.String())
	}
}

// The same on serve over a PostgreSQL store: the second run's update of
// the revocation reaches the replica through its change feed, and the
// session there ends within the bound of a fresh revoke --terminate.
func TestCredentialsRevokeThenTerminateOnPostgres(t *testing.T) {
	ctx := context.Background()
	storeURL := newStoreDB(t, "termlater_")
	b, cfgPath := replicaConfig(t, storeURL, newStoreKey(t), "")
	serveInProcess(t, cfgPath)
	out, err := b.redshift("CI_KEY", "CI_SECRET").GetClusterCredentials(ctx, &redshift.GetClusterCredentialsInput{
		ClusterIdentifier: aws.String("shared"), DbUser: aws.String("ci"), AutoCreate: aws.Bool(true)})
	if err != nil {
		t.Fatal(err)
	}
	login := aws.ToString(out.DbUser)
	onB, err := b.connect(ctx, login, aws.ToString(out.DbPassword))
	if err != nil {
		t.Fatal(err)
	}
	defer onB.Close(ctx)
	var cli bytes.Buffer
	if err := run(ctx, []string{"credentials", "revoke", "--config", cfgPath, "--cluster", "shared", "--login", login}, &cli, &cli); err != nil {
		t.Fatalf("revoke: %v\n%s", err, cli.String())
	}
	// B has heard of it (its feed dropped the login it cached).
	poll(t, time.Second, "the revoked credential is refused on B", func() bool {
		c, err := b.connect(ctx, login, aws.ToString(out.DbPassword))
		if err == nil {
			c.Close(ctx)
		}
		return sqlState(err) == "28P01"
	})
	if _, err := onB.Exec(ctx, "SELECT 1"); err != nil {
		t.Fatalf("the session of a credential revoked without --terminate: %v", err)
	}
	cli.Reset()
	err = run(ctx, []string{"credentials", "revoke", "--config", cfgPath, "--cluster", "shared", "--login", login, "--terminate"}, &cli, &cli)
	if err != nil || !strings.Contains(cli.String(), "1 credentials already revoked, now terminated") {
		t.Fatalf("revoke --terminate of an already-revoked credential: err %v, said:\n%s", err, cli.String())
	}
	poll(t, time.Second, "the already-revoked credential's session on B ended", func() bool {
		_, err := onB.Exec(ctx, "SELECT 1")
		return err != nil
	})
}

// By access key: a leaked key's credentials (its own call's and its STS
// session's) revoked without --terminate, then with it: both sessions
// end; a credential another key of the same user obtained keeps its
// session. The key is kept with each revocation to select them by.
func TestCredentialsRevokeAccessKeyThenTerminate(t *testing.T) {
	ctx := context.Background()
	l := newLeak(t, dev.APIURL, DevRegion, devCreds())
	issue := func(c aws.Credentials, dbUser string) cred {
		out, err := redshift.New(redshift.Options{Region: DevRegion, BaseEndpoint: aws.String(dev.APIURL), Credentials: provider(c), Retryer: aws.NopRetryer{}}).
			GetClusterCredentials(ctx, &redshift.GetClusterCredentialsInput{ClusterIdentifier: aws.String(DevCluster), DbUser: aws.String(dbUser), AutoCreate: aws.Bool(true)})
		if err != nil {
			t.Fatal(err)
		}
		return cred{aws.ToString(out.DbUser), aws.ToString(out.DbPassword)}
	}
	direct, viaSession, other := issue(l.key, fresh("akdirect")), issue(l.first, fresh("aksession")), issue(l.other, fresh("akother"))
	onDirect, onSession, onOther := mustConnect(t, dev, direct, DevDatabase), mustConnect(t, dev, viaSession, DevDatabase), mustConnect(t, dev, other, DevDatabase)
	var out bytes.Buffer
	if err := run(ctx, []string{"credentials", "revoke", "--data-dir", dev.DataDir, "--access-key", l.key.AccessKeyID}, &out, &out); err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	heardRevoked(t, direct)
	out.Reset()
	err := run(ctx, []string{"credentials", "revoke", "--data-dir", dev.DataDir, "--access-key", l.key.AccessKeyID, "--terminate"}, &out, &out)
	if err != nil || !strings.Contains(out.String(), "2 credentials already revoked, now terminated") {
		t.Fatalf("revoke --access-key --terminate after revoke --access-key: err %v, said:\n%s", err, out.String())
	}
	for name, c := range map[string]*pgx.Conn{"the key's credential's session": onDirect, "its STS session's credential's session": onSession} {
		poll(t, time.Second, name+" ended", func() bool {
			_, err := c.Exec(ctx, "SELECT 1")
			return err != nil
		})
	}
	if _, err := onOther.Exec(ctx, "SELECT 1"); err != nil {
		t.Fatalf("the session of another key's credential ended: %v", err)
	}
}

// The same with both revokes run as processes of their own beside dev, as
// an operator runs them: the server hears the second one's update of the
// revocation through CatchUp, and the session ends within a second of the
// command's return.
func TestCredentialsRevokeThenTerminateInAnotherProcess(t *testing.T) {
	ctx := context.Background()
	c := getCreds(t, dev, &redshift.GetClusterCredentialsInput{DbUser: aws.String(fresh("termchild")), AutoCreate: aws.Bool(true)})
	open := mustConnect(t, dev, c, DevDatabase)
	revokeInChild(t, "--login "+c.user, func(db *sql.DB) bool {
		return exists(db, `SELECT EXISTS (SELECT 1 FROM credential_revocations WHERE login_name = ?)`, c.user)
	})()
	heardRevoked(t, c)
	if _, err := open.Exec(ctx, "SELECT 1"); err != nil {
		t.Fatalf("the session of a credential revoked without --terminate: %v", err)
	}
	revokeInChild(t, "--login "+c.user+" --terminate", func(db *sql.DB) bool {
		return exists(db, `SELECT EXISTS (SELECT 1 FROM credential_revocations WHERE login_name = ? AND terminate)`, c.user)
	})()
	poll(t, time.Second, "the already-revoked credential's open session ended", func() bool {
		_, err := open.Exec(ctx, "SELECT 1")
		return err != nil
	})
}
