package http_test

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	iamtypes "github.com/aws/aws-sdk-go-v2/service/iam/types"
	"github.com/aws/aws-sdk-go-v2/service/redshift"
	"github.com/aws/aws-sdk-go-v2/service/sts"
)

// Permissions boundaries of users and roles, through aws-sdk-go-v2: set
// with CreateUser/CreateRole or Put*PermissionsBoundary, read back by
// Get*, counted and listed by GetPolicy and ListEntitiesForPolicy, and
// evaluated: what a user or a role's session may do is what its policies
// allow and its boundary allows.

const (
	trustAccount     = `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::` + account + `:root"},"Action":"sts:AssumeRole"}]}`
	boundaryDescribe = `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"redshift:DescribeClusters","Resource":"*"}]}`
	allowRedshift    = `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"redshift:*","Resource":"*"}]}`
	denyInBoundary   = `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"},{"Sid":"NoCreds","Effect":"Deny","Action":"redshift:GetClusterCredentials","Resource":"*"}]}`
)

func createPolicy(t *testing.T, admin *iam.Client, name, doc string) string {
	t.Helper()
	p, err := admin.CreatePolicy(context.Background(), &iam.CreatePolicyInput{PolicyName: aws.String(name), PolicyDocument: aws.String(doc)})
	mustOK(t, "CreatePolicy "+name, err)
	return aws.ToString(p.Policy.Arn)
}

func boundaryOf(b *iamtypes.AttachedPermissionsBoundary) string {
	if b == nil {
		return ""
	}
	return string(b.PermissionsBoundaryType) + " " + aws.ToString(b.PermissionsBoundaryArn)
}

