package main

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/redshift"
	"github.com/jackc/pgx/v5"
)

// Found in a failure-injecting review: with a table the issue path reads
// locked by an operator (VACUUM FULL login_salts, an ALTER TABLE), a
// GetClusterCredentials call waited on the lock with no deadline: at the
// API's write timeout the server closed the connection and the client got
// a transport error (EOF), not an AWS error, while the handler went on
// waiting. A request now has a deadline inside the write timeout, and a
// store call cut by it answers ServiceUnavailable (503, retried by the
// SDKs) in time.
func TestSlowStoreReadAnswersServiceUnavailableInTime(t *testing.T) {
	ctx := context.Background()
	storeURL := newStoreDB(t, "slow_")
	const writeTimeout = 4 * time.Second
	r, cfgPath := replicaConfig(t, storeURL, newStoreKey(t), "limits: {api: {write_timeout: 4s}}\n")
	serveInProcess(t, cfgPath)
	rs := r.redshift("CI_KEY", "CI_SECRET")
	issue := func(user string) (*redshift.GetClusterCredentialsOutput, error) {
		return rs.GetClusterCredentials(ctx, &redshift.GetClusterCredentialsInput{ClusterIdentifier: aws.String("shared"),
			DbUser: aws.String(user), AutoCreate: aws.Bool(true)})
	}
	if _, err := issue("warm"); err != nil {
		t.Fatal(err)
	}

	locker, err := pgx.Connect(ctx, storeURL)
	if err != nil {
		t.Fatal(err)
	}
	defer locker.Close(ctx)
	tx, err := locker.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, `LOCK TABLE login_salts IN ACCESS EXCLUSIVE MODE`); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	_, err = issue("newlogin")
	took := time.Since(start)
	tx.Rollback(ctx)
	var re interface{ HTTPStatusCode() int }
	status := 0
	if errors.As(err, &re) {
		status = re.HTTPStatusCode()
	}
	t.Logf("an issue against a locked table: after %v, HTTP %d, code %q: %v", took.Round(time.Millisecond), status, apiCode(err), err)
	if apiCode(err) != "ServiceUnavailable" || status != 503 {
		t.Fatalf("an issue against a locked table got %v (HTTP %d), want ServiceUnavailable (503)", err, status)
	}
	if took > writeTimeout {
		t.Fatalf("answered after %v, beyond the write timeout %v", took, writeTimeout)
	}
	if _, err := issue("newlogin"); err != nil {
		t.Fatalf("an issue once the lock is gone: %v", err)
	}
}
