package http_test

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/iam/types"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/shiftkey/shiftkey"
)

// These tests replay, with aws-sdk-go-v2, the IAM calls Terraform's AWS
// provider (internal/service/iam) makes over a resource's lifecycle with
// default settings: create, read, update, read, destroy. Each step is
// named after the resource function that sends it, so that a call
// shiftkey does not serve shows which `terraform apply` or `destroy` it
// breaks.

const tfTrust = `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::` + account + `:root"},"Action":"sts:AssumeRole"}]}`

const tfPolicy = `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"redshift:GetClusterCredentials","Resource":"*"}]}`

const tfPolicy2 = `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"redshift:DescribeClusters","Resource":"*"}]}`

// tfProviderStart is what the provider (aws-sdk-go-base) sends when it
// configures itself: by default the account id and partition come from
// sts:GetCallerIdentity; with skip_credentials_validation, from iam:GetUser
// of the caller (no UserName), falling back to GetCallerIdentity.
func tfProviderStart(t *testing.T, f *fixture) {
	t.Helper()
	id, err := f.stsClient(f.keys["admin"]).GetCallerIdentity(context.Background(), &sts.GetCallerIdentityInput{})
	mustOK(t, "provider configure: sts GetCallerIdentity", err)
	if aws.ToString(id.Account) != account {
		t.Fatalf("GetCallerIdentity account %q", aws.ToString(id.Account))
	}
	u, err := f.iamClient(f.keys["admin"]).GetUser(context.Background(), &iam.GetUserInput{})
	mustOK(t, "provider configure (skip_credentials_validation): iam GetUser", err)
	if !strings.HasPrefix(aws.ToString(u.User.Arn), "arn:aws:iam::"+account+":user/") {
		t.Fatalf("GetUser of the caller: %s", aws.ToString(u.User.Arn))
	}
}

// tfReadRole is resourceRoleRead: GetRole, the inline policies
// (ListRolePolicies, GetRolePolicy each) and ListAttachedRolePolicies.
func tfReadRole(t *testing.T, c *iam.Client, name string) *types.Role {
	t.Helper()
	ctx := context.Background()
	r, err := c.GetRole(ctx, &iam.GetRoleInput{RoleName: aws.String(name)})
	mustOK(t, "aws_iam_role read: GetRole", err)
	names, err := c.ListRolePolicies(ctx, &iam.ListRolePoliciesInput{RoleName: aws.String(name)})
	mustOK(t, "aws_iam_role read: ListRolePolicies", err)
	for _, n := range names.PolicyNames {
		_, err := c.GetRolePolicy(ctx, &iam.GetRolePolicyInput{RoleName: aws.String(name), PolicyName: aws.String(n)})
		mustOK(t, "aws_iam_role read: GetRolePolicy", err)
	}
	_, err = c.ListAttachedRolePolicies(ctx, &iam.ListAttachedRolePoliciesInput{RoleName: aws.String(name)})
	mustOK(t, "aws_iam_role read: ListAttachedRolePolicies", err)
	return r.Role
}

// tfDefaultTags is what the provider's default_tags adds to every
// resource that takes tags, aws_iam_policy included.
var tfDefaultTags = []types.Tag{{Key: aws.String("ManagedBy"), Value: aws.String("terraform")}}

// tfCreatePolicy is aws_iam_policy's create and read: CreatePolicy, with
// the provider's default_tags, then GetPolicy (whose Tags the provider
// compares with the configured ones) and GetPolicyVersion of its default
// version.
func tfCreatePolicy(t *testing.T, c *iam.Client, name string) string {
	t.Helper()
	ctx := context.Background()
	p, err := c.CreatePolicy(ctx, &iam.CreatePolicyInput{PolicyName: aws.String(name), Path: aws.String("/"), Description: aws.String(""),
		PolicyDocument: aws.String(tfPolicy), Tags: tfDefaultTags})
	mustOK(t, "aws_iam_policy create: CreatePolicy", err)
	arn := aws.ToString(p.Policy.Arn)
	g, err := c.GetPolicy(ctx, &iam.GetPolicyInput{PolicyArn: aws.String(arn)})
	mustOK(t, "aws_iam_policy read: GetPolicy", err)
	if got := tagString(g.Policy.Tags); got != tagString(tfDefaultTags) {
		t.Fatalf("aws_iam_policy read: GetPolicy's Tags %q, want default_tags %q", got, tagString(tfDefaultTags))
	}
	_, err = c.GetPolicyVersion(ctx, &iam.GetPolicyVersionInput{PolicyArn: aws.String(arn), VersionId: g.Policy.DefaultVersionId})
	mustOK(t, "aws_iam_policy read: GetPolicyVersion", err)
	return arn
}

// tfUpdatePolicy is resourcePolicyUpdate for a new document:
// ListPolicyVersions (to prune the oldest at 5), CreatePolicyVersion not
// as the default, SetDefaultPolicyVersion, then the read.
func tfUpdatePolicy(t *testing.T, c *iam.Client, arn, doc string) {
	t.Helper()
	ctx := context.Background()
	_, err := c.ListPolicyVersions(ctx, &iam.ListPolicyVersionsInput{PolicyArn: aws.String(arn)})
	mustOK(t, "aws_iam_policy update: ListPolicyVersions", err)
	v, err := c.CreatePolicyVersion(ctx, &iam.CreatePolicyVersionInput{PolicyArn: aws.String(arn), PolicyDocument: aws.String(doc), SetAsDefault: false})
	mustOK(t, "aws_iam_policy update: CreatePolicyVersion", err)
	_, err = c.SetDefaultPolicyVersion(ctx, &iam.SetDefaultPolicyVersionInput{PolicyArn: aws.String(arn), VersionId: v.PolicyVersion.VersionId})
	mustOK(t, "aws_iam_policy update: SetDefaultPolicyVersion", err)
	g, err := c.GetPolicy(ctx, &iam.GetPolicyInput{PolicyArn: aws.String(arn)})
	mustOK(t, "aws_iam_policy read: GetPolicy", err)
	pv, err := c.GetPolicyVersion(ctx, &iam.GetPolicyVersionInput{PolicyArn: aws.String(arn), VersionId: g.Policy.DefaultVersionId})
	mustOK(t, "aws_iam_policy read: GetPolicyVersion", err)
	if got, _ := url.QueryUnescape(aws.ToString(pv.PolicyVersion.Document)); got != doc {
		t.Fatalf("policy document after update: %s", got)
	}
}

