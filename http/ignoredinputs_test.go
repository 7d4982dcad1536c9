package http_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/redshift"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	ststypes "github.com/aws/aws-sdk-go-v2/service/sts/types"
)

// Found in a review by attack (2026-12-06, review-authz): inputs AWS acts
// on that shiftkey ignored, each of which a Deny (or a boundary) relies on.

// AWS's way to
// revoke a role's sessions (the console's "Revoke active sessions", or the
// same policy put by hand) is a Deny on aws:TokenIssueTime. The key was
// never in the request context, so DateLessThan on it was false and the
// Deny never applied: a "revoked" session went on getting credentials.

// revokeOlderSessions is the AWSRevokeOlderSessions policy the IAM console
// attaches to a role (id_roles_use_revoke-sessions.html).
func revokeOlderSessions(before time.Time) string {
	return `{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Action":["*"],"Resource":["*"],` +
		`"Condition":{"DateLessThan":{"aws:TokenIssueTime":"` + before.UTC().Format(time.RFC3339) + `"}}}]}`
}

func TestRevokeOlderSessionsDeniesSessionsIssuedBefore(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	bob := f.newIAMUserKey(t, "bob", `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"sts:AssumeRole","Resource":"*"}]}`)
	roleARN := f.createRole(t, "etl", trustUser("bob"), credsAllowed)
	assume := func(name string) aws.Credentials {
		t.Helper()
		out, err := f.stsClient(bob).AssumeRole(ctx, &sts.AssumeRoleInput{RoleArn: aws.String(roleARN), RoleSessionName: aws.String(name)})
		mustOK(t, "AssumeRole "+name, err)
		return sessionCreds(out)
	}
	old := f.redshiftClient(assume("before"))
	_, err := old.GetClusterCredentials(ctx, aliceCreds())
	mustOK(t, "GetClusterCredentials before the revocation", err)

	// The revocation time is a whole second after the old session's issue.
	revokedAt := time.Now().UTC().Truncate(time.Second).Add(time.Second)
	_, err = f.iamClient(f.keys["admin"]).PutRolePolicy(ctx, &iam.PutRolePolicyInput{RoleName: aws.String("etl"),
		PolicyName: aws.String("AWSRevokeOlderSessions"), PolicyDocument: aws.String(revokeOlderSessions(revokedAt))})
	mustOK(t, "PutRolePolicy AWSRevokeOlderSessions", err)

	_, err = old.GetClusterCredentials(ctx, aliceCreds())
	wantAPIError(t, err, "AccessDenied")
	if s := httpStatus(err); s != 403 {
		t.Fatalf("status %d, want 403", s)
	}

	// A session issued after the revocation time works.
	time.Sleep(time.Until(revokedAt) + 50*time.Millisecond)
	_, err = f.redshiftClient(assume("after")).GetClusterCredentials(ctx, aliceCreds())
	mustOK(t, "GetClusterCredentials with a session issued after the revocation", err)
	// And the revoked one stays revoked.
	_, err = old.GetClusterCredentials(ctx, aliceCreds())
	wantAPIError(t, err, "AccessDenied")
}

