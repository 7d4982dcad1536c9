package http_test

import (
	"context"
	"net/url"
	"slices"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/iam/types"
	"github.com/aws/aws-sdk-go-v2/service/redshift"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/shiftkey/shiftkey"
	shttp "github.com/shiftkey/shiftkey/http"
)

// UpdateUser renames a user and moves it to another path: it keeps its id,
// creation date, access keys (its key signs as the new ARN), groups,
// inline and attached policies and tags, and the old name is gone. Served
// through storecache, as serve and dev do, so that nothing is answered
// from an entry kept under the old name.
func TestUpdateUserRenames(t *testing.T) {
	f := newCachedFixture(t)
	ctx := context.Background()
	admin := f.iamClient(f.keys["admin"])
	const self = `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"iam:GetUser","Resource":"*"}]}`
	bobKey := f.newIAMUserKey(t, "bob", self)
	bob := f.iamClient(bobKey)
	_, err := admin.TagUser(ctx, &iam.TagUserInput{UserName: aws.String("bob"), Tags: []types.Tag{{Key: aws.String("team"), Value: aws.String("data")}}})
	mustOK(t, "TagUser", err)
	_, err = admin.CreateGroup(ctx, &iam.CreateGroupInput{GroupName: aws.String("devs")})
	mustOK(t, "CreateGroup", err)
	_, err = admin.AddUserToGroup(ctx, &iam.AddUserToGroupInput{GroupName: aws.String("devs"), UserName: aws.String("bob")})
	mustOK(t, "AddUserToGroup", err)
	arn := tfCreatePolicy(t, admin, "bob-managed")
	_, err = admin.AttachUserPolicy(ctx, &iam.AttachUserPolicyInput{UserName: aws.String("bob"), PolicyArn: aws.String(arn)})
	mustOK(t, "AttachUserPolicy", err)
	before, err := bob.GetUser(ctx, &iam.GetUserInput{})
	mustOK(t, "GetUser as bob", err)

	_, err = admin.UpdateUser(ctx, &iam.UpdateUserInput{UserName: aws.String("bob"), NewUserName: aws.String("robert"), NewPath: aws.String("/eng/")})
	mustOK(t, "UpdateUser bob → robert", err)

	u, err := admin.GetUser(ctx, &iam.GetUserInput{UserName: aws.String("robert")})
	mustOK(t, "GetUser robert", err)
	want := "arn:aws:iam::" + account + ":user/eng/robert"
	if aws.ToString(u.User.Arn) != want || aws.ToString(u.User.Path) != "/eng/" || aws.ToString(u.User.UserId) != aws.ToString(before.User.UserId) ||
		!aws.ToTime(u.User.CreateDate).Equal(aws.ToTime(before.User.CreateDate)) || tagString(u.User.Tags) != "team=data" {
		t.Fatalf("robert: %s %s id %s created %v tags %s; want %s, /eng/, bob's id %s and creation %v, team=data",
			aws.ToString(u.User.Arn), aws.ToString(u.User.Path), aws.ToString(u.User.UserId), aws.ToTime(u.User.CreateDate), tagString(u.User.Tags),
			want, aws.ToString(before.User.UserId), aws.ToTime(before.User.CreateDate))
	}
	_, err = admin.GetUser(ctx, &iam.GetUserInput{UserName: aws.String("bob")})
	wantAPIError(t, err, shiftkey.CodeNoSuchEntity)
	// bob's key is robert's now, and signs as him.
	me, err := bob.GetUser(ctx, &iam.GetUserInput{})
	mustOK(t, "GetUser with bob's key after the rename", err)
	if aws.ToString(me.User.Arn) != want {
		t.Fatalf("bob's key signs as %s, want %s", aws.ToString(me.User.Arn), want)
	}
	ks, err := admin.ListAccessKeys(ctx, &iam.ListAccessKeysInput{UserName: aws.String("robert")})
	mustOK(t, "ListAccessKeys robert", err)
	if len(ks.AccessKeyMetadata) != 1 || aws.ToString(ks.AccessKeyMetadata[0].AccessKeyId) != bobKey.AccessKeyID || aws.ToString(ks.AccessKeyMetadata[0].UserName) != "robert" {
		t.Fatalf("robert's keys %+v, want bob's key %s", ks.AccessKeyMetadata, bobKey.AccessKeyID)
	}
	inline, err := admin.ListUserPolicies(ctx, &iam.ListUserPoliciesInput{UserName: aws.String("robert")})
	mustOK(t, "ListUserPolicies robert", err)
	attached, err := admin.ListAttachedUserPolicies(ctx, &iam.ListAttachedUserPoliciesInput{UserName: aws.String("robert")})
	mustOK(t, "ListAttachedUserPolicies robert", err)
	gs, err := admin.ListGroupsForUser(ctx, &iam.ListGroupsForUserInput{UserName: aws.String("robert")})
	mustOK(t, "ListGroupsForUser robert", err)
	g, err := admin.GetGroup(ctx, &iam.GetGroupInput{GroupName: aws.String("devs")})
	mustOK(t, "GetGroup devs", err)
	es, err := admin.ListEntitiesForPolicy(ctx, &iam.ListEntitiesForPolicyInput{PolicyArn: aws.String(arn)})
	mustOK(t, "ListEntitiesForPolicy", err)
	if len(inline.PolicyNames) != 1 || len(attached.AttachedPolicies) != 1 || len(gs.Groups) != 1 || len(g.Users) != 1 ||
		aws.ToString(g.Users[0].UserName) != "robert" || len(es.PolicyUsers) != 1 || aws.ToString(es.PolicyUsers[0].UserName) != "robert" {
		t.Fatalf("robert: inline %v, attached %d, groups %d, devs' members %d, policy users %d; want bob's, under robert",
			inline.PolicyNames, len(attached.AttachedPolicies), len(gs.Groups), len(g.Users), len(es.PolicyUsers))
	}
	for _, read := range []func() error{
		func() error {
			_, err := admin.ListUserTags(ctx, &iam.ListUserTagsInput{UserName: aws.String("bob")})
			return err
		},
		func() error {
			_, err := admin.ListUserPolicies(ctx, &iam.ListUserPoliciesInput{UserName: aws.String("bob")})
			return err
		},
		func() error {
			_, err := admin.ListAccessKeys(ctx, &iam.ListAccessKeysInput{UserName: aws.String("bob")})
			return err
		},
	} {
		if err := read(); apiCode(err) != shiftkey.CodeNoSuchEntity {
			t.Fatalf("a read of bob after the rename: %v, want NoSuchEntity", err)
		}
	}

	// Only a new path; then the name in another case (the same user, as
	// names are unique regardless of case); then nothing new: all OK.
	_, err = admin.UpdateUser(ctx, &iam.UpdateUserInput{UserName: aws.String("robert"), NewPath: aws.String("/")})
	mustOK(t, "UpdateUser robert NewPath /", err)
	_, err = admin.UpdateUser(ctx, &iam.UpdateUserInput{UserName: aws.String("robert"), NewUserName: aws.String("Robert")})
	mustOK(t, "UpdateUser robert → Robert", err)
	_, err = admin.UpdateUser(ctx, &iam.UpdateUserInput{UserName: aws.String("Robert"), NewUserName: aws.String("Robert"), NewPath: aws.String("/")})
	mustOK(t, "UpdateUser Robert → Robert", err)
	u, err = admin.GetUser(ctx, &iam.GetUserInput{UserName: aws.String("robert")})
	mustOK(t, "GetUser Robert", err)
	if aws.ToString(u.User.UserName) != "Robert" || aws.ToString(u.User.Arn) != "arn:aws:iam::"+account+":user/Robert" {
		t.Fatalf("after the case change: %s %s", aws.ToString(u.User.UserName), aws.ToString(u.User.Arn))
	}
}