// tfDeletePolicy is resourcePolicyDelete: ListPolicyVersions, then
// DeletePolicyVersion of each non-default one, then DeletePolicy.
func tfDeletePolicy(t *testing.T, c *iam.Client, arn string) {
	t.Helper()
	ctx := context.Background()
	vs, err := c.ListPolicyVersions(ctx, &iam.ListPolicyVersionsInput{PolicyArn: aws.String(arn)})
	mustOK(t, "aws_iam_policy delete: ListPolicyVersions", err)
	for _, v := range vs.Versions {
		if !v.IsDefaultVersion {
			_, err := c.DeletePolicyVersion(ctx, &iam.DeletePolicyVersionInput{PolicyArn: aws.String(arn), VersionId: v.VersionId})
			mustOK(t, "aws_iam_policy delete: DeletePolicyVersion", err)
		}
	}
	_, err = c.DeletePolicy(ctx, &iam.DeletePolicyInput{PolicyArn: aws.String(arn)})
	mustOK(t, "aws_iam_policy delete: DeletePolicy", err)
}

// TestTerraformRoleLifecycle: aws_iam_role with an aws_iam_role_policy
// and an aws_iam_role_policy_attachment of an aws_iam_policy; the update
// changes the role's description, max_session_duration, trust policy and
// tags, the inline policy's document and the managed policy's.
func TestTerraformRoleLifecycle(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	tfProviderStart(t, f)
	c := f.iamClient(f.keys["admin"])
	const role = "tf-role"

	// Create: the aws_iam_policy its permissions_boundary names first, then
	// resourceRoleCreate, then the policy and its attachment.
	boundary := tfCreatePolicy(t, c, "tf-role-boundary")
	_, err := c.CreateRole(ctx, &iam.CreateRoleInput{RoleName: aws.String(role), Path: aws.String("/"), AssumeRolePolicyDocument: aws.String(tfTrust),
		Description: aws.String("made by terraform"), MaxSessionDuration: aws.Int32(3600), PermissionsBoundary: aws.String(boundary),
		Tags: []types.Tag{{Key: aws.String("team"), Value: aws.String("data")}}})
	mustOK(t, "aws_iam_role create: CreateRole", err)
	if r := tfReadRole(t, c, role); r.PermissionsBoundary == nil || aws.ToString(r.PermissionsBoundary.PermissionsBoundaryArn) != boundary {
		t.Fatalf("aws_iam_role read: permissions_boundary %+v, want %s", r.PermissionsBoundary, boundary)
	}
	arn := tfCreatePolicy(t, c, "tf-policy")
	_, err = c.PutRolePolicy(ctx, &iam.PutRolePolicyInput{RoleName: aws.String(role), PolicyName: aws.String("inline"), PolicyDocument: aws.String(tfPolicy)})
	mustOK(t, "aws_iam_role_policy create: PutRolePolicy", err)
	_, err = c.GetRolePolicy(ctx, &iam.GetRolePolicyInput{RoleName: aws.String(role), PolicyName: aws.String("inline")})
	mustOK(t, "aws_iam_role_policy read: GetRolePolicy", err)
	_, err = c.AttachRolePolicy(ctx, &iam.AttachRolePolicyInput{RoleName: aws.String(role), PolicyArn: aws.String(arn)})
	mustOK(t, "aws_iam_role_policy_attachment create: AttachRolePolicy", err)
	att, err := c.ListAttachedRolePolicies(ctx, &iam.ListAttachedRolePoliciesInput{RoleName: aws.String(role)})
	mustOK(t, "aws_iam_role_policy_attachment read: ListAttachedRolePolicies", err)
	if len(att.AttachedPolicies) != 1 || aws.ToString(att.AttachedPolicies[0].PolicyArn) != arn {
		t.Fatalf("attached policies %+v", att.AttachedPolicies)
	}
	tfReadRole(t, c, role) // the plan's refresh

	// Update: resourceRoleUpdate sends one call per changed attribute.
	trust2 := `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::` + account + `:user/admin"},"Action":"sts:AssumeRole"}]}`
	_, err = c.UpdateAssumeRolePolicy(ctx, &iam.UpdateAssumeRolePolicyInput{RoleName: aws.String(role), PolicyDocument: aws.String(trust2)})
	mustOK(t, "aws_iam_role update: UpdateAssumeRolePolicy", err)
	_, err = c.UpdateRoleDescription(ctx, &iam.UpdateRoleDescriptionInput{RoleName: aws.String(role), Description: aws.String("changed by terraform")})
	mustOK(t, "aws_iam_role update: UpdateRoleDescription", err)
	_, err = c.UpdateRole(ctx, &iam.UpdateRoleInput{RoleName: aws.String(role), MaxSessionDuration: aws.Int32(7200)})
	mustOK(t, "aws_iam_role update: UpdateRole", err)
	boundary2 := tfCreatePolicy(t, c, "tf-role-boundary2")
	_, err = c.PutRolePermissionsBoundary(ctx, &iam.PutRolePermissionsBoundaryInput{RoleName: aws.String(role), PermissionsBoundary: aws.String(boundary2)})
	mustOK(t, "aws_iam_role update: PutRolePermissionsBoundary", err)
	tfUpdatePolicy(t, c, arn, tfPolicy2)
	// aws_iam_role_policy's update is its create: PutRolePolicy, then GetRolePolicy.
	_, err = c.PutRolePolicy(ctx, &iam.PutRolePolicyInput{RoleName: aws.String(role), PolicyName: aws.String("inline"), PolicyDocument: aws.String(tfPolicy2)})
	mustOK(t, "aws_iam_role_policy update: PutRolePolicy", err)
	_, err = c.GetRolePolicy(ctx, &iam.GetRolePolicyInput{RoleName: aws.String(role), PolicyName: aws.String("inline")})
	mustOK(t, "aws_iam_role_policy read: GetRolePolicy", err)
	_, err = c.UntagRole(ctx, &iam.UntagRoleInput{RoleName: aws.String(role), TagKeys: []string{"team"}})
	mustOK(t, "aws_iam_role update: UntagRole", err)
	_, err = c.TagRole(ctx, &iam.TagRoleInput{RoleName: aws.String(role), Tags: []types.Tag{{Key: aws.String("owner"), Value: aws.String("platform")}}})
	mustOK(t, "aws_iam_role update: TagRole", err)
	r := tfReadRole(t, c, role)
	doc, _ := url.QueryUnescape(aws.ToString(r.AssumeRolePolicyDocument))
	if aws.ToString(r.Description) != "changed by terraform" || aws.ToInt32(r.MaxSessionDuration) != 7200 || doc != trust2 ||
		len(r.Tags) != 1 || aws.ToString(r.Tags[0].Key) != "owner" || r.PermissionsBoundary == nil || aws.ToString(r.PermissionsBoundary.PermissionsBoundaryArn) != boundary2 {
		t.Fatalf("role after update: description %q, max session %d, trust %s, tags %+v, boundary %+v",
			aws.ToString(r.Description), aws.ToInt32(r.MaxSessionDuration), doc, r.Tags, r.PermissionsBoundary)
	}
	// The first boundary, no longer named, is destroyed (the role no
	// longer depends on it).
	tfDeletePolicy(t, c, boundary)

	// Destroy, dependants first.
	_, err = c.DetachRolePolicy(ctx, &iam.DetachRolePolicyInput{RoleName: aws.String(role), PolicyArn: aws.String(arn)})
	mustOK(t, "aws_iam_role_policy_attachment delete: DetachRolePolicy", err)
	_, err = c.DeleteRolePolicy(ctx, &iam.DeleteRolePolicyInput{RoleName: aws.String(role), PolicyName: aws.String("inline")})
	mustOK(t, "aws_iam_role_policy delete: DeleteRolePolicy", err)
	tfDeletePolicy(t, c, arn)
	// resourceRoleDelete: the role leaves its instance profiles first.
	ips, err := c.ListInstanceProfilesForRole(ctx, &iam.ListInstanceProfilesForRoleInput{RoleName: aws.String(role)})
	mustOK(t, "aws_iam_role delete: ListInstanceProfilesForRole", err)
	if len(ips.InstanceProfiles) != 0 || ips.IsTruncated {
		t.Fatalf("instance profiles %+v", ips)
	}
	// A policy the role has as its boundary is not deleted before it.
	_, err = c.DeletePolicy(ctx, &iam.DeletePolicyInput{PolicyArn: aws.String(boundary2)})
	wantAPIError(t, err, "DeleteConflict")
	_, err = c.DeleteRole(ctx, &iam.DeleteRoleInput{RoleName: aws.String(role)})
	mustOK(t, "aws_iam_role delete: DeleteRole", err)
	tfDeletePolicy(t, c, boundary2)
	// The next refresh finds it gone.
	_, err = c.GetRole(ctx, &iam.GetRoleInput{RoleName: aws.String(role)})
	wantAPIError(t, err, shiftkey.CodeNoSuchEntity)
}

