package http_test

import (
	"context"
	"errors"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	iamtypes "github.com/aws/aws-sdk-go-v2/service/iam/types"
	"github.com/aws/aws-sdk-go-v2/service/redshift"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	ststypes "github.com/aws/aws-sdk-go-v2/service/sts/types"
	"github.com/aws/smithy-go"
	"github.com/shiftkey/shiftkey"
)

// TestIAMAndSTSSetup does the whole setup with the real iam and sts
// clients, then checks that GetClusterCredentials follows the policies.
func TestIAMAndSTSSetup(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	admin := f.iamClient(f.keys["admin"])
	roleARN := "arn:aws:iam::" + account + ":role/Analyst"

	// A user with a key and an inline policy.
	u, err := admin.CreateUser(ctx, &iam.CreateUserInput{UserName: aws.String("bob"), Tags: []iamtypes.Tag{{Key: aws.String("team"), Value: aws.String("data")}}})
	mustOK(t, "CreateUser", err)
	if aws.ToString(u.User.Arn) != "arn:aws:iam::"+account+":user/bob" || !strings.HasPrefix(aws.ToString(u.User.UserId), "AIDA") {
		t.Fatalf("CreateUser returned %+v", u.User)
	}
	k, err := admin.CreateAccessKey(ctx, &iam.CreateAccessKeyInput{UserName: aws.String("bob")})
	mustOK(t, "CreateAccessKey", err)
	bob := aws.Credentials{AccessKeyID: aws.ToString(k.AccessKey.AccessKeyId), SecretAccessKey: aws.ToString(k.AccessKey.SecretAccessKey)}
	bobPolicy := `{"Version":"2012-10-17","Statement":[
		{"Sid":"OwnDbUser","Effect":"Allow","Action":"redshift:GetClusterCredentials","Resource":"arn:aws:redshift:*:*:dbuser:dev-cluster/${aws:username}"},
		{"Sid":"AssumeAnalyst","Effect":"Allow","Action":["sts:AssumeRole","sts:TagSession"],"Resource":"` + roleARN + `"}]}`
	_, err = admin.PutUserPolicy(ctx, &iam.PutUserPolicyInput{UserName: aws.String("bob"), PolicyName: aws.String("self"), PolicyDocument: aws.String(bobPolicy)})
	mustOK(t, "PutUserPolicy", err)
	got, err := admin.GetUserPolicy(ctx, &iam.GetUserPolicyInput{UserName: aws.String("bob"), PolicyName: aws.String("self")})
	mustOK(t, "GetUserPolicy", err)
	if doc, _ := url.QueryUnescape(aws.ToString(got.PolicyDocument)); doc != bobPolicy {
		t.Fatalf("GetUserPolicy document %q", aws.ToString(got.PolicyDocument))
	}

	id, err := f.stsClient(bob).GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
	mustOK(t, "GetCallerIdentity", err)
	if aws.ToString(id.Arn) != "arn:aws:iam::"+account+":user/bob" || aws.ToString(id.Account) != account {
		t.Fatalf("GetCallerIdentity %+v", id)
	}

	// bob may get credentials for himself only.
	rs := f.redshiftClient(bob)
	_, err = rs.GetClusterCredentials(ctx, &redshift.GetClusterCredentialsInput{ClusterIdentifier: aws.String("dev-cluster"), DbUser: aws.String("bob")})
	mustOK(t, "bob as bob", err)
	_, err = rs.GetClusterCredentials(ctx, &redshift.GetClusterCredentialsInput{ClusterIdentifier: aws.String("dev-cluster"), DbUser: aws.String("carol")})
	if apiCode(err) != "AccessDenied" {
		t.Fatalf("bob as carol: %v", err)
	}

	// A role whose trust policy names the account, with a policy keyed on
	// the session's team tag.
	trust := `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::` + account + `:root"},"Action":["sts:AssumeRole","sts:TagSession"]}]}`
	r, err := admin.CreateRole(ctx, &iam.CreateRoleInput{RoleName: aws.String("Analyst"), AssumeRolePolicyDocument: aws.String(trust)})
	mustOK(t, "CreateRole", err)
	if aws.ToString(r.Role.Arn) != roleARN || !strings.HasPrefix(aws.ToString(r.Role.RoleId), "AROA") {
		t.Fatalf("CreateRole %+v", r.Role)
	}
	rolePolicy := `{"Version":"2012-10-17","Statement":[{"Sid":"TeamUsers","Effect":"Allow","Action":"redshift:GetClusterCredentials",
		"Resource":"arn:aws:redshift:*:*:dbuser:dev-cluster/${aws:PrincipalTag/team}_*"}]}`
	_, err = admin.PutRolePolicy(ctx, &iam.PutRolePolicyInput{RoleName: aws.String("Analyst"), PolicyName: aws.String("team"), PolicyDocument: aws.String(rolePolicy)})
	mustOK(t, "PutRolePolicy", err)

	ar, err := f.stsClient(bob).AssumeRole(ctx, &sts.AssumeRoleInput{RoleArn: aws.String(roleARN), RoleSessionName: aws.String("bob-session"),
		Tags: []ststypes.Tag{{Key: aws.String("team"), Value: aws.String("data")}}})
	mustOK(t, "AssumeRole", err)
	sessionARN := "arn:aws:sts::" + account + ":assumed-role/Analyst/bob-session"
	if aws.ToString(ar.AssumedRoleUser.Arn) != sessionARN || !strings.HasPrefix(aws.ToString(ar.Credentials.AccessKeyId), "ASIA") ||
		aws.ToString(ar.Credentials.SessionToken) == "" {
		t.Fatalf("AssumeRole %+v %+v", ar.AssumedRoleUser, ar.Credentials)
	}
	if d := time.Until(aws.ToTime(ar.Credentials.Expiration)); d < 59*time.Minute || d > time.Hour {
		t.Fatalf("session expires in %v, want 1h", d)
	}
	session := aws.Credentials{AccessKeyID: aws.ToString(ar.Credentials.AccessKeyId), SecretAccessKey: aws.ToString(ar.Credentials.SecretAccessKey),
		SessionToken: aws.ToString(ar.Credentials.SessionToken)}
	id, err = f.stsClient(session).GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
	mustOK(t, "GetCallerIdentity (session)", err)
	if aws.ToString(id.Arn) != sessionARN || aws.ToString(id.UserId) != aws.ToString(r.Role.RoleId)+":bob-session" {
		t.Fatalf("session identity %+v", id)
	}

	srs := f.redshiftClient(session)
	_, err = srs.GetClusterCredentials(ctx, &redshift.GetClusterCredentialsInput{ClusterIdentifier: aws.String("dev-cluster"), DbUser: aws.String("data_reader")})
	mustOK(t, "session as data_reader", err)
	_, err = srs.GetClusterCredentials(ctx, &redshift.GetClusterCredentialsInput{ClusterIdentifier: aws.String("dev-cluster"), DbUser: aws.String("ops_reader")})
	var api smithy.APIError
	if !errors.As(err, &api) || api.ErrorCode() != "AccessDenied" || !strings.HasPrefix(api.ErrorMessage(), "User: "+sessionARN+" is not authorized to perform: redshift:GetClusterCredentials") {
		t.Fatalf("session as ops_reader: %v", err)
	}

	// A session policy narrows the role: intersection.
	narrow := `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"redshift:GetClusterCredentials","Resource":"arn:aws:redshift:*:*:dbuser:dev-cluster/data_writer"}]}`
	ar2, err := f.stsClient(bob).AssumeRole(ctx, &sts.AssumeRoleInput{RoleArn: aws.String(roleARN), RoleSessionName: aws.String("narrow"),
		Policy: aws.String(narrow), Tags: []ststypes.Tag{{Key: aws.String("team"), Value: aws.String("data")}}})
	mustOK(t, "AssumeRole with session policy", err)
	nrs := f.redshiftClient(aws.Credentials{AccessKeyID: aws.ToString(ar2.Credentials.AccessKeyId), SecretAccessKey: aws.ToString(ar2.Credentials.SecretAccessKey), SessionToken: aws.ToString(ar2.Credentials.SessionToken)})
	_, err = nrs.GetClusterCredentials(ctx, &redshift.GetClusterCredentialsInput{ClusterIdentifier: aws.String("dev-cluster"), DbUser: aws.String("data_writer")})
	mustOK(t, "narrowed session as data_writer", err)
	_, err = nrs.GetClusterCredentials(ctx, &redshift.GetClusterCredentialsInput{ClusterIdentifier: aws.String("dev-cluster"), DbUser: aws.String("data_reader")})
	if !errors.As(err, &api) || api.ErrorCode() != "AccessDenied" || !strings.Contains(api.ErrorMessage(), "because no session policy allows") {
		t.Fatalf("narrowed session as data_reader (role allows, session policy does not): %v", err)
	}

	// A session token that does not match is refused; so is an expired session.
	bad := session
	bad.SessionToken = "SKforged"
	if _, err := f.stsClient(bad).GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{}); apiCode(err) != "InvalidClientTokenId" {
		t.Fatalf("forged token: %v", err)
	}
	// A session past its expiry (written directly: the SDK signs with the
	// real clock) is refused with ExpiredToken.
	expired := &shiftkey.Session{AccessKeyID: shiftkey.NewID("ASIA"), Secret: "expired-secret", Token: "SKexpired", RoleName: "Analyst",
		SessionName: "old", SourceARN: "arn:aws:iam::" + account + ":user/bob", CreatedAt: time.Now().Add(-2 * time.Hour), ExpiresAt: time.Now().Add(-time.Hour)}
	mustOK(t, "CreateSession", f.store.CreateSession(ctx, expired))
	old := aws.Credentials{AccessKeyID: expired.AccessKeyID, SecretAccessKey: expired.Secret, SessionToken: expired.Token}
	if _, err := f.redshiftClient(old).GetClusterCredentials(ctx, &redshift.GetClusterCredentialsInput{ClusterIdentifier: aws.String("dev-cluster"), DbUser: aws.String("data_reader")}); apiCode(err) != "ExpiredToken" {
		t.Fatalf("expired session: %v", err)
	}
}