// UpdateUser and UpdateGroup answer as IAM: NoSuchEntity 404 for an
// unknown name, EntityAlreadyExists 409 for a name another user or group
// has (in any case), ValidationError 400 for a bad name or path; and a
// refused call changes nothing.
func TestUpdateUserAndGroupErrors(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	admin := f.iamClient(f.keys["admin"])
	for _, g := range []string{"ops", "devs"} {
		_, err := admin.CreateGroup(ctx, &iam.CreateGroupInput{GroupName: aws.String(g)})
		mustOK(t, "CreateGroup "+g, err)
	}
	_, err := admin.CreateUser(ctx, &iam.CreateUserInput{UserName: aws.String("carol")})
	mustOK(t, "CreateUser carol", err)
	for _, c := range []struct {
		what   string
		call   func() error
		code   string
		status int
	}{
		{"UpdateUser of a missing user", func() error {
			_, err := admin.UpdateUser(ctx, &iam.UpdateUserInput{UserName: aws.String("nobody"), NewUserName: aws.String("somebody")})
			return err
		}, shiftkey.CodeNoSuchEntity, 404},
		{"UpdateUser to a taken name", func() error {
			_, err := admin.UpdateUser(ctx, &iam.UpdateUserInput{UserName: aws.String("carol"), NewUserName: aws.String("admin")})
			return err
		}, shiftkey.CodeEntityAlreadyExists, 409},
		{"UpdateUser to a taken name in another case", func() error {
			_, err := admin.UpdateUser(ctx, &iam.UpdateUserInput{UserName: aws.String("carol"), NewUserName: aws.String("ADMIN")})
			return err
		}, shiftkey.CodeEntityAlreadyExists, 409},
		{"UpdateUser to a bad name", func() error {
			_, err := admin.UpdateUser(ctx, &iam.UpdateUserInput{UserName: aws.String("carol"), NewUserName: aws.String("car ol")})
			return err
		}, "ValidationError", 400},
		{"UpdateUser to a bad path", func() error {
			_, err := admin.UpdateUser(ctx, &iam.UpdateUserInput{UserName: aws.String("carol"), NewPath: aws.String("eng")})
			return err
		}, "ValidationError", 400},
		{"UpdateGroup of a missing group", func() error {
			_, err := admin.UpdateGroup(ctx, &iam.UpdateGroupInput{GroupName: aws.String("nobody"), NewGroupName: aws.String("somebody")})
			return err
		}, shiftkey.CodeNoSuchEntity, 404},
		{"UpdateGroup to a taken name", func() error {
			_, err := admin.UpdateGroup(ctx, &iam.UpdateGroupInput{GroupName: aws.String("ops"), NewGroupName: aws.String("DEVS")})
			return err
		}, shiftkey.CodeEntityAlreadyExists, 409},
		{"UpdateGroup to a bad name", func() error {
			_, err := admin.UpdateGroup(ctx, &iam.UpdateGroupInput{GroupName: aws.String("ops"), NewGroupName: aws.String("o/ps")})
			return err
		}, "ValidationError", 400},
		{"UpdateGroup to a bad path", func() error {
			_, err := admin.UpdateGroup(ctx, &iam.UpdateGroupInput{GroupName: aws.String("ops"), NewPath: aws.String("/a b/")})
			return err
		}, "ValidationError", 400},
	} {
		if err := c.call(); apiCode(err) != c.code || httpStatus(err) != c.status {
			t.Errorf("%s: %v (HTTP %d), want %s %d", c.what, err, httpStatus(err), c.code, c.status)
		}
	}
	for _, g := range []string{"ops", "devs"} {
		got, err := admin.GetGroup(ctx, &iam.GetGroupInput{GroupName: aws.String(g)})
		mustOK(t, "GetGroup "+g, err)
		if aws.ToString(got.Group.GroupName) != g || aws.ToString(got.Group.Path) != "/" {
			t.Errorf("group %s after the refused calls: %s %s", g, aws.ToString(got.Group.GroupName), aws.ToString(got.Group.Path))
		}
	}
	u, err := admin.GetUser(ctx, &iam.GetUserInput{UserName: aws.String("carol")})
	mustOK(t, "GetUser carol", err)
	if aws.ToString(u.User.UserName) != "carol" || aws.ToString(u.User.Path) != "/" {
		t.Errorf("carol after the refused calls: %s %s", aws.ToString(u.User.UserName), aws.ToString(u.User.Path))
	}
}