// TestTerraformUserLifecycle: aws_iam_user with an aws_iam_access_key, an
// aws_iam_group, aws_iam_group_membership and
// aws_iam_user_group_membership, an aws_iam_user_policy and an
// aws_iam_policy_attachment of an aws_iam_policy; the update changes the
// user's tags and deactivates the key.
func TestTerraformUserLifecycle(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	tfProviderStart(t, f)
	c := f.iamClient(f.keys["admin"])
	const user, group, group2 = "tf-user", "tf-group", "tf-group2"
	readUser := func(step string) *types.User {
		t.Helper()
		u, err := c.GetUser(ctx, &iam.GetUserInput{UserName: aws.String(user)})
		mustOK(t, step+": GetUser", err)
		return u.User
	}
	readKey := func(step, id string) types.AccessKeyMetadata {
		t.Helper()
		ks, err := c.ListAccessKeys(ctx, &iam.ListAccessKeysInput{UserName: aws.String(user)})
		mustOK(t, step+": ListAccessKeys", err)
		for _, k := range ks.AccessKeyMetadata {
			if aws.ToString(k.AccessKeyId) == id {
				return k
			}
		}
		t.Fatalf("%s: key %s not listed", step, id)
		return types.AccessKeyMetadata{}
	}
	groupMembers := func(step string) []string { // NewGetGroupPaginator, as resourceGroupMembershipRead
		t.Helper()
		var out []string
		pages := iam.NewGetGroupPaginator(c, &iam.GetGroupInput{GroupName: aws.String(group), MaxItems: aws.Int32(1)})
		for pages.HasMorePages() {
			pg, err := pages.NextPage(ctx)
			mustOK(t, step+": GetGroup", err)
			for _, u := range pg.Users {
				out = append(out, aws.ToString(u.UserName))
			}
		}
		return out
	}
	entities := func(step, arn string) []string { // findEntitiesForPolicy
		t.Helper()
		var out []string
		pages := iam.NewListEntitiesForPolicyPaginator(c, &iam.ListEntitiesForPolicyInput{PolicyArn: aws.String(arn)})
		for pages.HasMorePages() {
			pg, err := pages.NextPage(ctx)
			mustOK(t, step+": ListEntitiesForPolicy", err)
			for _, u := range pg.PolicyUsers {
				out = append(out, "user/"+aws.ToString(u.UserName))
			}
			for _, g := range pg.PolicyGroups {
				out = append(out, "group/"+aws.ToString(g.GroupName))
			}
			for _, r := range pg.PolicyRoles {
				out = append(out, "role/"+aws.ToString(r.RoleName))
			}
		}
		return out
	}

	// Create: the permissions_boundary's aws_iam_policy, then the user.
	boundary := tfCreatePolicy(t, c, "tf-user-boundary")
	_, err := c.CreateUser(ctx, &iam.CreateUserInput{UserName: aws.String(user), Path: aws.String("/"), PermissionsBoundary: aws.String(boundary),
		Tags: []types.Tag{{Key: aws.String("team"), Value: aws.String("data")}}})
	mustOK(t, "aws_iam_user create: CreateUser", err)
	if u := readUser("aws_iam_user read"); u.PermissionsBoundary == nil || aws.ToString(u.PermissionsBoundary.PermissionsBoundaryArn) != boundary {
		t.Fatalf("aws_iam_user read: permissions_boundary %+v, want %s", u.PermissionsBoundary, boundary)
	}
	k, err := c.CreateAccessKey(ctx, &iam.CreateAccessKeyInput{UserName: aws.String(user)})
	mustOK(t, "aws_iam_access_key create: CreateAccessKey", err)
	keyID := aws.ToString(k.AccessKey.AccessKeyId)
	for _, g := range []string{group, group2} {
		_, err = c.CreateGroup(ctx, &iam.CreateGroupInput{GroupName: aws.String(g), Path: aws.String("/")})
		mustOK(t, "aws_iam_group create: CreateGroup", err)
		_, err = c.GetGroup(ctx, &iam.GetGroupInput{GroupName: aws.String(g)})
		mustOK(t, "aws_iam_group read: GetGroup", err)
	}
	_, err = c.AddUserToGroup(ctx, &iam.AddUserToGroupInput{GroupName: aws.String(group), UserName: aws.String(user)})
	mustOK(t, "aws_iam_group_membership create: AddUserToGroup", err)
	_, err = c.AddUserToGroup(ctx, &iam.AddUserToGroupInput{GroupName: aws.String(group), UserName: aws.String("admin")})
	mustOK(t, "aws_iam_group_membership create: AddUserToGroup", err)
	if got := groupMembers("aws_iam_group_membership read"); !slices.Equal(got, []string{"admin", user}) {
		t.Fatalf("group members %q", got)
	}
	_, err = c.AddUserToGroup(ctx, &iam.AddUserToGroupInput{GroupName: aws.String(group2), UserName: aws.String(user)})
	mustOK(t, "aws_iam_user_group_membership create: AddUserToGroup", err)
	gs, err := c.ListGroupsForUser(ctx, &iam.ListGroupsForUserInput{UserName: aws.String(user)})
	mustOK(t, "aws_iam_user_group_membership read: ListGroupsForUser", err)
	if len(gs.Groups) != 2 {
		t.Fatalf("groups for user %+v", gs.Groups)
	}
	_, err = c.PutUserPolicy(ctx, &iam.PutUserPolicyInput{UserName: aws.String(user), PolicyName: aws.String("inline"), PolicyDocument: aws.String(tfPolicy)})
	mustOK(t, "aws_iam_user_policy create: PutUserPolicy", err)
	_, err = c.GetUserPolicy(ctx, &iam.GetUserPolicyInput{UserName: aws.String(user), PolicyName: aws.String("inline")})
	mustOK(t, "aws_iam_user_policy read: GetUserPolicy", err)
	arn := tfCreatePolicy(t, c, "tf-user-policy")
	_, err = c.AttachUserPolicy(ctx, &iam.AttachUserPolicyInput{UserName: aws.String(user), PolicyArn: aws.String(arn)})
	mustOK(t, "aws_iam_policy_attachment create: AttachUserPolicy", err)
	_, err = c.AttachGroupPolicy(ctx, &iam.AttachGroupPolicyInput{GroupName: aws.String(group2), PolicyArn: aws.String(arn)})
	mustOK(t, "aws_iam_policy_attachment create: AttachGroupPolicy", err)
	if got := entities("aws_iam_policy_attachment read", arn); !slices.Equal(got, []string{"user/" + user, "group/" + group2}) {
		t.Fatalf("entities for policy %q", got)
	}

	// Update: tags (TagUser/UntagUser) and the key's status.
	_, err = c.UntagUser(ctx, &iam.UntagUserInput{UserName: aws.String(user), TagKeys: []string{"team"}})
	mustOK(t, "aws_iam_user update: UntagUser", err)
	_, err = c.TagUser(ctx, &iam.TagUserInput{UserName: aws.String(user), Tags: []types.Tag{{Key: aws.String("owner"), Value: aws.String("platform")}}})
	mustOK(t, "aws_iam_user update: TagUser", err)
	_, err = c.UpdateAccessKey(ctx, &iam.UpdateAccessKeyInput{UserName: aws.String(user), AccessKeyId: aws.String(keyID), Status: types.StatusTypeInactive})
	mustOK(t, "aws_iam_access_key update: UpdateAccessKey", err)
	// permissions_boundary removed from the configuration.
	_, err = c.DeleteUserPermissionsBoundary(ctx, &iam.DeleteUserPermissionsBoundaryInput{UserName: aws.String(user)})
	mustOK(t, "aws_iam_user update: DeleteUserPermissionsBoundary", err)
	if u := readUser("aws_iam_user read"); len(u.Tags) != 1 || aws.ToString(u.Tags[0].Key) != "owner" || u.PermissionsBoundary != nil {
		t.Fatalf("user after update: tags %+v, boundary %+v", u.Tags, u.PermissionsBoundary)
	}
	tfDeletePolicy(t, c, boundary)
	if k := readKey("aws_iam_access_key read", keyID); k.Status != types.StatusTypeInactive {
		t.Fatalf("key status after update %s", k.Status)
	}

	// Destroy, dependants first.
	_, err = c.DetachUserPolicy(ctx, &iam.DetachUserPolicyInput{UserName: aws.String(user), PolicyArn: aws.String(arn)})
	mustOK(t, "aws_iam_policy_attachment delete: DetachUserPolicy", err)
	_, err = c.DetachGroupPolicy(ctx, &iam.DetachGroupPolicyInput{GroupName: aws.String(group2), PolicyArn: aws.String(arn)})
	mustOK(t, "aws_iam_policy_attachment delete: DetachGroupPolicy", err)
	if got := entities("aws_iam_policy_attachment refresh", arn); len(got) != 0 {
		t.Fatalf("entities after detach %q", got)
	}
	tfDeletePolicy(t, c, arn)
	_, err = c.DeleteUserPolicy(ctx, &iam.DeleteUserPolicyInput{UserName: aws.String(user), PolicyName: aws.String("inline")})
	mustOK(t, "aws_iam_user_policy delete: DeleteUserPolicy", err)
	_, err = c.RemoveUserFromGroup(ctx, &iam.RemoveUserFromGroupInput{GroupName: aws.String(group2), UserName: aws.String(user)})
	mustOK(t, "aws_iam_user_group_membership delete: RemoveUserFromGroup", err)
	for _, u := range []string{user, "admin"} {
		_, err = c.RemoveUserFromGroup(ctx, &iam.RemoveUserFromGroupInput{GroupName: aws.String(group), UserName: aws.String(u)})
		mustOK(t, "aws_iam_group_membership delete: RemoveUserFromGroup", err)
	}
	_, err = c.DeleteAccessKey(ctx, &iam.DeleteAccessKeyInput{UserName: aws.String(user), AccessKeyId: aws.String(keyID)})
	mustOK(t, "aws_iam_access_key delete: DeleteAccessKey", err)
	// resourceUserDelete: leaves its remaining groups, then goes.
	gs, err = c.ListGroupsForUser(ctx, &iam.ListGroupsForUserInput{UserName: aws.String(user)})
	mustOK(t, "aws_iam_user delete: ListGroupsForUser", err)
	if len(gs.Groups) != 0 {
		t.Fatalf("groups left %+v", gs.Groups)
	}
	_, err = c.DeleteUser(ctx, &iam.DeleteUserInput{UserName: aws.String(user)})
	mustOK(t, "aws_iam_user delete: DeleteUser", err)
	for _, g := range []string{group, group2} {
		_, err = c.DeleteGroup(ctx, &iam.DeleteGroupInput{GroupName: aws.String(g)})
		mustOK(t, "aws_iam_group delete: DeleteGroup", err)
	}
	_, err = c.GetUser(ctx, &iam.GetUserInput{UserName: aws.String(user)})
	wantAPIError(t, err, shiftkey.CodeNoSuchEntity)
}

