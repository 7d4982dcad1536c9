package http_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/iam/types"
	"github.com/shiftkey/shiftkey"
)

// tagString is tags as "k=v,k=v", in their order.
func tagString(tags []types.Tag) string {
	s := ""
	for i, t := range tags {
		if i > 0 {
			s += ","
		}
		s += aws.ToString(t.Key) + "=" + aws.ToString(t.Value)
	}
	return s
}

// TestTerraformPolicyDefaultTags replays aws_iam_policy under the
// provider's default_tags: CreatePolicy with Tags, the read (GetPolicy's
// Tags), a change of tags (UntagPolicy of the keys gone, TagPolicy of the
// new and changed ones), the read, and destroy; a policy created again
// under the ARN has none of the old tags. It runs over the store as it is
// and through the cache (storecache), whose entries the tag writes drop.
func TestTerraformPolicyDefaultTags(t *testing.T) {
	for _, cached := range []bool{false, true} {
		t.Run(fmt.Sprintf("cached=%v", cached), func(t *testing.T) {
			f := newFixtureOver(t, cached)
			ctx := context.Background()
			tfProviderStart(t, f)
			c := f.iamClient(f.keys["admin"])
			get := func(arn string) *types.Policy {
				t.Helper()
				g, err := c.GetPolicy(ctx, &iam.GetPolicyInput{PolicyArn: aws.String(arn)})
				mustOK(t, "aws_iam_policy read: GetPolicy", err)
				return g.Policy
			}
			p, err := c.CreatePolicy(ctx, &iam.CreatePolicyInput{PolicyName: aws.String("tf-tagged"), Path: aws.String("/"), Description: aws.String(""),
				PolicyDocument: aws.String(tfPolicy), Tags: []types.Tag{{Key: aws.String("ManagedBy"), Value: aws.String("terraform")},
					{Key: aws.String("team"), Value: aws.String("data")}}})
			mustOK(t, "aws_iam_policy create: CreatePolicy with default_tags", err)
			arn := aws.ToString(p.Policy.Arn)
			if got := tagString(p.Policy.Tags); got != "ManagedBy=terraform,team=data" {
				t.Fatalf("CreatePolicy's Policy.Tags: %q", got)
			}
			if got := tagString(get(arn).Tags); got != "ManagedBy=terraform,team=data" {
				t.Fatalf("GetPolicy's Tags after create: %q", got)
			}
			// ListPolicies shows a subset of a policy's attributes: no tags.
			l, err := c.ListPolicies(ctx, &iam.ListPoliciesInput{Scope: types.PolicyScopeTypeLocal})
			mustOK(t, "ListPolicies", err)
			for _, lp := range l.Policies {
				if len(lp.Tags) != 0 {
					t.Fatalf("ListPolicies shows tags: %+v", lp)
				}
			}

			// Update: team removed, owner added, ManagedBy changed.
			_, err = c.UntagPolicy(ctx, &iam.UntagPolicyInput{PolicyArn: aws.String(arn), TagKeys: []string{"team"}})
			mustOK(t, "aws_iam_policy update: UntagPolicy", err)
			_, err = c.TagPolicy(ctx, &iam.TagPolicyInput{PolicyArn: aws.String(arn), Tags: []types.Tag{{Key: aws.String("owner"), Value: aws.String("platform")},
				{Key: aws.String("ManagedBy"), Value: aws.String("tf")}}})
			mustOK(t, "aws_iam_policy update: TagPolicy", err)
			if got := tagString(get(arn).Tags); got != "ManagedBy=tf,owner=platform" {
				t.Fatalf("GetPolicy's Tags after update: %q", got)
			}
			lt, err := c.ListPolicyTags(ctx, &iam.ListPolicyTagsInput{PolicyArn: aws.String(arn)})
			mustOK(t, "ListPolicyTags", err)
			if got := tagString(lt.Tags); got != "ManagedBy=tf,owner=platform" || lt.IsTruncated {
				t.Fatalf("ListPolicyTags: %q truncated %v", got, lt.IsTruncated)
			}

			tfDeletePolicy(t, c, arn)
			_, err = c.ListPolicyTags(ctx, &iam.ListPolicyTagsInput{PolicyArn: aws.String(arn)})
			wantAPIError(t, err, shiftkey.CodeNoSuchEntity)
			_, err = c.TagPolicy(ctx, &iam.TagPolicyInput{PolicyArn: aws.String(arn), Tags: []types.Tag{{Key: aws.String("k"), Value: aws.String("v")}}})
			wantAPIError(t, err, shiftkey.CodeNoSuchEntity)

			// The same ARN again, without tags: it has none.
			r, err := c.CreatePolicy(ctx, &iam.CreatePolicyInput{PolicyName: aws.String("tf-tagged"), PolicyDocument: aws.String(tfPolicy)})
			mustOK(t, "CreatePolicy again, without tags", err)
			if again := aws.ToString(r.Policy.Arn); again != arn {
				t.Fatalf("recreated policy's ARN %s, want %s", again, arn)
			}
			if got := tagString(get(arn).Tags); got != "" {
				t.Fatalf("a policy created again under the ARN has the old one's tags: %q", got)
			}
			lt, err = c.ListPolicyTags(ctx, &iam.ListPolicyTagsInput{PolicyArn: aws.String(arn)})
			mustOK(t, "ListPolicyTags of the recreated policy", err)
			if len(lt.Tags) != 0 {
				t.Fatalf("ListPolicyTags of the recreated policy: %q", tagString(lt.Tags))
			}
		})
	}
}