// A rename needs the action on both the entity's ARN and the ARN it will
// have ("the requester must have appropriate permissions on both the
// source object and the target object"): allowed on the old one only, it
// is AccessDenied 403 and nothing changes; allowed on both, it is done.
func TestRenameNeedsBothARNs(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	admin := f.iamClient(f.keys["admin"])
	_, err := admin.CreateUser(ctx, &iam.CreateUserInput{UserName: aws.String("dave")})
	mustOK(t, "CreateUser dave", err)
	_, err = admin.CreateGroup(ctx, &iam.CreateGroupInput{GroupName: aws.String("team")})
	mustOK(t, "CreateGroup team", err)
	const oldOnly = `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["iam:UpdateUser","iam:UpdateGroup"],
		"Resource":["arn:aws:iam::` + account + `:user/dave","arn:aws:iam::` + account + `:group/team"]}]}`
	renamer := f.newIAMUser(t, "renamer", oldOnly)
	_, err = renamer.UpdateUser(ctx, &iam.UpdateUserInput{UserName: aws.String("dave"), NewUserName: aws.String("david")})
	if apiCode(err) != "AccessDenied" || httpStatus(err) != 403 {
		t.Fatalf("UpdateUser allowed on the old ARN only: %v, want AccessDenied 403", err)
	}
	_, err = renamer.UpdateUser(ctx, &iam.UpdateUserInput{UserName: aws.String("dave"), NewPath: aws.String("/moved/")})
	if apiCode(err) != "AccessDenied" {
		t.Fatalf("UpdateUser to a new path allowed on the old ARN only: %v, want AccessDenied", err)
	}
	_, err = renamer.UpdateGroup(ctx, &iam.UpdateGroupInput{GroupName: aws.String("team"), NewGroupName: aws.String("squad")})
	if apiCode(err) != "AccessDenied" || httpStatus(err) != 403 {
		t.Fatalf("UpdateGroup allowed on the old ARN only: %v, want AccessDenied 403", err)
	}
	u, err := admin.GetUser(ctx, &iam.GetUserInput{UserName: aws.String("dave")})
	mustOK(t, "GetUser dave after the refused rename", err)
	if aws.ToString(u.User.Path) != "/" {
		t.Fatalf("dave's path after the refused rename: %s", aws.ToString(u.User.Path))
	}
	_, err = admin.GetGroup(ctx, &iam.GetGroupInput{GroupName: aws.String("team")})
	mustOK(t, "GetGroup team after the refused rename", err)

	const both = `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["iam:UpdateUser","iam:UpdateGroup"],
		"Resource":["arn:aws:iam::` + account + `:user/dave","arn:aws:iam::` + account + `:user/david",
		"arn:aws:iam::` + account + `:group/team","arn:aws:iam::` + account + `:group/squad"]}]}`
	_, err = admin.PutUserPolicy(ctx, &iam.PutUserPolicyInput{UserName: aws.String("renamer"), PolicyName: aws.String("p"), PolicyDocument: aws.String(both)})
	mustOK(t, "PutUserPolicy", err)
	_, err = renamer.UpdateUser(ctx, &iam.UpdateUserInput{UserName: aws.String("dave"), NewUserName: aws.String("david")})
	mustOK(t, "UpdateUser allowed on both ARNs", err)
	_, err = renamer.UpdateGroup(ctx, &iam.UpdateGroupInput{GroupName: aws.String("team"), NewGroupName: aws.String("squad")})
	mustOK(t, "UpdateGroup allowed on both ARNs", err)
	_, err = admin.GetUser(ctx, &iam.GetUserInput{UserName: aws.String("david")})
	mustOK(t, "GetUser david", err)
	_, err = admin.GetGroup(ctx, &iam.GetGroupInput{GroupName: aws.String("squad")})
	mustOK(t, "GetGroup squad", err)
}