// TestTerraformRoleUpdatesAndInstanceProfiles: UpdateRole,
// UpdateRoleDescription and ListInstanceProfilesForRole check their
// input, answer NoSuchEntity for a missing role, and are authorized as
// iam:<Action> on the role's ARN.
func TestTerraformRoleUpdatesAndInstanceProfiles(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	admin := f.iamClient(f.keys["admin"])
	_, err := admin.CreateRole(ctx, &iam.CreateRoleInput{RoleName: aws.String("r"), AssumeRolePolicyDocument: aws.String(tfTrust), Description: aws.String("first")})
	mustOK(t, "CreateRole", err)

	// UpdateRole without Description keeps it; with "" (UpdateRoleDescription) clears it.
	_, err = admin.UpdateRole(ctx, &iam.UpdateRoleInput{RoleName: aws.String("r"), MaxSessionDuration: aws.Int32(43200)})
	mustOK(t, "UpdateRole", err)
	g, err := admin.GetRole(ctx, &iam.GetRoleInput{RoleName: aws.String("r")})
	mustOK(t, "GetRole", err)
	if aws.ToString(g.Role.Description) != "first" || aws.ToInt32(g.Role.MaxSessionDuration) != 43200 {
		t.Fatalf("after UpdateRole: %q %d", aws.ToString(g.Role.Description), aws.ToInt32(g.Role.MaxSessionDuration))
	}
	_, err = admin.UpdateRole(ctx, &iam.UpdateRoleInput{RoleName: aws.String("r"), Description: aws.String("second")})
	mustOK(t, "UpdateRole", err)
	d, err := admin.UpdateRoleDescription(ctx, &iam.UpdateRoleDescriptionInput{RoleName: aws.String("r"), Description: aws.String("")})
	mustOK(t, "UpdateRoleDescription", err)
	if d.Role == nil || aws.ToString(d.Role.RoleName) != "r" || d.Role.Description != nil || aws.ToInt32(d.Role.MaxSessionDuration) != 43200 {
		t.Fatalf("UpdateRoleDescription answered %+v", d.Role)
	}
	_, err = admin.UpdateRole(ctx, &iam.UpdateRoleInput{RoleName: aws.String("r"), MaxSessionDuration: aws.Int32(43201)})
	if apiCode(err) != "ValidationError" || !strings.Contains(err.Error(), "between 3600 and 43200") {
		t.Fatalf("UpdateRole MaxSessionDuration 43201: %v", err)
	}
	_, err = admin.UpdateRoleDescription(ctx, &iam.UpdateRoleDescriptionInput{RoleName: aws.String("r"), Description: aws.String(strings.Repeat("x", 1001))})
	if apiCode(err) != "ValidationError" {
		t.Fatalf("UpdateRoleDescription of 1001 characters: %v", err)
	}
	for what, call := range map[string]func() error{
		"UpdateRole": func() error {
			_, err := admin.UpdateRole(ctx, &iam.UpdateRoleInput{RoleName: aws.String("ghost"), MaxSessionDuration: aws.Int32(3600)})
			return err
		},
		"UpdateRoleDescription": func() error {
			_, err := admin.UpdateRoleDescription(ctx, &iam.UpdateRoleDescriptionInput{RoleName: aws.String("ghost"), Description: aws.String("x")})
			return err
		},
		"ListInstanceProfilesForRole": func() error {
			_, err := admin.ListInstanceProfilesForRole(ctx, &iam.ListInstanceProfilesForRoleInput{RoleName: aws.String("ghost")})
			return err
		},
	} {
		var nse *types.NoSuchEntityException
		if err := call(); !errors.As(err, &nse) || httpStatus(err) != 404 {
			t.Fatalf("%s of a missing role: %v", what, err)
		}
	}
	_, err = admin.ListInstanceProfilesForRole(ctx, &iam.ListInstanceProfilesForRoleInput{RoleName: aws.String("r"), MaxItems: aws.Int32(0)})
	if apiCode(err) != "ValidationError" {
		t.Fatalf("ListInstanceProfilesForRole MaxItems 0: %v", err)
	}

	// Authorized on the role's ARN, action by action.
	roleARN := "arn:aws:iam::" + account + ":role/r"
	c := f.newIAMUser(t, "ops", `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["iam:UpdateRole","iam:ListInstanceProfilesForRole"],"Resource":"`+roleARN+`"}]}`)
	_, err = c.UpdateRole(ctx, &iam.UpdateRoleInput{RoleName: aws.String("r"), MaxSessionDuration: aws.Int32(3600)})
	mustOK(t, "ops UpdateRole", err)
	_, err = c.ListInstanceProfilesForRole(ctx, &iam.ListInstanceProfilesForRoleInput{RoleName: aws.String("r")})
	mustOK(t, "ops ListInstanceProfilesForRole", err)
	_, err = c.UpdateRoleDescription(ctx, &iam.UpdateRoleDescriptionInput{RoleName: aws.String("r"), Description: aws.String("x")})
	if apiCode(err) != "AccessDenied" || !strings.Contains(err.Error(), "iam:UpdateRoleDescription on resource: "+roleARN) {
		t.Fatalf("ops UpdateRoleDescription: %v", err)
	}
	_, err = admin.CreateRole(ctx, &iam.CreateRoleInput{RoleName: aws.String("other"), AssumeRolePolicyDocument: aws.String(tfTrust)})
	mustOK(t, "CreateRole other", err)
	_, err = c.UpdateRole(ctx, &iam.UpdateRoleInput{RoleName: aws.String("other"), MaxSessionDuration: aws.Int32(7200)})
	if apiCode(err) != "AccessDenied" {
		t.Fatalf("ops UpdateRole of another role: %v", err)
	}
}

