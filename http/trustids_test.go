package http_test

import (
	"context"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/sts"
)

// A trust policy that names a user trusts that user, not a later user of
// the same name.
func TestTrustPolicyNamesTheUserNotItsName(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	assume := `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"sts:AssumeRole","Resource":"*"}]}`
	carol := f.newIAMUserKey(t, "carol", assume)
	roleARN := f.createRole(t, "ops", trustUser("carol"), credsAllowed)
	_, err := f.stsClient(carol).AssumeRole(ctx, &sts.AssumeRoleInput{RoleArn: aws.String(roleARN), RoleSessionName: aws.String("sess")})
	mustOK(t, "AssumeRole by the carol the policy named", err)

	admin := f.iamClient(f.keys["admin"])
	_, err = admin.DeleteUserPolicy(ctx, &iam.DeleteUserPolicyInput{UserName: aws.String("carol"), PolicyName: aws.String("p")})
	mustOK(t, "DeleteUserPolicy", err)
	_, err = admin.DeleteAccessKey(ctx, &iam.DeleteAccessKeyInput{UserName: aws.String("carol"), AccessKeyId: aws.String(carol.AccessKeyID)})
	mustOK(t, "DeleteAccessKey", err)
	_, err = admin.DeleteUser(ctx, &iam.DeleteUserInput{UserName: aws.String("carol")})
	mustOK(t, "DeleteUser", err)
	newCarol := f.newIAMUserKey(t, "carol", assume)
	_, err = f.stsClient(newCarol).AssumeRole(ctx, &sts.AssumeRoleInput{RoleArn: aws.String(roleARN), RoleSessionName: aws.String("sess")})
	wantAPIError(t, err, "AccessDenied")

	// A role created now names the carol that exists now.
	role2 := f.createRole(t, "ops2", trustUser("carol"), credsAllowed)
	_, err = f.stsClient(newCarol).AssumeRole(ctx, &sts.AssumeRoleInput{RoleArn: aws.String(role2), RoleSessionName: aws.String("sess")})
	mustOK(t, "AssumeRole of a role saved after the new carol", err)

	// A role that names a role: its sessions match while it is the same role.
	via := f.createRole(t, "via", trustUser("admin"), `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"sts:AssumeRole","Resource":"*"}]}`)
	target := f.createRole(t, "target", `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::`+account+`:role/via"},"Action":"sts:AssumeRole"}]}`, credsAllowed)
	assumeVia := func() *sts.Client {
		out, err := f.stsClient(f.keys["admin"]).AssumeRole(ctx, &sts.AssumeRoleInput{RoleArn: aws.String(via), RoleSessionName: aws.String("sess")})
		mustOK(t, "AssumeRole via", err)
		return f.stsClient(sessionCreds(out))
	}
	_, err = assumeVia().AssumeRole(ctx, &sts.AssumeRoleInput{RoleArn: aws.String(target), RoleSessionName: aws.String("sess")})
	mustOK(t, "AssumeRole target by a session of via", err)
	f.deleteRole(t, "via")
	f.createRole(t, "via", trustUser("admin"), `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"sts:AssumeRole","Resource":"*"}]}`)
	_, err = assumeVia().AssumeRole(ctx, &sts.AssumeRoleInput{RoleArn: aws.String(target), RoleSessionName: aws.String("sess")})
	wantAPIError(t, err, "AccessDenied")
}

// A trust policy saved while the user it names does not exist trusts no
// one: an attacker who may create users cannot create that name afterwards
// and assume the role (AWS refuses such a policy at CreateRole).
func TestTrustPolicyNamingNoUserTrustsNoLaterOne(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	roleARN := f.createRole(t, "waiting", trustUser("dave"), credsAllowed)
	assume := `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"sts:AssumeRole","Resource":"*"}]}`
	dave := f.newIAMUserKey(t, "dave", assume)
	_, err := f.stsClient(dave).AssumeRole(ctx, &sts.AssumeRoleInput{RoleArn: aws.String(roleARN), RoleSessionName: aws.String("sess")})
	wantAPIError(t, err, "AccessDenied")
}