// UpdateGroup renames a group and moves it: it keeps its id, creation
// date, members, inline and attached policies, and its members' policy
// evaluation sees it under the new name.
func TestUpdateGroupRenames(t *testing.T) {
	f := newCachedFixture(t)
	ctx := context.Background()
	admin := f.iamClient(f.keys["admin"])
	_, err := admin.CreateGroup(ctx, &iam.CreateGroupInput{GroupName: aws.String("readers")})
	mustOK(t, "CreateGroup", err)
	erin := f.newIAMUser(t, "erin", "")
	_, err = admin.AddUserToGroup(ctx, &iam.AddUserToGroupInput{GroupName: aws.String("readers"), UserName: aws.String("erin")})
	mustOK(t, "AddUserToGroup", err)
	_, err = admin.PutGroupPolicy(ctx, &iam.PutGroupPolicyInput{GroupName: aws.String("readers"), PolicyName: aws.String("list"), PolicyDocument: aws.String(
		`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"iam:ListUsers","Resource":"*"}]}`)})
	mustOK(t, "PutGroupPolicy", err)
	arn := tfCreatePolicy(t, admin, "readers-managed")
	_, err = admin.AttachGroupPolicy(ctx, &iam.AttachGroupPolicyInput{GroupName: aws.String("readers"), PolicyArn: aws.String(arn)})
	mustOK(t, "AttachGroupPolicy", err)
	before, err := admin.GetGroup(ctx, &iam.GetGroupInput{GroupName: aws.String("readers")})
	mustOK(t, "GetGroup", err)
	_, err = erin.ListUsers(ctx, &iam.ListUsersInput{})
	mustOK(t, "ListUsers as erin, through readers' policy", err)

	_, err = admin.UpdateGroup(ctx, &iam.UpdateGroupInput{GroupName: aws.String("readers"), NewGroupName: aws.String("viewers"), NewPath: aws.String("/org/")})
	mustOK(t, "UpdateGroup readers → viewers", err)

	g, err := admin.GetGroup(ctx, &iam.GetGroupInput{GroupName: aws.String("viewers")})
	mustOK(t, "GetGroup viewers", err)
	want := "arn:aws:iam::" + account + ":group/org/viewers"
	if aws.ToString(g.Group.Arn) != want || aws.ToString(g.Group.GroupId) != aws.ToString(before.Group.GroupId) ||
		!aws.ToTime(g.Group.CreateDate).Equal(aws.ToTime(before.Group.CreateDate)) || len(g.Users) != 1 || aws.ToString(g.Users[0].UserName) != "erin" {
		t.Fatalf("viewers: %s id %s created %v members %d; want %s, readers' id %s and creation, erin",
			aws.ToString(g.Group.Arn), aws.ToString(g.Group.GroupId), aws.ToTime(g.Group.CreateDate), len(g.Users), want, aws.ToString(before.Group.GroupId))
	}
	_, err = admin.GetGroup(ctx, &iam.GetGroupInput{GroupName: aws.String("readers")})
	wantAPIError(t, err, shiftkey.CodeNoSuchEntity)
	gs, err := admin.ListGroupsForUser(ctx, &iam.ListGroupsForUserInput{UserName: aws.String("erin")})
	mustOK(t, "ListGroupsForUser erin", err)
	inline, err := admin.ListGroupPolicies(ctx, &iam.ListGroupPoliciesInput{GroupName: aws.String("viewers")})
	mustOK(t, "ListGroupPolicies viewers", err)
	attached, err := admin.ListAttachedGroupPolicies(ctx, &iam.ListAttachedGroupPoliciesInput{GroupName: aws.String("viewers")})
	mustOK(t, "ListAttachedGroupPolicies viewers", err)
	es, err := admin.ListEntitiesForPolicy(ctx, &iam.ListEntitiesForPolicyInput{PolicyArn: aws.String(arn)})
	mustOK(t, "ListEntitiesForPolicy", err)
	if len(gs.Groups) != 1 || aws.ToString(gs.Groups[0].Arn) != want || !slices.Equal(inline.PolicyNames, []string{"list"}) ||
		len(attached.AttachedPolicies) != 1 || len(es.PolicyGroups) != 1 || aws.ToString(es.PolicyGroups[0].GroupName) != "viewers" {
		t.Fatalf("after the rename: erin's groups %+v, inline %v, attached %d, policy groups %d", gs.Groups, inline.PolicyNames, len(attached.AttachedPolicies), len(es.PolicyGroups))
	}
	_, err = erin.ListUsers(ctx, &iam.ListUsersInput{})
	mustOK(t, "ListUsers as erin, through viewers' policy", err)
}