// TestListEntitiesForPolicyFilters: ListEntitiesForPolicy's EntityFilter,
// PathPrefix, PolicyUsageFilter and paging, its NoSuchEntity and its
// authorization on the policy's ARN.
func TestListEntitiesForPolicyFilters(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	admin := f.iamClient(f.keys["admin"])
	arn := tfCreatePolicy(t, admin, "shared")
	_, err := admin.CreateRole(ctx, &iam.CreateRoleInput{RoleName: aws.String("r"), Path: aws.String("/svc/"), AssumeRolePolicyDocument: aws.String(tfTrust)})
	mustOK(t, "CreateRole", err)
	_, err = admin.AttachRolePolicy(ctx, &iam.AttachRolePolicyInput{RoleName: aws.String("r"), PolicyArn: aws.String(arn)})
	mustOK(t, "AttachRolePolicy", err)
	_, err = admin.CreateGroup(ctx, &iam.CreateGroupInput{GroupName: aws.String("g")})
	mustOK(t, "CreateGroup", err)
	_, err = admin.AttachGroupPolicy(ctx, &iam.AttachGroupPolicyInput{GroupName: aws.String("g"), PolicyArn: aws.String(arn)})
	mustOK(t, "AttachGroupPolicy", err)
	for _, u := range []string{"admin", "limited"} {
		_, err = admin.AttachUserPolicy(ctx, &iam.AttachUserPolicyInput{UserName: aws.String(u), PolicyArn: aws.String(arn)})
		mustOK(t, "AttachUserPolicy", err)
	}
	list := func(in iam.ListEntitiesForPolicyInput) []string {
		t.Helper()
		in.PolicyArn = aws.String(arn)
		var out []string
		pages := iam.NewListEntitiesForPolicyPaginator(admin, &in)
		for pages.HasMorePages() {
			pg, err := pages.NextPage(ctx)
			mustOK(t, "ListEntitiesForPolicy", err)
			for _, g := range pg.PolicyGroups {
				out = append(out, "group/"+aws.ToString(g.GroupName)+"/"+aws.ToString(g.GroupId)[:4])
			}
			for _, r := range pg.PolicyRoles {
				out = append(out, "role/"+aws.ToString(r.RoleName)+"/"+aws.ToString(r.RoleId)[:4])
			}
			for _, u := range pg.PolicyUsers {
				out = append(out, "user/"+aws.ToString(u.UserName)+"/"+aws.ToString(u.UserId)[:4])
			}
		}
		return out
	}
	for _, c := range []struct {
		in   iam.ListEntitiesForPolicyInput
		want string
	}{
		{iam.ListEntitiesForPolicyInput{}, "group/g/AGPA role/r/AROA user/admin/AIDA user/limited/AIDA"},
		{iam.ListEntitiesForPolicyInput{MaxItems: aws.Int32(1)}, "group/g/AGPA role/r/AROA user/admin/AIDA user/limited/AIDA"},
		{iam.ListEntitiesForPolicyInput{EntityFilter: types.EntityTypeUser}, "user/admin/AIDA user/limited/AIDA"},
		{iam.ListEntitiesForPolicyInput{EntityFilter: types.EntityTypeRole}, "role/r/AROA"},
		{iam.ListEntitiesForPolicyInput{EntityFilter: types.EntityTypeLocalManagedPolicy}, ""},
		{iam.ListEntitiesForPolicyInput{PathPrefix: aws.String("/svc/")}, "role/r/AROA"},
		{iam.ListEntitiesForPolicyInput{PolicyUsageFilter: types.PolicyUsageTypePermissionsBoundary}, ""},
	} {
		if got := strings.Join(list(c.in), " "); got != c.want {
			t.Errorf("ListEntitiesForPolicy %+v = %q, want %q", c.in, got, c.want)
		}
	}
	pg, err := admin.ListEntitiesForPolicy(ctx, &iam.ListEntitiesForPolicyInput{PolicyArn: aws.String(arn), MaxItems: aws.Int32(3)})
	mustOK(t, "ListEntitiesForPolicy MaxItems 3", err)
	if !pg.IsTruncated || pg.Marker == nil || len(pg.PolicyGroups)+len(pg.PolicyRoles)+len(pg.PolicyUsers) != 3 {
		t.Fatalf("first page of 3: %+v", pg)
	}
	_, err = admin.ListEntitiesForPolicy(ctx, &iam.ListEntitiesForPolicyInput{PolicyArn: aws.String(arn), EntityFilter: "Users"})
	if apiCode(err) != "ValidationError" {
		t.Fatalf("EntityFilter Users: %v", err)
	}
	var nse *types.NoSuchEntityException
	_, err = admin.ListEntitiesForPolicy(ctx, &iam.ListEntitiesForPolicyInput{PolicyArn: aws.String(arn + "-gone")})
	if !errors.As(err, &nse) {
		t.Fatalf("missing policy: %v", err)
	}
	_, err = f.iamClient(f.keys["limited"]).ListEntitiesForPolicy(ctx, &iam.ListEntitiesForPolicyInput{PolicyArn: aws.String(arn)})
	if apiCode(err) != "AccessDenied" || !strings.Contains(err.Error(), "iam:ListEntitiesForPolicy on resource: "+arn) {
		t.Fatalf("limited ListEntitiesForPolicy: %v", err)
	}
}

