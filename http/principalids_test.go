package http_test

import (
	"context"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/redshift"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	ststypes "github.com/aws/aws-sdk-go-v2/service/sts/types"
	"github.com/shiftkey/shiftkey"
)

// Found in a review by attack (2026-12-06): an entity deleted and created
// again under its name is another principal, as in AWS, where sessions and
// trust policies hold unique ids, not names; STS parameters that narrow or
// bound a session are applied, not ignored; and a domain association is
// its cluster's alone (and goes with it: storetest's DeleteClusterDomains).

const (
	describeOnly = `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"redshift:DescribeClusters","Resource":"*"}]}`
	credsAllowed = `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"redshift:GetClusterCredentials","Resource":"*"}]}`
)

func trustUser(user string) string {
	return `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::` + account + `:user/` + user + `"},"Action":"sts:AssumeRole"}]}`
}

// createRole creates role name with trust policy trust and one inline
// policy.
func (f *fixture) createRole(t *testing.T, name, trust, policy string) string {
	t.Helper()
	ctx := context.Background()
	admin := f.iamClient(f.keys["admin"])
	out, err := admin.CreateRole(ctx, &iam.CreateRoleInput{RoleName: aws.String(name), AssumeRolePolicyDocument: aws.String(trust)})
	mustOK(t, "CreateRole "+name, err)
	_, err = admin.PutRolePolicy(ctx, &iam.PutRolePolicyInput{RoleName: aws.String(name), PolicyName: aws.String("p"), PolicyDocument: aws.String(policy)})
	mustOK(t, "PutRolePolicy "+name, err)
	return aws.ToString(out.Role.Arn)
}

func (f *fixture) deleteRole(t *testing.T, name string) {
	t.Helper()
	ctx := context.Background()
	admin := f.iamClient(f.keys["admin"])
	_, err := admin.DeleteRolePolicy(ctx, &iam.DeleteRolePolicyInput{RoleName: aws.String(name), PolicyName: aws.String("p")})
	mustOK(t, "DeleteRolePolicy "+name, err)
	_, err = admin.DeleteRole(ctx, &iam.DeleteRoleInput{RoleName: aws.String(name)})
	mustOK(t, "DeleteRole "+name, err)
}

func sessionCreds(out *sts.AssumeRoleOutput) aws.Credentials {
	c := out.Credentials
	return aws.Credentials{AccessKeyID: aws.ToString(c.AccessKeyId), SecretAccessKey: aws.ToString(c.SecretAccessKey), SessionToken: aws.ToString(c.SessionToken)}
}

func aliceCreds() *redshift.GetClusterCredentialsInput {
	return &redshift.GetClusterCredentialsInput{ClusterIdentifier: aws.String("dev-cluster"), DbUser: aws.String("alice")}
}

// A session of a deleted role is not a session of a new role that took
// its name: it must not gain the new role's permissions.
func TestSessionOfDeletedRoleIsNotTheNewRoles(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	bob := f.newIAMUserKey(t, "bob", `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"sts:AssumeRole","Resource":"*"}]}`)
	roleARN := f.createRole(t, "deploy", trustUser("bob"), describeOnly)
	out, err := f.stsClient(bob).AssumeRole(ctx, &sts.AssumeRoleInput{RoleArn: aws.String(roleARN), RoleSessionName: aws.String("sess")})
	mustOK(t, "AssumeRole", err)
	old := f.redshiftClient(sessionCreds(out))
	_, err = old.GetClusterCredentials(ctx, aliceCreds())
	wantAPIError(t, err, "AccessDenied")

	f.deleteRole(t, "deploy")
	f.createRole(t, "deploy", trustUser("admin"), credsAllowed)
	_, err = old.GetClusterCredentials(ctx, aliceCreds())
	wantAPIError(t, err, "InvalidClientTokenId")
	_, err = old.DescribeClusters(ctx, &redshift.DescribeClustersInput{})
	wantAPIError(t, err, "InvalidClientTokenId")
}

// Managed session policies narrow the session as an inline one does.
func TestAssumeRolePolicyArnsNarrowTheSession(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	admin := f.iamClient(f.keys["admin"])
	roleARN := f.createRole(t, "analyst", trustUser("admin"), `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"redshift:*","Resource":"*"}]}`)
	p, err := admin.CreatePolicy(ctx, &iam.CreatePolicyInput{PolicyName: aws.String("nothing-but-describe"), PolicyDocument: aws.String(describeOnly)})
	mustOK(t, "CreatePolicy", err)
	out, err := f.stsClient(f.keys["admin"]).AssumeRole(ctx, &sts.AssumeRoleInput{RoleArn: aws.String(roleARN), RoleSessionName: aws.String("sess"),
		PolicyArns: []ststypes.PolicyDescriptorType{{Arn: p.Policy.Arn}}})
	mustOK(t, "AssumeRole with PolicyArns", err)
	s := f.redshiftClient(sessionCreds(out))
	_, err = s.DescribeClusters(ctx, &redshift.DescribeClustersInput{})
	mustOK(t, "DescribeClusters, which the managed session policy allows", err)
	_, err = s.GetClusterCredentials(ctx, aliceCreds())
	wantAPIError(t, err, "AccessDenied")

	// With an inline policy too, either may allow (both are session
	// policies); the role's policy still bounds them.
	out, err = f.stsClient(f.keys["admin"]).AssumeRole(ctx, &sts.AssumeRoleInput{RoleArn: aws.String(roleARN), RoleSessionName: aws.String("sess"),
		PolicyArns: []ststypes.PolicyDescriptorType{{Arn: p.Policy.Arn}}, Policy: aws.String(credsAllowed)})
	mustOK(t, "AssumeRole with PolicyArns and Policy", err)
	s = f.redshiftClient(sessionCreds(out))
	_, err = s.DescribeClusters(ctx, &redshift.DescribeClustersInput{})
	mustOK(t, "DescribeClusters (managed session policy)", err)
	_, err = s.GetClusterCredentials(ctx, aliceCreds())
	mustOK(t, "GetClusterCredentials (inline session policy)", err)
	_, err = s.DeleteCluster(ctx, &redshift.DeleteClusterInput{ClusterIdentifier: aws.String("dev-cluster"), SkipFinalClusterSnapshot: aws.Bool(true)})
	wantAPIError(t, err, "AccessDenied")

	_, err = f.stsClient(f.keys["admin"]).AssumeRole(ctx, &sts.AssumeRoleInput{RoleArn: aws.String(roleARN), RoleSessionName: aws.String("sess"),
		PolicyArns: []ststypes.PolicyDescriptorType{{Arn: aws.String("arn:aws:iam::" + account + ":policy/no-such-policy")}}})
	wantAPIError(t, err, "MalformedPolicyDocument")
	var eleven []ststypes.PolicyDescriptorType
	for range 11 {
		eleven = append(eleven, ststypes.PolicyDescriptorType{Arn: p.Policy.Arn})
	}
	_, err = f.stsClient(f.keys["admin"]).AssumeRole(ctx, &sts.AssumeRoleInput{RoleArn: aws.String(roleARN), RoleSessionName: aws.String("sess"), PolicyArns: eleven})
	wantAPIError(t, err, "ValidationError")
}