// Renames are recorded as the other IAM writes are: eventName UpdateUser /
// UpdateGroup, not read-only, with what was asked (old name, new name,
// new path) and, when refused, the error; and a renamed user's key, which
// keeps signing, is recorded under the user's new name and ARN.
func TestAuditRenames(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	path := f.audited(t)
	admin := f.iamClient(f.keys["admin"])
	const self = `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"iam:GetUser","Resource":"*"}]}`
	frank := f.iamClient(f.newIAMUserKey(t, "frank", self))
	_, err := admin.UpdateUser(ctx, &iam.UpdateUserInput{UserName: aws.String("frank"), NewUserName: aws.String("francis"), NewPath: aws.String("/eng/")})
	mustOK(t, "UpdateUser", err)
	r := lastRecord(t, path)
	if r.EventName != "UpdateUser" || r.EventSource != "iam.amazonaws.com" || r.ReadOnly == nil || *r.ReadOnly || r.ErrorCode != "" ||
		r.RequestParameters["userName"] != "frank" || r.RequestParameters["newUserName"] != "francis" || r.RequestParameters["newPath"] != "/eng/" {
		t.Fatalf("record of UpdateUser: %s %s readOnly %v error %q parameters %v", r.EventSource, r.EventName, r.ReadOnly, r.ErrorCode, r.RequestParameters)
	}
	_, err = frank.GetUser(ctx, &iam.GetUserInput{})
	mustOK(t, "GetUser with frank's key", err)
	r = lastRecord(t, path)
	if r.UserIdentity.UserName != "francis" || r.UserIdentity.ARN != "arn:aws:iam::"+account+":user/eng/francis" {
		t.Fatalf("record of a call by the renamed user: %+v", r.UserIdentity)
	}
	_, err = admin.CreateGroup(ctx, &iam.CreateGroupInput{GroupName: aws.String("crew")})
	mustOK(t, "CreateGroup", err)
	_, err = frank.UpdateGroup(ctx, &iam.UpdateGroupInput{GroupName: aws.String("crew"), NewGroupName: aws.String("gang")})
	if apiCode(err) != "AccessDenied" {
		t.Fatalf("UpdateGroup by francis: %v, want AccessDenied", err)
	}
	r = lastRecord(t, path)
	if r.EventName != "UpdateGroup" || r.ErrorCode != "AccessDenied" || r.RequestParameters["groupName"] != "crew" || r.RequestParameters["newGroupName"] != "gang" {
		t.Fatalf("record of the refused UpdateGroup: %s error %q parameters %v", r.EventName, r.ErrorCode, r.RequestParameters)
	}
}

