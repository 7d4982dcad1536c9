package http_test

import (
	"context"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"
)

// A MaxItems out of IAM's range (1–1000) is a ValidationError whoever
// asks and whatever it names, as AWS checks a request's parameters before
// it looks anything up or authorizes it. The lists that read their owner
// first answered NoSuchEntity for a missing one, and AccessDenied to a
// caller without the permission.
func TestMaxItemsCheckedFirst(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	admin, limited := f.iamClient(f.keys["admin"]), f.iamClient(f.keys["limited"])
	bad := aws.Int32(1001)
	for _, c := range []struct {
		name string
		call func(*iam.Client) error
	}{
		{"GetGroup of a missing group", func(c *iam.Client) error {
			_, err := c.GetGroup(ctx, &iam.GetGroupInput{GroupName: aws.String("nogroup"), MaxItems: bad})
			return err
		}},
		{"ListUserTags of a missing user", func(c *iam.Client) error {
			_, err := c.ListUserTags(ctx, &iam.ListUserTagsInput{UserName: aws.String("nouser"), MaxItems: bad})
			return err
		}},
		{"ListAttachedRolePolicies of a missing role", func(c *iam.Client) error {
			_, err := c.ListAttachedRolePolicies(ctx, &iam.ListAttachedRolePoliciesInput{RoleName: aws.String("NoRole"), MaxItems: bad})
			return err
		}},
		{"ListPolicyVersions of a missing policy", func(c *iam.Client) error {
			_, err := c.ListPolicyVersions(ctx, &iam.ListPolicyVersionsInput{PolicyArn: aws.String("arn:aws:iam::000000000000:policy/nopolicy"), MaxItems: bad})
			return err
		}},
		{"ListPolicies", func(c *iam.Client) error {
			_, err := c.ListPolicies(ctx, &iam.ListPoliciesInput{MaxItems: bad})
			return err
		}},
	} {
		for who, client := range map[string]*iam.Client{"admin": admin, "a caller without IAM permissions": limited} {
			err := c.call(client)
			if got := apiCode(err); got != "ValidationError" {
				t.Errorf("%s with MaxItems 1001, by %s: %v (%s), want ValidationError", c.name, who, err, got)
			}
		}
	}
}