// Found in the same review: CreateRole and CreateUser took a
// PermissionsBoundary and ignored it. A role created "bounded" to
// DescribeClusters by its boundary then had everything its own policies
// grant: its sessions got credentials the boundary should have refused.
// shiftkey refused boundaries for a while; now it evaluates them.
func TestPermissionsBoundaryIsHonouredNotIgnored(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	admin := f.iamClient(f.keys["admin"])
	out, err := admin.CreatePolicy(ctx, &iam.CreatePolicyInput{PolicyName: aws.String("DescribeOnly"), PolicyDocument: aws.String(describeOnly)})
	mustOK(t, "CreatePolicy", err)
	boundary := out.Policy.Arn

	r, err := admin.CreateRole(ctx, &iam.CreateRoleInput{RoleName: aws.String("bounded"), PermissionsBoundary: boundary,
		AssumeRolePolicyDocument: aws.String(trustUser("admin"))})
	mustOK(t, "CreateRole with a boundary", err)
	_, err = admin.PutRolePolicy(ctx, &iam.PutRolePolicyInput{RoleName: aws.String("bounded"), PolicyName: aws.String("all"),
		PolicyDocument: aws.String(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}`)})
	mustOK(t, "PutRolePolicy", err)
	ar, err := f.stsClient(f.keys["admin"]).AssumeRole(ctx, &sts.AssumeRoleInput{RoleArn: r.Role.Arn, RoleSessionName: aws.String("s1")})
	mustOK(t, "AssumeRole", err)
	sess := f.redshiftClient(aws.Credentials{AccessKeyID: aws.ToString(ar.Credentials.AccessKeyId),
		SecretAccessKey: aws.ToString(ar.Credentials.SecretAccessKey), SessionToken: aws.ToString(ar.Credentials.SessionToken)})
	_, err = sess.GetClusterCredentials(ctx, &redshift.GetClusterCredentialsInput{ClusterIdentifier: aws.String("dev-cluster"), DbUser: aws.String("alice")})
	wantAPIError(t, err, "AccessDenied")
	if s := httpStatus(err); s != 403 {
		t.Fatalf("GetClusterCredentials beyond the boundary: status %d, want 403", s)
	}
	_, err = sess.DescribeClusters(ctx, &redshift.DescribeClustersInput{})
	mustOK(t, "DescribeClusters within the boundary", err)

	u, err := admin.CreateUser(ctx, &iam.CreateUserInput{UserName: aws.String("bounded"), PermissionsBoundary: boundary})
	mustOK(t, "CreateUser with a boundary", err)
	if u.User.PermissionsBoundary == nil || aws.ToString(u.User.PermissionsBoundary.PermissionsBoundaryArn) != aws.ToString(boundary) {
		t.Fatalf("CreateUser's user: boundary %+v", u.User.PermissionsBoundary)
	}
}

// Found in the same review: AssumeRole took SourceIdentity and
// TransitiveTagKeys and ignored them. In AWS a source identity is
// aws:SourceIdentity in every request of the session and of sessions
// chained from it, and a transitive tag is carried into chained sessions,
// where it cannot be changed; a Deny keyed on either (the way a broker
// confines the sessions it hands out) therefore held in AWS but never
// applied here: a session with SourceIdentity contractor-bob, denied on
// contractor-*, got credentials, and a session tagged quarantined=true
// (transitive) shed the tag by assuming its role again. shiftkey keeps
// neither, so it refuses them.
func TestAssumeRoleRefusesSourceIdentityAndTransitiveTags(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	roleARN := f.createRole(t, "broker", `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::`+account+`:user/admin"},
		"Action":["sts:AssumeRole","sts:TagSession","sts:SetSourceIdentity"]}]}`, credsAllowed)
	admin := f.stsClient(f.keys["admin"])
	for name, in := range map[string]*sts.AssumeRoleInput{
		"SourceIdentity": {SourceIdentity: aws.String("contractor-bob")},
		"TransitiveTagKeys": {Tags: []ststypes.Tag{{Key: aws.String("quarantined"), Value: aws.String("true")}},
			TransitiveTagKeys: []string{"quarantined"}},
	} {
		in.RoleArn, in.RoleSessionName = aws.String(roleARN), aws.String("s1")
		_, err := admin.AssumeRole(ctx, in)
		wantAPIError(t, err, "ValidationError")
		if !strings.Contains(err.Error(), name+" is not supported") {
			t.Fatalf("%s: refused for another reason: %v", name, err)
		}
		if s := httpStatus(err); s != 400 {
			t.Fatalf("%s: status %d, want 400", name, s)
		}
	}
	// Session tags that are not transitive are kept and work as before.
	out, err := admin.AssumeRole(ctx, &sts.AssumeRoleInput{RoleArn: aws.String(roleARN), RoleSessionName: aws.String("s1"),
		Tags: []ststypes.Tag{{Key: aws.String("quarantined"), Value: aws.String("true")}}})
	mustOK(t, "AssumeRole with a session tag", err)
	_, err = f.redshiftClient(sessionCreds(out)).GetClusterCredentials(ctx, aliceCreds())
	mustOK(t, "GetClusterCredentials", err)
}