// A role session that assumes a role gets at most an hour (role chaining).
func TestRoleChainingIsCappedAtOneHour(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	admin := f.iamClient(f.keys["admin"])
	trust := `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::` + account + `:root"},"Action":"sts:AssumeRole"}]}`
	role, err := admin.CreateRole(ctx, &iam.CreateRoleInput{RoleName: aws.String("analyst"), AssumeRolePolicyDocument: aws.String(trust), MaxSessionDuration: aws.Int32(43200)})
	mustOK(t, "CreateRole", err)
	_, err = admin.PutRolePolicy(ctx, &iam.PutRolePolicyInput{RoleName: aws.String("analyst"), PolicyName: aws.String("p"),
		PolicyDocument: aws.String(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"sts:AssumeRole","Resource":"*"}]}`)})
	mustOK(t, "PutRolePolicy", err)
	roleARN := role.Role.Arn
	out, err := f.stsClient(f.keys["admin"]).AssumeRole(ctx, &sts.AssumeRoleInput{RoleArn: roleARN, RoleSessionName: aws.String("first"), DurationSeconds: aws.Int32(43200)})
	mustOK(t, "AssumeRole by a user for 12 hours", err)
	chained := f.stsClient(sessionCreds(out))
	_, err = chained.AssumeRole(ctx, &sts.AssumeRoleInput{RoleArn: roleARN, RoleSessionName: aws.String("second"), DurationSeconds: aws.Int32(3601)})
	wantAPIError(t, err, "ValidationError")
	_, err = chained.AssumeRole(ctx, &sts.AssumeRoleInput{RoleArn: roleARN, RoleSessionName: aws.String("second"), DurationSeconds: aws.Int32(3600)})
	mustOK(t, "chained AssumeRole for an hour", err)
}

// Modifying a domain's association names the cluster it is on: a caller
// allowed on one cluster cannot move another cluster's domain to it.
func TestModifyDomainAssociationStaysOnItsCluster(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	rc := f.client("admin")
	evil := &shiftkey.Cluster{Identifier: "evil", NamespaceID: shiftkey.NewUUID(), NodeType: "dc2.large", DBName: "dev", MasterUsername: "awsuser",
		Status: "available", Endpoint: shiftkey.Endpoint{Address: "127.0.0.1", Port: 5441}, CreatedAt: time.Now()}
	mustOK(t, "CreateCluster evil", f.store.CreateCluster(ctx, evil))
	_, err := rc.CreateCustomDomainAssociation(ctx, &redshift.CreateCustomDomainAssociationInput{ClusterIdentifier: aws.String("dev-cluster"),
		CustomDomainName: aws.String("db.corp.example.com"), CustomDomainCertificateArn: aws.String(certA)})
	mustOK(t, "CreateCustomDomainAssociation", err)
	mallory := f.redshiftClient(f.newIAMUserKey(t, "mallory", `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"redshift:*CustomDomainAssociation*",
		"Resource":"arn:aws:redshift:us-east-1:`+account+`:cluster:evil"}]}`))
	_, err = mallory.ModifyCustomDomainAssociation(ctx, &redshift.ModifyCustomDomainAssociationInput{ClusterIdentifier: aws.String("evil"),
		CustomDomainName: aws.String("db.corp.example.com"), CustomDomainCertificateArn: aws.String(certB)})
	wantAPIError(t, err, "CustomDomainAssociationNotFoundFault")
	out, err := rc.GetClusterCredentials(ctx, &redshift.GetClusterCredentialsInput{CustomDomainName: aws.String("db.corp.example.com"), DbUser: aws.String("alice")})
	mustOK(t, "GetClusterCredentials by the domain", err)
	if u := aws.ToString(out.DbUser); u != "IAM:alice" {
		t.Fatalf("DbUser %q", u)
	}
	_, err = rc.GetClusterCredentials(ctx, &redshift.GetClusterCredentialsInput{CustomDomainName: aws.String("db.corp.example.com"), ClusterIdentifier: aws.String("dev-cluster"), DbUser: aws.String("alice")})
	mustOK(t, "the domain still names dev-cluster", err)
}
