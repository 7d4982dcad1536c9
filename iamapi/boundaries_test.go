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

// The config file declares boundaries (permissions_boundary, a declared
// policy): Reconcile sets them on the declared users and roles, changes
// and removes them as the file does, and one set through the API on a
// declared identity is the file's again at the next reconcile.
func TestReconcileDeclaresBoundaries(t *testing.T) {
	ctx := context.Background()
	st := newStore(t)
	const mp, spare = "arn:aws:iam::000000000000:policy/mp", "arn:aws:iam::000000000000:policy/spare"
	boundaryOf := func(kind shiftkey.EntityKind, name string) string {
		t.Helper()
		e, err := st.Entity(ctx, kind, name)
		if err != nil {
			t.Fatal(err)
		}
		return e.PermissionsBoundary
	}
	d := base()
	user(&d, "ci").PermissionsBoundary = "SPARE" // names match regardless of case, as IAM's
	d.Roles[0].PermissionsBoundary = "mp"
	changes := reconcile(t, st, d)
	if boundaryOf(shiftkey.KindUser, "ci") != spare || boundaryOf(shiftkey.KindRole, "etl") != mp ||
		!hasChange(changes, "permissions boundary set", "ci", spare) || !hasChange(changes, "permissions boundary set", "etl", mp) {
		t.Fatalf("after the first reconcile: ci %q, etl %q; changes %v", boundaryOf(shiftkey.KindUser, "ci"), boundaryOf(shiftkey.KindRole, "etl"), changes)
	}
	if changes := reconcile(t, st, d); len(changes) != 0 {
		t.Fatalf("a reconcile that changes nothing: %v", changes)
	}
	// Through the API: a declared user's boundary changed, the role's removed.
	if err := st.SetPermissionsBoundary(ctx, shiftkey.KindUser, "ci", mp); err != nil {
		t.Fatal(err)
	}
	if err := st.SetPermissionsBoundary(ctx, shiftkey.KindRole, "etl", ""); err != nil {
		t.Fatal(err)
	}
	reconcile(t, st, d)
	if boundaryOf(shiftkey.KindUser, "ci") != spare || boundaryOf(shiftkey.KindRole, "etl") != mp {
		t.Fatalf("after the API changed them: ci %q, etl %q, want the file's", boundaryOf(shiftkey.KindUser, "ci"), boundaryOf(shiftkey.KindRole, "etl"))
	}
	// The file drops ci's boundary and the spare policy: the boundary goes
	// first, so the policy can.
	d.Policies = d.Policies[:1]
	user(&d, "ci").PermissionsBoundary = ""
	changes = reconcile(t, st, d)
	if boundaryOf(shiftkey.KindUser, "ci") != "" || !hasChange(changes, "permissions boundary removed", "ci", "") || !hasChange(changes, "policy deleted", "spare", spare) {
		t.Fatalf("after the file dropped ci's boundary and its policy: ci %q; changes %v", boundaryOf(shiftkey.KindUser, "ci"), changes)
	}
}