// TestGetGroupPages: GetGroup pages its members by MaxItems and Marker.
func TestGetGroupPages(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	admin := f.iamClient(f.keys["admin"])
	_, err := admin.CreateGroup(ctx, &iam.CreateGroupInput{GroupName: aws.String("g")})
	mustOK(t, "CreateGroup", err)
	for _, u := range []string{"limited", "admin", "denied"} {
		_, err = admin.AddUserToGroup(ctx, &iam.AddUserToGroupInput{GroupName: aws.String("g"), UserName: aws.String(u)})
		mustOK(t, "AddUserToGroup", err)
	}
	var pages [][]string
	p := iam.NewGetGroupPaginator(admin, &iam.GetGroupInput{GroupName: aws.String("g"), MaxItems: aws.Int32(2)})
	for p.HasMorePages() {
		pg, err := p.NextPage(ctx)
		mustOK(t, "GetGroup", err)
		var names []string
		for _, u := range pg.Users {
			names = append(names, aws.ToString(u.UserName))
		}
		pages = append(pages, names)
	}
	if fmt.Sprint(pages) != "[[admin denied] [limited]]" {
		t.Fatalf("GetGroup pages of 2: %v", pages)
	}
	_, err = admin.GetGroup(ctx, &iam.GetGroupInput{GroupName: aws.String("g"), MaxItems: aws.Int32(1001)})
	if apiCode(err) != "ValidationError" {
		t.Fatalf("GetGroup MaxItems 1001: %v", err)
	}
}

