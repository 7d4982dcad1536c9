package authz_test

import (
	"context"
	"strconv"
	"strings"
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

// An identity policy stored earlier that no longer parses (written before
// a rule it breaks, or edited in the store) may hold a Deny: dropping it
// would allow what it denied. It denies everything its entity asks, and
// the denial names it, until an administrator mends it.
func TestStoredPolicyThatDoesNotParseDeniesAll(t *testing.T) {
	ctx := context.Background()
	st := newStore(t)
	arn := "arn:aws:iam::" + acct + ":user/dana"
	mustDo(t, st.CreateEntity(ctx, &shiftkey.Entity{Kind: shiftkey.KindUser, Name: "dana", ID: "AIDADANA", Path: "/", ARN: arn, CreatedAt: time.Now()}))
	mustDo(t, st.PutInlinePolicy(ctx, shiftkey.KindUser, "dana", shiftkey.PolicyDocument{Name: "allow",
		Document: `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"redshift:*","Resource":"*"}]}`}))
	mustDo(t, st.PutInlinePolicy(ctx, shiftkey.KindUser, "dana", shiftkey.PolicyDocument{Name: "guard",
		Document: `{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Action":"redshift:GetClusterCredentials","Resource":"*","Nonsense":true}]}`}))
	a := &authz.Authorizer{Store: st}
	p := &shiftkey.Principal{ARN: arn, Account: acct, Type: shiftkey.PrincipalUser, UserID: "AIDADANA", UserName: "dana"}
	c := &shiftkey.Caller{Principal: p, Region: "us-east-1", RequestID: "req", Time: time.Now()}
	for i, action := range []string{"redshift:GetClusterCredentials", "redshift:DescribeClusters"} {
		c.RequestID = "req" + strconv.Itoa(i)
		if err := a.Authorize(ctx, c, shiftkey.AuthzRequest{Action: action, Resource: "*"}); err == nil {
			t.Errorf("%s allowed beside a stored policy that does not parse", action)
			continue
		}
		recs, err := st.Decisions(ctx, c.RequestID)
		if err != nil || len(recs) != 1 || !strings.Contains(recs[0].Explanation, "inline policy guard") || !strings.Contains(recs[0].Explanation, "does not parse") {
			t.Errorf("%s: the recorded explanation does not name the policy that does not parse: %+v, %v", action, recs, err)
		}
	}
}
