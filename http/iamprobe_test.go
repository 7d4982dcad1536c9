package http_test

import (
	"context"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/iam/types"
)

// A caller without IAM permissions cannot tell which policies and roles
// exist through the calls this change serves: each answers it
// AccessDenied for an existing resource and a missing one alike (the
// policy's tags, read for aws:ResourceTag, are none for a missing one),
// and changes nothing.
func TestNewIAMCallsDoNotRevealWhatExists(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	admin, outsider := f.iamClient(f.keys["admin"]), f.iamClient(f.keys["limited"])
	p, err := admin.CreatePolicy(ctx, &iam.CreatePolicyInput{PolicyName: aws.String("probed"), PolicyDocument: aws.String(
		`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"redshift:DescribeClusters","Resource":"*"}]}`),
		Tags: []types.Tag{{Key: aws.String("team"), Value: aws.String("data")}}})
	mustOK(t, "CreatePolicy", err)
	_, err = admin.CreateRole(ctx, &iam.CreateRoleInput{RoleName: aws.String("Probed"), AssumeRolePolicyDocument: aws.String(
		`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::000000000000:root"},"Action":"sts:AssumeRole"}]}`)})
	mustOK(t, "CreateRole", err)
	doc := aws.String(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}`)
	for _, target := range []struct{ policy, role string }{
		{aws.ToString(p.Policy.Arn), "Probed"},
		{"arn:aws:iam::000000000000:policy/missing", "Missing"},
	} {
		arn := aws.String(target.policy)
		for name, call := range map[string]func() error{
			"GetPolicy": func() error { _, err := outsider.GetPolicy(ctx, &iam.GetPolicyInput{PolicyArn: arn}); return err },
			"ListPolicyTags": func() error {
				_, err := outsider.ListPolicyTags(ctx, &iam.ListPolicyTagsInput{PolicyArn: arn})
				return err
			},
			"ListPolicyVersions": func() error {
				_, err := outsider.ListPolicyVersions(ctx, &iam.ListPolicyVersionsInput{PolicyArn: arn})
				return err
			},
			"CreatePolicyVersion": func() error {
				_, err := outsider.CreatePolicyVersion(ctx, &iam.CreatePolicyVersionInput{PolicyArn: arn, PolicyDocument: doc, SetAsDefault: true})
				return err
			},
			"SetDefaultPolicyVersion": func() error {
				_, err := outsider.SetDefaultPolicyVersion(ctx, &iam.SetDefaultPolicyVersionInput{PolicyArn: arn, VersionId: aws.String("v1")})
				return err
			},
			"DeletePolicyVersion": func() error {
				_, err := outsider.DeletePolicyVersion(ctx, &iam.DeletePolicyVersionInput{PolicyArn: arn, VersionId: aws.String("v1")})
				return err
			},
			"TagPolicy": func() error {
				_, err := outsider.TagPolicy(ctx, &iam.TagPolicyInput{PolicyArn: arn, Tags: []types.Tag{{Key: aws.String("team"), Value: aws.String("mine")}}})
				return err
			},
			"UntagPolicy": func() error {
				_, err := outsider.UntagPolicy(ctx, &iam.UntagPolicyInput{PolicyArn: arn, TagKeys: []string{"team"}})
				return err
			},
			"ListEntitiesForPolicy": func() error {
				_, err := outsider.ListEntitiesForPolicy(ctx, &iam.ListEntitiesForPolicyInput{PolicyArn: arn})
				return err
			},
			"UpdateRole": func() error {
				_, err := outsider.UpdateRole(ctx, &iam.UpdateRoleInput{RoleName: aws.String(target.role), MaxSessionDuration: aws.Int32(43200)})
				return err
			},
			"UpdateRoleDescription": func() error {
				_, err := outsider.UpdateRoleDescription(ctx, &iam.UpdateRoleDescriptionInput{RoleName: aws.String(target.role), Description: aws.String("mine")})
				return err
			},
			"ListInstanceProfilesForRole": func() error {
				_, err := outsider.ListInstanceProfilesForRole(ctx, &iam.ListInstanceProfilesForRoleInput{RoleName: aws.String(target.role)})
				return err
			},
		} {
			if err := call(); apiCode(err) != "AccessDenied" {
				t.Errorf("%s by a caller without IAM permissions, on %s/%s: %v, want AccessDenied", name, target.policy, target.role, err)
			}
		}
	}
	// Nothing changed: one version, the tag as it was, the role as created.
	vs, err := admin.ListPolicyVersions(ctx, &iam.ListPolicyVersionsInput{PolicyArn: p.Policy.Arn})
	mustOK(t, "ListPolicyVersions", err)
	tags, err := admin.ListPolicyTags(ctx, &iam.ListPolicyTagsInput{PolicyArn: p.Policy.Arn})
	mustOK(t, "ListPolicyTags", err)
	r, err := admin.GetRole(ctx, &iam.GetRoleInput{RoleName: aws.String("Probed")})
	mustOK(t, "GetRole", err)
	if len(vs.Versions) != 1 || tagString(tags.Tags) != "team=data" || aws.ToInt32(r.Role.MaxSessionDuration) != 3600 || aws.ToString(r.Role.Description) != "" {
		t.Fatalf("after the outsider's calls: %d versions, tags %s, role max session %d, description %q; want all unchanged",
			len(vs.Versions), tagString(tags.Tags), aws.ToInt32(r.Role.MaxSessionDuration), aws.ToString(r.Role.Description))
	}
}
