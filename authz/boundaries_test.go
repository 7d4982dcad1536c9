package authz_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/shiftkey/shiftkey"
	"github.com/shiftkey/shiftkey/authz"
	"github.com/shiftkey/shiftkey/iam"
)

// A permissions boundary caps what a user's policies allow: a denial by it
// is recorded with its reason, naming the boundary, and `policy explain
// --principal` (Simulation) shows the same.
func TestBoundaryDenialRecordedAndExplained(t *testing.T) {
	ctx := context.Background()
	st := newStore(t)
	const boundary = "arn:aws:iam::" + acct + ":policy/describe-only"
	mustDo(t, st.CreateManagedPolicy(ctx, &shiftkey.ManagedPolicy{ARN: boundary, Name: "describe-only", ID: "ANPADESCRIBEONLY", Path: "/",
		Document:  `{"Version":"2012-10-17","Statement":[{"Sid":"Describe","Effect":"Allow","Action":"redshift:DescribeClusters","Resource":"*"}]}`,
		CreatedAt: time.Now(), UpdatedAt: time.Now()}))
	user := &shiftkey.Entity{Kind: shiftkey.KindUser, Name: "capped", ID: "AIDACAPPED", Path: "/", ARN: "arn:aws:iam::" + acct + ":user/capped",
		CreatedAt: time.Now(), PermissionsBoundary: boundary}
	mustDo(t, st.CreateEntity(ctx, user))
	mustDo(t, st.PutInlinePolicy(ctx, shiftkey.KindUser, "capped", shiftkey.PolicyDocument{Name: "all",
		Document: `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"redshift:*","Resource":"*"}]}`}))
	a := &authz.Authorizer{Store: st}
	caller := &shiftkey.Caller{Principal: &shiftkey.Principal{ARN: user.ARN, Account: acct, Type: shiftkey.PrincipalUser, UserName: "capped", UserID: user.ID},
		Region: "us-east-1", RequestID: "req-boundary", Time: time.Now()}
	err := a.Authorize(ctx, caller, shiftkey.AuthzRequest{Action: "redshift:GetClusterCredentials", Resource: "*"})
	if shiftkey.ErrorCode(err) != shiftkey.CodeAccessDenied || !strings.HasSuffix(err.Error(), "because no permissions boundary allows the redshift:GetClusterCredentials action") {
		t.Fatalf("Authorize: %v, want AccessDenied by the boundary", err)
	}
	recs, err := st.Decisions(ctx, "req-boundary")
	mustDo(t, err)
	want := "implicitly denied: no statement in the permissions boundary " + boundary + " allows it"
	if len(recs) != 1 || recs[0].Outcome != "implicitDeny" || recs[0].Explanation != want {
		t.Fatalf("recorded decisions: %+v, want one implicitDeny %q", recs, want)
	}
	mustDo(t, a.Authorize(ctx, caller, shiftkey.AuthzRequest{Action: "redshift:DescribeClusters", Resource: "*"}))

	d, why, err := authz.Simulation{Principal: "user/capped", Store: st, Action: "redshift:GetClusterCredentials", Resource: "*"}.Run(ctx)
	mustDo(t, err)
	if d.Outcome != iam.ImplicitDeny || why != want {
		t.Fatalf("policy explain: %s %q, want implicitDeny %q", d.Outcome, why, want)
	}
	d, why, err = authz.Simulation{Principal: "user/capped", Store: st, Action: "redshift:DescribeClusters", Resource: "*"}.Run(ctx)
	mustDo(t, err)
	if !d.Allowed() || !strings.Contains(why, "allowed by identity-based policy and permissions boundary "+boundary) || !strings.Contains(why, "(Sid Describe)") {
		t.Fatalf("policy explain of an allowed action: %s %q", d.Outcome, why)
	}
}
