package http_test

import (
	"context"
	"net/url"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	iamtypes "github.com/aws/aws-sdk-go-v2/service/iam/types"
	"github.com/aws/aws-sdk-go-v2/service/sts"
)

// The IAM calls an AWS CLI user reaches for after creating policies and
// roles: ListPolicies, GetPolicyVersion, ListPolicyVersions and
// UpdateAssumeRolePolicy.

func policyNames(ps []iamtypes.Policy) []string {
	out := make([]string, len(ps))
	for i, p := range ps {
		out[i] = aws.ToString(p.PolicyName)
	}
	return out
}

func TestListPolicies(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	admin := f.iamClient(f.keys["admin"])
	for _, p := range []struct{ name, path string }{{"pa0", "/a/"}, {"pa1", "/a/"}, {"pb0", "/b/"}, {"pb1", "/b/x/"}, {"root", ""}} {
		in := &iam.CreatePolicyInput{PolicyName: aws.String(p.name), PolicyDocument: aws.String(allowDescribe), Description: aws.String("d")}
		if p.path != "" {
			in.Path = aws.String(p.path)
		}
		_, err := admin.CreatePolicy(ctx, in)
		mustOK(t, "CreatePolicy "+p.name, err)
	}
	_, err := admin.AttachUserPolicy(ctx, &iam.AttachUserPolicyInput{UserName: aws.String("limited"), PolicyArn: aws.String("arn:aws:iam::" + account + ":policy/b/pb0")})
	mustOK(t, "AttachUserPolicy", err)

	list := func(in *iam.ListPoliciesInput) []iamtypes.Policy {
		t.Helper()
		var all []iamtypes.Policy
		pg := iam.NewListPoliciesPaginator(admin, in)
		for pg.HasMorePages() {
			out, err := pg.NextPage(ctx)
			mustOK(t, "ListPolicies", err)
			all = append(all, out.Policies...)
		}
		return all
	}
	if got := policyNames(list(&iam.ListPoliciesInput{})); strings.Join(got, ",") != "pa0,pa1,pb0,pb1,root" {
		t.Fatalf("ListPolicies: %v", got)
	}
	if got := policyNames(list(&iam.ListPoliciesInput{MaxItems: aws.Int32(2), Scope: iamtypes.PolicyScopeTypeLocal})); strings.Join(got, ",") != "pa0,pa1,pb0,pb1,root" {
		t.Fatalf("ListPolicies Local by pages of 2: %v", got)
	}
	if got := list(&iam.ListPoliciesInput{Scope: iamtypes.PolicyScopeTypeAws}); len(got) != 0 {
		t.Fatalf("ListPolicies Scope AWS (shiftkey has no AWS managed policies): %v", policyNames(got))
	}
	if got := policyNames(list(&iam.ListPoliciesInput{PathPrefix: aws.String("/b/")})); strings.Join(got, ",") != "pb0,pb1" {
		t.Fatalf("ListPolicies PathPrefix /b/: %v", got)
	}
	attached := list(&iam.ListPoliciesInput{OnlyAttached: true})
	if len(attached) != 1 || aws.ToString(attached[0].PolicyName) != "pb0" || aws.ToInt32(attached[0].AttachmentCount) != 1 ||
		aws.ToString(attached[0].Arn) != "arn:aws:iam::"+account+":policy/b/pb0" || aws.ToString(attached[0].DefaultVersionId) != "v1" || !attached[0].IsAttachable {
		t.Fatalf("ListPolicies OnlyAttached: %+v", attached)
	}
	if got := list(&iam.ListPoliciesInput{OnlyAttached: true, PolicyUsageFilter: iamtypes.PolicyUsageTypePermissionsBoundary}); len(got) != 0 {
		t.Fatalf("policies used as permissions boundaries (none): %v", policyNames(got))
	}
	for name, in := range map[string]*iam.ListPoliciesInput{
		"Scope":      {Scope: "Mine"},
		"PathPrefix": {PathPrefix: aws.String("b/")},
		"MaxItems":   {MaxItems: aws.Int32(1001)},
	} {
		if _, err := admin.ListPolicies(ctx, in); apiCode(err) != "ValidationError" || httpStatus(err) != 400 {
			t.Errorf("ListPolicies with a bad %s: %v, want ValidationError 400", name, err)
		}
	}
	if _, err := f.iamClient(f.keys["limited"]).ListPolicies(ctx, &iam.ListPoliciesInput{}); apiCode(err) != "AccessDenied" || !strings.Contains(err.Error(), "iam:ListPolicies") {
		t.Fatalf("ListPolicies without iam:ListPolicies: %v, want AccessDenied", err)
	}
}

