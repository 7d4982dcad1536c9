package storetest

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/shiftkey/shiftkey"
)

// versionsOf is the policy's versions as "id=document" (the default
// marked "*"), newest first, as PolicyVersions lists them.
func versionsOf(t *testing.T, s shiftkey.Store, arn string) string {
	t.Helper()
	vs, err := s.PolicyVersions(context.Background(), arn)
	if err != nil {
		t.Fatalf("PolicyVersions: %v", err)
	}
	var out []string
	for _, v := range vs {
		x := v.ID + "=" + v.Document
		if v.IsDefault {
			x += "*"
		}
		out = append(out, x)
	}
	return strings.Join(out, " ")
}

// testPolicyVersions: a managed policy's versions as IAM keeps them. A
// policy created as before versions has one, v1; the default version is
// the document the policy's reads give (what authorization evaluates);
// ids are never given twice; the default cannot be deleted, nor the
// policy while it has others; a config edit (UpdateManagedPolicy) leaves
// the default alone, with the file's document.
func testPolicyVersions(t *testing.T, s shiftkey.Store) {
	ctx := context.Background()
	const arn = "arn:aws:iam::1:policy/versioned"
	at := func(min int) time.Time { return t0.Add(time.Duration(min) * time.Minute) }
	pol := &shiftkey.ManagedPolicy{ARN: arn, Name: "versioned", ID: "ANPAVERSIONED", Path: "/", Document: `{"v":1}`, CreatedAt: t0, UpdatedAt: t0}
	if err := s.CreateManagedPolicy(ctx, pol); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateEntity(ctx, &shiftkey.Entity{Kind: shiftkey.KindUser, Name: "vera", ID: "AIDAVERA", Path: "/", ARN: "arn:aws:iam::1:user/vera", CreatedAt: t0}); err != nil {
		t.Fatal(err)
	}
	if err := s.AttachPolicy(ctx, shiftkey.KindUser, "vera", arn); err != nil {
		t.Fatal(err)
	}
	if got := versionsOf(t, s, arn); got != `v1={"v":1}*` {
		t.Fatalf("a new policy's versions: %s, want v1 alone", got)
	}
	// head checks what the policy's reads give: the default's id and
	// document, when it was set, the newest version's date.
	head := func(what, def, doc string, updated, newest time.Time) {
		t.Helper()
		m, err := s.ManagedPolicy(ctx, arn)
		if err != nil {
			t.Fatal(err)
		}
		att, err := s.AttachedPolicies(ctx, shiftkey.KindUser, "vera")
		if err != nil || len(att) != 1 {
			t.Fatal(att, err)
		}
		list, err := s.ManagedPolicies(ctx, "/")
		if err != nil || len(list) != 1 {
			t.Fatal(list, err)
		}
		for _, p := range []*shiftkey.ManagedPolicy{m, att[0], list[0]} {
			if p.DefaultVersion != def || p.Document != doc || !p.UpdatedAt.Equal(updated) || !p.NewestVersionAt.Equal(newest) {
				t.Fatalf("%s: policy read as default %s %s set %v, newest version %v; want %s %s %v %v", what,
					p.DefaultVersion, p.Document, p.UpdatedAt, p.NewestVersionAt, def, doc, updated, newest)
			}
		}
	}
	head("new", "v1", `{"v":1}`, t0, t0)

	create := func(doc string, def bool, when time.Time) (string, error) {
		v := &shiftkey.PolicyVersion{Document: doc, IsDefault: def, CreatedAt: when}
		err := s.CreatePolicyVersion(ctx, arn, v)
		return v.ID, err
	}
	if id, err := create(`{"v":2}`, false, at(2)); err != nil || id != "v2" {
		t.Fatalf("CreatePolicyVersion: %q, %v; want v2", id, err)
	}
	head("after v2, not default", "v1", `{"v":1}`, t0, at(2))
	if id, err := create(`{"v":3}`, true, at(3)); err != nil || id != "v3" {
		t.Fatalf("CreatePolicyVersion SetAsDefault: %q, %v; want v3", id, err)
	}
	head("after v3, default", "v3", `{"v":3}`, at(3), at(3))
	if got := versionsOf(t, s, arn); got != `v3={"v":3}* v2={"v":2} v1={"v":1}` {
		t.Fatalf("versions: %s", got)
	}
	if err := s.SetDefaultPolicyVersion(ctx, arn, "v1"); err != nil {
		t.Fatal(err)
	}
	head("v1 default again", "v1", `{"v":1}`, t0, at(3))
	if err := s.SetDefaultPolicyVersion(ctx, arn, "v1"); err != nil {
		t.Fatalf("SetDefaultPolicyVersion of the default: %v, want a no-op", err)
	}
	for _, id := range []string{"v9", "v1.x", "v01"} {
		if err := s.SetDefaultPolicyVersion(ctx, arn, id); shiftkey.ErrorCode(err) != shiftkey.CodeNoSuchEntity {
			t.Errorf("SetDefaultPolicyVersion %s: %v, want NoSuchEntity", id, err)
		}
		if err := s.DeletePolicyVersion(ctx, arn, id); shiftkey.ErrorCode(err) != shiftkey.CodeNoSuchEntity {
			t.Errorf("DeletePolicyVersion %s: %v, want NoSuchEntity", id, err)
		}
	}
	if err := s.DeletePolicyVersion(ctx, arn, "v1"); shiftkey.ErrorCode(err) != "DeleteConflict" {
		t.Fatalf("DeletePolicyVersion of the default: %v, want DeleteConflict", err)
	}
	// Up to MaxPolicyVersions, then LimitExceeded, nothing written.
	for i, want := range []string{"v4", "v5"} {
		if id, err := create(fmt.Sprintf(`{"v":%d}`, i+4), false, at(i+4)); err != nil || id != want {
			t.Fatalf("CreatePolicyVersion: %q, %v; want %s", id, err, want)
		}
	}
	if _, err := create(`{"v":6}`, true, at(6)); !LimitExceeded(err) {
		t.Fatalf("a sixth version: %v, want LimitExceeded", err)
	}
	head("after the refused sixth", "v1", `{"v":1}`, t0, at(5))
	// A deleted id is not given again.
	if err := s.DeletePolicyVersion(ctx, arn, "v5"); err != nil {
		t.Fatal(err)
	}
	if id, err := create(`{"v":6}`, false, at(6)); err != nil || id != "v6" {
		t.Fatalf("CreatePolicyVersion after deleting v5: %q, %v; want v6", id, err)
	}
	if err := s.DetachPolicy(ctx, shiftkey.KindUser, "vera", arn); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteManagedPolicy(ctx, arn); shiftkey.ErrorCode(err) != "DeleteConflict" || !strings.Contains(err.Error(), "more than one version") {
		t.Fatalf("DeleteManagedPolicy with versions: %v, want DeleteConflict", err)
	}
	if err := s.AttachPolicy(ctx, shiftkey.KindUser, "vera", arn); err != nil {
		t.Fatal(err)
	}
	// A config edit: the default keeps its id, takes the document; the
	// others go.
	pol.Document, pol.Description, pol.UpdatedAt = `{"v":"file"}`, "from the file", at(9)
	if err := s.UpdateManagedPolicy(ctx, pol); err != nil {
		t.Fatal(err)
	}
	if got := versionsOf(t, s, arn); got != `v1={"v":"file"}*` {
		t.Fatalf("versions after UpdateManagedPolicy: %s, want the default alone, with the file's document", got)
	}
	head("after UpdateManagedPolicy", "v1", `{"v":"file"}`, at(9), at(9))
	if id, err := create(`{"v":7}`, true, at(10)); err != nil || id != "v7" {
		t.Fatalf("CreatePolicyVersion after UpdateManagedPolicy: %q, %v; want v7 (ids never given twice)", id, err)
	}
	if err := s.DeletePolicyVersion(ctx, arn, "v1"); err != nil {
		t.Fatal(err)
	}
	if err := s.DetachPolicy(ctx, shiftkey.KindUser, "vera", arn); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteManagedPolicy(ctx, arn); err != nil {
		t.Fatalf("DeleteManagedPolicy with its default alone: %v", err)
	}
	for name, err := range map[string]error{
		"CreatePolicyVersion":     s.CreatePolicyVersion(ctx, arn, &shiftkey.PolicyVersion{Document: "{}", CreatedAt: t0}),
		"SetDefaultPolicyVersion": s.SetDefaultPolicyVersion(ctx, arn, "v7"),
		"DeletePolicyVersion":     s.DeletePolicyVersion(ctx, arn, "v7"),
		"DeleteManagedPolicy":     s.DeleteManagedPolicy(ctx, arn),
	} {
		if shiftkey.ErrorCode(err) != shiftkey.CodeNoSuchEntity {
			t.Errorf("%s of a deleted policy: %v, want NoSuchEntity", name, err)
		}
	}
	if _, err := s.PolicyVersions(ctx, arn); shiftkey.ErrorCode(err) != shiftkey.CodeNoSuchEntity {
		t.Errorf("PolicyVersions of a deleted policy: %v, want NoSuchEntity", err)
	}
	// Created again under the ARN, it is another policy: v1 alone.
	pol = &shiftkey.ManagedPolicy{ARN: arn, Name: "versioned", ID: "ANPAVERSIONED2", Path: "/", Document: `{"again":1}`, CreatedAt: at(20), UpdatedAt: at(20)}
	if err := s.CreateManagedPolicy(ctx, pol); err != nil {
		t.Fatal(err)
	}
	if got := versionsOf(t, s, arn); got != `v1={"again":1}*` {
		t.Fatalf("the policy created again: %s, want v1 alone", got)
	}
}

