package main

import (
	"context"
	"database/sql"
	"errors"
	"path/filepath"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/redshift"
	"github.com/jackc/pgx/v5"
)

// Found in review-gcommit: while another process held the SQLite store's
// write lock past its busy_timeout (10 s: an operator's sqlite3 shell in a
// transaction, a long `credentials revoke`), GetClusterCredentials failed
// with InternalFailure (500, logged as an internal error), where the docs
// promise ServiceUnavailable (503) for a store that did not record the
// write in time. It now answers ServiceUnavailable, and once the lock is
// gone the next call issues a credential that logs in.
func TestServeSQLiteWriteLockHeldAnswersServiceUnavailable(t *testing.T) {
	if testing.Short() {
		t.Skip("waits out SQLite's busy_timeout (10 s)")
	}
	ctx := context.Background()
	dbPath := filepath.Join(t.TempDir(), "serve.db")
	env := map[string]string{"TEST_KEY_ID": "AKIALOCKEDSTORE00001", "TEST_SECRET": "locked-store-secret-0123456789"}
	s := startServe(t, "store: {sqlite: "+dbPath+"}\napi: {listen: \"127.0.0.1:0\"}\n"+
		declaredClusterYAML("locked", `"redshift:GetClusterCredentials","redshift:CreateClusterUser"`), env)
	rs := redshift.New(redshift.Options{Region: "us-east-1", BaseEndpoint: aws.String(s.APIURL), Retryer: aws.NopRetryer{},
		Credentials: provider(aws.Credentials{AccessKeyID: env["TEST_KEY_ID"], SecretAccessKey: env["TEST_SECRET"]})})
	in := &redshift.GetClusterCredentialsInput{ClusterIdentifier: aws.String("locked"), DbUser: aws.String(fresh("lock_user")), AutoCreate: aws.Bool(true)}

	// Another process's transaction holds the write lock.
	raw, err := sql.Open("sqlite", "file:"+dbPath)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	conn, err := raw.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, "BEGIN IMMEDIATE"); err != nil {
		t.Fatal(err)
	}
	_, err = rs.GetClusterCredentials(ctx, in)
	if _, rerr := conn.ExecContext(ctx, "ROLLBACK"); rerr != nil {
		t.Fatal(rerr)
	}
	var re *awshttp.ResponseError
	if !isCode(err, "ServiceUnavailable") || !errors.As(err, &re) || re.HTTPStatusCode() != 503 {
		t.Fatalf("GetClusterCredentials while another process held the store's write lock: %v, want ServiceUnavailable (503)", err)
	}

	out, err := rs.GetClusterCredentials(ctx, in)
	if err != nil {
		t.Fatalf("once the lock is gone: %v", err)
	}
	cl, err := s.Store.Cluster(ctx, "locked")
	if err != nil {
		t.Fatal(err)
	}
	c, err := pgx.Connect(ctx, "host="+cl.Endpoint.Address+" port="+itoa(cl.Endpoint.Port)+" dbname=dev sslmode=disable user="+
		aws.ToString(out.DbUser)+" password="+aws.ToString(out.DbPassword))
	if err != nil {
		t.Fatalf("the credential issued once the lock was gone does not log in: %v", err)
	}
	c.Close(ctx)
}
