package storetest

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/shiftkey/shiftkey"
)

// testPermissionsBoundaries: a user's or role's boundary is kept with it,
// read back by every read of the entity, listed by BoundaryEntities; a
// boundary must be a managed policy that exists, and a policy that is a
// boundary cannot be deleted (DeleteConflict); deleting the entity frees
// it.
func testPermissionsBoundaries(t *testing.T, s shiftkey.Store) {
	ctx := context.Background()
	const arn, missing = "arn:aws:iam::1:policy/boundary", "arn:aws:iam::1:policy/missing"
	if err := s.CreateManagedPolicy(ctx, &shiftkey.ManagedPolicy{ARN: arn, Name: "boundary", ID: "ANPABOUNDARY", Path: "/", Document: `{}`,
		CreatedAt: t0, UpdatedAt: t0}); err != nil {
		t.Fatal(err)
	}
	user := &shiftkey.Entity{Kind: shiftkey.KindUser, Name: "bo", ID: "AIDABO", Path: "/", ARN: "arn:aws:iam::1:user/bo", CreatedAt: t0, PermissionsBoundary: arn}
	if err := s.CreateEntity(ctx, user); err != nil {
		t.Fatalf("CreateEntity with a boundary: %v", err)
	}
	role := &shiftkey.Entity{Kind: shiftkey.KindRole, Name: "Bo", ID: "AROABO", Path: "/", ARN: "arn:aws:iam::1:role/Bo", CreatedAt: t0, AssumeRolePolicy: `{}`}
	if err := s.CreateEntity(ctx, role); err != nil {
		t.Fatal(err)
	}
	bad := &shiftkey.Entity{Kind: shiftkey.KindRole, Name: "Nope", ID: "AROANOPE", Path: "/", ARN: "arn:aws:iam::1:role/Nope", CreatedAt: t0, PermissionsBoundary: missing}
	if err := s.CreateEntity(ctx, bad); shiftkey.ErrorCode(err) != shiftkey.CodeNoSuchEntity {
		t.Fatalf("CreateEntity with a missing boundary: %v, want NoSuchEntity", err)
	}
	if _, err := s.Entity(ctx, shiftkey.KindRole, "Nope"); shiftkey.ErrorCode(err) != shiftkey.CodeNoSuchEntity {
		t.Fatalf("the role refused for its boundary: %v, want NoSuchEntity (nothing written)", err)
	}
	boundaryOf := func(kind shiftkey.EntityKind, name string) string {
		t.Helper()
		e, err := s.Entity(ctx, kind, name)
		if err != nil {
			t.Fatal(err)
		}
		return e.PermissionsBoundary
	}
	if got := boundaryOf(shiftkey.KindUser, "BO"); got != arn {
		t.Fatalf("the user's boundary: %q, want %q", got, arn)
	}
	if got := boundaryOf(shiftkey.KindRole, "Bo"); got != "" {
		t.Fatalf("the role's boundary: %q, want none", got)
	}
	if err := s.SetPermissionsBoundary(ctx, shiftkey.KindRole, "bo", arn); err != nil { // any case, as IAM's names
		t.Fatalf("SetPermissionsBoundary: %v", err)
	}
	if err := s.SetPermissionsBoundary(ctx, shiftkey.KindRole, "Bo", missing); shiftkey.ErrorCode(err) != shiftkey.CodeNoSuchEntity {
		t.Fatalf("SetPermissionsBoundary to a missing policy: %v, want NoSuchEntity", err)
	}
	if got := boundaryOf(shiftkey.KindRole, "Bo"); got != arn {
		t.Fatalf("the role's boundary after a refused change: %q, want %q kept", got, arn)
	}
	if err := s.SetPermissionsBoundary(ctx, shiftkey.KindRole, "Nobody", arn); shiftkey.ErrorCode(err) != shiftkey.CodeNoSuchEntity {
		t.Fatalf("SetPermissionsBoundary of a missing role: %v, want NoSuchEntity", err)
	}
	list := func() string {
		t.Helper()
		es, err := s.BoundaryEntities(ctx, arn)
		if err != nil {
			t.Fatal(err)
		}
		out := ""
		for _, e := range es {
			out += fmt.Sprintf("%s/%s ", e.Kind, e.Name)
		}
		return out
	}
	if got := list(); got != "role/Bo user/bo " {
		t.Fatalf("BoundaryEntities: %q", got)
	}
	if es, _ := s.Entities(ctx, shiftkey.KindUser, "/"); len(es) != 1 || es[0].PermissionsBoundary != arn {
		t.Fatalf("Entities: the user's boundary is not read: %+v", es)
	}
	if err := s.DeleteManagedPolicy(ctx, arn); shiftkey.ErrorCode(err) != "DeleteConflict" {
		t.Fatalf("DeleteManagedPolicy of a boundary in use: %v, want DeleteConflict", err)
	}
	if err := s.SetPermissionsBoundary(ctx, shiftkey.KindRole, "Bo", ""); err != nil {
		t.Fatal(err)
	}
	if got := boundaryOf(shiftkey.KindRole, "Bo"); got != "" {
		t.Fatalf("the role's boundary once removed: %q", got)
	}
	if err := s.DeleteEntity(ctx, shiftkey.KindUser, "bo"); err != nil {
		t.Fatal(err)
	}
	if got := list(); got != "" {
		t.Fatalf("BoundaryEntities once none has it: %q", got)
	}
	if err := s.DeleteManagedPolicy(ctx, arn); err != nil {
		t.Fatalf("DeleteManagedPolicy of a boundary no longer used: %v", err)
	}
}

// testBoundaryRacingDelete: a boundary set while its policy is deleted
// (on another connection, or replica) either fails (the policy is gone)
// or makes the delete fail; never both succeed, which would leave an
// entity bounded by a policy that is not there.
func testBoundaryRacingDelete(t *testing.T, s shiftkey.Store) {
	ctx := context.Background()
	for i := range 20 {
		arn := fmt.Sprintf("arn:aws:iam::1:policy/race%d", i)
		if err := s.CreateManagedPolicy(ctx, &shiftkey.ManagedPolicy{ARN: arn, Name: fmt.Sprintf("race%d", i), ID: fmt.Sprintf("ANPARACE%d", i), Path: "/",
			Document: `{}`, CreatedAt: t0, UpdatedAt: t0}); err != nil {
			t.Fatal(err)
		}
		name := fmt.Sprintf("racer%d", i)
		if err := s.CreateEntity(ctx, &shiftkey.Entity{Kind: shiftkey.KindUser, Name: name, ID: fmt.Sprintf("AIDARACER%d", i), Path: "/",
			ARN: "arn:aws:iam::1:user/" + name, CreatedAt: t0}); err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		var setErr, delErr error
		wg.Add(2)
		go func() { defer wg.Done(); setErr = s.SetPermissionsBoundary(ctx, shiftkey.KindUser, name, arn) }()
		go func() { defer wg.Done(); delErr = s.DeleteManagedPolicy(ctx, arn) }()
		wg.Wait()
		switch {
		case setErr == nil && delErr == nil:
			t.Fatalf("round %d: the boundary was set and its policy deleted", i)
		case setErr != nil && shiftkey.ErrorCode(setErr) != shiftkey.CodeNoSuchEntity:
			t.Fatalf("round %d: SetPermissionsBoundary: %v", i, setErr)
		case delErr != nil && shiftkey.ErrorCode(delErr) != "DeleteConflict":
			t.Fatalf("round %d: DeleteManagedPolicy: %v", i, delErr)
		}
	}
}