// TestPermissionsBoundaryCalls: the calls that set, read, count, list
// and remove boundaries answer as IAM does.
func TestPermissionsBoundaryCalls(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	admin := f.iamClient(f.keys["admin"])
	b := createPolicy(t, admin, "boundary", boundaryDescribe)
	missing := "arn:aws:iam::" + account + ":policy/no-such-boundary"

	r, err := admin.CreateRole(ctx, &iam.CreateRoleInput{RoleName: aws.String("Bounded"), AssumeRolePolicyDocument: aws.String(trustAccount),
		PermissionsBoundary: aws.String(b)})
	mustOK(t, "CreateRole with PermissionsBoundary", err)
	want := "PermissionsBoundaryPolicy " + b
	if got := boundaryOf(r.Role.PermissionsBoundary); got != want {
		t.Fatalf("CreateRole's role: boundary %q, want %q", got, want)
	}
	u, err := admin.CreateUser(ctx, &iam.CreateUserInput{UserName: aws.String("bounded"), PermissionsBoundary: aws.String(b)})
	mustOK(t, "CreateUser with PermissionsBoundary", err)
	if got := boundaryOf(u.User.PermissionsBoundary); got != want {
		t.Fatalf("CreateUser's user: boundary %q, want %q", got, want)
	}
	gr, err := admin.GetRole(ctx, &iam.GetRoleInput{RoleName: aws.String("Bounded")})
	mustOK(t, "GetRole", err)
	gu, err := admin.GetUser(ctx, &iam.GetUserInput{UserName: aws.String("bounded")})
	mustOK(t, "GetUser", err)
	if boundaryOf(gr.Role.PermissionsBoundary) != want || boundaryOf(gu.User.PermissionsBoundary) != want {
		t.Fatalf("GetRole %q, GetUser %q, want %q", boundaryOf(gr.Role.PermissionsBoundary), boundaryOf(gu.User.PermissionsBoundary), want)
	}
	// ListRoles and ListUsers leave it out, as IAM does.
	lr, err := admin.ListRoles(ctx, &iam.ListRolesInput{})
	mustOK(t, "ListRoles", err)
	lu, err := admin.ListUsers(ctx, &iam.ListUsersInput{})
	mustOK(t, "ListUsers", err)
	for _, x := range lr.Roles {
		if x.PermissionsBoundary != nil {
			t.Fatalf("ListRoles: role %s with a boundary, IAM lists none", aws.ToString(x.RoleName))
		}
	}
	for _, x := range lu.Users {
		if x.PermissionsBoundary != nil {
			t.Fatalf("ListUsers: user %s with a boundary, IAM lists none", aws.ToString(x.UserName))
		}
	}

	// A boundary that does not exist: NoSuchEntity, and nothing made.
	_, err = admin.CreateRole(ctx, &iam.CreateRoleInput{RoleName: aws.String("Nope"), AssumeRolePolicyDocument: aws.String(trustAccount), PermissionsBoundary: aws.String(missing)})
	if apiCode(err) != "NoSuchEntity" || httpStatus(err) != 404 {
		t.Fatalf("CreateRole with a missing boundary: %v, want NoSuchEntity 404", err)
	}
	if _, err := admin.GetRole(ctx, &iam.GetRoleInput{RoleName: aws.String("Nope")}); apiCode(err) != "NoSuchEntity" {
		t.Fatalf("the role refused for its missing boundary: %v, want NoSuchEntity", err)
	}
	_, err = admin.CreateUser(ctx, &iam.CreateUserInput{UserName: aws.String("nope"), PermissionsBoundary: aws.String(missing)})
	if apiCode(err) != "NoSuchEntity" || httpStatus(err) != 404 {
		t.Fatalf("CreateUser with a missing boundary: %v, want NoSuchEntity 404", err)
	}
	_, err = admin.PutUserPermissionsBoundary(ctx, &iam.PutUserPermissionsBoundaryInput{UserName: aws.String("bounded"), PermissionsBoundary: aws.String(missing)})
	if apiCode(err) != "NoSuchEntity" || httpStatus(err) != 404 {
		t.Fatalf("PutUserPermissionsBoundary with a missing boundary: %v, want NoSuchEntity 404", err)
	}
	_, err = admin.PutRolePermissionsBoundary(ctx, &iam.PutRolePermissionsBoundaryInput{RoleName: aws.String("Missing"), PermissionsBoundary: aws.String(b)})
	if apiCode(err) != "NoSuchEntity" || httpStatus(err) != 404 {
		t.Fatalf("PutRolePermissionsBoundary of a missing role: %v, want NoSuchEntity 404", err)
	}
	_, err = admin.CreateUser(ctx, &iam.CreateUserInput{UserName: aws.String("nope"), PermissionsBoundary: aws.String("not-an-arn")})
	if apiCode(err) != "ValidationError" || httpStatus(err) != 400 {
		t.Fatalf("CreateUser with a boundary shorter than an ARN: %v, want ValidationError 400", err)
	}

	// Counted and listed as boundaries, not as attachments.
	gp, err := admin.GetPolicy(ctx, &iam.GetPolicyInput{PolicyArn: aws.String(b)})
	mustOK(t, "GetPolicy", err)
	if aws.ToInt32(gp.Policy.PermissionsBoundaryUsageCount) != 2 || aws.ToInt32(gp.Policy.AttachmentCount) != 0 {
		t.Fatalf("GetPolicy: PermissionsBoundaryUsageCount %d AttachmentCount %d, want 2 and 0",
			aws.ToInt32(gp.Policy.PermissionsBoundaryUsageCount), aws.ToInt32(gp.Policy.AttachmentCount))
	}
	le, err := admin.ListEntitiesForPolicy(ctx, &iam.ListEntitiesForPolicyInput{PolicyArn: aws.String(b), PolicyUsageFilter: iamtypes.PolicyUsageTypePermissionsBoundary})
	mustOK(t, "ListEntitiesForPolicy PermissionsBoundary", err)
	if len(le.PolicyRoles) != 1 || aws.ToString(le.PolicyRoles[0].RoleName) != "Bounded" || len(le.PolicyUsers) != 1 || aws.ToString(le.PolicyUsers[0].UserName) != "bounded" {
		t.Fatalf("ListEntitiesForPolicy PermissionsBoundary: roles %+v users %+v, want Bounded and bounded", le.PolicyRoles, le.PolicyUsers)
	}
	le, err = admin.ListEntitiesForPolicy(ctx, &iam.ListEntitiesForPolicyInput{PolicyArn: aws.String(b), PolicyUsageFilter: iamtypes.PolicyUsageTypePermissionsPolicy})
	mustOK(t, "ListEntitiesForPolicy PermissionsPolicy", err)
	if len(le.PolicyRoles)+len(le.PolicyUsers)+len(le.PolicyGroups) != 0 {
		t.Fatalf("ListEntitiesForPolicy PermissionsPolicy of a boundary attached nowhere: %+v %+v", le.PolicyRoles, le.PolicyUsers)
	}
	le, err = admin.ListEntitiesForPolicy(ctx, &iam.ListEntitiesForPolicyInput{PolicyArn: aws.String(b), EntityFilter: iamtypes.EntityTypeRole})
	mustOK(t, "ListEntitiesForPolicy (no usage filter)", err)
	if len(le.PolicyRoles) != 1 || len(le.PolicyUsers) != 0 {
		t.Fatalf("ListEntitiesForPolicy EntityFilter Role, no usage filter: roles %+v users %+v, want Bounded alone", le.PolicyRoles, le.PolicyUsers)
	}
	// Attached and a boundary: listed once without a usage filter.
	_, err = admin.AttachRolePolicy(ctx, &iam.AttachRolePolicyInput{RoleName: aws.String("Bounded"), PolicyArn: aws.String(b)})
	mustOK(t, "AttachRolePolicy of the boundary", err)
	le, err = admin.ListEntitiesForPolicy(ctx, &iam.ListEntitiesForPolicyInput{PolicyArn: aws.String(b)})
	mustOK(t, "ListEntitiesForPolicy (attached and bounded)", err)
	if len(le.PolicyRoles) != 1 || len(le.PolicyUsers) != 1 {
		t.Fatalf("ListEntitiesForPolicy of a role both attached and bounded: roles %+v users %+v, want each once", le.PolicyRoles, le.PolicyUsers)
	}
	_, err = admin.DetachRolePolicy(ctx, &iam.DetachRolePolicyInput{RoleName: aws.String("Bounded"), PolicyArn: aws.String(b)})
	mustOK(t, "DetachRolePolicy of the boundary", err)
	lp, err := admin.ListPolicies(ctx, &iam.ListPoliciesInput{PolicyUsageFilter: iamtypes.PolicyUsageTypePermissionsBoundary})
	mustOK(t, "ListPolicies PermissionsBoundary", err)
	if len(lp.Policies) != 1 || aws.ToString(lp.Policies[0].Arn) != b || aws.ToInt32(lp.Policies[0].PermissionsBoundaryUsageCount) != 2 {
		t.Fatalf("ListPolicies PermissionsBoundary: %+v, want the boundary, used twice", lp.Policies)
	}

	// A policy in use as a boundary cannot be deleted.
	_, err = admin.DeletePolicy(ctx, &iam.DeletePolicyInput{PolicyArn: aws.String(b)})
	if apiCode(err) != "DeleteConflict" || httpStatus(err) != 409 {
		t.Fatalf("DeletePolicy of a boundary in use: %v, want DeleteConflict 409", err)
	}
	_, err = admin.DeleteRolePermissionsBoundary(ctx, &iam.DeleteRolePermissionsBoundaryInput{RoleName: aws.String("Bounded")})
	mustOK(t, "DeleteRolePermissionsBoundary", err)
	gr, err = admin.GetRole(ctx, &iam.GetRoleInput{RoleName: aws.String("Bounded")})
	mustOK(t, "GetRole", err)
	if gr.Role.PermissionsBoundary != nil {
		t.Fatalf("GetRole after DeleteRolePermissionsBoundary: %q", boundaryOf(gr.Role.PermissionsBoundary))
	}
	if _, err := admin.DeletePolicy(ctx, &iam.DeletePolicyInput{PolicyArn: aws.String(b)}); apiCode(err) != "DeleteConflict" {
		t.Fatalf("DeletePolicy of a boundary the user still has: %v, want DeleteConflict", err)
	}
	_, err = admin.DeleteUserPermissionsBoundary(ctx, &iam.DeleteUserPermissionsBoundaryInput{UserName: aws.String("bounded")})
	mustOK(t, "DeleteUserPermissionsBoundary", err)
	// Deleting a boundary that is not there is not an error.
	_, err = admin.DeleteUserPermissionsBoundary(ctx, &iam.DeleteUserPermissionsBoundaryInput{UserName: aws.String("bounded")})
	mustOK(t, "DeleteUserPermissionsBoundary again", err)
	_, err = admin.DeleteUserPermissionsBoundary(ctx, &iam.DeleteUserPermissionsBoundaryInput{UserName: aws.String("nobody")})
	if apiCode(err) != "NoSuchEntity" {
		t.Fatalf("DeleteUserPermissionsBoundary of a missing user: %v, want NoSuchEntity", err)
	}
	gp, err = admin.GetPolicy(ctx, &iam.GetPolicyInput{PolicyArn: aws.String(b)})
	mustOK(t, "GetPolicy", err)
	if aws.ToInt32(gp.Policy.PermissionsBoundaryUsageCount) != 0 {
		t.Fatalf("GetPolicy after both boundaries went: PermissionsBoundaryUsageCount %d", aws.ToInt32(gp.Policy.PermissionsBoundaryUsageCount))
	}
	_, err = admin.PutRolePermissionsBoundary(ctx, &iam.PutRolePermissionsBoundaryInput{RoleName: aws.String("Bounded"), PermissionsBoundary: aws.String(b)})
	mustOK(t, "PutRolePermissionsBoundary", err)
	gr, err = admin.GetRole(ctx, &iam.GetRoleInput{RoleName: aws.String("Bounded")})
	mustOK(t, "GetRole", err)
	if boundaryOf(gr.Role.PermissionsBoundary) != want {
		t.Fatalf("GetRole after PutRolePermissionsBoundary: %q", boundaryOf(gr.Role.PermissionsBoundary))
	}
	// A role deleted with its boundary frees the policy.
	_, err = admin.DeleteRole(ctx, &iam.DeleteRoleInput{RoleName: aws.String("Bounded")})
	mustOK(t, "DeleteRole", err)
	_, err = admin.DeletePolicy(ctx, &iam.DeletePolicyInput{PolicyArn: aws.String(b)})
	mustOK(t, "DeletePolicy once no entity uses it", err)
}