func TestPolicyVersions(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	admin := f.iamClient(f.keys["admin"])
	doc := `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"redshift:DescribeClusters","Resource":"*","Condition":{"StringLike":{"aws:username":"a+b c"}}}]}`
	out, err := admin.CreatePolicy(ctx, &iam.CreatePolicyInput{PolicyName: aws.String("versioned"), PolicyDocument: aws.String(doc)})
	mustOK(t, "CreatePolicy", err)
	arn := out.Policy.Arn
	if aws.ToString(out.Policy.DefaultVersionId) != "v1" {
		t.Fatalf("DefaultVersionId %q", aws.ToString(out.Policy.DefaultVersionId))
	}
	v, err := admin.GetPolicyVersion(ctx, &iam.GetPolicyVersionInput{PolicyArn: arn, VersionId: aws.String("v1")})
	mustOK(t, "GetPolicyVersion v1", err)
	if got, _ := url.QueryUnescape(aws.ToString(v.PolicyVersion.Document)); got != doc || !v.PolicyVersion.IsDefaultVersion ||
		aws.ToString(v.PolicyVersion.VersionId) != "v1" || v.PolicyVersion.CreateDate == nil {
		t.Fatalf("GetPolicyVersion: %+v (document %q)", v.PolicyVersion, got)
	}
	if _, err := admin.GetPolicyVersion(ctx, &iam.GetPolicyVersionInput{PolicyArn: arn, VersionId: aws.String("v2")}); apiCode(err) != "NoSuchEntity" || httpStatus(err) != 404 {
		t.Fatalf("GetPolicyVersion v2: %v, want NoSuchEntity 404", err)
	}
	if _, err := admin.GetPolicyVersion(ctx, &iam.GetPolicyVersionInput{PolicyArn: arn, VersionId: aws.String("1")}); apiCode(err) != "ValidationError" {
		t.Fatalf("GetPolicyVersion of version id 1: %v, want ValidationError", err)
	}
	missing := aws.String("arn:aws:iam::" + account + ":policy/missing")
	if _, err := admin.GetPolicyVersion(ctx, &iam.GetPolicyVersionInput{PolicyArn: missing, VersionId: aws.String("v1")}); apiCode(err) != "NoSuchEntity" {
		t.Fatalf("GetPolicyVersion of no policy: %v, want NoSuchEntity", err)
	}
	vs, err := admin.ListPolicyVersions(ctx, &iam.ListPolicyVersionsInput{PolicyArn: arn})
	mustOK(t, "ListPolicyVersions", err)
	if len(vs.Versions) != 1 || aws.ToString(vs.Versions[0].VersionId) != "v1" || !vs.Versions[0].IsDefaultVersion || vs.Versions[0].Document != nil || vs.IsTruncated {
		t.Fatalf("ListPolicyVersions: %+v", vs)
	}
	if _, err := admin.ListPolicyVersions(ctx, &iam.ListPolicyVersionsInput{PolicyArn: missing}); apiCode(err) != "NoSuchEntity" {
		t.Fatalf("ListPolicyVersions of no policy: %v, want NoSuchEntity", err)
	}
	if _, err := f.iamClient(f.keys["limited"]).GetPolicyVersion(ctx, &iam.GetPolicyVersionInput{PolicyArn: arn, VersionId: aws.String("v1")}); apiCode(err) != "AccessDenied" {
		t.Fatalf("GetPolicyVersion without permission: %v, want AccessDenied", err)
	}
}