// A credential issued before a rename keeps the login it was issued for
// ("IAM:gina": a database login, not an IAM entity); the renamed user's
// next GetClusterCredentialsWithIAM is for its new name.
func TestRenamedUserCredentials(t *testing.T) {
	f := newCachedFixture(t)
	ctx := context.Background()
	admin := f.iamClient(f.keys["admin"])
	const creds = `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"redshift:GetClusterCredentialsWithIAM","Resource":"*"}]}`
	gina := f.redshiftClient(f.newIAMUserKey(t, "gina", creds))
	in := &redshift.GetClusterCredentialsWithIAMInput{ClusterIdentifier: aws.String("dev-cluster"), DbName: aws.String("dev")}
	before, err := gina.GetClusterCredentialsWithIAM(ctx, in)
	mustOK(t, "GetClusterCredentialsWithIAM as gina", err)
	_, err = admin.UpdateUser(ctx, &iam.UpdateUserInput{UserName: aws.String("gina"), NewUserName: aws.String("georgina")})
	mustOK(t, "UpdateUser gina → georgina", err)
	after, err := gina.GetClusterCredentialsWithIAM(ctx, in)
	mustOK(t, "GetClusterCredentialsWithIAM after the rename", err)
	if aws.ToString(before.DbUser) != "IAM:gina" || aws.ToString(after.DbUser) != "IAM:georgina" {
		t.Fatalf("DbUser before and after the rename: %s, %s; want IAM:gina, IAM:georgina", aws.ToString(before.DbUser), aws.ToString(after.DbUser))
	}
	live, err := f.store.ListCredentials(ctx, shiftkey.CredentialFilter{Scope: "dev-cluster"}, time.Now())
	mustOK(t, "ListCredentials", err)
	var logins []string
	for _, c := range live {
		logins = append(logins, c.LoginName+" "+c.PrincipalARN)
	}
	slices.Sort(logins)
	want := []string{"IAM:georgina arn:aws:iam::" + account + ":user/georgina", "IAM:gina arn:aws:iam::" + account + ":user/gina"}
	if !slices.Equal(logins, want) {
		t.Fatalf("credentials after the rename: %q, want %q", logins, want)
	}
}

