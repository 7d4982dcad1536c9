package authz_test

import (
	"context"
	"testing"
	"time"

	"github.com/shiftkey/shiftkey"
	"github.com/shiftkey/shiftkey/authz"
)

// A session's policies (AssumeRole's Policy and PolicyArns, kept as a JSON
// array): any of them may allow; if one of them no longer parses, none
// decides and nothing is allowed (its denies are not lost).
func TestSessionPoliciesAnyAllowsAndFailClosed(t *testing.T) {
	ctx := context.Background()
	st := newStore(t)
	opsARN := "arn:aws:iam::" + acct + ":role/Ops"
	mustDo(t, st.CreateEntity(ctx, &shiftkey.Entity{Kind: shiftkey.KindRole, Name: "Ops", ID: "AROAOPS", Path: "/", ARN: opsARN, MaxSessionDuration: 3600, CreatedAt: time.Now()}))
	mustDo(t, st.PutInlinePolicy(ctx, shiftkey.KindRole, "Ops", shiftkey.PolicyDocument{Name: "p",
		Document: `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"redshift:*","Resource":"*"}]}`}))
	describe := `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"redshift:DescribeClusters","Resource":"*"}]}`
	creds := `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"redshift:GetClusterCredentials","Resource":"*"}]}`
	broken := `{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Action":"redshift:GetClusterCredentials","Resource":"*","Nonsense":true}]}`
	a := &authz.Authorizer{Store: st}
	allowed := func(policies []string, action string) bool {
		t.Helper()
		p := &shiftkey.Principal{ARN: "arn:aws:sts::" + acct + ":assumed-role/Ops/s1", Account: acct, Type: shiftkey.PrincipalAssumedRole,
			UserID: "AROAOPS:s1", RoleName: "Ops", RoleARN: opsARN, SessionName: "s1", SessionPolicy: shiftkey.JoinSessionPolicies(policies)}
		c := &shiftkey.Caller{Principal: p, Region: "us-east-1", RequestID: "req", Time: time.Now()}
		return a.Authorize(ctx, c, shiftkey.AuthzRequest{Action: action, Resource: "*"}) == nil
	}
	if !allowed([]string{describe, creds}, "redshift:GetClusterCredentials") || !allowed([]string{describe, creds}, "redshift:DescribeClusters") {
		t.Fatal("each of two session policies allows its own action")
	}
	if allowed([]string{describe, creds}, "redshift:DeleteCluster") {
		t.Fatal("an action neither session policy allows was allowed")
	}
	if allowed([]string{creds, broken}, "redshift:GetClusterCredentials") {
		t.Fatal("with one session policy unreadable, the other still decided")
	}
}