// TestPermissionsBoundaryCapsUser: a user's identity policy allows
// GetClusterCredentials; its boundary decides whether it may.
func TestPermissionsBoundaryCapsUser(t *testing.T) {
	f := newCachedFixture(t)
	ctx := context.Background()
	admin := f.iamClient(f.keys["admin"])
	gina := f.redshiftClient(f.newIAMUserKey(t, "gina", allowCredentials))
	call := func() error {
		_, err := gina.GetClusterCredentials(ctx, &redshift.GetClusterCredentialsInput{ClusterIdentifier: aws.String("dev-cluster"), DbUser: aws.String("gina")})
		return err
	}
	mustOK(t, "gina without a boundary", call())
	narrow := createPolicy(t, admin, "narrow", boundaryDescribe)
	wide := createPolicy(t, admin, "wide", allowRedshift)

	_, err := admin.PutUserPermissionsBoundary(ctx, &iam.PutUserPermissionsBoundaryInput{UserName: aws.String("gina"), PermissionsBoundary: aws.String(narrow)})
	mustOK(t, "PutUserPermissionsBoundary narrow", err)
	err = call()
	if apiCode(err) != "AccessDenied" || httpStatus(err) != 403 ||
		!strings.Contains(err.Error(), "because no permissions boundary allows the redshift:GetClusterCredentials action") {
		t.Fatalf("gina under a boundary without the action: %v, want AccessDenied 403 by the boundary", err)
	}

	_, err = admin.PutUserPermissionsBoundary(ctx, &iam.PutUserPermissionsBoundaryInput{UserName: aws.String("gina"), PermissionsBoundary: aws.String(wide)})
	mustOK(t, "PutUserPermissionsBoundary wide", err)
	mustOK(t, "gina under a boundary that allows the action", call())

	// The boundary grants nothing on its own: DescribeClusters is in the
	// boundary, not in gina's policy.
	if _, err := gina.DescribeClusters(ctx, &redshift.DescribeClustersInput{}); apiCode(err) != "AccessDenied" ||
		!strings.Contains(err.Error(), "because no identity-based policy allows the redshift:DescribeClusters action") {
		t.Fatalf("gina's DescribeClusters, allowed by the boundary only: %v, want AccessDenied by her policies", err)
	}

	// The boundary's default version decides, from the very next request.
	_, err = admin.CreatePolicyVersion(ctx, &iam.CreatePolicyVersionInput{PolicyArn: aws.String(wide), PolicyDocument: aws.String(denyInBoundary), SetAsDefault: true})
	mustOK(t, "CreatePolicyVersion v2 of the boundary (a deny)", err)
	err = call()
	if apiCode(err) != "AccessDenied" || !strings.Contains(err.Error(), "with an explicit deny in a permissions boundary") {
		t.Fatalf("gina after the boundary's new default denies: %v, want AccessDenied by an explicit deny in the boundary", err)
	}
	_, err = admin.SetDefaultPolicyVersion(ctx, &iam.SetDefaultPolicyVersionInput{PolicyArn: aws.String(wide), VersionId: aws.String("v1")})
	mustOK(t, "SetDefaultPolicyVersion v1", err)
	mustOK(t, "gina after the boundary's v1 is the default again", call())

	_, err = admin.DeleteUserPermissionsBoundary(ctx, &iam.DeleteUserPermissionsBoundaryInput{UserName: aws.String("gina")})
	mustOK(t, "DeleteUserPermissionsBoundary", err)
	_, err = admin.PutUserPermissionsBoundary(ctx, &iam.PutUserPermissionsBoundaryInput{UserName: aws.String("gina"), PermissionsBoundary: aws.String(narrow)})
	mustOK(t, "PutUserPermissionsBoundary narrow again", err)
	if err := call(); apiCode(err) != "AccessDenied" {
		t.Fatalf("gina under the narrow boundary again: %v", err)
	}
	_, err = admin.DeleteUserPermissionsBoundary(ctx, &iam.DeleteUserPermissionsBoundaryInput{UserName: aws.String("gina")})
	mustOK(t, "DeleteUserPermissionsBoundary", err)
	mustOK(t, "gina once her boundary is deleted", call())
}