// A role's trust policy that names a user keeps trusting that user once it
// is renamed or moved, as IAM updates "role policies that refer to the
// user as the principal" to the new name: the principal was bound to the
// user's unique id when the policy was saved. A user created again under
// the old name is another user, and is not trusted; a Deny naming the old
// ARN still denies the renamed user.
func TestTrustFollowsARenamedUser(t *testing.T) {
	f := newCachedFixture(t)
	ctx := context.Background()
	admin := f.iamClient(f.keys["admin"])
	const assume = `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"sts:AssumeRole","Resource":"*"}]}`
	hank := f.stsClient(f.newIAMUserKey(t, "hank", assume))
	ivy := f.stsClient(f.newIAMUserKey(t, "ivy", assume))
	trust := `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::` + account + `:user/hank"},"Action":"sts:AssumeRole"}]}`
	guard := `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::` + account + `:root"},"Action":"sts:AssumeRole"},
		{"Effect":"Deny","Principal":{"AWS":"arn:aws:iam::` + account + `:user/ivy"},"Action":"sts:AssumeRole"}]}`
	_, err := admin.CreateRole(ctx, &iam.CreateRoleInput{RoleName: aws.String("Loader"), AssumeRolePolicyDocument: aws.String(trust)})
	mustOK(t, "CreateRole Loader", err)
	_, err = admin.CreateRole(ctx, &iam.CreateRoleInput{RoleName: aws.String("Guarded"), AssumeRolePolicyDocument: aws.String(guard)})
	mustOK(t, "CreateRole Guarded", err)
	in := &sts.AssumeRoleInput{RoleArn: aws.String("arn:aws:iam::" + account + ":role/Loader"), RoleSessionName: aws.String("s1")}
	guarded := &sts.AssumeRoleInput{RoleArn: aws.String("arn:aws:iam::" + account + ":role/Guarded"), RoleSessionName: aws.String("s1")}
	_, err = hank.AssumeRole(ctx, in)
	mustOK(t, "AssumeRole Loader as hank", err)
	if _, err = ivy.AssumeRole(ctx, guarded); apiCode(err) != "AccessDenied" {
		t.Fatalf("AssumeRole Guarded as ivy, whom its Deny names: %v, want AccessDenied", err)
	}

	for _, r := range [][2]string{{"hank", "henry"}, {"ivy", "ivana"}} {
		_, err = admin.UpdateUser(ctx, &iam.UpdateUserInput{UserName: aws.String(r[0]), NewUserName: aws.String(r[1]), NewPath: aws.String("/moved/")})
		mustOK(t, "UpdateUser "+r[0], err)
	}
	_, err = hank.AssumeRole(ctx, in)
	mustOK(t, "AssumeRole Loader as hank renamed henry", err)
	if _, err = ivy.AssumeRole(ctx, guarded); apiCode(err) != "AccessDenied" {
		t.Fatalf("AssumeRole Guarded as ivy renamed ivana, whom its Deny names: %v, want AccessDenied", err)
	}
	newHank := f.stsClient(f.newIAMUserKey(t, "hank", assume))
	if _, err = newHank.AssumeRole(ctx, in); apiCode(err) != "AccessDenied" {
		t.Fatalf("AssumeRole as a new user hank: %v, want AccessDenied", err)
	}
}

// A rename refused because another call changed the entity meanwhile
// (iamapi TestRenameOfAUserMovedMeanwhile) is IAM's ConcurrentModification,
// which IAM sends with 409 Conflict.
func TestConcurrentModificationIsConflict(t *testing.T) {
	if got := shttp.StatusOf(shiftkey.CodeConcurrentModification); got != 409 {
		t.Fatalf("StatusOf(%s) = %d, want 409", shiftkey.CodeConcurrentModification, got)
	}
}