// TestTerraformRenames: a changed name or path of aws_iam_group and
// aws_iam_user, as the provider applies it (resourceGroupUpdate,
// resourceUserUpdate): UpdateGroup / UpdateUser with the old name, the new
// name (the same one when only the path changed) and the configured path
// (always sent), then the resource's read under the new name. The unique_id
// the provider keeps stays, so no replacement is planned; the user's key
// (aws_iam_access_key, its id) stays listed under the new name.
func TestTerraformRenames(t *testing.T) {
	f := newCachedFixture(t)
	ctx := context.Background()
	tfProviderStart(t, f)
	c := f.iamClient(f.keys["admin"])
	g, err := c.CreateGroup(ctx, &iam.CreateGroupInput{GroupName: aws.String("tf-team"), Path: aws.String("/")})
	mustOK(t, "aws_iam_group create: CreateGroup", err)
	u, err := c.CreateUser(ctx, &iam.CreateUserInput{UserName: aws.String("tf-person"), Path: aws.String("/"), Tags: tfDefaultTags})
	mustOK(t, "aws_iam_user create: CreateUser", err)
	k, err := c.CreateAccessKey(ctx, &iam.CreateAccessKeyInput{UserName: aws.String("tf-person")})
	mustOK(t, "aws_iam_access_key create: CreateAccessKey", err)
	_, err = c.AddUserToGroup(ctx, &iam.AddUserToGroupInput{GroupName: aws.String("tf-team"), UserName: aws.String("tf-person")})
	mustOK(t, "aws_iam_user_group_membership create: AddUserToGroup", err)

	// name = "tf-squad"
	_, err = c.UpdateGroup(ctx, &iam.UpdateGroupInput{GroupName: aws.String("tf-team"), NewGroupName: aws.String("tf-squad"), NewPath: aws.String("/")})
	mustOK(t, "aws_iam_group update: UpdateGroup", err)
	rg, err := c.GetGroup(ctx, &iam.GetGroupInput{GroupName: aws.String("tf-squad")})
	mustOK(t, "aws_iam_group read: GetGroup", err)
	if aws.ToString(rg.Group.GroupId) != aws.ToString(g.Group.GroupId) || aws.ToString(rg.Group.Arn) != "arn:aws:iam::"+account+":group/tf-squad" {
		t.Fatalf("group after the rename: %s %s, want unique_id %s", aws.ToString(rg.Group.GroupId), aws.ToString(rg.Group.Arn), aws.ToString(g.Group.GroupId))
	}
	// path = "/teams/" (the name unchanged)
	_, err = c.UpdateGroup(ctx, &iam.UpdateGroupInput{GroupName: aws.String("tf-squad"), NewGroupName: aws.String("tf-squad"), NewPath: aws.String("/teams/")})
	mustOK(t, "aws_iam_group update (path): UpdateGroup", err)
	rg, err = c.GetGroup(ctx, &iam.GetGroupInput{GroupName: aws.String("tf-squad")})
	mustOK(t, "aws_iam_group read: GetGroup", err)
	if aws.ToString(rg.Group.Path) != "/teams/" || aws.ToString(rg.Group.Arn) != "arn:aws:iam::"+account+":group/teams/tf-squad" {
		t.Fatalf("group after the path change: %s %s", aws.ToString(rg.Group.Path), aws.ToString(rg.Group.Arn))
	}

	// name = "tf-human", path = "/people/"
	_, err = c.UpdateUser(ctx, &iam.UpdateUserInput{UserName: aws.String("tf-person"), NewUserName: aws.String("tf-human"), NewPath: aws.String("/people/")})
	mustOK(t, "aws_iam_user update: UpdateUser", err)
	ru, err := c.GetUser(ctx, &iam.GetUserInput{UserName: aws.String("tf-human")})
	mustOK(t, "aws_iam_user read: GetUser", err)
	if aws.ToString(ru.User.UserId) != aws.ToString(u.User.UserId) || aws.ToString(ru.User.Arn) != "arn:aws:iam::"+account+":user/people/tf-human" ||
		tagString(ru.User.Tags) != tagString(tfDefaultTags) {
		t.Fatalf("user after the rename: %s %s tags %s, want unique_id %s and the default tags", aws.ToString(ru.User.UserId), aws.ToString(ru.User.Arn),
			tagString(ru.User.Tags), aws.ToString(u.User.UserId))
	}
	ks, err := c.ListAccessKeys(ctx, &iam.ListAccessKeysInput{UserName: aws.String("tf-human")})
	mustOK(t, "aws_iam_access_key read: ListAccessKeys", err)
	if len(ks.AccessKeyMetadata) != 1 || aws.ToString(ks.AccessKeyMetadata[0].AccessKeyId) != aws.ToString(k.AccessKey.AccessKeyId) {
		t.Fatalf("keys after the rename %+v", ks.AccessKeyMetadata)
	}
	gs, err := c.ListGroupsForUser(ctx, &iam.ListGroupsForUserInput{UserName: aws.String("tf-human")})
	mustOK(t, "aws_iam_user_group_membership read: ListGroupsForUser", err)
	if len(gs.Groups) != 1 || aws.ToString(gs.Groups[0].GroupName) != "tf-squad" {
		t.Fatalf("groups after the renames %+v", gs.Groups)
	}

	// Destroy under the new names.
	_, err = c.RemoveUserFromGroup(ctx, &iam.RemoveUserFromGroupInput{GroupName: aws.String("tf-squad"), UserName: aws.String("tf-human")})
	mustOK(t, "aws_iam_user_group_membership delete: RemoveUserFromGroup", err)
	_, err = c.DeleteAccessKey(ctx, &iam.DeleteAccessKeyInput{UserName: aws.String("tf-human"), AccessKeyId: k.AccessKey.AccessKeyId})
	mustOK(t, "aws_iam_access_key delete: DeleteAccessKey", err)
	_, err = c.DeleteUser(ctx, &iam.DeleteUserInput{UserName: aws.String("tf-human")})
	mustOK(t, "aws_iam_user delete: DeleteUser", err)
	_, err = c.DeleteGroup(ctx, &iam.DeleteGroupInput{GroupName: aws.String("tf-squad")})
	mustOK(t, "aws_iam_group delete: DeleteGroup", err)
}