// TestPermissionsBoundaryCapsRoleSession: a session of a role with a
// boundary may do what the role's policies, its boundary and the
// session's policy all allow.
func TestPermissionsBoundaryCapsRoleSession(t *testing.T) {
	f := newCachedFixture(t)
	ctx := context.Background()
	admin := f.iamClient(f.keys["admin"])
	narrow := createPolicy(t, admin, "narrow", boundaryDescribe)
	wide := createPolicy(t, admin, "wide", allowRedshift)
	r, err := admin.CreateRole(ctx, &iam.CreateRoleInput{RoleName: aws.String("Loader"), AssumeRolePolicyDocument: aws.String(trustAccount),
		PermissionsBoundary: aws.String(narrow)})
	mustOK(t, "CreateRole", err)
	_, err = admin.PutRolePolicy(ctx, &iam.PutRolePolicyInput{RoleName: aws.String("Loader"), PolicyName: aws.String("p"), PolicyDocument: aws.String(allowCredentials)})
	mustOK(t, "PutRolePolicy", err)
	session := func(policy string) *redshift.Client {
		in := &sts.AssumeRoleInput{RoleArn: r.Role.Arn, RoleSessionName: aws.String("s1")}
		if policy != "" {
			in.Policy = aws.String(policy)
		}
		out, err := f.stsClient(f.keys["admin"]).AssumeRole(ctx, in)
		mustOK(t, "AssumeRole", err)
		return f.redshiftClient(aws.Credentials{AccessKeyID: aws.ToString(out.Credentials.AccessKeyId),
			SecretAccessKey: aws.ToString(out.Credentials.SecretAccessKey), SessionToken: aws.ToString(out.Credentials.SessionToken)})
	}
	call := func(c *redshift.Client) error {
		_, err := c.GetClusterCredentials(ctx, &redshift.GetClusterCredentialsInput{ClusterIdentifier: aws.String("dev-cluster"), DbUser: aws.String("loader")})
		return err
	}
	s := session("")
	err = call(s)
	if apiCode(err) != "AccessDenied" || httpStatus(err) != 403 ||
		!strings.Contains(err.Error(), "because no permissions boundary allows the redshift:GetClusterCredentials action") {
		t.Fatalf("a session of a role whose boundary lacks the action: %v, want AccessDenied 403 by the boundary", err)
	}
	_, err = admin.PutRolePermissionsBoundary(ctx, &iam.PutRolePermissionsBoundaryInput{RoleName: aws.String("Loader"), PermissionsBoundary: aws.String(wide)})
	mustOK(t, "PutRolePermissionsBoundary wide", err)
	mustOK(t, "the same session once the role's boundary allows the action", call(s))
	// The session policy still narrows it.
	err = call(session(boundaryDescribe))
	if apiCode(err) != "AccessDenied" || !strings.Contains(err.Error(), "because no session policy allows the redshift:GetClusterCredentials action") {
		t.Fatalf("a session whose session policy lacks the action: %v, want AccessDenied by the session policy", err)
	}
	mustOK(t, "a session whose session policy allows it", call(session(allowCredentials)))
	_, err = admin.CreatePolicyVersion(ctx, &iam.CreatePolicyVersionInput{PolicyArn: aws.String(wide), PolicyDocument: aws.String(denyInBoundary), SetAsDefault: true})
	mustOK(t, "CreatePolicyVersion of the boundary (a deny)", err)
	if err := call(s); apiCode(err) != "AccessDenied" || !strings.Contains(err.Error(), "with an explicit deny in a permissions boundary") {
		t.Fatalf("the session after its role's boundary denies: %v, want an explicit deny in a permissions boundary", err)
	}
}

