package http_test

import (
	"context"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	iamtypes "github.com/aws/aws-sdk-go-v2/service/iam/types"
	"github.com/shiftkey/shiftkey"
)

// TestExistingUserNameLength: calls about an existing user take IAM's
// existingUserNameType (1-128 characters), CreateUser and the
// Attach/Detach/ListAttachedUserPolicies calls userNameType (1-64). A
// name of 65-128 characters that names no user is NoSuchEntity (404), as
// in AWS, not a ValidationError; one over 128 is ValidationError with the
// model's length message.
func TestExistingUserNameLength(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	admin := f.iamClient(f.keys["admin"])
	n100, n129 := strings.Repeat("u", 100), strings.Repeat("u", 129)
	calls := map[string]func(name string) error{
		"GetUser": func(n string) error {
			_, err := admin.GetUser(ctx, &iam.GetUserInput{UserName: &n})
			return err
		},
		"DeleteUser": func(n string) error {
			_, err := admin.DeleteUser(ctx, &iam.DeleteUserInput{UserName: &n})
			return err
		},
		"ListAccessKeys": func(n string) error {
			_, err := admin.ListAccessKeys(ctx, &iam.ListAccessKeysInput{UserName: &n})
			return err
		},
		"CreateAccessKey": func(n string) error {
			_, err := admin.CreateAccessKey(ctx, &iam.CreateAccessKeyInput{UserName: &n})
			return err
		},
		"PutUserPolicy": func(n string) error {
			_, err := admin.PutUserPolicy(ctx, &iam.PutUserPolicyInput{UserName: &n, PolicyName: aws.String("p"), PolicyDocument: aws.String(allowDescribe)})
			return err
		},
		"ListGroupsForUser": func(n string) error {
			_, err := admin.ListGroupsForUser(ctx, &iam.ListGroupsForUserInput{UserName: &n})
			return err
		},
		"TagUser": func(n string) error {
			_, err := admin.TagUser(ctx, &iam.TagUserInput{UserName: &n, Tags: []iamtypes.Tag{{Key: aws.String("k"), Value: aws.String("v")}}})
			return err
		},
		"ListUserTags": func(n string) error {
			_, err := admin.ListUserTags(ctx, &iam.ListUserTagsInput{UserName: &n})
			return err
		},
	}
	for name, call := range calls {
		t.Run(name, func(t *testing.T) {
			if err := call(n100); apiCode(err) != shiftkey.CodeNoSuchEntity || httpStatus(err) != 404 {
				t.Errorf("a 100-character name of no user: %v (status %d), want NoSuchEntity 404", err, httpStatus(err))
			}
			err := call(n129)
			if apiCode(err) != "ValidationError" || !strings.Contains(err.Error(), "Member must have length less than or equal to 128") {
				t.Errorf("a 129-character name: %v, want ValidationError (length 128)", err)
			}
		})
	}
	// userNameType calls keep 64.
	_, err := admin.CreateUser(ctx, &iam.CreateUserInput{UserName: aws.String(strings.Repeat("c", 65))})
	if apiCode(err) != "ValidationError" || !strings.Contains(err.Error(), "less than or equal to 64") {
		t.Fatalf("CreateUser with 65 characters: %v, want ValidationError (64)", err)
	}
	_, err = admin.AttachUserPolicy(ctx, &iam.AttachUserPolicyInput{UserName: aws.String(strings.Repeat("c", 65)), PolicyArn: aws.String("arn:aws:iam::" + account + ":policy/x")})
	if apiCode(err) != "ValidationError" || !strings.Contains(err.Error(), "less than or equal to 64") {
		t.Fatalf("AttachUserPolicy with 65 characters: %v, want ValidationError (64)", err)
	}
}

// TestReservedTagKeys: tag keys starting with aws: (any case) are AWS's;
// a caller setting one, on create or later, is refused and nothing is
// stored.
func TestReservedTagKeys(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	admin := f.iamClient(f.keys["admin"])
	reserved := []iamtypes.Tag{{Key: aws.String("AWS:cloudformation:stack-name"), Value: aws.String("x")}}
	_, err := admin.CreateUser(ctx, &iam.CreateUserInput{UserName: aws.String("r"), Tags: reserved})
	if apiCode(err) != "ValidationError" || httpStatus(err) != 400 {
		t.Fatalf("CreateUser with an aws: tag: %v (status %d), want ValidationError 400", err, httpStatus(err))
	}
	if _, err := admin.GetUser(ctx, &iam.GetUserInput{UserName: aws.String("r")}); apiCode(err) != "NoSuchEntity" {
		t.Fatalf("GetUser after the refused CreateUser: %v", err)
	}
	_, err = admin.CreateRole(ctx, &iam.CreateRoleInput{RoleName: aws.String("R"), AssumeRolePolicyDocument: aws.String(trustUser("admin")), Tags: reserved})
	if apiCode(err) != "ValidationError" {
		t.Fatalf("CreateRole with an aws: tag: %v, want ValidationError", err)
	}
	_, err = admin.TagUser(ctx, &iam.TagUserInput{UserName: aws.String("admin"), Tags: reserved})
	if apiCode(err) != "ValidationError" {
		t.Fatalf("TagUser with an aws: tag: %v, want ValidationError", err)
	}
	_, err = admin.UntagUser(ctx, &iam.UntagUserInput{UserName: aws.String("admin"), TagKeys: []string{"aws:x"}})
	if apiCode(err) != "ValidationError" {
		t.Fatalf("UntagUser of an aws: key: %v, want ValidationError", err)
	}
}