// A role's trust policy is shown as IAM shows it after its principals
// changed: a user renamed or moved since it was saved by the user's new
// ARN, in GetRole and ListRoles (IAM updates role policies that name the
// user as principal), and a user or role deleted since by its unique id
// (AWS can no longer map the id it bound back to an ARN). The renamed
// user is still trusted; a user created again under the old name is not.
func TestServedTrustPolicyNamesARenamedUser(t *testing.T) {
	f := newCachedFixture(t)
	ctx := context.Background()
	admin := f.iamClient(f.keys["admin"])
	const assume = `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"sts:AssumeRole","Resource":"*"}]}`
	u := f.stsClient(f.newIAMUserKey(t, "u", assume))
	_, err := admin.CreateUser(ctx, &iam.CreateUserInput{UserName: aws.String("gone")})
	mustOK(t, "CreateUser gone", err)
	_, err = admin.CreateRole(ctx, &iam.CreateRoleInput{RoleName: aws.String("Old"), AssumeRolePolicyDocument: aws.String(
		`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::` + account + `:root"},"Action":"sts:AssumeRole"}]}`)})
	mustOK(t, "CreateRole Old", err)
	gone, err := admin.GetUser(ctx, &iam.GetUserInput{UserName: aws.String("gone")})
	mustOK(t, "GetUser gone", err)
	old, err := admin.GetRole(ctx, &iam.GetRoleInput{RoleName: aws.String("Old")})
	mustOK(t, "GetRole Old", err)
	trust := func(user, role string) string {
		return `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"` + user + `"},"Action":"sts:AssumeRole"},` +
			` {"Effect":"Deny","Principal":{"AWS":["` + role + `"]},"Action":"sts:AssumeRole"}]}`
	}
	arn := func(res string) string { return "arn:aws:iam::" + account + ":" + res }
	_, err = admin.CreateRole(ctx, &iam.CreateRoleInput{RoleName: aws.String("Loader"), AssumeRolePolicyDocument: aws.String(trust(arn("user/u"), arn("role/Old")))})
	mustOK(t, "CreateRole Loader", err)
	_, err = admin.CreateRole(ctx, &iam.CreateRoleInput{RoleName: aws.String("Gone"), AssumeRolePolicyDocument: aws.String(trust(arn("user/gone"), arn("role/Old")))})
	mustOK(t, "CreateRole Gone", err)
	// A rename that changes only the name's case is a rename too.
	_, err = admin.CreateUser(ctx, &iam.CreateUserInput{UserName: aws.String("cased")})
	mustOK(t, "CreateUser cased", err)
	_, err = admin.CreateRole(ctx, &iam.CreateRoleInput{RoleName: aws.String("Cased"), AssumeRolePolicyDocument: aws.String(trust(arn("user/cased"), arn("role/Old")))})
	mustOK(t, "CreateRole Cased", err)
	_, err = admin.UpdateUser(ctx, &iam.UpdateUserInput{UserName: aws.String("cased"), NewUserName: aws.String("Cased")})
	mustOK(t, "UpdateUser cased", err)

	_, err = admin.UpdateUser(ctx, &iam.UpdateUserInput{UserName: aws.String("u"), NewUserName: aws.String("u2"), NewPath: aws.String("/team/")})
	mustOK(t, "UpdateUser u", err)
	_, err = admin.DeleteUser(ctx, &iam.DeleteUserInput{UserName: aws.String("gone")})
	mustOK(t, "DeleteUser gone", err)
	_, err = admin.DeleteRole(ctx, &iam.DeleteRoleInput{RoleName: aws.String("Old")})
	mustOK(t, "DeleteRole Old", err)
	_, err = admin.CreateRole(ctx, &iam.CreateRoleInput{RoleName: aws.String("Old"), AssumeRolePolicyDocument: aws.String(
		`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::` + account + `:root"},"Action":"sts:AssumeRole"}]}`)})
	mustOK(t, "CreateRole Old again", err)

	want := map[string]string{
		"Loader": trust(arn("user/team/u2"), aws.ToString(old.Role.RoleId)),
		"Gone":   trust(aws.ToString(gone.User.UserId), aws.ToString(old.Role.RoleId)),
		"Cased":  trust(arn("user/Cased"), aws.ToString(old.Role.RoleId)),
	}
	for name, doc := range want {
		r, err := admin.GetRole(ctx, &iam.GetRoleInput{RoleName: aws.String(name)})
		mustOK(t, "GetRole "+name, err)
		if got, _ := url.QueryUnescape(aws.ToString(r.Role.AssumeRolePolicyDocument)); got != doc {
			t.Errorf("GetRole %s shows\n%s\nwant\n%s", name, got, doc)
		}
	}
	list, err := admin.ListRoles(ctx, &iam.ListRolesInput{})
	mustOK(t, "ListRoles", err)
	for _, r := range list.Roles {
		if doc, ok := want[aws.ToString(r.RoleName)]; ok {
			if got, _ := url.QueryUnescape(aws.ToString(r.AssumeRolePolicyDocument)); got != doc {
				t.Errorf("ListRoles shows %s's\n%s\nwant\n%s", aws.ToString(r.RoleName), got, doc)
			}
		}
	}

	in := &sts.AssumeRoleInput{RoleArn: aws.String(arn("role/Loader")), RoleSessionName: aws.String("s1")}
	_, err = u.AssumeRole(ctx, in)
	mustOK(t, "AssumeRole Loader as u renamed /team/u2", err)
	newU := f.stsClient(f.newIAMUserKey(t, "u", assume))
	if _, err = newU.AssumeRole(ctx, in); apiCode(err) != "AccessDenied" {
		t.Fatalf("AssumeRole Loader as a new user u: %v, want AccessDenied", err)
	}
}