// TestPolicyTagsValidation: the tags of CreatePolicy and TagPolicy are
// held to CreateUser's and TagUser's rules (aws: prefix, 50 at most,
// counted with the policy's own), and a refused CreatePolicy creates
// nothing.
func TestPolicyTagsValidation(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	c := f.iamClient(f.keys["admin"])
	arn := "arn:aws:iam::" + account + ":policy/v"
	_, err := c.CreatePolicy(ctx, &iam.CreatePolicyInput{PolicyName: aws.String("v"), PolicyDocument: aws.String(tfPolicy),
		Tags: []types.Tag{{Key: aws.String("aws:team"), Value: aws.String("x")}}})
	wantAPIError(t, err, "ValidationError")
	many := make([]types.Tag, 51)
	for i := range many {
		many[i] = types.Tag{Key: aws.String(fmt.Sprintf("k%02d", i)), Value: aws.String("v")}
	}
	_, err = c.CreatePolicy(ctx, &iam.CreatePolicyInput{PolicyName: aws.String("v"), PolicyDocument: aws.String(tfPolicy), Tags: many})
	wantAPIError(t, err, shiftkey.CodeLimitExceeded)
	_, err = c.GetPolicy(ctx, &iam.GetPolicyInput{PolicyArn: aws.String(arn)})
	wantAPIError(t, err, shiftkey.CodeNoSuchEntity)

	_, err = c.CreatePolicy(ctx, &iam.CreatePolicyInput{PolicyName: aws.String("v"), PolicyDocument: aws.String(tfPolicy), Tags: many[:50]})
	mustOK(t, "CreatePolicy with 50 tags", err)
	_, err = c.TagPolicy(ctx, &iam.TagPolicyInput{PolicyArn: aws.String(arn), Tags: []types.Tag{{Key: aws.String("one-more"), Value: aws.String("v")}}})
	wantAPIError(t, err, shiftkey.CodeLimitExceeded)
	_, err = c.TagPolicy(ctx, &iam.TagPolicyInput{PolicyArn: aws.String(arn), Tags: []types.Tag{{Key: aws.String("K00"), Value: aws.String("new")}}})
	mustOK(t, "TagPolicy replacing a value at the quota", err)
	_, err = c.UntagPolicy(ctx, &iam.UntagPolicyInput{PolicyArn: aws.String(arn), TagKeys: []string{"aws:x"}})
	wantAPIError(t, err, "ValidationError")
}

