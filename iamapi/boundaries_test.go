package iamapi_test

import (
	"context"
	"testing"
	"time"

	"github.com/shiftkey/shiftkey"
)

// A managed policy the config file no longer declares is kept, with a
// warning, while it is the permissions boundary of a user or role set
// through the API, as while it is attached to one: deleting it would be
// refused (DeleteConflict), and reconciling must not fail the whole
// config (a start or a reload) on it.
func TestReconcileKeepsAPolicyThatIsABoundary(t *testing.T) {
	ctx := context.Background()
	st := newStore(t)
	reconcile(t, st, base())
	const spare = "arn:aws:iam::000000000000:policy/spare"
	if err := st.CreateEntity(ctx, &shiftkey.Entity{Kind: shiftkey.KindUser, Name: "bounded", ID: shiftkey.NewID("AIDA"), Path: "/",
		ARN: "arn:aws:iam::000000000000:user/bounded", CreatedAt: time.Now(), PermissionsBoundary: spare}); err != nil {
		t.Fatal(err)
	}
	d := base()
	d.Policies = d.Policies[:1] // spare no longer declared
	changes := reconcile(t, st, d)
	if !hasChange(changes, "policy kept: a permissions boundary of identities the file does not declare", "spare", spare) {
		t.Errorf("changes %v, want spare kept with a warning", changes)
	}
	if _, err := st.ManagedPolicy(ctx, spare); err != nil {
		t.Fatalf("spare after reconcile: %v, want kept", err)
	}
	// Once the boundary is gone, the next reconcile deletes it.
	if err := st.SetPermissionsBoundary(ctx, shiftkey.KindUser, "bounded", ""); err != nil {
		t.Fatal(err)
	}
	if changes := reconcile(t, st, d); !hasChange(changes, "policy deleted", "spare", spare) {
		t.Errorf("changes %v, want spare deleted", changes)
	}
}
