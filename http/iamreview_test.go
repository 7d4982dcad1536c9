package http_test

import (
	"context"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/redshift"
	"github.com/aws/aws-sdk-go-v2/service/sts"
)

// Found in a review of the evaluator against AWS's documentation
// (2026-12-06): ways a policy let a caller past what AWS would refuse.

// A session narrowed by a session policy may not use a role trusted by
// "*" to leave that policy behind: AWS lets a resource-based policy grant a
// session beyond its session policy only when the policy "specifically
// references the role session" (STS AssumeRole, Policy parameter).
func TestWildcardTrustDoesNotLiftASessionPolicy(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	assumeAny := `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"sts:AssumeRole","Resource":"*"}]}`
	// broker may assume anything; its session below is narrowed to
	// DescribeClusters by the session policy it was issued with.
	broker := f.newIAMUserKey(t, "broker", assumeAny)
	first := f.createRole(t, "first", trustUser("broker"), `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}`)
	out, err := f.stsClient(broker).AssumeRole(ctx, &sts.AssumeRoleInput{RoleArn: aws.String(first), RoleSessionName: aws.String("narrow"),
		Policy: aws.String(describeOnly)})
	mustOK(t, "AssumeRole first with a session policy", err)
	narrow := sessionCreds(out)
	open := f.createRole(t, "open", `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"*"},"Action":"sts:AssumeRole"}]}`, credsAllowed)

	_, err = f.stsClient(narrow).AssumeRole(ctx, &sts.AssumeRoleInput{RoleArn: aws.String(open), RoleSessionName: aws.String("escape")})
	wantAPIError(t, err, "AccessDenied")

	// Without a session policy the wildcard still admits the session.
	out, err = f.stsClient(broker).AssumeRole(ctx, &sts.AssumeRoleInput{RoleArn: aws.String(first), RoleSessionName: aws.String("full")})
	mustOK(t, "AssumeRole first", err)
	out, err = f.stsClient(sessionCreds(out)).AssumeRole(ctx, &sts.AssumeRoleInput{RoleArn: aws.String(open), RoleSessionName: aws.String("chained")})
	mustOK(t, "AssumeRole open by a session without a session policy", err)
	_, err = redshift.NewFromConfig(f.sdk(sessionCreds(out))).GetClusterCredentials(ctx, aliceCreds())
	mustOK(t, "GetClusterCredentials as open", err)
}

// A trust Deny naming a user who does not exist yet still denies that user
// once created: AWS refuses such a policy at CreateRole ("Invalid
// principal in policy"), so no role trusts the account with a Deny that
// misses a later user.
func TestTrustDenyNamingALaterUser(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	trust := `{"Version":"2012-10-17","Statement":[
		{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::` + account + `:root"},"Action":"sts:AssumeRole"},
		{"Effect":"Deny","Principal":{"AWS":"arn:aws:iam::` + account + `:user/intern"},"Action":"sts:AssumeRole"}]}`
	roleARN := f.createRole(t, "prod", trust, credsAllowed)
	intern := f.newIAMUserKey(t, "intern", `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"sts:AssumeRole","Resource":"*"}]}`)
	_, err := f.stsClient(intern).AssumeRole(ctx, &sts.AssumeRoleInput{RoleArn: aws.String(roleARN), RoleSessionName: aws.String("sess")})
	wantAPIError(t, err, "AccessDenied")
}

// A caller may not leave out DbName to get past an Allow whose
// ForAnyValue:...IfExists names the databases: AWS ignores IfExists under
// ForAnyValue, so a missing key fails the condition, and a credential
// without DbName would log in to every database.
func TestForAnyValueIfExistsNeedsTheKey(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	u := f.newIAMUserKey(t, "devonly", `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"redshift:GetClusterCredentials","Resource":"*",
		"Condition":{"ForAnyValue:StringEqualsIfExists":{"redshift:DbName":["dev"]}}}]}`)
	rs := redshift.NewFromConfig(f.sdk(u))
	_, err := rs.GetClusterCredentials(ctx, aliceCreds())
	wantAPIError(t, err, "AccessDenied")
	in := aliceCreds()
	in.DbName = aws.String("dev")
	_, err = rs.GetClusterCredentials(ctx, in)
	mustOK(t, "GetClusterCredentials with DbName dev", err)
}
