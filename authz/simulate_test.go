package authz_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/shiftkey/shiftkey"
	"github.com/shiftkey/shiftkey/authz"
	"github.com/shiftkey/shiftkey/iam"
)

// Simulate evaluates a stored user as itself and a stored role as a
// session of it, with their tags as principal tags and without the
// request-time keys, which the simulation's caller gives.
func TestSimulateStoredPrincipal(t *testing.T) {
	ctx := context.Background()
	st := newStore(t)
	allow := `{"Version":"2012-10-17","Statement":[{"Sid":"Team","Effect":"Allow","Action":"redshift:GetClusterCredentials","Resource":"*",
		"Condition":{"StringEquals":{"aws:PrincipalTag/team":"data"}}}]}`
	for _, e := range []*shiftkey.Entity{
		{Kind: shiftkey.KindUser, Name: "sim", ID: "AIDASIM", Path: "/", ARN: "arn:aws:iam::" + acct + ":user/sim", CreatedAt: time.Now()},
		{Kind: shiftkey.KindRole, Name: "SimRole", ID: "AROASIM", Path: "/", ARN: "arn:aws:iam::" + acct + ":role/SimRole", MaxSessionDuration: 3600,
			AssumeRolePolicy: `{"Statement":{"Effect":"Allow","Principal":"*","Action":"sts:AssumeRole"}}`, CreatedAt: time.Now()},
	} {
		mustDo(t, st.CreateEntity(ctx, e))
		mustDo(t, st.PutInlinePolicy(ctx, e.Kind, e.Name, shiftkey.PolicyDocument{Name: "p", Document: allow}))
		mustDo(t, st.TagEntity(ctx, e.Kind, e.Name, []shiftkey.Tag{{Key: "team", Value: "data"}}))
	}
	a := &authz.Authorizer{Store: st}
	for _, tc := range []struct {
		kind           shiftkey.EntityKind
		name, userID   string
		typ, principal string
	}{
		{shiftkey.KindUser, "sim", "AIDASIM", shiftkey.PrincipalUser, "arn:aws:iam::" + acct + ":user/sim"},
		{shiftkey.KindRole, "SimRole", "AROASIM:explain", shiftkey.PrincipalAssumedRole, "arn:aws:iam::" + acct + ":role/SimRole"},
	} {
		set, keys, err := a.Simulate(ctx, tc.kind, tc.name)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(keys["aws:userid"], []string{tc.userID}) || !slices.Equal(keys["aws:PrincipalType"], []string{tc.typ}) ||
			!slices.Equal(keys["aws:PrincipalArn"], []string{tc.principal}) || !slices.Equal(keys["aws:PrincipalTag/team"], []string{"data"}) {
			t.Errorf("%s/%s: keys %v", tc.kind, tc.name, keys)
		}
		if _, ok := keys["aws:username"]; ok != (tc.kind == shiftkey.KindUser) {
			t.Errorf("%s/%s: aws:username present %v", tc.kind, tc.name, ok)
		}
		for _, k := range []string{"aws:CurrentTime", "aws:EpochTime"} {
			if _, ok := keys[k]; ok {
				t.Errorf("%s/%s: the simulation fixed %s", tc.kind, tc.name, k)
			}
		}
		d, why := authz.Decide(set, iam.Request{Action: "redshift:GetClusterCredentials", Resource: "*", Context: keys})
		if !d.Allowed() {
			t.Errorf("%s/%s: %s (%s), want allowed by its stored policy and tag", tc.kind, tc.name, d.Outcome, why)
		}
	}
	if _, _, err := a.Simulate(ctx, shiftkey.KindUser, "nobody"); shiftkey.ErrorCode(err) != shiftkey.CodeNoSuchEntity {
		t.Fatalf("unknown user: %v", err)
	}
}