func TestAssumeRoleRefusals(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	admin := f.iamClient(f.keys["admin"])
	onlyAdmin := `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::` + account + `:user/admin"},"Action":"sts:AssumeRole"}]}`
	_, err := admin.CreateRole(ctx, &iam.CreateRoleInput{RoleName: aws.String("AdminOnly"), AssumeRolePolicyDocument: aws.String(onlyAdmin)})
	mustOK(t, "CreateRole", err)
	arn := "arn:aws:iam::" + account + ":role/AdminOnly"

	// Named directly in the trust policy: no identity permission needed.
	_, err = f.stsClient(f.keys["admin"]).AssumeRole(ctx, &sts.AssumeRoleInput{RoleArn: aws.String(arn), RoleSessionName: aws.String("s1")})
	mustOK(t, "admin assumes", err)
	// limited is not in the trust policy.
	_, err = f.stsClient(f.keys["limited"]).AssumeRole(ctx, &sts.AssumeRoleInput{RoleArn: aws.String(arn), RoleSessionName: aws.String("s1")})
	if apiCode(err) != "AccessDenied" {
		t.Fatalf("untrusted caller: %v", err)
	}
	// Tags need sts:TagSession in the trust policy.
	_, err = f.stsClient(f.keys["admin"]).AssumeRole(ctx, &sts.AssumeRoleInput{RoleArn: aws.String(arn), RoleSessionName: aws.String("s1"),
		Tags: []ststypes.Tag{{Key: aws.String("k"), Value: aws.String("v")}}})
	if apiCode(err) != "AccessDenied" || !strings.Contains(err.Error(), "sts:TagSession") {
		t.Fatalf("tags without TagSession: %v", err)
	}
	// Unknown role, bad session name, too long a duration, malformed session policy.
	for name, in := range map[string]*sts.AssumeRoleInput{
		"AccessDenied":            {RoleArn: aws.String("arn:aws:iam::" + account + ":role/Nope"), RoleSessionName: aws.String("s1")},
		"ValidationError":         {RoleArn: aws.String(arn), RoleSessionName: aws.String("bad name")},
		"MalformedPolicyDocument": {RoleArn: aws.String(arn), RoleSessionName: aws.String("s1"), Policy: aws.String(`{"Statement":[{"Effect":"Maybe"}]}`)},
	} {
		_, err := f.stsClient(f.keys["admin"]).AssumeRole(ctx, in)
		if apiCode(err) != name {
			t.Errorf("%s: got %v", name, err)
		}
	}
	_, err = f.stsClient(f.keys["admin"]).AssumeRole(ctx, &sts.AssumeRoleInput{RoleArn: aws.String(arn), RoleSessionName: aws.String("s1"), DurationSeconds: aws.Int32(7200)})
	if apiCode(err) != "ValidationError" {
		t.Fatalf("duration over MaxSessionDuration: %v", err)
	}
}

