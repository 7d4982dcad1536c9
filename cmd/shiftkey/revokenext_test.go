package main

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/redshift"
	"github.com/aws/aws-sdk-go-v2/service/sts"
)

// revokeInChild starts `shiftkey credentials revoke args` as its own
// process on dev's SQLite store, as an operator runs it beside a running
// server. It returns once the store holds what committed reports
// (polled on a connection of this process, as a third process sees the
// file), and wait, which returns once the command has exited.
func revokeInChild(t *testing.T, args string, committed func(*sql.DB) bool) (wait func()) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), mainChildEnv+"=credentials revoke --data-dir "+dev.DataDir+" "+args)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	wait = func() {
		t.Helper()
		if err := <-exited; err != nil {
			t.Fatalf("shiftkey credentials revoke %s: %v\n%s", args, err, out.String())
		}
	}
	// The commit is polled every millisecond: the window this catches is
	// the one between the commit and the command's exit, shorter than the
	// server's poll when the command is not built with -race.
	deadline := time.Now().Add(time.Minute)
	for !committed(storeFile(t)) {
		select {
		case err := <-exited:
			exited <- err
			wait()
			if !committed(storeFile(t)) {
				t.Fatalf("shiftkey credentials revoke %s exited without committing:\n%s", args, out.String())
			}
			return func() {}
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("shiftkey credentials revoke %s: no commit within a minute", args)
		}
		time.Sleep(time.Millisecond)
	}
	return wait
}

var (
	storeOnce sync.Once
	storeDB   *sql.DB
	storeErr  error
)

// storeFile is a connection pool of this process on dev's store file.
func storeFile(t *testing.T) *sql.DB {
	storeOnce.Do(func() {
		storeDB, storeErr = sql.Open("sqlite", "file:"+filepath.Join(dev.DataDir, devStoreName)+"?_pragma=busy_timeout(5000)")
	})
	if storeErr != nil {
		t.Fatal(storeErr)
	}
	return storeDB
}

// exists runs q, a SELECT EXISTS, on db.
func exists(db *sql.DB, q string, args ...any) bool {
	var ok bool
	return db.QueryRow(q, args...).Scan(&ok) == nil && ok
}

// revokeRounds is how many issue/revoke/try rounds the tests below make:
// on the unfixed store the tries right after the commit were let in
// until the server's 200 ms poll noticed it.
const revokeRounds = 20

// Found by hand: on SQLite the server learnt of a revocation that the
// `credentials revoke` command (another process) committed by polling the
// file every 200 ms, so the gateway let the revoked credential log in
// after the command had returned and said it was revoked. The very next
// login once the revocation has committed is refused (28P01), every time,
// with no wait: the command returns after its commit, and a command built
// with -race, as here, takes longer than the poll to exit.
func TestCredentialsRevokeRefusesTheNextLogin(t *testing.T) {
	ctx := context.Background()
	victim := fresh("nextlogin")
	admitted := 0
	for round := range revokeRounds {
		c := getCreds(t, dev, &redshift.GetClusterCredentialsInput{DbUser: aws.String(victim), AutoCreate: aws.Bool(true)})
		// A login first, as a client that holds the credential does: the
		// gateway now answers this login from memory.
		mustConnect(t, dev, c, DevDatabase).Close(ctx)
		wait := revokeInChild(t, "--cluster "+DevCluster+" --login "+c.user, func(db *sql.DB) bool {
			return !exists(db, `SELECT EXISTS (SELECT 1 FROM credentials WHERE cluster = ? AND login_name = ?)`, DevCluster, c.user)
		})
		// Once the revocation has committed, and again once the command
		// has returned.
		for _, when := range []string{"committed", "the command returned"} {
			if when != "committed" {
				wait()
			}
			// From an address of the round's own: the gateway slows down
			// the failures of one address, and would the other tests'.
			conn, err := connectFrom(dev, c, DevDatabase, fmt.Sprintf("127.0.9.%d", round+1))
			if err == nil {
				conn.Close(ctx)
				admitted++
				t.Errorf("round %d: a login after the revocation %s succeeded", round, when)
			} else if sqlState(err) != "28P01" {
				t.Errorf("round %d: the revoked credential's login after the revocation %s failed with %v; want SQLSTATE 28P01", round, when, err)
			}
		}
	}
	if admitted > 0 {
		t.Errorf("%d of %d logins right after a revocation were let in", admitted, 2*revokeRounds)
	}
}

// The same for the STS session a leaked key started: once `credentials
// revoke --access-key` has ended it (committed), the next call signed with
// the session's keys is refused (InvalidClientTokenId, 403), every time.
func TestCredentialsRevokeAccessKeyRefusesTheNextCall(t *testing.T) {
	ctx := context.Background()
	l := newLeak(t, dev.APIURL, DevRegion, devCreds())
	honoured := 0
	for round := range revokeRounds {
		ar, err := sts.New(sts.Options{Region: DevRegion, BaseEndpoint: aws.String(dev.APIURL), Credentials: provider(l.key), Retryer: aws.NopRetryer{}}).
			AssumeRole(ctx, &sts.AssumeRoleInput{RoleArn: aws.String(l.firstRoleARN), RoleSessionName: aws.String("next")})
		if err != nil {
			t.Fatal(err)
		}
		sess := aws.Credentials{AccessKeyID: aws.ToString(ar.Credentials.AccessKeyId), SecretAccessKey: aws.ToString(ar.Credentials.SecretAccessKey),
			SessionToken: aws.ToString(ar.Credentials.SessionToken)}
		// A call first: the server now holds the session in memory.
		if err := issueWith(dev.APIURL, DevRegion, DevCluster, sess); err != nil {
			t.Fatalf("round %d: the session's call before the revoke: %v", round, err)
		}
		wait := revokeInChild(t, "--access-key "+l.key.AccessKeyID, func(db *sql.DB) bool {
			return exists(db, `SELECT EXISTS (SELECT 1 FROM ended_sessions WHERE access_key_id = ?)`, sess.AccessKeyID)
		})
		for _, when := range []string{"committed", "the command returned"} {
			if when != "committed" {
				wait()
			}
			switch err := issueWith(dev.APIURL, DevRegion, DevCluster, sess); {
			case err == nil:
				honoured++
				t.Errorf("round %d: a call signed with the session after its end %s succeeded", round, when)
			case !invalidToken(err):
				t.Errorf("round %d: the ended session's call after its end %s failed with %v; want InvalidClientTokenId (403)", round, when, err)
			}
		}
	}
	if honoured > 0 {
		t.Errorf("%d of %d calls right after a revocation were honoured", honoured, 2*revokeRounds)
	}
}
