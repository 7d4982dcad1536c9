package http_test

import (
	"context"
	"database/sql"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/shiftkey/shiftkey"
)

// While another process holds the SQLite store's write lock past its
// busy_timeout (an operator's sqlite3 shell in a transaction, a long
// `credentials revoke`), a write outside the issue path (an IAM change, a
// revocation) did not record in time: ServiceUnavailable (503), which the
// SDKs retry, as an issue's write answers, not InternalFailure (500).
func TestWritesWhileAnotherProcessHoldsTheWriteLockAreServiceUnavailable(t *testing.T) {
	if testing.Short() {
		t.Skip("waits out SQLite's busy_timeout (10 s)")
	}
	f := newFixture(t)
	ctx := context.Background()
	raw, err := sql.Open("sqlite", "file:"+f.path)
	mustOK(t, "open", err)
	defer raw.Close()
	conn, err := raw.Conn(ctx)
	mustOK(t, "conn", err)
	defer conn.Close()
	_, err = conn.ExecContext(ctx, "BEGIN IMMEDIATE")
	mustOK(t, "BEGIN IMMEDIATE", err)

	var iamErr, revokeErr error
	var wg sync.WaitGroup
	wg.Go(func() {
		_, iamErr = f.iamClient(f.keys["admin"]).CreateUser(ctx, &iam.CreateUserInput{UserName: aws.String("while-locked")})
	})
	wg.Go(func() {
		_, revokeErr = f.store.RevokeCredentials(ctx, shiftkey.CredentialFilter{Scope: "dev-cluster"}, time.Now(), false)
	})
	wg.Wait()
	_, err = conn.ExecContext(ctx, "ROLLBACK")
	mustOK(t, "ROLLBACK", err)

	if apiCode(iamErr) != shiftkey.CodeServiceUnavailable || httpStatus(iamErr) != 503 {
		t.Errorf("CreateUser while another process held the write lock: %v (status %d), want ServiceUnavailable (503)", iamErr, httpStatus(iamErr))
	}
	if !errors.Is(revokeErr, shiftkey.ErrStoreUnavailable) {
		t.Errorf("RevokeCredentials while another process held the write lock: %v, want the store unavailable", revokeErr)
	}
	_, err = f.iamClient(f.keys["admin"]).CreateUser(ctx, &iam.CreateUserInput{UserName: aws.String("while-locked")})
	mustOK(t, "CreateUser once the lock is gone", err)
}