// TestCreatePolicyWithTagsNeedsTagPolicy: as CreateUser with Tags needs
// iam:TagUser, CreatePolicy with Tags needs iam:TagPolicy as well as
// iam:CreatePolicy (the Service Authorization Reference lists TagPolicy as
// its dependent action); refused, it creates nothing. Tag conditions on
// the policy calls see the request's tags (aws:RequestTag/*, aws:TagKeys)
// and the policy's own (aws:ResourceTag/*).
func TestCreatePolicyWithTagsNeedsTagPolicy(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	admin := f.iamClient(f.keys["admin"])
	tag := func(k, v string) types.Tag { return types.Tag{Key: aws.String(k), Value: aws.String(v)} }

	only := f.iamClient(f.newIAMUserKey(t, "creator", `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"iam:CreatePolicy","Resource":"*"}]}`))
	_, err := only.CreatePolicy(ctx, &iam.CreatePolicyInput{PolicyName: aws.String("p1"), PolicyDocument: aws.String(tfPolicy), Tags: []types.Tag{tag("team", "data")}})
	if apiCode(err) != "AccessDenied" || httpStatus(err) != 403 {
		t.Fatalf("CreatePolicy with Tags, without iam:TagPolicy: %v, want AccessDenied 403", err)
	}
	_, err = admin.GetPolicy(ctx, &iam.GetPolicyInput{PolicyArn: aws.String("arn:aws:iam::" + account + ":policy/p1")})
	wantAPIError(t, err, shiftkey.CodeNoSuchEntity)
	_, err = only.CreatePolicy(ctx, &iam.CreatePolicyInput{PolicyName: aws.String("p1"), PolicyDocument: aws.String(tfPolicy)})
	mustOK(t, "CreatePolicy without Tags", err)

	both := f.iamClient(f.newIAMUserKey(t, "tagger", `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["iam:CreatePolicy","iam:TagPolicy"],"Resource":"*",
		"Condition":{"StringEquals":{"aws:RequestTag/team":"data"}}}]}`))
	_, err = both.CreatePolicy(ctx, &iam.CreatePolicyInput{PolicyName: aws.String("p2"), PolicyDocument: aws.String(tfPolicy), Tags: []types.Tag{tag("team", "data")}})
	mustOK(t, "CreatePolicy with an allowed tag", err)
	_, err = both.CreatePolicy(ctx, &iam.CreatePolicyInput{PolicyName: aws.String("p3"), PolicyDocument: aws.String(tfPolicy), Tags: []types.Tag{tag("team", "ops")}})
	if apiCode(err) != "AccessDenied" {
		t.Fatalf("CreatePolicy with a tag outside aws:RequestTag: %v", err)
	}

	p2 := aws.String("arn:aws:iam::" + account + ":policy/p2")
	_, err = admin.CreatePolicy(ctx, &iam.CreatePolicyInput{PolicyName: aws.String("p4"), PolicyDocument: aws.String(tfPolicy), Tags: []types.Tag{tag("team", "ops")}})
	mustOK(t, "CreatePolicy p4", err)
	p4 := aws.String("arn:aws:iam::" + account + ":policy/p4")

	tests := []struct {
		name, actions, condition string
		ok, no                   func(c *iam.Client) error
	}{
		{"aws:TagKeys on TagPolicy", `["iam:TagPolicy"]`, `"ForAllValues:StringEquals":{"aws:TagKeys":["project"]}`,
			func(c *iam.Client) error {
				_, err := c.TagPolicy(ctx, &iam.TagPolicyInput{PolicyArn: p2, Tags: []types.Tag{tag("project", "x")}})
				return err
			}, func(c *iam.Client) error {
				_, err := c.TagPolicy(ctx, &iam.TagPolicyInput{PolicyArn: p2, Tags: []types.Tag{tag("team", "x")}})
				return err
			}},
		{"aws:TagKeys on UntagPolicy", `["iam:UntagPolicy"]`, `"ForAllValues:StringEquals":{"aws:TagKeys":["project"]}`,
			func(c *iam.Client) error {
				_, err := c.UntagPolicy(ctx, &iam.UntagPolicyInput{PolicyArn: p2, TagKeys: []string{"project"}})
				return err
			}, func(c *iam.Client) error {
				_, err := c.UntagPolicy(ctx, &iam.UntagPolicyInput{PolicyArn: p2, TagKeys: []string{"team"}})
				return err
			}},
		{"aws:ResourceTag on GetPolicy", `["iam:GetPolicy"]`, `"StringEquals":{"aws:ResourceTag/team":"data"}`,
			func(c *iam.Client) error {
				_, err := c.GetPolicy(ctx, &iam.GetPolicyInput{PolicyArn: p2})
				return err
			}, func(c *iam.Client) error {
				_, err := c.GetPolicy(ctx, &iam.GetPolicyInput{PolicyArn: p4})
				return err
			}},
		{"aws:ResourceTag on ListPolicyTags", `["iam:ListPolicyTags"]`, `"StringEquals":{"aws:ResourceTag/team":"data"}`,
			func(c *iam.Client) error {
				_, err := c.ListPolicyTags(ctx, &iam.ListPolicyTagsInput{PolicyArn: p2})
				return err
			}, func(c *iam.Client) error {
				_, err := c.ListPolicyTags(ctx, &iam.ListPolicyTagsInput{PolicyArn: p4})
				return err
			}},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := f.iamClient(f.newIAMUserKey(t, fmt.Sprintf("ptag%d", i), `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":`+tt.actions+`,"Resource":"*","Condition":{`+tt.condition+`}}]}`))
			mustOK(t, "the call carrying the value", tt.ok(c))
			if err := tt.no(c); apiCode(err) != "AccessDenied" || httpStatus(err) != 403 {
				t.Fatalf("the call without the value: %v, want AccessDenied 403", err)
			}
		})
	}
}
