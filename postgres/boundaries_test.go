package postgres_test

import (
	"context"
	"testing"

	"github.com/shiftkey/shiftkey"
	"github.com/shiftkey/shiftkey/iamapi"
)

// The config's permissions boundaries, applied in one Declaring
// transaction on PostgreSQL: set on the declared user, then removed with
// the policy that was the boundary (the boundary first, in the same
// transaction, so the delete is not refused).
func TestDeclaredBoundaries(t *testing.T) {
	ctx := context.Background()
	db := open(t, newURL(t))
	const doc = `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"redshift:*","Resource":"*"}]}`
	const arn = "arn:aws:iam::000000000000:policy/cap"
	apply := func(d iamapi.Declared) iamapi.Changes {
		t.Helper()
		var changes iamapi.Changes
		if err := db.Declaring(ctx, func(ctx context.Context) (err error) {
			changes, err = iamapi.Reconcile(ctx, db, d)
			return err
		}); err != nil {
			t.Fatalf("Reconcile: %v (after %v)", err, changes)
		}
		return changes
	}
	d := iamapi.Declared{AccountID: "000000000000", Policies: []iamapi.DeclaredPolicy{{Name: "cap", Document: doc}},
		Users: []iamapi.DeclaredUser{{Name: "u", PermissionsBoundary: "cap"}}}
	apply(d)
	if e, err := db.Entity(ctx, shiftkey.KindUser, "u"); err != nil || e.PermissionsBoundary != arn {
		t.Fatalf("declared user: %+v, %v, want boundary %s", e, err, arn)
	}
	d.Policies, d.Users[0].PermissionsBoundary = nil, ""
	apply(d)
	if e, err := db.Entity(ctx, shiftkey.KindUser, "u"); err != nil || e.PermissionsBoundary != "" {
		t.Fatalf("declared user after the file dropped its boundary: %+v, %v", e, err)
	}
	if _, err := db.ManagedPolicy(ctx, arn); shiftkey.ErrorCode(err) != shiftkey.CodeNoSuchEntity {
		t.Fatalf("the policy no longer declared: %v, want deleted", err)
	}
}
