package authz_test

import (
	"context"
	"testing"
	"time"

	"github.com/shiftkey/shiftkey"
	"github.com/shiftkey/shiftkey/authz"
)

// TestGlobalConditionKeys checks each global key the authorizer sets: a
// policy allowing only when the key has the caller's value allows, one
// asking for another value denies; keys AWS leaves out for a principal
// type are absent (Null true).
func TestGlobalConditionKeys(t *testing.T) {
	ctx := context.Background()
	st := newStore(t)
	a := &authz.Authorizer{Store: st}
	now := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	user := &shiftkey.Principal{ARN: "arn:aws:iam::" + acct + ":user/eng/kai", Account: acct, Type: shiftkey.PrincipalUser,
		UserName: "kai", UserID: "AIDAKAI", Tags: []shiftkey.Tag{{Key: "team", Value: "data"}}}
	session := &shiftkey.Principal{ARN: "arn:aws:sts::" + acct + ":assumed-role/Ops/s1", Account: acct, Type: shiftkey.PrincipalAssumedRole,
		UserID: "AROAOPS:s1", RoleName: "Ops", RoleARN: "arn:aws:iam::" + acct + ":role/Ops", SessionName: "s1",
		TokenIssueTime: now.Add(-time.Hour), Tags: []shiftkey.Tag{{Key: "team", Value: "ops"}}}
	for _, e := range []*shiftkey.Entity{
		{Kind: shiftkey.KindUser, Name: "kai", ID: "AIDAKAI", Path: "/eng/", ARN: user.ARN, CreatedAt: now},
		{Kind: shiftkey.KindRole, Name: "Ops", ID: "AROAOPS", Path: "/", ARN: session.RoleARN, CreatedAt: now},
	} {
		mustDo(t, st.CreateEntity(ctx, e))
	}
	tests := []struct {
		who       *shiftkey.Principal
		condition string
		allow     bool
	}{
		{user, `"ArnEquals":{"aws:PrincipalArn":"arn:aws:iam::` + acct + `:user/eng/kai"}`, true},
		{user, `"ArnEquals":{"aws:PrincipalArn":"arn:aws:iam::` + acct + `:user/eng/ana"}`, false},
		{session, `"ArnEquals":{"aws:PrincipalArn":"arn:aws:iam::` + acct + `:role/Ops"}`, true},
		{session, `"ArnEquals":{"aws:PrincipalArn":"arn:aws:sts::` + acct + `:assumed-role/Ops/s1"}`, false},
		{user, `"StringEquals":{"aws:PrincipalAccount":"` + acct + `"}`, true},
		{user, `"StringEquals":{"aws:PrincipalAccount":"999999999999"}`, false},
		{user, `"StringEquals":{"aws:PrincipalType":"User"}`, true},
		{session, `"StringEquals":{"aws:PrincipalType":"AssumedRole"}`, true},
		{session, `"StringEquals":{"aws:PrincipalType":"User"}`, false},
		{user, `"StringEquals":{"aws:userid":"AIDAKAI"}`, true},
		{session, `"StringLike":{"aws:userid":"AROAOPS:*"}`, true},
		{session, `"StringEquals":{"aws:userid":"AROAOPS"}`, false},
		{user, `"StringEquals":{"aws:username":"kai"}`, true},
		{user, `"StringEquals":{"aws:username":"ana"}`, false},
		{session, `"Null":{"aws:username":"true"}`, true},
		{session, `"StringLike":{"aws:username":"*"}`, false},
		{user, `"StringEquals":{"aws:PrincipalTag/team":"data"}`, true},
		{user, `"StringEquals":{"aws:PrincipalTag/TEAM":"data"}`, true}, // tag keys in condition keys are case-insensitive
		{session, `"StringEquals":{"aws:PrincipalTag/team":"data"}`, false},
		{user, `"Bool":{"aws:SecureTransport":"true"}`, true},
		{user, `"Bool":{"aws:SecureTransport":"false"}`, false},
		{user, `"IpAddress":{"aws:SourceIp":"203.0.113.0/24"}`, true},
		{user, `"NotIpAddress":{"aws:SourceIp":"203.0.113.0/24"}`, false},
		{user, `"DateGreaterThan":{"aws:CurrentTime":"2026-01-01T00:00:00Z"}`, true},
		{user, `"DateLessThan":{"aws:CurrentTime":"2026-01-01T00:00:00Z"}`, false},
		{user, `"NumericEquals":{"aws:EpochTime":"1777636800"}`, true},
		{user, `"NumericLessThan":{"aws:EpochTime":"1777636800"}`, false},
		{user, `"StringEquals":{"aws:RequestedRegion":"eu-west-1"}`, true},
		{user, `"StringEquals":{"aws:RequestedRegion":"us-east-1"}`, false},
		{user, `"Bool":{"aws:PrincipalIsAWSService":"false"}`, true},
		{user, `"Bool":{"aws:ViaAWSService":"true"}`, false},
		{user, `"Null":{"aws:MultiFactorAuthPresent":"true"}`, true},
		{session, `"Bool":{"aws:MultiFactorAuthPresent":"false"}`, true},
		{session, `"Bool":{"aws:MultiFactorAuthPresent":"true"}`, false},
		{session, `"DateEquals":{"aws:TokenIssueTime":"2026-05-01T11:00:00Z"}`, true},
		{session, `"DateGreaterThan":{"aws:TokenIssueTime":"2026-05-01T11:00:00Z"}`, false},
		{user, `"Null":{"aws:TokenIssueTime":"true"}`, true},
	}
	for i, tt := range tests {
		t.Run(tt.who.Type+" "+tt.condition, func(t *testing.T) {
			kind, name := shiftkey.KindUser, "kai"
			if tt.who.Type == shiftkey.PrincipalAssumedRole {
				kind, name = shiftkey.KindRole, "Ops"
			}
			mustDo(t, st.PutInlinePolicy(ctx, kind, name, shiftkey.PolicyDocument{Name: "p",
				Document: `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"redshift:DescribeClusters","Resource":"*","Condition":{` + tt.condition + `}}]}`}))
			c := &shiftkey.Caller{Principal: tt.who, Region: "eu-west-1", SourceIP: "203.0.113.7", SecureTransport: true, RequestID: "ctx-" + string(rune('a'+i)), Time: now}
			err := a.Authorize(ctx, c, shiftkey.AuthzRequest{Action: "redshift:DescribeClusters", Resource: "*"})
			if (err == nil) != tt.allow {
				t.Fatalf("allowed = %v (%v), want %v", err == nil, err, tt.allow)
			}
		})
	}
}
