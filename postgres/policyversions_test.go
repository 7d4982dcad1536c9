package postgres_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/shiftkey/shiftkey"
	"github.com/shiftkey/shiftkey/storecache"
)

// A policy version write on one replica reaches the others: each is
// announced (the policy's Change, in its transaction), so that another
// replica's cache drops the document it held and its very next request is
// decided by the new default; a refused write announces nothing.
func TestPolicyVersionWritesReachOtherReplicas(t *testing.T) {
	ctx := context.Background()
	url := newURL(t)
	a, b := open(t, url), open(t, url)
	var onB recorder
	b.Subscribe(onB.add)
	cacheB := storecache.New(b)
	const arn = "arn:aws:iam::1:policy/shared"
	if err := a.CreateManagedPolicy(ctx, &shiftkey.ManagedPolicy{ARN: arn, Name: "shared", ID: "ANPASHARED", Path: "/", Document: `{"v":1}`,
		CreatedAt: time.Now(), UpdatedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	policy := shiftkey.Change{Kind: shiftkey.KindPolicy, Name: arn}
	heard := func(n int) {
		t.Helper()
		waitFor(t, 5*time.Second, "B heard A's policy writes", func() bool { return len(onB.snapshot()) >= n })
		for i, c := range onB.snapshot() {
			if c != policy && i < n {
				t.Fatalf("change %d on B = %q, want the policy's", i, c)
			}
		}
	}
	heard(1)
	// defaultOnB waits until B's cache answers the document doc: the
	// cache is filled first, so that only the Change can drop it.
	defaultOnB := func(doc string) {
		t.Helper()
		waitFor(t, 5*time.Second, "B's cache serves the new default "+doc, func() bool {
			m, err := cacheB.ManagedPolicy(ctx, arn)
			return err == nil && m.Document == doc
		})
	}
	defaultOnB(`{"v":1}`)

	v := &shiftkey.PolicyVersion{Document: `{"v":2}`, IsDefault: true, CreatedAt: time.Now()}
	if err := a.CreatePolicyVersion(ctx, arn, v); err != nil || v.ID != "v2" {
		t.Fatal(v.ID, err)
	}
	heard(2)
	defaultOnB(`{"v":2}`)
	if err := a.SetDefaultPolicyVersion(ctx, arn, "v1"); err != nil {
		t.Fatal(err)
	}
	heard(3)
	defaultOnB(`{"v":1}`)
	if err := a.DeletePolicyVersion(ctx, arn, "v2"); err != nil {
		t.Fatal(err)
	}
	heard(4)
	// Refused: the default, a missing version. A user's creation after
	// them is heard fifth: they announced nothing.
	if err := a.DeletePolicyVersion(ctx, arn, "v1"); shiftkey.ErrorCode(err) != "DeleteConflict" {
		t.Fatal(err)
	}
	if err := a.SetDefaultPolicyVersion(ctx, arn, "v2"); shiftkey.ErrorCode(err) != shiftkey.CodeNoSuchEntity {
		t.Fatal(err)
	}
	if err := a.CreateEntity(ctx, &shiftkey.Entity{Kind: shiftkey.KindUser, Name: "after", ID: "AIDAAFTER", Path: "/", ARN: "arn:aws:iam::1:user/after", CreatedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	user := shiftkey.Change{Kind: shiftkey.KindUser, Name: "after"}
	waitFor(t, 5*time.Second, "B heard the user's creation", func() bool { return slices.Contains(onB.snapshot(), user) })
	if got := onB.snapshot(); len(got) != 5 || got[4] != user {
		t.Fatalf("B heard %q, want the 4 policy writes, then the user: refused writes announce nothing", got)
	}
}