// TestUpdateAssumeRolePolicy: the new trust policy decides the very next
// AssumeRole, with the services reading through storecache as serve's do.
func TestUpdateAssumeRolePolicy(t *testing.T) {
	f := newCachedFixture(t)
	ctx := context.Background()
	admin := f.iamClient(f.keys["admin"])
	assume := `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"sts:AssumeRole","Resource":"*"}]}`
	alice := f.stsClient(f.newIAMUserKey(t, "alice", assume))
	bob := f.stsClient(f.newIAMUserKey(t, "bob", assume))
	roleARN := f.createRole(t, "Switch", trustUser("alice"), allowDescribe)
	try := func(c *sts.Client) error {
		_, err := c.AssumeRole(ctx, &sts.AssumeRoleInput{RoleArn: aws.String(roleARN), RoleSessionName: aws.String("s1")})
		return err
	}
	mustOK(t, "alice, trusted", try(alice))
	if err := try(bob); apiCode(err) != "AccessDenied" {
		t.Fatalf("bob before the update: %v, want AccessDenied", err)
	}

	_, err := admin.UpdateAssumeRolePolicy(ctx, &iam.UpdateAssumeRolePolicyInput{RoleName: aws.String("switch"), PolicyDocument: aws.String(trustUser("bob"))})
	mustOK(t, "UpdateAssumeRolePolicy", err)
	mustOK(t, "bob, trusted now", try(bob))
	if err := try(alice); apiCode(err) != "AccessDenied" {
		t.Fatalf("alice after the update: %v, want AccessDenied", err)
	}
	r, err := admin.GetRole(ctx, &iam.GetRoleInput{RoleName: aws.String("Switch")})
	mustOK(t, "GetRole", err)
	if got, _ := url.QueryUnescape(aws.ToString(r.Role.AssumeRolePolicyDocument)); got != trustUser("bob") {
		t.Fatalf("GetRole trust policy %q", got)
	}

	for name, c := range map[string]struct {
		role, doc, code string
		status          int
	}{
		"malformed":  {"Switch", `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"sts:AssumeRole"}]}`, "MalformedPolicyDocument", 400},
		"not JSON":   {"Switch", `{`, "MalformedPolicyDocument", 400},
		"too large":  {"Switch", strings.Replace(trustUser("bob"), `"Action"`, `"Sid":"`+strings.Repeat("x", 2100)+`","Action"`, 1), "LimitExceeded", 409},
		"no role":    {"Nope", trustUser("bob"), "NoSuchEntity", 404},
		"long name":  {strings.Repeat("r", 65), trustUser("bob"), "ValidationError", 400},
		"empty name": {"", trustUser("bob"), "ValidationError", 400},
	} {
		_, err := admin.UpdateAssumeRolePolicy(ctx, &iam.UpdateAssumeRolePolicyInput{RoleName: aws.String(c.role), PolicyDocument: aws.String(c.doc)})
		if apiCode(err) != c.code || httpStatus(err) != c.status {
			t.Errorf("%s: %v (status %d), want %s %d", name, err, httpStatus(err), c.code, c.status)
		}
	}
	mustOK(t, "bob after the refused updates", try(bob))

	// Without iam:UpdateAssumeRolePolicy on the role: AccessDenied,
	// nothing changed.
	other := f.newIAMUser(t, "other", `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"iam:UpdateAssumeRolePolicy","Resource":"arn:aws:iam::`+account+`:role/Other"}]}`)
	_, err = other.UpdateAssumeRolePolicy(ctx, &iam.UpdateAssumeRolePolicyInput{RoleName: aws.String("Switch"), PolicyDocument: aws.String(trustUser("other"))})
	if apiCode(err) != "AccessDenied" || !strings.Contains(err.Error(), "iam:UpdateAssumeRolePolicy") {
		t.Fatalf("UpdateAssumeRolePolicy without permission: %v, want AccessDenied", err)
	}
	mustOK(t, "bob after the denied update", try(bob))
}