// testPolicyVersionsConcurrent: concurrent CreatePolicyVersion calls on
// one policy neither pass MaxPolicyVersions nor get one id twice, and one
// racing DeleteManagedPolicy either deletes the policy before them or is
// refused for their versions.
func testPolicyVersionsConcurrent(t *testing.T, s shiftkey.Store) {
	ctx := context.Background()
	for round := range 10 {
		arn := fmt.Sprintf("arn:aws:iam::1:policy/busy%d", round)
		if err := s.CreateManagedPolicy(ctx, &shiftkey.ManagedPolicy{ARN: arn, Name: fmt.Sprintf("busy%d", round), ID: fmt.Sprintf("ANPABUSY%d", round),
			Path: "/", Document: "{}", CreatedAt: t0, UpdatedAt: t0}); err != nil {
			t.Fatal(err)
		}
		const n = 12
		ids := make([]string, n)
		errs := Concurrently(n+1, func(i int) error {
			if i == n {
				return s.DeleteManagedPolicy(ctx, arn)
			}
			v := &shiftkey.PolicyVersion{Document: fmt.Sprintf(`{"i":%d}`, i), IsDefault: i%2 == 0, CreatedAt: t0}
			err := s.CreatePolicyVersion(ctx, arn, v)
			ids[i] = v.ID
			return err
		})
		deleted := errs[n] == nil
		if !deleted && shiftkey.ErrorCode(errs[n]) != "DeleteConflict" {
			t.Fatalf("DeleteManagedPolicy racing CreatePolicyVersion: %v, want success or DeleteConflict", errs[n])
		}
		var made []string
		for i, err := range errs[:n] {
			switch {
			case err == nil:
				made = append(made, ids[i])
			case LimitExceeded(err), deleted && shiftkey.ErrorCode(err) == shiftkey.CodeNoSuchEntity:
			default:
				t.Fatalf("CreatePolicyVersion: %v", err)
			}
		}
		slices.Sort(made)
		if deleted {
			if _, err := s.PolicyVersions(ctx, arn); shiftkey.ErrorCode(err) != shiftkey.CodeNoSuchEntity {
				t.Fatalf("round %d: the policy was deleted, yet PolicyVersions = %v (versions made: %v)", round, err, made)
			}
			continue
		}
		if !slices.Equal(made, []string{"v2", "v3", "v4", "v5"}) {
			t.Fatalf("round %d: %d concurrent CreatePolicyVersion made %v, want v2-v5 once each", round, n, made)
		}
		vs, err := s.PolicyVersions(ctx, arn)
		if err != nil {
			t.Fatal(err)
		}
		defaults := 0
		for _, v := range vs {
			if v.IsDefault {
				defaults++
			}
		}
		if len(vs) != shiftkey.MaxPolicyVersions || defaults != 1 {
			t.Fatalf("round %d: %d versions, %d default; want %d, one", round, len(vs), defaults, shiftkey.MaxPolicyVersions)
		}
	}
}