func TestIAMErrors(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	admin := f.iamClient(f.keys["admin"])

	_, err := admin.CreateUser(ctx, &iam.CreateUserInput{UserName: aws.String("dup")})
	mustOK(t, "CreateUser", err)
	_, err = admin.CreateUser(ctx, &iam.CreateUserInput{UserName: aws.String("DUP")})
	var exists *iamtypes.EntityAlreadyExistsException
	if !errors.As(err, &exists) {
		t.Fatalf("duplicate user (case-insensitive): %v", err)
	}
	_, err = admin.GetUser(ctx, &iam.GetUserInput{UserName: aws.String("ghost")})
	var nse *iamtypes.NoSuchEntityException
	if !errors.As(err, &nse) {
		t.Fatalf("missing user: %v", err)
	}
	_, err = admin.PutUserPolicy(ctx, &iam.PutUserPolicyInput{UserName: aws.String("dup"), PolicyName: aws.String("p"),
		PolicyDocument: aws.String(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:*","Resource":"*","Condition":{"StringEqualz":{"a":"b"}}}]}`)})
	var mal *iamtypes.MalformedPolicyDocumentException
	if !errors.As(err, &mal) || !strings.Contains(mal.ErrorMessage(), "StringEqualz") {
		t.Fatalf("malformed policy: %v", err)
	}
	_, err = admin.CreateAccessKey(ctx, &iam.CreateAccessKeyInput{UserName: aws.String("dup")})
	mustOK(t, "CreateAccessKey", err)
	_, err = admin.DeleteUser(ctx, &iam.DeleteUserInput{UserName: aws.String("dup")})
	var conflict *iamtypes.DeleteConflictException
	if !errors.As(err, &conflict) {
		t.Fatalf("delete user with a key: %v", err)
	}
	_, err = admin.CreateUser(ctx, &iam.CreateUserInput{UserName: aws.String("bad/name")})
	if apiCode(err) != "ValidationError" {
		t.Fatalf("bad user name: %v", err)
	}
	_, err = admin.CreateRole(ctx, &iam.CreateRoleInput{RoleName: aws.String("r"), AssumeRolePolicyDocument: aws.String(`{"Statement":[{"Effect":"Allow","Action":"sts:AssumeRole"}]}`)})
	if !errors.As(err, &mal) {
		t.Fatalf("trust policy without Principal: %v", err)
	}
	// A user without IAM permissions is refused.
	_, err = f.iamClient(f.keys["limited"]).CreateUser(ctx, &iam.CreateUserInput{UserName: aws.String("sneaky")})
	if apiCode(err) != "AccessDenied" || !strings.Contains(err.Error(), "iam:CreateUser") {
		t.Fatalf("limited CreateUser: %v", err)
	}
}

// Groups, managed policies, attachment, tags and key status all take part
// in decisions.
func TestGroupsManagedPoliciesAndKeys(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	admin := f.iamClient(f.keys["admin"])
	_, err := admin.CreateUser(ctx, &iam.CreateUserInput{UserName: aws.String("gina")})
	mustOK(t, "CreateUser", err)
	k, err := admin.CreateAccessKey(ctx, &iam.CreateAccessKeyInput{UserName: aws.String("gina")})
	mustOK(t, "CreateAccessKey", err)
	gina := aws.Credentials{AccessKeyID: aws.ToString(k.AccessKey.AccessKeyId), SecretAccessKey: aws.ToString(k.AccessKey.SecretAccessKey)}
	rs := f.redshiftClient(gina)
	call := func() error {
		_, err := rs.GetClusterCredentials(ctx, &redshift.GetClusterCredentialsInput{ClusterIdentifier: aws.String("dev-cluster"), DbUser: aws.String("gina")})
		return err
	}
	if apiCode(call()) != "AccessDenied" {
		t.Fatal("gina allowed before any policy")
	}
	_, err = admin.CreateGroup(ctx, &iam.CreateGroupInput{GroupName: aws.String("analysts")})
	mustOK(t, "CreateGroup", err)
	p, err := admin.CreatePolicy(ctx, &iam.CreatePolicyInput{PolicyName: aws.String("creds"),
		PolicyDocument: aws.String(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"redshift:GetClusterCredentials","Resource":"*"}]}`)})
	mustOK(t, "CreatePolicy", err)
	_, err = admin.AttachGroupPolicy(ctx, &iam.AttachGroupPolicyInput{GroupName: aws.String("analysts"), PolicyArn: p.Policy.Arn})
	mustOK(t, "AttachGroupPolicy", err)
	_, err = admin.AddUserToGroup(ctx, &iam.AddUserToGroupInput{GroupName: aws.String("analysts"), UserName: aws.String("gina")})
	mustOK(t, "AddUserToGroup", err)
	mustOK(t, "gina through her group's managed policy", call())
	gp, err := admin.GetPolicy(ctx, &iam.GetPolicyInput{PolicyArn: p.Policy.Arn})
	mustOK(t, "GetPolicy", err)
	if aws.ToInt32(gp.Policy.AttachmentCount) != 1 {
		t.Fatalf("AttachmentCount %d", aws.ToInt32(gp.Policy.AttachmentCount))
	}
	if _, err := admin.DeletePolicy(ctx, &iam.DeletePolicyInput{PolicyArn: p.Policy.Arn}); apiCode(err) != "DeleteConflict" {
		t.Fatalf("delete attached policy: %v", err)
	}
	groups, err := admin.ListGroupsForUser(ctx, &iam.ListGroupsForUserInput{UserName: aws.String("gina")})
	mustOK(t, "ListGroupsForUser", err)
	if len(groups.Groups) != 1 || aws.ToString(groups.Groups[0].GroupName) != "analysts" {
		t.Fatalf("groups %+v", groups.Groups)
	}
	// A group inline Deny wins over the managed Allow.
	_, err = admin.PutGroupPolicy(ctx, &iam.PutGroupPolicyInput{GroupName: aws.String("analysts"), PolicyName: aws.String("deny"),
		PolicyDocument: aws.String(`{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Action":"redshift:*","NotResource":"arn:aws:redshift:*:*:dbuser:dev-cluster/svc_*"}]}`)})
	mustOK(t, "PutGroupPolicy", err)
	if err := call(); apiCode(err) != "AccessDenied" || !strings.Contains(err.Error(), "explicit deny") {
		t.Fatalf("explicit deny via NotResource: %v", err)
	}
	_, err = admin.DeleteGroupPolicy(ctx, &iam.DeleteGroupPolicyInput{GroupName: aws.String("analysts"), PolicyName: aws.String("deny")})
	mustOK(t, "DeleteGroupPolicy", err)
	_, err = admin.RemoveUserFromGroup(ctx, &iam.RemoveUserFromGroupInput{GroupName: aws.String("analysts"), UserName: aws.String("gina")})
	mustOK(t, "RemoveUserFromGroup", err)
	if apiCode(call()) != "AccessDenied" {
		t.Fatal("gina still allowed after leaving the group")
	}
	_, err = admin.AttachUserPolicy(ctx, &iam.AttachUserPolicyInput{UserName: aws.String("gina"), PolicyArn: p.Policy.Arn})
	mustOK(t, "AttachUserPolicy", err)
	mustOK(t, "gina through a user-attached policy", call())

	// An inactive key stops authenticating; reactivated, it works again.
	_, err = admin.UpdateAccessKey(ctx, &iam.UpdateAccessKeyInput{UserName: aws.String("gina"), AccessKeyId: aws.String(gina.AccessKeyID), Status: iamtypes.StatusTypeInactive})
	mustOK(t, "UpdateAccessKey", err)
	if apiCode(call()) != "InvalidClientTokenId" {
		t.Fatal("inactive key accepted")
	}
	_, err = admin.UpdateAccessKey(ctx, &iam.UpdateAccessKeyInput{UserName: aws.String("gina"), AccessKeyId: aws.String(gina.AccessKeyID), Status: iamtypes.StatusTypeActive})
	mustOK(t, "UpdateAccessKey", err)
	mustOK(t, "reactivated key", call())
	keys, err := admin.ListAccessKeys(ctx, &iam.ListAccessKeysInput{UserName: aws.String("gina")})
	mustOK(t, "ListAccessKeys", err)
	if len(keys.AccessKeyMetadata) != 1 || aws.ToString(keys.AccessKeyMetadata[0].AccessKeyId) != gina.AccessKeyID {
		t.Fatalf("keys %+v", keys.AccessKeyMetadata)
	}

	// Tags round trip and feed aws:PrincipalTag.
	_, err = admin.TagUser(ctx, &iam.TagUserInput{UserName: aws.String("gina"), Tags: []iamtypes.Tag{{Key: aws.String("RedshiftDbRoles"), Value: aws.String("a:b")}}})
	mustOK(t, "TagUser", err)
	gu, err := admin.GetUser(ctx, &iam.GetUserInput{UserName: aws.String("gina")})
	mustOK(t, "GetUser", err)
	if len(gu.User.Tags) != 1 || aws.ToString(gu.User.Tags[0].Value) != "a:b" {
		t.Fatalf("tags %+v", gu.User.Tags)
	}
	_, err = admin.UntagUser(ctx, &iam.UntagUserInput{UserName: aws.String("gina"), TagKeys: []string{"RedshiftDbRoles"}})
	mustOK(t, "UntagUser", err)
	users, err := admin.ListUsers(ctx, &iam.ListUsersInput{})
	mustOK(t, "ListUsers", err)
	if len(users.Users) != 4 {
		t.Fatalf("ListUsers: %d users", len(users.Users))
	}
	pager := iam.NewListUsersPaginator(admin, &iam.ListUsersInput{MaxItems: aws.Int32(3)})
	n := 0
	for pager.HasMorePages() {
		page, err := pager.NextPage(ctx)
		mustOK(t, "ListUsers page", err)
		n += len(page.Users)
	}
	if n != 4 {
		t.Fatalf("paginated ListUsers: %d", n)
	}
}

// aws:ResourceTag/* comes from the user or role acted on; aws:TagKeys and
// aws:RequestTag/* from the tags a call sets.
func TestIAMTagConditions(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	admin := f.iamClient(f.keys["admin"])
	for name, team := range map[string]string{"dana": "data", "otto": "ops"} {
		_, err := admin.CreateUser(ctx, &iam.CreateUserInput{UserName: aws.String(name), Tags: []iamtypes.Tag{{Key: aws.String("team"), Value: aws.String(team)}}})
		mustOK(t, "CreateUser", err)
	}
	_, err := admin.CreateUser(ctx, &iam.CreateUserInput{UserName: aws.String("lead")})
	mustOK(t, "CreateUser", err)
	_, err = admin.PutUserPolicy(ctx, &iam.PutUserPolicyInput{UserName: aws.String("lead"), PolicyName: aws.String("team"), PolicyDocument: aws.String(`{"Version":"2012-10-17","Statement":[
		{"Effect":"Allow","Action":"iam:GetUser","Resource":"*","Condition":{"StringEquals":{"aws:ResourceTag/team":"data"}}},
		{"Effect":"Allow","Action":"iam:TagUser","Resource":"*","Condition":{"ForAllValues:StringEquals":{"aws:TagKeys":["project"]}}}]}`)})
	mustOK(t, "PutUserPolicy", err)
	k, err := admin.CreateAccessKey(ctx, &iam.CreateAccessKeyInput{UserName: aws.String("lead")})
	mustOK(t, "CreateAccessKey", err)
	lead := f.iamClient(aws.Credentials{AccessKeyID: aws.ToString(k.AccessKey.AccessKeyId), SecretAccessKey: aws.ToString(k.AccessKey.SecretAccessKey)})
	_, err = lead.GetUser(ctx, &iam.GetUserInput{UserName: aws.String("dana")})
	mustOK(t, "GetUser on a data user", err)
	if _, err := lead.GetUser(ctx, &iam.GetUserInput{UserName: aws.String("otto")}); apiCode(err) != "AccessDenied" {
		t.Fatalf("GetUser on an ops user: %v", err)
	}
	_, err = lead.TagUser(ctx, &iam.TagUserInput{UserName: aws.String("otto"), Tags: []iamtypes.Tag{{Key: aws.String("project"), Value: aws.String("x")}}})
	mustOK(t, "TagUser with an allowed key", err)
	if _, err := lead.TagUser(ctx, &iam.TagUserInput{UserName: aws.String("otto"), Tags: []iamtypes.Tag{{Key: aws.String("team"), Value: aws.String("data")}}}); apiCode(err) != "AccessDenied" {
		t.Fatalf("TagUser with a key outside aws:TagKeys: %v", err)
	}
}