// TestPermissionsBoundaryDelegation is IAM's delegation pattern: a team
// may create roles only with its boundary (iam:PermissionsBoundary), and
// may not remove or change it.
func TestPermissionsBoundaryDelegation(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	admin := f.iamClient(f.keys["admin"])
	team := createPolicy(t, admin, "team-boundary", allowRedshift)
	other := createPolicy(t, admin, "other-boundary", allowRedshift)
	delegate := f.newIAMUser(t, "delegate", `{"Version":"2012-10-17","Statement":[
		{"Sid":"CreateBoundedRoles","Effect":"Allow","Action":["iam:CreateRole","iam:PutRolePermissionsBoundary"],"Resource":"*",
		 "Condition":{"StringEquals":{"iam:PermissionsBoundary":"`+team+`"}}},
		{"Sid":"ManageRoles","Effect":"Allow","Action":["iam:GetRole","iam:DeleteRolePermissionsBoundary","iam:PutRolePolicy"],"Resource":"*"},
		{"Sid":"KeepBoundary","Effect":"Deny","Action":["iam:DeleteRolePermissionsBoundary","iam:PutRolePolicy"],"Resource":"*",
		 "Condition":{"StringEquals":{"iam:PermissionsBoundary":"`+team+`"}}}]}`)
	create := func(name, boundary string) error {
		in := &iam.CreateRoleInput{RoleName: aws.String(name), AssumeRolePolicyDocument: aws.String(trustAccount)}
		if boundary != "" {
			in.PermissionsBoundary = aws.String(boundary)
		}
		_, err := delegate.CreateRole(ctx, in)
		return err
	}
	for _, c := range []struct{ name, boundary string }{{"NoBoundary", ""}, {"OtherBoundary", other}} {
		err := create(c.name, c.boundary)
		if apiCode(err) != "AccessDenied" || httpStatus(err) != 403 || !strings.Contains(err.Error(), "iam:CreateRole") {
			t.Fatalf("CreateRole %s: %v, want AccessDenied 403", c.name, err)
		}
		if _, err := admin.GetRole(ctx, &iam.GetRoleInput{RoleName: aws.String(c.name)}); apiCode(err) != "NoSuchEntity" {
			t.Fatalf("role %s after the refusal: %v, want NoSuchEntity", c.name, err)
		}
	}
	mustOK(t, "CreateRole with the team's boundary", create("TeamRole", team))
	gr, err := admin.GetRole(ctx, &iam.GetRoleInput{RoleName: aws.String("TeamRole")})
	mustOK(t, "GetRole", err)
	if aws.ToString(gr.Role.PermissionsBoundary.PermissionsBoundaryArn) != team {
		t.Fatalf("TeamRole's boundary: %q", boundaryOf(gr.Role.PermissionsBoundary))
	}
	// The boundary's key on the role's own calls is the role's boundary.
	_, err = delegate.DeleteRolePermissionsBoundary(ctx, &iam.DeleteRolePermissionsBoundaryInput{RoleName: aws.String("TeamRole")})
	if apiCode(err) != "AccessDenied" || !strings.Contains(err.Error(), "explicit deny") {
		t.Fatalf("the delegate removing the team's boundary: %v, want AccessDenied by the explicit deny", err)
	}
	_, err = delegate.PutRolePermissionsBoundary(ctx, &iam.PutRolePermissionsBoundaryInput{RoleName: aws.String("TeamRole"), PermissionsBoundary: aws.String(other)})
	if apiCode(err) != "AccessDenied" {
		t.Fatalf("the delegate swapping the team's boundary for another: %v, want AccessDenied", err)
	}
	_, err = delegate.PutRolePermissionsBoundary(ctx, &iam.PutRolePermissionsBoundaryInput{RoleName: aws.String("TeamRole"), PermissionsBoundary: aws.String(team)})
	mustOK(t, "the delegate putting the team's boundary again", err)
	le, err := admin.ListEntitiesForPolicy(ctx, &iam.ListEntitiesForPolicyInput{PolicyArn: aws.String(team)})
	mustOK(t, "ListEntitiesForPolicy", err)
	var roles []string
	for _, r := range le.PolicyRoles {
		roles = append(roles, aws.ToString(r.RoleName))
	}
	if !slices.Equal(roles, []string{"TeamRole"}) {
		t.Fatalf("ListEntitiesForPolicy of the team's boundary: %v, want TeamRole", roles)
	}
}
